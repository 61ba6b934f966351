using System.Buffers.Binary;
using System.Diagnostics;
using SmartOS.Kernel.Wire;

namespace SmartOS.Kernel;

/// <summary>
/// A frame in a pooled buffer (Kernel.cs rule 3). <see cref="Offset"/> leaves headroom in front of
/// the frame so a VLAN tag can be pushed in place. Metadata travels with the frame through the MAC
/// layer: the VLAN it was classified into and the time it entered the host.
/// </summary>
public sealed class Packet
{
    /// <summary>Room in front of every frame: enough for a VLAN tag and an encapsulation header.</summary>
    public const int Headroom = 64;

    internal readonly PacketPool? Pool;
    public readonly byte[] Buffer;
    public int Offset;
    public int Length;

    /// <summary>The VLAN the frame belongs to inside the switch (0: untagged). The frame bytes carry
    /// no tag while inside the host; the tag is pushed when the frame leaves by a physical NIC.</summary>
    public ushort Vid;

    /// <summary>The 802.1p priority code point to put in a tag on egress.</summary>
    public byte Pcp;

    /// <summary>Time the packet was created or received, for capture timestamps.</summary>
    public long Timestamp;

    /// <summary>The service band a congested NIC serves it in: 0 high (the default), 1 medium, 2 low.
    /// Set by the MAC layer from the sending link's or flow's priority property.</summary>
    public byte Band;

    /// <summary>Who the frame is queued for fairness among equal bands (a link or flow id; 0: none).</summary>
    public int FairKey;

    /// <summary>Large send offload (illumos HW_LSO, Linux GSO): when not 0, the frame is one TCP
    /// segment larger than the link's MTU that is to be cut into segments of this many payload bytes
    /// where it leaves the host (MacLayer.cs rule 9): by the device itself when it offers LSO (a TAP
    /// with offloads writes one virtio_net_hdr GSO frame), by TcpSegmentation anywhere else.</summary>
    public ushort LsoMss;

    internal bool InPool;

    // Checksum offload (illumos HCK_PARTIALCKSUM, Linux CHECKSUM_PARTIAL): a transport leaves its
    // checksum to be filled in when the frame leaves the host or is captured. The field holds the
    // pseudo-header sum; the offsets are into Buffer, so headers pushed in front do not move them.
    private int _csumStart, _csumLength, _csumField;

    /// <summary>True while the transport checksum is left to be filled in (<see cref="FinishChecksum"/>).
    /// A stack of this host may accept such a frame without verifying it: it never left the host.</summary>
    public bool ChecksumPending => _csumLength > 0;

    /// <summary>The transport checksum in the bytes was filled in by <see cref="FinishChecksum"/> in
    /// this process and the frame has not been rewritten since (illumos's HCK_FULLCKSUM_OK, what a
    /// NIC with receive checksum offload reports): a stack may accept it without summing the segment
    /// again, as the sum is known to verify. Only a wire of this process carries such a frame
    /// between hosts, and it never changes a byte (it loses, duplicates or delays whole frames);
    /// a frame that comes in any other way (a TAP, pcap, a guest, a test's bytes) is copied into a
    /// fresh packet without the mark and verified in full. Cleared when the packet is rented again,
    /// reused as another frame (<see cref="ClearMetadata"/>) or marked pending.</summary>
    public bool ChecksumKnownGood { get; private set; }

    /// <summary>Marks the checksum of the transport segment at <paramref name="start"/> (an offset into
    /// <see cref="Data"/>) of <paramref name="length"/> bytes as pending; its field, at
    /// <paramref name="field"/> within the segment, must hold the folded pseudo-header sum.</summary>
    public void SetChecksumPending(int start, int length, int field)
    {
        ChecksumKnownGood = false;
        _csumStart = Offset + start;
        _csumLength = length;
        _csumField = field;
    }

    /// <summary>Fills in a pending transport checksum (what a NIC with checksum offload does on
    /// transmit). Every place a frame leaves the host's stacks calls this: a physical NIC's wire or
    /// device, a capture, a MAC client that is not one of our IP stacks (a guest, an lx zone).</summary>
    public void FinishChecksum()
    {
        if (_csumLength == 0) return;
        var segment = Buffer.AsSpan(_csumStart, _csumLength);
        BinaryPrimitives.WriteUInt16BigEndian(segment[_csumField..], Checksum.Fold(Checksum.Sum(segment)));
        _csumLength = 0;
        ChecksumKnownGood = true;
    }

