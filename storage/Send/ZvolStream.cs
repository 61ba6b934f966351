using System.Globalization;

namespace SmartOS.Storage.Send;

/// <summary>
/// The zfs send stream of a volume (DMU_OST_ZVOL), as a zvol image's file holds it: object 1
/// (DMU_OT_ZVOL) carries the volume's blocks at volblocksize, object 2 (DMU_OT_ZVOL_PROP) is a
/// microzap with one entry, "size" = volsize, as zvol_create_cb writes them. The dataset layer's
/// send and receive (storage/Dsl.Send.cs) take filesystems, so zfs send/receive, imgadm and vmadm
/// send volumes here, on the stream codec and the layer's volume I/O.
/// </summary>
/// <remarks>
/// Rules
///   1. Blocks that read as zeros are not sent (a hole reads as zeros again), so a mostly empty
///      volume makes a small stream and the same volume always makes the same bytes.
///   2. Receive reads and checks the whole stream (its END checksum, its objects, the size) before
///      it changes anything; a failure after that destroys the volume it made, or rolls an existing
///      one back to the stream's base (nothing half-made).
///   3. An incremental stream (zfs send -i) holds the blocks that differ between the two snapshots:
///      a WRITE for each that holds data, a FREE for each that became zeros. Its base is an earlier
///      snapshot of the volume, or the volume's origin (a clone: the BEGIN is flagged
///      DRR_FLAG_CLONE, as dmu_send flags it). Received onto the volume whose newest snapshot is the
///      stream's fromguid, or where no volume of that name exists, as a new clone of the snapshot
///      with that guid (zfs receive's origin lookup), so an incremental zvol image installs as a
///      clone of its origin image's @final.
///   4. A received snapshot keeps the stream's guid and creation time, so the next incremental
///      stream of the same volume finds its base here.
/// </remarks>
public static class ZvolStream
{
    private const DmuObjectType ZvolData = (DmuObjectType)23, ZvolProps = (DmuObjectType)24;
    private const ulong DataObject = 1, PropsObject = 2;

    /// <summary>Writes the full stream of volume snapshot <paramref name="snapshot"/> (pool/vol@snap).</summary>
    public static StorageResult Send(DatasetTree datasets, string snapshot, Stream output) => Send(datasets, snapshot, null, output);

    /// <summary>Writes the stream of volume snapshot <paramref name="snapshot"/>: full, or with
    /// <paramref name="from"/> ("@snap", "vol@snap" or the volume's origin) incremental (rule 3).</summary>
    public static StorageResult Send(DatasetTree datasets, string snapshot, string? from, Stream output)
    {
        if (from is not null) return SendIncremental(datasets, snapshot, from, output);
        var guid = datasets.SnapshotGuid(snapshot, out ulong toGuid);
        if (!guid.IsOk) return guid;
        string volume = snapshot[..snapshot.IndexOf('@')];
        if (!Number(datasets, volume, "volsize", out long size) || !Number(datasets, volume, "volblocksize", out long blockSize))
            return new StorageResult(StorageStatus.NotSupported, $"cannot send '{snapshot}'", "not a volume");
        ulong creation = datasets.Get(snapshot, "creation", out var made).IsOk && made.Number is long c ? (ulong)c : 0;
        var writer = new SendStreamWriter(output);
        writer.Write(new BeginRecord(SendFormat.HeaderTypeSubstream, creation, SendFormat.ObjsetTypeZvol, 0, toGuid, 0, snapshot, []));
        writer.Write(new FreeObjectsRecord(0, 1, toGuid));
        writer.Write(new ObjectRecord(DataObject, ZvolData, DmuObjectType.None, (uint)blockSize, [], 0, 0, toGuid));
        writer.Write(new FreeRecord(DataObject, 0, FreeRecord.ToEnd, toGuid));
        byte[] block = new byte[blockSize];
        for (long offset = 0; offset < size; offset += blockSize)
        {
            var read = datasets.ReadVolume(snapshot, offset, block, out _);
            if (!read.IsOk) return read;
            if (block.AsSpan().IndexOfAnyExcept((byte)0) < 0) continue;   // rule 1
            writer.Write(new WriteRecord(DataObject, ZvolData, (ulong)offset, (byte[])block.Clone(), toGuid, 7, 0, default, 0));
        }
        WriteProps(writer, size, toGuid);
        writer.WriteEnd(toGuid);
        return StorageResult.Success;
    }

