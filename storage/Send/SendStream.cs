namespace SmartOS.Storage.Send;

/// <summary>A snapshot as received: its identity from BEGIN and its objects.</summary>
public sealed record ReceivedSnapshot(string Name, ulong Guid, ulong FromGuid, ulong CreationTime, ObjectSetImage Objects)
{
    /// <summary>The snapshot's files (decoding the ZPL objects), or a reason.</summary>
    public bool TryReadTree(out FileTreeImage? tree, out string? problem) => ZplCodec.TryDecode(Objects, out tree, out problem);
}

/// <summary>
/// zfs send and zfs receive over the stream codec: <see cref="Receive"/> replays one substream onto
/// an empty object set (full) or onto a copy of its base (incremental) as dmu_recv does, and
/// <see cref="SendFull"/> writes a file tree as the full stream zfs-fuse's zfs receive accepts.
/// Nothing is changed by a stream that fails: the base is copied, never modified, and a result
/// is returned only after END checked.
/// </summary>
public static class SendStream
{
    public static bool Receive(Stream input, ReceivedSnapshot? baseSnapshot, out ReceivedSnapshot? snapshot, out ReceiveError? error)
    {
        snapshot = null;
        var reader = new SendStreamReader(input);
        ObjectSetImage? objects = null;
        BeginRecord? begin = null;
        while (reader.TryRead(out SendRecord? record))
        {
            switch (record)
            {
                case BeginRecord b:
                    if (b.HeaderType != SendFormat.HeaderTypeSubstream)
                    {
                        error = new ReceiveError(ReceiveErrorKind.UnsupportedFeature, "cannot receive: compound (-R) streams are read record by record with SendStreamReader");
                        return false;
                    }
                    if (b.ObjsetType != SendFormat.ObjsetTypeZfs)
                    {
                        error = new ReceiveError(ReceiveErrorKind.UnsupportedFeature, "cannot receive: only file system streams are supported");
                        return false;
                    }
                    begin = b;
                    if (b.IsIncremental)
                    {
                        if (baseSnapshot is null || baseSnapshot.Guid != b.FromGuid)
                        {
                            error = new ReceiveError(ReceiveErrorKind.InvalidStream,
                                "cannot receive incremental stream: most recent snapshot does not match incremental source");
                            return false;
                        }
                        objects = baseSnapshot.Objects.Clone();
                    }
                    else objects = new ObjectSetImage();
                    break;
                case EndRecord:
                    snapshot = new ReceivedSnapshot(begin!.ToName, begin.ToGuid, begin.FromGuid, begin.CreationTime, objects!);
                    error = null;
                    return true;
                default:
                    if (!objects!.Apply(record, out string? problem))
                    {
                        error = new ReceiveError(ReceiveErrorKind.InvalidStream,
                            $"{(begin!.IsIncremental ? "cannot receive incremental stream" : "cannot receive new filesystem stream")}: invalid backup stream", problem);
                        return false;
                    }
                    break;
            }
        }
        error = reader.Error ?? new ReceiveError(ReceiveErrorKind.ReadFailed, "cannot receive: failed to read from stream");
        return false;
    }

    /// <summary>Writes the tree as a full stream of snapshot <paramref name="toName"/> (pool/fs@snap).
    /// The guid and creation time come from the caller, who owns randomness and the clock.</summary>
    public static void SendFull(FileTreeImage tree, string toName, ulong toGuid, ulong creationTime, Stream output,
        ZplCodec.EncodeOptions? options = null) =>
        SendObjects(ZplCodec.Encode(tree, options), toName, toGuid, creationTime, output);

    /// <summary>Writes an object set as a full stream: objects in number order, each OBJECT followed by
    /// the FREE of everything past its data and its WRITEs, FREEOBJECTS for every gap (object 0, the
    /// meta-dnode, included, as zfs-fuse sends it).</summary>
    /// <remarks>With <paramref name="resume"/> (zfs send -t) the stream restarts where a cut one left off,
    /// as dmu_send does with resume_object and resume_offset: BEGIN flagged DMU_BACKUP_FEATURE_RESUMING
    /// with both in its nvlist, nothing of the objects before that object, and of that object its
    /// OBJECT and FREE again and its WRITEs from that offset on.</remarks>
    public static void SendObjects(ObjectSetImage objects, string toName, ulong toGuid, ulong creationTime, Stream output,
        (ulong Object, ulong Offset)? resume = null)
    {
        var writer = new SendStreamWriter(output);
        ulong versionInfo = SendFormat.HeaderTypeSubstream;
        byte[] payload = [];
        if (resume is { } r)
        {
            versionInfo |= SendFormat.FeatureResuming << 2;
            payload = new NvList().Add("resume_object", r.Object).Add("resume_offset", r.Offset).PackXdr();
        }
        writer.Write(new BeginRecord(versionInfo, creationTime, SendFormat.ObjsetTypeZfs, 0, toGuid, 0, toName, payload));
        ulong expected = 0;
        foreach (var (id, obj) in objects.Objects)
        {
            if (id > expected && (resume is null || expected >= resume.Value.Object)) writer.Write(new FreeObjectsRecord(expected, id - expected, toGuid));
            expected = id + 1;
            if (resume is not null && id < resume.Value.Object) continue;
            writer.Write(new ObjectRecord(id, obj.Type, obj.BonusType, obj.BlockSize, obj.Bonus, 0, 0, toGuid));
            ulong end = obj.Blocks.Count == 0 ? 0 : (obj.Blocks.Keys.Max() + 1) * obj.BlockSize;
            writer.Write(new FreeRecord(id, end, FreeRecord.ToEnd, toGuid));
            foreach (var (block, data) in obj.Blocks)
                if (resume is null || id > resume.Value.Object || block * obj.BlockSize >= resume.Value.Offset)
                    writer.Write(new WriteRecord(id, obj.Type, block * obj.BlockSize, data, toGuid, 7, 0, default, 0));
        }
        writer.WriteEnd(toGuid);
    }

