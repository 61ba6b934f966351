using System.Buffers;
using System.Diagnostics;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tcp;

/// <summary>
/// The send buffer: a ring holding bytes from SND.UNA on (sent but unacknowledged, then unsent).
/// Retransmission copies straight out of it into a packet, so a segment is never kept twice.
/// </summary>
internal sealed class SendRing
{
    private byte[] _buf;
    private int _head;

    public SendRing(int capacity)
    {
        Capacity = capacity;
        _buf = ArrayPool<byte>.Shared.Rent(capacity);
    }

    public int Capacity { get; }
    public int Count { get; private set; }
    public int Free => Capacity - Count;

    public int Write(ReadOnlySpan<byte> data)
    {
        int n = Math.Min(data.Length, Free);
        int tail = (_head + Count) % Capacity;
        int first = Math.Min(n, Capacity - tail);
        data[..first].CopyTo(_buf.AsSpan(tail));
        data[first..n].CopyTo(_buf);
        Count += n;
        return n;
    }

    /// <summary>Copies <paramref name="dest"/>.Length bytes starting <paramref name="offset"/> bytes past the head.</summary>
    public void CopyOut(int offset, Span<byte> dest)
    {
        Debug.Assert(offset + dest.Length <= Count);
        int start = (_head + offset) % Capacity;
        int first = Math.Min(dest.Length, Capacity - start);
        _buf.AsSpan(start, first).CopyTo(dest);
        _buf.AsSpan(0, dest.Length - first).CopyTo(dest[first..]);
    }

    public void Drop(int n)
    {
        Debug.Assert(n <= Count);
        _head = (_head + n) % Capacity;
        Count -= n;
    }

    public void Release()
    {
        if (_buf.Length == 0) return;
        ArrayPool<byte>.Shared.Return(_buf);
        _buf = [];
        Count = 0;
    }
}

/// <summary>
/// The receive buffer and reassembly queue in one ring (as smoltcp's Assembler does): in-order
/// bytes wait at the head for the application; an out-of-order segment is written at its place
/// past them and remembered as a sequence range. The window never exceeds the free space, so every
/// acceptable byte has a place, and the out-of-order queue is bounded by the buffer and by
/// <see cref="MaxRanges"/>.
/// </summary>
internal sealed class ReceiveRing
{
    private byte[] _buf;
    private int _head;
    private readonly TcpSackBlock[] _ranges;
    private int _rangeCount;
    private int _recent = -1;
    // The first _placed of the readable bytes were copied straight into the pending reader's buffer
    // (Place), not into _buf: the next Read, into that buffer, finds them there.
    private int _placed;

    public ReceiveRing(int capacity, int maxRanges)
    {
        Capacity = capacity;
        _buf = ArrayPool<byte>.Shared.Rent(capacity);
        _ranges = new TcpSackBlock[maxRanges];
    }

    public int Capacity { get; }

    /// <summary>In-order bytes the application has not read yet.</summary>
    public int Count { get; private set; }
    public int Free => Capacity - Count;
    public int MaxRanges => _ranges.Length;
    public int RangeCount => _rangeCount;
    public bool HasOutOfOrder => _rangeCount > 0;

    /// <summary>Writes bytes <paramref name="offset"/> bytes past RCV.NXT.</summary>
    public void WriteAt(int offset, ReadOnlySpan<byte> data)
    {
        Debug.Assert(offset + data.Length <= Free);
        int start = (_head + Count + offset) % Capacity;
        int first = Math.Min(data.Length, Capacity - start);
        data[..first].CopyTo(_buf.AsSpan(start));
        data[first..].CopyTo(_buf);
    }

    /// <summary>
    /// Copies in-order bytes at RCV.NXT straight into the buffer of the reader that waits for them
    /// (<paramref name="reader"/>, its pending receive's), after the bytes already placed there, instead
    /// of into the ring: Linux's ucopy (tcp_copy_to_iovec into a blocked reader's iovec). The bytes
    /// count as buffered all the same (Deliver follows, the window and every ACK are as they were)
    /// until the reader's Read, into the same buffer, takes them without a second copy. Only when
    /// every readable byte is already there, nothing is out of order and they all fit; false otherwise
    /// (the caller writes them into the ring as usual).
    /// </summary>
    public bool TryPlace(ReadOnlySpan<byte> data, Span<byte> reader)
    {
        if (_rangeCount > 0 || Count != _placed || reader.Length - _placed < data.Length) return false;
        data.CopyTo(reader[_placed..]);
        _placed += data.Length;
        return true;
    }

    /// <summary>Records an out-of-order range [left, right); false when the range table is full.</summary>
    public bool AddRange(uint left, uint right)
    {
        // Merge with every range it touches, keeping the table sorted by left edge.
        int i = 0;
        while (i < _rangeCount && Seq.Lt(_ranges[i].Right, left)) i++;
        int j = i;
        while (j < _rangeCount && Seq.Le(_ranges[j].Left, right))
        {
            left = Seq.Min(left, _ranges[j].Left);
            right = Seq.Max(right, _ranges[j].Right);
            j++;
        }
        int merged = j - i;
        if (merged == 0)
        {
            if (_rangeCount == _ranges.Length) return false;
            Array.Copy(_ranges, i, _ranges, i + 1, _rangeCount - i);
            _rangeCount++;
        }
        else if (merged > 1)
        {
            Array.Copy(_ranges, j, _ranges, i + 1, _rangeCount - j);
            _rangeCount -= merged - 1;
        }
        _ranges[i] = new TcpSackBlock(left, right);
        _recent = i;
        return true;
    }