    private static StorageResult SendIncremental(DatasetTree datasets, string snapshot, string fromName, Stream output)
    {
        var source = datasets.CheckVolumeSource(snapshot, fromName, out string from, out ulong fromGuid, out bool clone);
        if (!source.IsOk) return source;
        var guid = datasets.SnapshotGuid(snapshot, out ulong toGuid);
        if (!guid.IsOk) return guid;
        string volume = snapshot[..snapshot.IndexOf('@')];
        if (!Number(datasets, volume, "volsize", out long size) || !Number(datasets, volume, "volblocksize", out long blockSize)
            || !Number(datasets, from[..from.IndexOf('@')], "volsize", out long fromSize))
            return new StorageResult(StorageStatus.NotSupported, $"cannot send '{snapshot}'", "not a volume");
        ulong creation = datasets.Get(snapshot, "creation", out var made).IsOk && made.Number is long c ? (ulong)c : 0;
        var writer = new SendStreamWriter(output);
        writer.Write(new BeginRecord(SendFormat.HeaderTypeSubstream, creation, SendFormat.ObjsetTypeZvol, clone ? SendFormat.FlagClone : 0,
            toGuid, fromGuid, snapshot, []));
        writer.Write(new ObjectRecord(DataObject, ZvolData, DmuObjectType.None, (uint)blockSize, [], 0, 0, toGuid));
        byte[] now = new byte[blockSize], then = new byte[blockSize];
        for (long offset = 0; offset < size; offset += blockSize)
        {
            var read = datasets.ReadVolume(snapshot, offset, now, out _);
            if (!read.IsOk) return read;
            then.AsSpan().Clear();
            if (offset < fromSize)
            {
                read = datasets.ReadVolume(from, offset, then.AsSpan(0, (int)Math.Min(blockSize, fromSize - offset)), out _);
                if (!read.IsOk) return read;
            }
            if (now.AsSpan().SequenceEqual(then)) continue;
            if (now.AsSpan().IndexOfAnyExcept((byte)0) < 0) writer.Write(new FreeRecord(DataObject, (ulong)offset, (ulong)blockSize, toGuid));
            else writer.Write(new WriteRecord(DataObject, ZvolData, (ulong)offset, (byte[])now.Clone(), toGuid, 7, 0, default, 0));
        }
        if (size < fromSize) writer.Write(new FreeRecord(DataObject, (ulong)size, FreeRecord.ToEnd, toGuid));
        WriteProps(writer, size, toGuid);
        writer.WriteEnd(toGuid);
        return StorageResult.Success;
    }

    private static void WriteProps(SendStreamWriter writer, long size, ulong toGuid)
    {
        var props = new ObjectImage { Type = ZvolProps, BonusType = DmuObjectType.None, BlockSize = SendFormat.MinBlockSize };
        Zap.Encode(props, [new ZapEntry("size", (ulong)size)], salt: toGuid | 1);
        writer.Write(new ObjectRecord(PropsObject, ZvolProps, DmuObjectType.None, props.BlockSize, [], 0, 0, toGuid));
        writer.Write(new FreeRecord(PropsObject, props.BlockSize, FreeRecord.ToEnd, toGuid));
        writer.Write(new WriteRecord(PropsObject, ZvolProps, 0, props.Blocks[0], toGuid, 7, 0, default, 0));
    }

    /// <summary>Whether a stream begins as a volume's (so the caller hands it here and not to zfs receive).</summary>
    public static bool IsVolumeStream(byte[] stream)
    {
        var reader = new SendStreamReader(new MemoryStream(stream, writable: false));
        return reader.TryRead(out var first) && first is BeginRecord { ObjsetType: SendFormat.ObjsetTypeZvol };
    }

    /// <summary>`zfs receive TARGET` of a volume stream: TARGET is the new volume, or volume@snapshot;
    /// without a snapshot name the stream's is kept. Null on success, else why not.</summary>
    public static string? Receive(DatasetTree datasets, byte[] stream, string target)
    {
        var reader = new SendStreamReader(new MemoryStream(stream, writable: false));
        if (!reader.TryRead(out var first) || first is not BeginRecord begin) return "cannot receive: failed to read from stream";
        int at = target.IndexOf('@'), streamAt = begin.ToName.IndexOf('@');
        if (at < 0 && streamAt <= 0) return "cannot receive: invalid stream (bad snapshot name)";
        string volume = at < 0 ? target : target[..at];
        string snap = at < 0 ? begin.ToName[(streamAt + 1)..] : target[(at + 1)..];
        if (!begin.IsIncremental && datasets.Exists(volume)) return $"cannot receive new volume stream: destination '{volume}' exists";
        return Receive(datasets, stream, volume, snap);
    }

