using System.Globalization;

namespace SmartOS.Storage.Send;

/// <summary>
/// The zfs send stream of a volume (DMU_OST_ZVOL), as a zvol image's file holds it: object 1
/// (DMU_OT_ZVOL) carries the volume's blocks at volblocksize, object 2 (DMU_OT_ZVOL_PROP) is a
/// microzap with one entry, "size" = volsize, as zvol_create_cb writes them. The dataset layer sends
/// and receives filesystems only (storage/Dsl.Send.cs, "Not done: volumes"), so zfs send/receive,
/// imgadm and vmadm send volumes here, on the stream codec and the layer's volume I/O.
/// </summary>
/// <remarks>
/// Rules
///   1. Blocks that read as zeros are not sent (a hole reads as zeros again), so a mostly empty
///      volume makes a small stream and the same volume always makes the same bytes.
///   2. Receive reads and checks the whole stream (its END checksum, both objects, the size) before
///      it creates the volume; a failure after that destroys the volume it made (nothing half-made).
///   3. Only full streams: an incremental zvol image is refused, saying so.
/// </remarks>
public static class ZvolStream
{
    private const DmuObjectType ZvolData = (DmuObjectType)23, ZvolProps = (DmuObjectType)24;
    private const ulong DataObject = 1, PropsObject = 2;

    /// <summary>Writes the full stream of volume snapshot <paramref name="snapshot"/> (pool/vol@snap).</summary>
    public static StorageResult Send(DatasetTree datasets, string snapshot, Stream output)
    {
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
        var props = new ObjectImage { Type = ZvolProps, BonusType = DmuObjectType.None, BlockSize = SendFormat.MinBlockSize };
        Zap.Encode(props, [new ZapEntry("size", (ulong)size)], salt: toGuid | 1);
        writer.Write(new ObjectRecord(PropsObject, ZvolProps, DmuObjectType.None, props.BlockSize, [], 0, 0, toGuid));
        writer.Write(new FreeRecord(PropsObject, props.BlockSize, FreeRecord.ToEnd, toGuid));
        writer.Write(new WriteRecord(PropsObject, ZvolProps, 0, props.Blocks[0], toGuid, 7, 0, default, 0));
        writer.WriteEnd(toGuid);
        return StorageResult.Success;
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
        if (datasets.Exists(volume)) return $"cannot receive new volume stream: destination '{volume}' exists";
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
        if (begin.IsIncremental) return "cannot receive incremental stream: incremental volume streams are not supported here";
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
        return snapped.IsOk ? null : Undo(datasets, volume, snapped);
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
