using System.Diagnostics;

namespace SmartOS.Storage;

/// <summary>
/// The free space of one top-level vdev (Pool.cs rule 6): one bit per 512-byte sector of its data
/// area, set while the sector holds a block of the committed tree or of the txg being written.
/// Allocation is next-fit from a cursor, skipping full 64-sector words, so a sequential writer finds
/// its space in one step and the file fills front to back. The map lives in memory only: an open
/// rebuilds it by walking the committed tree (Pool.Open), so it can never disagree with the tree.
/// </summary>
public sealed class SpaceMap
{
    private readonly ulong[] _bits;
    private readonly long _sectors;
    private long _cursor;

    public SpaceMap(long dataSize)
    {
        _sectors = dataSize / Pool.SectorSize;
        _bits = new ulong[(_sectors + 63) / 64];
        // Sectors past the end of the area are marked used so no run can reach them.
        for (long s = _sectors; s < _bits.Length * 64L; s++) _bits[s >> 6] |= 1UL << (int)(s & 63);
    }

    public long Capacity => _sectors * Pool.SectorSize;

    public long Allocated { get; private set; }

    public long FreeBytes => Capacity - Allocated;

    /// <summary>Finds and marks a run of size bytes; false when no run that long is free.</summary>
    public bool TryAllocate(int size, out long offset)
    {
        Debug.Assert(size > 0 && size % Pool.SectorSize == 0);
        long need = size / Pool.SectorSize;
        if (TryFind(_cursor, _sectors, need, out long start) || TryFind(0, _sectors, need, out start))
        {
            SetRange(start, need, used: true);
            _cursor = start + need;
            Allocated += size;
            offset = start * Pool.SectorSize;
            return true;
        }
        offset = 0;
        return false;
    }

    /// <summary>Returns a block's sectors; they must be allocated (a double free is a bug).</summary>
    public void Free(long offset, int size)
    {
        long start = offset / Pool.SectorSize, count = size / Pool.SectorSize;
        Debug.Assert(IsRange(start, count, used: true), "freeing space that is not allocated");
        SetRange(start, count, used: false);
        Allocated -= size;
    }

    /// <summary>Marks a block of the committed tree while an open walks it; false if it overlaps another.</summary>
    public bool Claim(long offset, int size)
    {
        long start = offset / Pool.SectorSize, count = size / Pool.SectorSize;
        if (start + count > _sectors || !IsRange(start, count, used: false)) return false;
        SetRange(start, count, used: true);
        Allocated += size;
        return true;
    }

    public bool IsAllocated(long offset, int size) =>
        IsRange(offset / Pool.SectorSize, size / Pool.SectorSize, used: true);

    private bool TryFind(long from, long to, long need, out long start)
    {
        long s = from;
        while (s + need <= to)
        {
            ulong word = _bits[s >> 6];
            if ((s & 63) == 0 && word == ulong.MaxValue) { s += 64; continue; }
            if ((word & (1UL << (int)(s & 63))) != 0) { s++; continue; }
            long run = 0;
            while (run < need && (_bits[(s + run) >> 6] & (1UL << (int)((s + run) & 63))) == 0)
            {
                if (((s + run) & 63) == 0 && run + 64 <= need && _bits[(s + run) >> 6] == 0) run += 64;
                else run++;
            }
            if (run >= need) { start = s; return true; }
            s += run + 1;
        }
        start = 0;
        return false;
    }

    private bool IsRange(long start, long count, bool used)
    {
        for (long s = start; s < start + count; s++)
        {
            bool set = (_bits[s >> 6] & (1UL << (int)(s & 63))) != 0;
            if (set != used) return false;
        }
        return true;
    }

    private void SetRange(long start, long count, bool used)
    {
        long s = start, end = start + count;
        while (s < end)
        {
            if ((s & 63) == 0 && s + 64 <= end) { _bits[s >> 6] = used ? ulong.MaxValue : 0; s += 64; continue; }
            ulong mask = 1UL << (int)(s & 63);
            if (used) _bits[s >> 6] |= mask; else _bits[s >> 6] &= ~mask;
            s++;
        }
    }
}