    /// <summary>Receives a full volume stream as <paramref name="volume"/>@<paramref name="snapName"/>
    /// (rule 2): null on success, else why not, in zfs receive's words.</summary>
    public static string? Receive(DatasetTree datasets, byte[] stream, string volume, string snapName)
    {
        const string what = "cannot receive new volume stream";
        var reader = new SendStreamReader(new MemoryStream(stream, writable: false));
        if (!reader.TryRead(out var first)) return reader.Error?.Message ?? "cannot receive: failed to read from stream";
        if (first is not BeginRecord { ObjsetType: SendFormat.ObjsetTypeZvol } begin) return $"{what}: invalid backup stream (not a volume)";
        if (begin.IsIncremental) return ReceiveIncremental(datasets, reader, begin, volume, snapName);
        var image = new ObjectSetImage();
        while (true)
        {
            if (!reader.TryRead(out var record)) return $"{what}: {reader.Error?.Message ?? "invalid backup stream"}";
            if (record is EndRecord) break;
            if (!image.Apply(record, out string? problem)) return $"{what}: invalid backup stream ({problem})";
        }
        if (!image.Objects.TryGetValue(DataObject, out var data) || data.Type != ZvolData
            || !image.Objects.TryGetValue(PropsObject, out var props) || props.Type != ZvolProps
            || !Zap.TryDecode(props, out var entries, out _) || entries.Find(e => e.Name == "size") is not { Value: > 0 } sizeEntry)
            return $"{what}: invalid backup stream (no volume data or size)";
        long size = (long)sizeEntry.Value, blockSize = data.BlockSize;
        if (size % blockSize != 0 || (data.Blocks.Count > 0 && (long)(data.Blocks.Keys.Max() + 1) * blockSize > size))
            return $"{what}: invalid backup stream (blocks beyond the volume's size)";
        var properties = new Dictionary<string, string>
        {
            ["volsize"] = size.ToString(CultureInfo.InvariantCulture),
            ["volblocksize"] = blockSize.ToString(CultureInfo.InvariantCulture),
        };
        var created = datasets.Create(volume, DatasetType.Volume, properties, sparse: true);
        if (!created.IsOk) return created.Message;
        foreach (var (id, bytes) in data.Blocks)
        {
            var written = datasets.WriteVolume(volume, (long)id * blockSize, bytes);
            if (!written.IsOk) return Undo(datasets, volume, written);
        }
        var snapped = datasets.Snapshot($"{volume}@{snapName}");
        if (snapped.IsOk) snapped = datasets.KeepStreamIdentity($"{volume}@{snapName}", begin.ToGuid, begin.CreationTime);
        return snapped.IsOk ? null : Undo(datasets, volume, snapped);
    }

