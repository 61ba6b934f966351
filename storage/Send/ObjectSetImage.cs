namespace SmartOS.Storage.Send;

/// <summary>One object of an <see cref="ObjectSetImage"/>: its dnode's shape, bonus, and the blocks
/// that are not holes (block id = offset / block size).</summary>
public sealed class ObjectImage
{
    public required DmuObjectType Type { get; set; }
    public required DmuObjectType BonusType { get; set; }
    public required uint BlockSize { get; set; }
    public byte[] Bonus { get; set; } = [];
    public SortedDictionary<ulong, byte[]> Blocks { get; } = new();

    public ObjectImage Clone()
    {
        var copy = new ObjectImage { Type = Type, BonusType = BonusType, BlockSize = BlockSize, Bonus = Bonus };
        foreach (var (id, data) in Blocks) copy.Blocks[id] = data;
        return copy;
    }

    /// <summary>Bytes [offset, offset+count) of the object, holes reading as zeros.</summary>
    public byte[] Read(ulong offset, int count)
    {
        byte[] result = new byte[count];
        ulong end = offset + (ulong)count;
        for (ulong block = offset / BlockSize; block * BlockSize < end; block++)
        {
            if (!Blocks.TryGetValue(block, out byte[]? data)) continue;
            ulong start = block * BlockSize;
            ulong from = Math.Max(start, offset), to = Math.Min(start + (ulong)data.Length, end);
            if (to > from) data.AsSpan((int)(from - start), (int)(to - from)).CopyTo(result.AsSpan((int)(from - offset)));
        }
        return result;
    }

    /// <summary>The whole first block (where ZAPs and small objects live), zeros if a hole.</summary>
    public byte[] FirstBlock() => Blocks.TryGetValue(0, out byte[]? b) ? b : new byte[BlockSize];
}

/// <summary>
/// An object set as a send stream describes it: the DMU's view (object number → type, block size,
/// bonus, blocks), with no knowledge of files. Replaying a full stream builds one; replaying an
/// incremental stream onto a copy of its base gives the later snapshot (what restore_object,
/// restore_write, restore_free and restore_freeobjects do to the receiving dataset). The ZPL's
/// meaning of the objects is <see cref="ZplCodec"/>'s business.
/// </summary>
public sealed class ObjectSetImage
{
    public SortedDictionary<ulong, ObjectImage> Objects { get; } = new();

    public ObjectSetImage Clone()
    {
        var copy = new ObjectSetImage();
        foreach (var (id, o) in Objects) copy.Objects[id] = o.Clone();
        return copy;
    }

    /// <summary>Applies one record. False (with a reason) when it names an object that does not
    /// exist or writes outside the object's block grid: the stream is then invalid.</summary>
    public bool Apply(SendRecord record, out string? problem)
    {
        problem = null;
        switch (record)
        {
            case ObjectRecord o:
                if (Objects.TryGetValue(o.Object, out ObjectImage? existing) && existing.BlockSize == o.BlockSize)
                {
                    // dmu_object_reclaim keeps the data when the block size stays the same.
                    existing.Type = o.ObjectType; existing.BonusType = o.BonusType; existing.Bonus = o.Bonus;
                }
                else
                {
                    Objects[o.Object] = new ObjectImage { Type = o.ObjectType, BonusType = o.BonusType, BlockSize = o.BlockSize, Bonus = o.Bonus };
                }
                return true;
            case FreeObjectsRecord f:
                ulong last = f.FirstObject + f.Count;
                if (last < f.FirstObject) last = ulong.MaxValue;
                foreach (ulong id in Objects.Keys.Where(k => k >= f.FirstObject && k < last).ToList()) Objects.Remove(id);
                return true;
            case WriteRecord w:
            {
                if (!Objects.TryGetValue(w.Object, out ObjectImage? obj)) { problem = $"write to missing object {w.Object}"; return false; }
                if (w.Offset % obj.BlockSize != 0 || (ulong)w.Data.Length > obj.BlockSize)
                {
                    problem = $"write of {w.Data.Length} bytes at {w.Offset} does not fit object {w.Object}'s {obj.BlockSize}-byte blocks";
                    return false;
                }
                byte[] block = w.Data.Length == obj.BlockSize ? w.Data : Pad(w.Data, obj.BlockSize);
                obj.Blocks[w.Offset / obj.BlockSize] = block;
                return true;
            }
            case FreeRecord f:
            {
                if (!Objects.TryGetValue(f.Object, out ObjectImage? obj)) return true; // freeing a freed object is a no-op
                ulong end = f.Length == FreeRecord.ToEnd || f.Offset + f.Length < f.Offset ? ulong.MaxValue : f.Offset + f.Length;
                foreach (ulong id in obj.Blocks.Keys.ToList())
                {
                    ulong start = id * obj.BlockSize, stop = start + obj.BlockSize;
                    if (stop <= f.Offset || start >= end) continue;
                    if (start >= f.Offset && stop <= end) { obj.Blocks.Remove(id); continue; }
                    byte[] copy = (byte[])obj.Blocks[id].Clone();
                    ulong from = Math.Max(start, f.Offset), to = Math.Min(stop, end);
                    copy.AsSpan((int)(from - start), (int)(to - from)).Clear();
                    obj.Blocks[id] = copy;
                }
                return true;
            }
            default:
                return true;
        }
    }

    private static byte[] Pad(byte[] data, uint size)
    {
        byte[] block = new byte[size];
        data.CopyTo(block, 0);
        return block;
    }
}