    /// <summary>Sets <see cref="ChecksumKnownGood"/> on a copy of a frame that had it, made in this
    /// process (a wire's copy from its staging area, vnic/Wire.cs): the bytes, and so the sum, are
    /// the same.</summary>
    public void MarkChecksumKnownGood()
    {
        if (!ChecksumPending) ChecksumKnownGood = true;
    }

    internal void ClearChecksumPending()
    {
        _csumLength = 0;
        ChecksumKnownGood = false;
    }

    /// <summary>Clears what the frame carried through the MAC layer (VLAN, priority, timestamp, band,
    /// fairness key, LSO, a pending checksum), as a freshly rented packet has it: a frame reused in
    /// place as another one (encapsulated or decapsulated by an overlay, vnic/Overlay.cs rule 6)
    /// starts anew. Offset and Length stay.</summary>
    public void ClearMetadata()
    {
        Vid = 0;
        Pcp = 0;
        Timestamp = 0;
        Band = 0;
        FairKey = 0;
        LsoMss = 0;
        _csumLength = 0;
        ChecksumKnownGood = false;
    }

    /// <summary>Where a pending checksum's segment starts and where its field is, as offsets into
    /// <see cref="Data"/> (for a device told to fill it in: a TAP's virtio_net_hdr); false when no
    /// checksum is pending or it does not run to the end of the frame, as such a device requires.</summary>
    public bool TryGetPendingChecksum(out int start, out int field)
    {
        start = _csumStart - Offset;
        field = start + _csumField;
        return _csumLength > 0 && start >= 0 && start + _csumLength == Length;
    }

    internal Packet(PacketPool? pool, int capacity)
    {
        Pool = pool;
        Buffer = new byte[capacity];
        Offset = Headroom;
    }

    /// <summary>A packet that belongs to no pool (tests, one-off frames).</summary>
    public static Packet Unpooled(ReadOnlySpan<byte> frame)
    {
        var p = new Packet(null, frame.Length + Headroom);
        p.Length = frame.Length;
        frame.CopyTo(p.Data);
        return p;
    }

    public int Capacity => Buffer.Length - Headroom;
    public Span<byte> Data => Buffer.AsSpan(Offset, Length);
    public Memory<byte> Memory => Buffer.AsMemory(Offset, Length);

    /// <summary>Makes room for <paramref name="count"/> bytes in front of the frame.</summary>
    public bool TryPrepend(int count)
    {
        if (count > Offset) return false;
        Offset -= count;
        Length += count;
        return true;
    }

    /// <summary>Drops <paramref name="count"/> bytes from the front of the frame.</summary>
    public void TrimFront(int count)
    {
        Debug.Assert(count <= Length);
        Offset += count;
        Length -= count;
    }

    /// <summary>Sets the frame length, keeping the current start.</summary>
    public bool TrySetLength(int length)
    {
        if (length < 0 || Offset + length > Buffer.Length) return false;
        Length = length;
        return true;
    }

    /// <summary>Whether the packet's buffer is one of <paramref name="pool"/>'s (and goes back to it when freed).</summary>
    public bool BelongsTo(PacketPool pool) => ReferenceEquals(Pool, pool);

    /// <summary>Returns the packet to its pool. The caller must not touch it afterwards.</summary>
    public void Free() => Pool?.Return(this);

    /// <summary>A copy in a new packet from the same pool (broadcast replication).</summary>
    public Packet? Clone()
    {
        Packet? copy = Pool != null ? Pool.Rent(Length) : new Packet(null, Length + Headroom);
        if (copy == null) return null;
        copy.Length = Length;
        Data.CopyTo(copy.Data);
        copy.Vid = Vid;
        copy.Pcp = Pcp;
        copy.Timestamp = Timestamp;
        copy.Band = Band;
        copy.FairKey = FairKey;
        copy.LsoMss = LsoMss;
        if (ChecksumPending) copy.SetChecksumPending(_csumStart - Offset, _csumLength, _csumField);
        else copy.ChecksumKnownGood = ChecksumKnownGood;
        return copy;
    }
}

/// <summary>
/// A pool of packets in two size classes: standard frames (up to 2 KiB) and jumbo frames (up to
/// 9 KiB + tags). Renting from an empty class allocates until <see cref="Limit"/> buffers exist in
/// that class; past it Rent returns null and the caller counts a drop (no silent growth). A third
/// class, rented only through <see cref="RentLso"/>, holds large-send segments (Packet.LsoMss) of up
/// to <see cref="LsoSize"/> bytes, at most <see cref="LsoLimit"/> of them: they live only from a
/// stack's send to the device's write, so a few suffice.
/// </summary>
public sealed class PacketPool
{
    public const int SmallSize = 2048;
    public const int LargeSize = 9216 + 64;
    /// <summary>The largest large-send frame: the largest an IPv4 length allows, with an Ethernet
    /// header, but no more than a capture's snaplen (65535) keeps whole.</summary>
    public const int LsoSize = 65535;
    /// <summary>Buffers of the large-send class (4 MiB at most).</summary>
    public const int LsoLimit = 64;