    /// <summary>Makes <paramref name="length"/> bytes at RCV.NXT readable and absorbs every range
    /// they now reach. Returns how far RCV.NXT moves (at least <paramref name="length"/>).</summary>
    public int Deliver(uint rcvNxt, int length)
    {
        uint end = rcvNxt + (uint)length;
        int removed = 0;
        while (removed < _rangeCount && Seq.Le(_ranges[removed].Left, end))
        {
            end = Seq.Max(end, _ranges[removed].Right);
            removed++;
        }
        if (removed > 0)
        {
            Array.Copy(_ranges, removed, _ranges, 0, _rangeCount - removed);
            _rangeCount -= removed;
            _recent = -1;
        }
        int advance = (int)(end - rcvNxt);
        Count += advance;
        return advance;
    }

    /// <summary>Reads into <paramref name="dest"/>; bytes placed (TryPlace) are in it already, at its
    /// start, since the only reader reads into the buffer of the receive they were placed for.</summary>
    public int Read(Span<byte> dest)
    {
        int n = Math.Min(dest.Length, Count);
        Debug.Assert(n >= _placed, "placed bytes fit the reader's buffer");
        int placed = _placed;
        _placed = 0;
        _head = (_head + placed) % Capacity;
        int rest = n - placed;
        int first = Math.Min(rest, Capacity - _head);
        _buf.AsSpan(_head, first).CopyTo(dest[placed..]);
        _buf.AsSpan(0, rest - first).CopyTo(dest[(placed + first)..n]);
        _head = (_head + rest) % Capacity;
        Count -= n;
        return n;
    }

    /// <summary>Fills SACK blocks: the most recently changed range first (RFC 2018 section 4), then the rest.</summary>
    public void FillSack(ref TcpOptions options, int max)
    {
        if (_recent >= 0 && _recent < _rangeCount) options.AddSack(_ranges[_recent].Left, _ranges[_recent].Right);
        for (int i = 0; i < _rangeCount && options.SackCount < max; i++)
        {
            if (i != _recent) options.AddSack(_ranges[i].Left, _ranges[i].Right);
        }
    }

    public void Release()
    {
        if (_buf.Length == 0) return;
        ArrayPool<byte>.Shared.Return(_buf);
        _buf = [];
        Count = 0;
        _placed = 0;
        _rangeCount = 0;
    }
}

/// <summary>
/// The sender's SACK scoreboard (RFC 2018, RFC 6675): sequence ranges above SND.UNA the peer holds.
/// Bounded; when full, the highest range is forgotten (it is only an optimisation: the data will be
/// acknowledged cumulatively or retransmitted).
/// </summary>
internal sealed class SackScoreboard
{
    private readonly TcpSackBlock[] _ranges = new TcpSackBlock[16];
    private int _count;

    public int Count => _count;
    public TcpSackBlock this[int i] => _ranges[i];

    /// <summary>The highest SACKed sequence (the right edge of the last range); valid when Count &gt; 0.</summary>
    public uint HighestSacked => _ranges[_count - 1].Right;

    public void Clear() => _count = 0;

    public void Add(uint left, uint right)
    {
        if (!Seq.Lt(left, right)) return;
        int i = 0;
        while (i < _count && Seq.Lt(_ranges[i].Right, left)) i++;
        int j = i;
        while (j < _count && Seq.Le(_ranges[j].Left, right))
        {
            left = Seq.Min(left, _ranges[j].Left);
            right = Seq.Max(right, _ranges[j].Right);
            j++;
        }
        int merged = j - i;
        if (merged == 0)
        {
            if (_count == _ranges.Length)
            {
                if (i == _count) return;
                _count--;
            }
            Array.Copy(_ranges, i, _ranges, i + 1, _count - i);
            _count++;
        }
        else if (merged > 1)
        {
            Array.Copy(_ranges, j, _ranges, i + 1, _count - j);
            _count -= merged - 1;
        }
        _ranges[i] = new TcpSackBlock(left, right);
    }

    /// <summary>Forgets everything below <paramref name="una"/> (cumulatively acknowledged).</summary>
    public void AdvanceTo(uint una)
    {
        int removed = 0;
        while (removed < _count && Seq.Le(_ranges[removed].Right, una)) removed++;
        if (removed > 0)
        {
            Array.Copy(_ranges, removed, _ranges, 0, _count - removed);
            _count -= removed;
        }
        if (_count > 0 && Seq.Lt(_ranges[0].Left, una)) _ranges[0] = new TcpSackBlock(una, _ranges[0].Right);
    }

    /// <summary>Bytes SACKed in total.</summary>
    public long SackedBytes()
    {
        long n = 0;
        for (int i = 0; i < _count; i++) n += _ranges[i].Right - _ranges[i].Left;
        return n;
    }

    /// <summary>The first un-SACKed hole at or after <paramref name="from"/> and below the highest
    /// SACKed byte: its start and the end (the next SACK block's left edge). False when none.</summary>
    public bool NextHole(uint from, out uint start, out uint end)
    {
        start = from;
        end = from;
        for (int i = 0; i < _count; i++)
        {
            if (Seq.Le(_ranges[i].Right, start)) continue;
            if (Seq.Le(_ranges[i].Left, start)) { start = _ranges[i].Right; continue; }
            end = _ranges[i].Left;
            return true;
        }
        return false;
    }

    /// <summary>Whether <paramref name="seq"/> lies in a SACKed range.</summary>
    public bool IsSacked(uint seq)
    {
        for (int i = 0; i < _count; i++)
            if (Seq.Le(_ranges[i].Left, seq) && Seq.Lt(seq, _ranges[i].Right)) return true;
        return false;
    }
}