    /// <summary>Rules 2 and 3: the whole stream read and checked, then the base found (the volume's
    /// newest snapshot, or the origin to clone), then the blocks written and the snapshot taken.</summary>
    private static string? ReceiveIncremental(DatasetTree datasets, SendStreamReader reader, BeginRecord begin, string volume, string snapName)
    {
        const string what = "cannot receive incremental stream";
        long blockSize = 0, size = 0;
        var changes = new List<(long Offset, byte[]? Data, long Length)>();
        var props = new ObjectImage { Type = ZvolProps, BonusType = DmuObjectType.None, BlockSize = SendFormat.MinBlockSize };
        while (true)
        {
            if (!reader.TryRead(out var record)) return $"{what}: {reader.Error?.Message ?? "invalid backup stream"}";
            if (record is EndRecord) break;
            switch (record)
            {
                case ObjectRecord { Object: DataObject, ObjectType: ZvolData } o:
                    blockSize = o.BlockSize;
                    break;
                case ObjectRecord { Object: PropsObject, ObjectType: ZvolProps } o:
                    props = new ObjectImage { Type = ZvolProps, BonusType = DmuObjectType.None, BlockSize = o.BlockSize };
                    break;
                case ObjectRecord or FreeObjectsRecord:
                    return $"{what}: invalid backup stream (not a volume's objects)";
                case WriteRecord { Object: DataObject } w:
                    if (blockSize == 0 || w.Offset % (ulong)blockSize != 0 || w.Data.Length > blockSize || w.Offset > long.MaxValue)
                        return $"{what}: invalid backup stream (a write outside the volume's blocks)";
                    changes.Add(((long)w.Offset, w.Data, w.Data.Length));
                    break;
                case FreeRecord { Object: DataObject } f:
                    if (f.Offset > long.MaxValue) return $"{what}: invalid backup stream (a free outside the volume)";
                    changes.Add(((long)f.Offset, null, f.Length == FreeRecord.ToEnd || f.Length > long.MaxValue ? long.MaxValue : (long)f.Length));
                    break;
                case WriteRecord or FreeRecord:
                    var image = new ObjectSetImage();
                    image.Objects[PropsObject] = props;
                    if (!image.Apply(record, out string? problem)) return $"{what}: invalid backup stream ({problem})";
                    break;
            }
        }
        if (blockSize == 0 || !Zap.TryDecode(props, out var entries, out _) || entries.Find(e => e.Name == "size") is not { Value: > 0 and < long.MaxValue } sizeEntry)
            return $"{what}: invalid backup stream (no volume data or size)";
        size = (long)sizeEntry.Value;
        if (size % blockSize != 0) return $"{what}: invalid backup stream (size not a multiple of the block size)";
        foreach (var (offset, data, _) in changes)
            if (data is not null && offset + blockSize > size) return $"{what}: invalid backup stream (blocks beyond the volume's size)";
        var found = datasets.FindVolumeBase(volume, $"{volume}@{snapName}", begin.FromGuid, (begin.Flags & SendFormat.FlagClone) != 0, out string baseSnapshot, out bool asClone);
        if (!found.IsOk) return found.Message;
        if (!Number(datasets, baseSnapshot[..baseSnapshot.IndexOf('@')], "volblocksize", out long baseBlockSize) || baseBlockSize != blockSize)
            return $"{what}: invalid backup stream (block size differs from the base's)";
        if (asClone)
        {
            var cloned = datasets.Clone(baseSnapshot, volume);
            if (!cloned.IsOk) return cloned.Message;
        }
        var applied = Apply(datasets, volume, size, changes);
        if (applied.IsOk) applied = datasets.Snapshot($"{volume}@{snapName}");
        if (applied.IsOk) applied = datasets.KeepStreamIdentity($"{volume}@{snapName}", begin.ToGuid, begin.CreationTime);
        if (applied.IsOk) return null;
        if (asClone) return Undo(datasets, volume, applied);
        datasets.Destroy($"{volume}@{snapName}");
        datasets.Rollback(baseSnapshot, DestroyFlags.None);
        return applied.Message;
    }

    private static StorageResult Apply(DatasetTree datasets, string volume, long size, List<(long Offset, byte[]? Data, long Length)> changes)
    {
        if (!Number(datasets, volume, "volsize", out long current)) return new StorageResult(StorageStatus.NoSuchDataset, $"cannot open '{volume}'");
        if (size > current)
        {
            var grown = datasets.Set(volume, "volsize", size.ToString(CultureInfo.InvariantCulture));
            if (!grown.IsOk) return grown;
        }
        foreach (var (offset, data, length) in changes)
        {
            if (offset >= Math.Max(size, current)) continue;
            var done = data is null ? datasets.FreeVolume(volume, offset, length) : datasets.WriteVolume(volume, offset, data);
            if (!done.IsOk) return done;
        }
        if (size < current) return datasets.Set(volume, "volsize", size.ToString(CultureInfo.InvariantCulture));
        return StorageResult.Success;
    }

    private static string Undo(DatasetTree datasets, string volume, StorageResult failure)
    {
        datasets.Destroy(volume, DestroyFlags.Recursive);
        return failure.Message;
    }

    private static bool Number(DatasetTree datasets, string name, string property, out long value)
    {
        value = 0;
        if (!datasets.Get(name, property, out var p).IsOk || p.Number is not long n) return false;
        value = n;
        return true;
    }
}