    // Free lists as plain arrays with a count (not Stack<T>, whose version stamp and checks cost on
    // every Rent and Free); each grows to at most Limit entries.
    private Packet[] _small = new Packet[64];
    private Packet[] _large = new Packet[16];
    private Packet[] _lso = new Packet[4];
    private int _smallFree, _largeFree, _lsoFree;
    private int _smallCreated, _largeCreated, _lsoCreated;

    public PacketPool(int limit = 1 << 16) { Limit = limit; }

    /// <summary>Maximum number of buffers per size class.</summary>
    public int Limit { get; }

    public int Outstanding => _smallCreated - _smallFree + _largeCreated - _largeFree + _lsoCreated - _lsoFree;
    public long Allocated => _smallCreated + (long)_largeCreated + _lsoCreated;
    public long Exhausted { get; private set; }

    /// <summary>Rents a packet able to hold <paramref name="length"/> bytes; its Length is set.</summary>
    public Packet? Rent(int length)
    {
        Packet p;
        if (length <= SmallSize && _smallFree > 0)
        {
            p = _small[--_smallFree];
            _small[_smallFree] = null!;
        }
        else
        {
            var q = RentSlow(length);
            if (q == null) return null;
            p = q;
        }
        Reset(p, length);
        return p;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Reset(Packet p, int length)
    {
        p.InPool = false;
        p.Offset = Packet.Headroom;
        p.Length = length;
        p.Vid = 0;
        p.Pcp = 0;
        p.Timestamp = 0;
        p.Band = 0;
        p.FairKey = 0;
        p.LsoMss = 0;
        p.ClearChecksumPending();
    }

    /// <summary>Whether <see cref="RentLso"/> would find or make a buffer now.</summary>
    public bool LsoAvailable => _lsoFree > 0 || _lsoCreated < LsoLimit;

    /// <summary>Rents a packet able to hold a large-send segment of <paramref name="length"/> bytes
    /// (up to <see cref="LsoSize"/>); null when that class is exhausted (the caller sends smaller
    /// segments from the ordinary classes instead).</summary>
    public Packet? RentLso(int length)
    {
        if (length <= LargeSize) return Rent(length);
        if (length > LsoSize) return null;
        Packet p;
        if (_lsoFree > 0)
        {
            p = _lso[--_lsoFree];
            _lso[_lsoFree] = null!;
        }
        else
        {
            if (_lsoCreated >= LsoLimit) { Exhausted++; return null; }
            _lsoCreated++;
            p = new Packet(this, LsoSize + Packet.Headroom);
        }
        Reset(p, length);
        return p;
    }

    /// <summary>Rent from the large class or a new buffer: kept out of Rent so the common case inlines.</summary>
    private Packet? RentSlow(int length)
    {
        if (length > LargeSize) return null;
        bool large = length > SmallSize;
        if (large && _largeFree > 0)
        {
            var p = _large[--_largeFree];
            _large[_largeFree] = null!;
            return p;
        }
        ref int created = ref (large ? ref _largeCreated : ref _smallCreated);
        if (created >= Limit) { Exhausted++; return null; }
        created++;
        return new Packet(this, (large ? LargeSize : SmallSize) + Packet.Headroom);
    }

    /// <summary>Rents a packet holding a copy of <paramref name="frame"/>.</summary>
    public Packet? Rent(ReadOnlySpan<byte> frame)
    {
        var p = Rent(frame.Length);
        if (p != null) frame.CopyTo(p.Data);
        return p;
    }

    internal void Return(Packet p)
    {
        Debug.Assert(!p.InPool, "packet freed twice");
        if (p.InPool) return;
        p.InPool = true;
        if (p.Buffer.Length > LargeSize + Packet.Headroom) Push(ref _lso, ref _lsoFree, p);
        else if (p.Buffer.Length > SmallSize + Packet.Headroom) Push(ref _large, ref _largeFree, p);
        else Push(ref _small, ref _smallFree, p);
    }

    private static void Push(ref Packet[] list, ref int count, Packet p)
    {
        if (count == list.Length) Array.Resize(ref list, list.Length * 2);
        list[count++] = p;
    }
}
