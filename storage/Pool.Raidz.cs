using System.Numerics;

namespace SmartOS.Storage;

/// <summary>
/// raidz1 (single parity). A block of psize bytes on n leaves is cut into n-1 data columns of
/// AllocSize(psize) bytes each (the last ones zero-padded), written to leaves 0..n-2 at the block's
/// offset, and their XOR to leaf n-1. Unlike OpenZFS the columns are not interleaved by sector and
/// parity does not rotate; the guarantee is the same: any one column lost or wrong is rebuilt.
///   - A column that cannot be read (short read, I/O error) counts READ on its leaf and is rebuilt
///     from parity and the other columns.
///   - A block that reads fully but fails its checksum is rebuilt once per data column, treating that
///     column as the bad one; the attempt that passes the checksum names the leaf (CKSUM) to rewrite.
///   - A scrub also recomputes parity and rewrites a parity column that disagrees.
/// </summary>
public sealed partial class Pool
{
    private bool WriteRaidz(TopVdev top, long offset, ReadOnlySpan<byte> data, int leafMask, bool repair)
    {
        int columns = top.Leaves.Count - 1, size = top.AllocSize(data.Length);
        byte[] parity = RentBuffer(), padded = RentBuffer();
        bool any = false;
        try
        {
            parity.AsSpan(0, size).Clear();
            for (int i = 0; i <= columns; i++)
            {
                ReadOnlySpan<byte> column;
                if (i == columns)
                {
                    column = parity.AsSpan(0, size);
                }
                else
                {
                    int start = Math.Min(i * size, data.Length), end = Math.Min(start + size, data.Length);
                    column = data[start..end];
                    Xor(parity.AsSpan(0, column.Length), column);
                    if (column.Length < size)
                    {
                        column.CopyTo(padded);
                        padded.AsSpan(column.Length, size - column.Length).Clear();
                        column = padded.AsSpan(0, size);
                    }
                }
                if ((leafMask & (1 << i)) != 0 && WriteColumn(top.Leaves[i], offset, column, repair)) any = true;
            }
        }
        finally
        {
            ReturnBuffer(parity);
            ReturnBuffer(padded);
        }
        return any;
    }

    private bool WriteColumn(LeafVdev leaf, long offset, ReadOnlySpan<byte> column, bool repair)
    {
        if (!leaf.Writable) return false;
        try
        {
            LeafWrite(leaf, VdevLabel.LabelSize + offset, column);
            leaf.WriteOps++; leaf.WriteBytes += column.Length;
            if (repair && leaf.Resilvering) leaf.ResilveredBytes += column.Length;
            else if (repair) leaf.RepairedBytes += column.Length;
            return true;
        }
        catch (IOException)
        {
            leaf.WriteErrors++;
            return false;
        }
    }

    private StorageStatus ReadRaidz(TopVdev top, long offset, in BlockPointer bp, Span<byte> block, bool verifyParity)
    {
        int columns = top.Leaves.Count - 1, size = top.AllocSize(bp.PhysicalSize);
        var data = _raidzColumns.AsSpan(0, columns * size);
        byte[] parity = RentBuffer(), saved = RentBuffer();
        try
        {
            int unreadable = -1, failures = 0;
            for (int i = 0; i <= columns; i++)
            {
                var column = i == columns ? parity.AsSpan(0, size) : data.Slice(i * size, size);
                if (!ReadColumn(top.Leaves[i], offset, column)) { failures++; unreadable = i; }
            }
            if (failures > 1) return StorageStatus.IoError;
            StorageStatus status;
            if (unreadable >= 0 && unreadable < columns)
            {
                Rebuild(data, parity.AsSpan(0, size), unreadable, size, columns);
                if (!Verifies(bp, data)) return StorageStatus.ChecksumError;
                // A resilvering column is rewritten by the scrub pass of its resilver only, once.
                if (verifyParity || !top.Leaves[unreadable].Resilvering)
                    WriteColumn(top.Leaves[unreadable], offset, data.Slice(unreadable * size, size), repair: true);
                status = StorageStatus.Ok;
            }
            else if (Verifies(bp, data))
            {
                status = StorageStatus.Ok;
                if ((unreadable == columns && !top.Leaves[columns].Resilvering) || verifyParity)
                    CheckParity(top, offset, data, parity.AsSpan(0, size), saved.AsSpan(0, size), columns, unreadable == columns);
            }
            else if (unreadable == columns)
            {
                return StorageStatus.ChecksumError;   // wrong data and no parity to rebuild from
            }
            else
            {
                status = StorageStatus.ChecksumError;
                for (int j = 0; j < columns && status != StorageStatus.Ok; j++)
                {
                    var column = data.Slice(j * size, size);
                    column.CopyTo(saved);
                    Rebuild(data, parity.AsSpan(0, size), j, size, columns);
                    if (Verifies(bp, data))
                    {
                        top.Leaves[j].ChecksumErrors++;
                        WriteColumn(top.Leaves[j], offset, column, repair: true);
                        status = StorageStatus.Ok;
                    }
                    else
                    {
                        saved.AsSpan(0, size).CopyTo(column);
                    }
                }
                if (status != StorageStatus.Ok) return status;
            }
            data[..bp.PhysicalSize].CopyTo(block);
            return StorageStatus.Ok;
        }
        finally
        {
            ReturnBuffer(parity);
            ReturnBuffer(saved);
        }
    }

    private bool ReadColumn(LeafVdev leaf, long offset, Span<byte> column)
    {
        if (!leaf.Readable) return false;   // offline, missing or resilvering: rebuilt from parity, no error counted
        int n;
        try { n = LeafRead(leaf, VdevLabel.LabelSize + offset, column); leaf.ReadOps++; leaf.ReadBytes += Math.Max(n, 0); }
        catch (IOException) { n = -1; }
        if (n == column.Length) return true;
        leaf.ReadErrors++;
        return false;
    }


    /// <summary>Column j becomes the XOR of parity and every other data column.</summary>
    private static void Rebuild(Span<byte> data, ReadOnlySpan<byte> parity, int j, int size, int columns)
    {
        var target = data.Slice(j * size, size);
        parity.CopyTo(target);
        for (int i = 0; i < columns; i++)
            if (i != j) Xor(target, data.Slice(i * size, size));
    }

    /// <summary>Recomputes parity from verified data; a parity column that differs (or was unreadable) is rewritten.</summary>
    private void CheckParity(TopVdev top, long offset, ReadOnlySpan<byte> data, ReadOnlySpan<byte> parity, Span<byte> expected,
                                    int columns, bool unreadable)
    {
        int size = expected.Length;
        expected.Clear();
        for (int i = 0; i < columns; i++) Xor(expected, data.Slice(i * size, size));
        if (!unreadable && expected.SequenceEqual(parity)) return;
        var leaf = top.Leaves[columns];
        if (!unreadable) leaf.ChecksumErrors++;
        WriteColumn(leaf, offset, expected, repair: true);
    }

    private static void Xor(Span<byte> target, ReadOnlySpan<byte> source)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i + Vector<byte>.Count <= source.Length; i += Vector<byte>.Count)
                (new Vector<byte>(target[i..]) ^ new Vector<byte>(source[i..])).CopyTo(target[i..]);
        }
        for (; i < source.Length; i++) target[i] ^= source[i];
    }
}
