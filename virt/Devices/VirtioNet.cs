using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Vnic;

namespace SmartOS.Virt.Devices;

/// <summary>
/// A virtio-net device (virtio 1.x spec, section 5.1), one MAC client behind it, on virtio-mmio
/// version 2 (VirtioMmio.cs) or on legacy virtio-pci (PciVirtio.cs). Queue 0 is receive, queue 1
/// transmit; split rings only, no indirect descriptors, no offloads. Features offered:
/// VIRTIO_NET_F_MAC and VIRTIO_F_VERSION_1, so a modern driver's frames carry the 12-byte
/// virtio_net_hdr (num_buffers included); a legacy driver sees only the low 32 feature bits, and
/// its frames carry the 10-byte header (<see cref="NetHeaderLength"/>).
///
/// Every ring entry is untrusted guest data (Vmm.cs rule 4): a descriptor outside RAM, a chain
/// longer than the queue (a loop), a chain bigger than a frame or a bad index stops the device:
/// its status gets DEVICE_NEEDS_RESET, <see cref="Error"/> says why, and it carries no more frames
/// until the guest resets it. The host and the rest of the VM are untouched.
/// </summary>
public sealed class VirtioNet : VirtioMmio, IMacReceiver
{
    public const int HeaderLength = 12;
    /// <summary>The header of a legacy driver (virtio-pci 0.9.5) that negotiated neither
    /// VIRTIO_F_VERSION_1 nor VIRTIO_NET_F_MRG_RXBUF: no num_buffers.</summary>
    public const int LegacyHeaderLength = 10;
    public const int MaxQueueSize = 256;
    /// <summary>Largest chain accepted: a jumbo frame plus the header.</summary>
    public const int MaxChainBytes = 9216 + HeaderLength;

    private const ulong FeatureMac = 1UL << 5, FeatureMergeableRx = 1UL << 15;

    private readonly Action _wake;
    private readonly byte[] _chain = new byte[MaxChainBytes];

    internal VirtioNet(GuestMemory memory, ulong baseAddress, MacClient client, Action wake)
        : base(memory, baseAddress, queueCount: 2, MaxQueueSize)
    {
        Client = client;
        _wake = wake;
        client.Receiver = this;
    }

    public MacClient Client { get; }
    public MacAddress MacAddress => Client.MacAddress;

    public long TxFrames { get; private set; }
    public long RxFrames { get; private set; }
    /// <summary>Frames that arrived while the guest had no receive buffer posted (or the driver was not ready).</summary>
    public long RxDropped { get; private set; }
    public long TxErrors { get; private set; }

    protected internal override uint DeviceId => 1; // network card
    protected internal override ulong DeviceFeatures => FeatureMac | FeatureVersion1;

    /// <summary>Config space: mac[6], status u16 (link up).</summary>
    /// <summary>The virtio_net_hdr in front of every frame, as the driver's features make it.</summary>
    public int NetHeaderLength => !Legacy || (DriverFeatures & (FeatureVersion1 | FeatureMergeableRx)) != 0 ? HeaderLength : LegacyHeaderLength;

    protected internal override ulong ReadConfig(uint offset, int size)
    {
        ulong v = 0;
        Span<byte> cfg = stackalloc byte[8];
        MacAddress.Write(cfg);
        cfg[6] = 1;
        for (int i = 0; i < size && offset + i < 8; i++) v |= (ulong)cfg[(int)offset + i] << (8 * i);
        return v;
    }

    /// <summary>Queue 1 is transmit; the receive queue needs no notify (frames arrive from the MAC client).</summary>
    protected internal override void Notify(uint queue)
    {
        if (queue == 1) ProcessTx();
    }

    /// <summary>Called when the VM stops: the device lets go of the MAC client and of guest memory
    /// (which may be freed next); frames that still reach it are dropped and counted.</summary>
    internal override void Detach()
    {
        base.Detach();
        if (Client.Receiver == this) Client.Receiver = null;
    }

    private void ProcessTx()
    {
        var q = Queue(1);
        if (!Running || !q.Ready) return;
        while (TryNextAvail(q, out ushort head))
        {
            int total = 0;
            ushort index = head;
            for (int n = 0; ; n++)
            {
                if (n >= q.Num) { Fail($"transmit descriptor chain from {head} loops"); return; }
                if (!TryReadDesc(q, index, out ulong addr, out uint len, out ushort flags, out ushort next)) return;
                if (len > MaxChainBytes - total) { Fail($"transmit chain from {head} is larger than {MaxChainBytes} bytes"); return; }
                if (!Memory.TryRead(addr, _chain.AsSpan(total, (int)len))) { Fail($"transmit buffer 0x{addr:x}+{len} is outside guest memory"); return; }
                total += (int)len;
                if ((flags & DescNext) == 0) break;
                index = next;
            }
            if (!TryPutUsed(q, head, 0)) return;
            int hdr = NetHeaderLength;
            int frameLength = total - hdr;
            if (frameLength < EthernetView.HeaderLength)
            {
                TxErrors++;
                continue;
            }
            var packet = Client.Pool.Rent(_chain.AsSpan(hdr, frameLength));
            if (packet == null)
            {
                TxErrors++;
                continue;
            }
            packet.Timestamp = Client.Scheduler.Now;
            TxFrames++;
            Client.Transmit(packet);
        }
    }

    /// <summary>A frame from the MAC layer (IMacReceiver): copied into the guest's next receive buffer.</summary>
    public void Receive(MacClient client, Packet packet)
    {
        try
        {
            var q = Queue(0);
            if (!Running || !q.Ready || !TryNextAvail(q, out ushort head))
            {
                RxDropped++;
                return;
            }
            var frame = packet.Data;
            int hdr = NetHeaderLength;
            Span<byte> header = stackalloc byte[HeaderLength];
            header.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(header[10..], 1); // num_buffers (only in the 12-byte header)
            int need = hdr + frame.Length, written = 0;
            ushort index = head;
            for (int n = 0; written < need; n++)
            {
                if (n >= q.Num) { Fail($"receive descriptor chain from {head} loops"); return; }
                if (!TryReadDesc(q, index, out ulong addr, out uint len, out ushort flags, out ushort next)) return;
                if ((flags & DescWrite) == 0) { Fail($"receive descriptor {index} is not device-writable"); return; }
                int chunk = (int)Math.Min(len, (uint)(need - written));
                if (!Memory.TryGetSpan(addr, chunk, out var dst)) { Fail($"receive buffer 0x{addr:x}+{len} is outside guest memory"); return; }
                for (int i = 0; i < chunk; i++)
                {
                    int at = written + i;
                    dst[i] = at < hdr ? header[at] : frame[at - hdr];
                }
                Memory.NoteWritten(addr, (ulong)chunk);
                written += chunk;
                if ((flags & DescNext) == 0) break;
                index = next;
            }
            if (written < need)
            {
                // The guest's buffer is too small for this frame: hand the buffer back empty.
                RxDropped++;
                TryPutUsed(q, head, 0);
                return;
            }
            if (!TryPutUsed(q, head, (uint)written)) return;
            RxFrames++;
            _wake();
        }
        finally
        {
            packet.Free();
        }
    }
}