    /// <summary>
    /// Writes the incremental stream from snapshot <paramref name="fromGuid"/> (whose objects are
    /// <paramref name="from"/>) to <paramref name="to"/>, as dmu_sendbackup does for -i: only what
    /// differs. A new or changed object is sent whole in its dnode (OBJECT with its new bonus), then
    /// the blocks that differ (WRITE), the blocks that became holes and everything past its end
    /// (FREE); objects that are gone are freed (FREEOBJECTS, runs coalesced). An object whose type or
    /// block size changed is reallocated by the receiver, so all its blocks are sent. <paramref name="flags"/>
    /// is drr_flags (DRR_FLAG_CLONE for a clone's changes against its origin).
    /// </summary>
    /// <remarks>With <paramref name="resume"/> (zfs send -t of an incremental token) the stream restarts
    /// as <see cref="SendObjects"/>'s does: BEGIN flagged DMU_BACKUP_FEATURE_RESUMING, nothing of the
    /// objects before the resume object, of that one its OBJECT and FREEs again and its WRITEs from the
    /// offset on. The FREEOBJECTS of gone objects lead the stream, so once a WRITE was kept (a resume
    /// point past 0/0) they arrived before it and are not sent again.</remarks>
    public static void SendIncremental(ObjectSetImage from, ObjectSetImage to, ulong fromGuid, string toName, ulong toGuid,
        ulong creationTime, Stream output, uint flags = 0, (ulong Object, ulong Offset)? resume = null)
    {
        var writer = new SendStreamWriter(output);
        ulong versionInfo = SendFormat.HeaderTypeSubstream;
        byte[] payload = [];
        if (resume is { } r)
        {
            versionInfo |= SendFormat.FeatureResuming << 2;
            payload = new NvList().Add("resume_object", r.Object).Add("resume_offset", r.Offset).PackXdr();
        }
        writer.Write(new BeginRecord(versionInfo, creationTime, SendFormat.ObjsetTypeZfs, flags, toGuid, fromGuid, toName, payload));
        var gone = new List<ulong>();
        bool keptWrites = resume is { } point && (point.Object > 0 || point.Offset > 0);
        if (!keptWrites)
            foreach (ulong id in from.Objects.Keys) if (!to.Objects.ContainsKey(id)) gone.Add(id);
        for (int i = 0; i < gone.Count;)
        {
            int j = i + 1;
            while (j < gone.Count && gone[j] == gone[j - 1] + 1) j++;
            writer.Write(new FreeObjectsRecord(gone[i], (ulong)(j - i), toGuid));
            i = j;
        }
        foreach (var (id, obj) in to.Objects)
        {
            if (resume is not null && id < resume.Value.Object) continue;
            from.Objects.TryGetValue(id, out ObjectImage? old);
            bool reallocated = old is null || old.Type != obj.Type || old.BlockSize != obj.BlockSize || old.BonusType != obj.BonusType;
            bool changed = reallocated || !old!.Bonus.AsSpan().SequenceEqual(obj.Bonus) || !SameBlocks(old.Blocks, obj.Blocks);
            if (!changed) continue;
            writer.Write(new ObjectRecord(id, obj.Type, obj.BonusType, obj.BlockSize, obj.Bonus, 0, 0, toGuid));
            if (!reallocated)
                foreach (ulong block in old!.Blocks.Keys)
                    if (!obj.Blocks.ContainsKey(block))
                        writer.Write(new FreeRecord(id, block * obj.BlockSize, obj.BlockSize, toGuid));
            ulong end = obj.Blocks.Count == 0 ? 0 : (obj.Blocks.Keys.Max() + 1) * obj.BlockSize;
            writer.Write(new FreeRecord(id, end, FreeRecord.ToEnd, toGuid));
            foreach (var (block, data) in obj.Blocks)
            {
                if (!reallocated && old!.Blocks.TryGetValue(block, out byte[]? was) && was.AsSpan().SequenceEqual(data)) continue;
                if (resume is not null && id == resume.Value.Object && block * obj.BlockSize < resume.Value.Offset) continue;
                writer.Write(new WriteRecord(id, obj.Type, block * obj.BlockSize, data, toGuid, 7, 0, default, 0));
            }
        }
        writer.WriteEnd(toGuid);
    }

    private static bool SameBlocks(SortedDictionary<ulong, byte[]> a, SortedDictionary<ulong, byte[]> b)
    {
        if (a.Count != b.Count) return false;
        foreach (var (id, data) in a)
            if (!b.TryGetValue(id, out byte[]? other) || !data.AsSpan().SequenceEqual(other)) return false;
        return true;
    }
}
