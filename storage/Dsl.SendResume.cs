/*
 * Resumable receive (zfs receive -s), zfs send -t TOKEN and zfs receive -A, as OpenZFS has them
 * (pool version 23's streams, and zfs-fuse, have no resume: this is OpenZFS's design carried onto
 * the same stream records).
 *
 * Rules
 *   1. A full stream received with -s that ends in the middle (the input cut short, not a record
 *      that is wrong or a checksum that does not match) keeps what arrived: the target filesystem
 *      is created, as OpenZFS leaves an inconsistent one, and holds in a hidden object of its
 *      object set the records that arrived whole, written as a stream of their own (BEGIN, the
 *      records, an END with their checksum), so they are checked again when read back. Its
 *      receive_resume_token property (Send/ResumeToken.cs) names the snapshot (toguid, toname)
 *      and where to go on: object and offset just past the last WRITE kept, and bytes, the size
 *      of what is kept. The local "%recv" entry of the dataset (persisted with its properties,
 *      never sent, shown by no zfs get) records the object and the token.
 *   2. zfs send -t TOKEN decodes the token (libzfs's checks and words: "resume token is corrupt
 *      (...)"), finds the snapshot by name and guid ("'x' is no longer the same snapshot used in
 *      the initial send", "'x' used in the initial send no longer exists") and sends the rest
 *      (Send/SendStream.cs SendObjects with resume).
 *   3. receive of a resumed stream (BEGIN flagged DMU_BACKUP_FEATURE_RESUMING) needs the target's
 *      partial state for the same snapshot and the same resume point; the kept records and the
 *      new ones are then received as one full stream (Dsl.Send.cs rule 1: checked and decoded
 *      before the partial filesystem is replaced by the received one). Cut short again with -s,
 *      the kept state grows and a new token is made.
 *   4. zfs receive -A fs destroys the partial filesystem; an ordinary stream into it is refused
 *      as zfs refuses one into a filesystem that exists.
 *   5. An incremental stream cut short with -s keeps its records, as OpenZFS does, in a hidden
 *      clone fs/%recv of the base snapshot (the stream's fromguid), made then; the token, on fs,
 *      carries "fromguid" first, as get_receive_resume_stats puts it. The clone pins the base: it
 *      cannot be destroyed or rolled past while the state is kept (the clone is its dependent),
 *      and fs may go on taking other changes. The kept records are not applied to the clone's
 *      files (rule 1 of Dsl.Send.cs needs the whole stream first): the finished receive applies
 *      them and the rest onto fs as any incremental stream (the snapshot it makes is what
 *      OpenZFS's swap of the clone into fs gives) and destroys the clone. zfs send -t of such a
 *      token finds the base by its guid in the snapshot's filesystem ("incremental source 0x...
 *      no longer exists") and sends the incremental stream from the token's object and offset on
 *      (SendStream.SendIncremental with resume). Refused, with libzfs's words, while the state is
 *      kept: an ordinary incremental or full stream into fs ("destination fs contains
 *      partially-complete state from \"zfs receive -s\"."); zfs receive -A fs destroys the clone
 *      and the token and leaves fs as it was; zfs destroy -r fs takes the clone with it (as
 *      OpenZFS's destroy does since it learned of %recv). The clone is hidden: zfs list, recursive
 *      snapshots, send -R and the -R receive's tree walk pass it by (IsHidden).
 * Not done: a stream flagged DRR_FLAG_CLONE into a filesystem that does not exist yet, cut short,
 * keeps nothing (OpenZFS keeps it in the new clone).
 */
using System.Globalization;
using SmartOS.Storage.Send;

namespace SmartOS.Storage;

public sealed partial class DatasetTree
{
    private const string PartialKey = "%recv";
    private const string CannotResumeSend = "cannot resume send";

    /// <summary>The filesystem whose partial state a resumed stream replaces (CheckFullTarget, ApplyFull).</summary>
    private string? _replacingPartial;

    private sealed record Partial(long ObjectId, string Token, NvList Contents);

    private static Partial? PartialReceive(DslDir dir)
    {
        if (!dir.Local.TryGetValue(PartialKey, out var entry)) return null;
        int space = entry.IndexOf(' ');
        if (space < 0 || !long.TryParse(entry[..space], NumberStyles.None, CultureInfo.InvariantCulture, out long id)) return null;
        string token = entry[(space + 1)..];
        return ResumeToken.TryDecode(token, out var contents, out _) ? new Partial(id, token, contents) : null;
    }

    /// <summary>Whether a filesystem holds the partial state of a receive -s (zfs receive -A's check).</summary>
    public bool HasPartialReceive(string fs) => _byName.TryGetValue(fs, out var dir) && dir.Local.ContainsKey(PartialKey);

    /// <summary>A hidden dataset (rule 5's fs/%recv, or anything below one): not listed, not walked.</summary>
    internal static bool IsHidden(DslDir dir) => dir.FullName.Contains('%');

    /// <summary>The dataset whose object set keeps the records: fs itself (full), or its hidden clone (incremental, rule 5).</summary>
    private static string PartialHolder(string fs, Partial partial) => partial.Contents.Has("fromguid") ? fs + "/" + PartialKey : fs;

    /// <summary>`zfs receive -A fs`: drops a partially received stream.</summary>
    public StorageResult AbortReceive(string fs)
    {
        if (!_byName.TryGetValue(fs, out var dir)) return new StorageResult(StorageStatus.NoSuchDataset, Cannot("open", fs));
        if (!dir.Local.ContainsKey(PartialKey))
            return new StorageResult(StorageStatus.InvalidArgument, "", $"'{fs}' does not have any resumable receive state to abort");
        if (PartialReceive(dir) is { } partial && partial.Contents.Has("fromguid")) return DropPartialClone(dir);
        return Destroy(fs, DestroyFlags.Recursive);
    }

    /// <summary>Rule 5: the hidden clone and the token go; fs stays as it is.</summary>
    private StorageResult DropPartialClone(DslDir dir)
    {
        string holder = dir.FullName + "/" + PartialKey;
        if (_byName.ContainsKey(holder))
        {
            var destroyed = Destroy(holder, DestroyFlags.Recursive);
            if (!destroyed.IsOk) return destroyed;
        }
        SetLocal(dir, PartialKey, null);
        Touch(dir);
        return _pool.CommitTxg(force: true);
    }

    /// <summary>Rule 5: fs/%recv, a clone of the base snapshot (as Clone makes one, under a name no command accepts).</summary>
    private StorageResult CloneHidden(DslDataset origin, DslDir parent)
    {
        Touch(NewClone(origin, parent, PartialKey));
        return _pool.CommitTxg(force: true);
    }

    /// <summary>Rule 1: what arrived of a cut-short full stream, kept in a new filesystem; the error says how to go on.</summary>
    private StorageResult KeepPartial(SendStreamReader reader, BeginRecord begin, string fsName, IReadOnlyList<SendRecord> records, bool existing,
        DslDataset? baseSnap = null)
    {
        var failed = StreamError(reader);
        if (!reader.CutShort) return failed;
        bool again = HasPartialReceive(fsName);   // a resumed stream cut short once more
        if (begin.IsIncremental ? !again && (baseSnap is null || !_byName.ContainsKey(fsName)) : existing && !again) return failed;
        var kept = new MemoryStream();
        var writer = new SendStreamWriter(kept);
        writer.Write(begin with { VersionInfo = SendFormat.HeaderTypeSubstream, Payload = [] });
        ulong obj = 0, offset = 0;
        foreach (var record in records)
        {
            writer.Write(record);
            if (record is WriteRecord w) (obj, offset) = (w.Object, w.Offset + (ulong)w.Data.Length);
        }
        writer.WriteEnd(begin.ToGuid);
        string holder = begin.IsIncremental ? fsName + "/" + PartialKey : fsName;
        bool made = false;
        if (begin.IsIncremental && !again)
        {
            // Rule 5: the hidden clone of the base holds the records.
            if (!CloneHidden(baseSnap!, _byName[fsName]).IsOk) return failed;
            made = true;
        }
        else if (!begin.IsIncremental && !existing)
        {
            if (!Create(fsName, DatasetType.Filesystem).IsOk) return failed;
            made = true;
        }
        var dir = _byName[fsName];
        var opened = Open(holder, out var set);
        long id = again ? PartialReceive(dir)?.ObjectId ?? -1 : -1;
        if (opened.IsOk && id < 0) opened = set.Create(out id);
        if (opened.IsOk) opened = set.Truncate(id, 0);
        if (opened.IsOk) opened = set.Write(id, 0, kept.ToArray());
        if (!opened.IsOk)
        {
            if (made) Destroy(holder, DestroyFlags.Recursive);
            return failed;
        }
        var contents = new NvList();
        if (begin.IsIncremental) contents.Add("fromguid", begin.FromGuid);
        contents.Add("object", obj).Add("offset", offset).Add("bytes", (ulong)kept.Length)
            .Add("toguid", begin.ToGuid).Add("toname", begin.ToName);
        string token = ResumeToken.Encode(contents);
        SetLocal(dir, PartialKey, id.ToString(CultureInfo.InvariantCulture) + " " + token);
        Touch(dir);
        _pool.CommitTxg(force: true);
        return new StorageResult(StorageStatus.InvalidArgument, begin.IsIncremental ? CannotReceiveIncremental : CannotReceiveFull,
            "checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n"
            + $"A resuming stream can be generated on the sending system by running:\n    zfs send -t {token}");
    }

    /// <summary>Rule 3: a resumed stream onto the partial state it continues.</summary>
    private StorageResult ReceiveResumed(SendStreamReader reader, BeginRecord begin, string target, ReceiveOptions options, List<string> verbose, out string? snapshot)
    {
        snapshot = null;
        const string what = "cannot receive resume stream";
        var named = TargetName(target, begin.ToName, options, out string fsName, out string snapName);
        if (!named.IsOk) return named;
        if (!_byName.TryGetValue(fsName, out var dir) || PartialReceive(dir) is not { } partial)
            return new StorageResult(StorageStatus.InvalidArgument, what, $"destination '{fsName}' does not hold a partially received stream");
        if (!NvList.TryUnpackXdr(begin.Payload, out var resume, out _) || !resume.TryGetUInt64("resume_object", out ulong obj) || !resume.TryGetUInt64("resume_offset", out ulong offset))
            return new StorageResult(StorageStatus.InvalidArgument, what, "invalid stream (malformed nvlist)");
        partial.Contents.TryGetUInt64("toguid", out ulong toGuid);
        partial.Contents.TryGetUInt64("object", out ulong keptObject);
        partial.Contents.TryGetUInt64("offset", out ulong keptOffset);
        partial.Contents.TryGetUInt64("fromguid", out ulong fromGuid);
        if (toGuid != begin.ToGuid || obj != keptObject || offset != keptOffset || fromGuid != begin.FromGuid)
            return new StorageResult(StorageStatus.InvalidArgument, what, $"the stream does not continue the partially received {begin.ToName} in '{fsName}'");
        long length = 0;
        var opened = Open(PartialHolder(fsName, partial), out var set);
        if (opened.IsOk) opened = set.GetLength(partial.ObjectId, out length);
        byte[] kept = new byte[length];
        if (opened.IsOk) opened = set.Read(partial.ObjectId, 0, kept, out _);
        if (!opened.IsOk) return opened with { Detail = what };
        var keptReader = new SendStreamReader(new MemoryStream(kept));
        if (!keptReader.TryRead(out var first) || first is not BeginRecord keptBegin)
            return new StorageResult(StorageStatus.InvalidArgument, what, "the partially received state is damaged");
        var records = new List<SendRecord>();
        while (true)
        {
            if (!keptReader.TryRead(out var record)) return new StorageResult(StorageStatus.InvalidArgument, what, "the partially received state is damaged");
            if (record is EndRecord) break;
            records.Add(record);
        }
        while (true)
        {
            if (!reader.TryRead(out var record))
                return options.Resumable ? KeepPartial(reader, keptBegin, fsName, records, existing: true) : StreamError(reader);
            if (record is EndRecord) break;
            records.Add(record);
        }
        _replacingPartial = fsName;
        try
        {
            var received = ReceiveOne(reader, keptBegin, fsName + "@" + snapName, options with { DiscardFirst = false, KeepLast = false }, verbose, out snapshot, records);
            // Rule 5: the changes are in fs now; the hidden clone and the token go.
            if (received.IsOk && keptBegin.IsIncremental && !options.DryRun) received = DropPartialClone(dir);
            return received;
        }
        finally { _replacingPartial = null; }
    }

    /// <summary>`zfs send -t token` (rule 2).</summary>
    public StorageResult SendResume(string token, Stream output)
    {
        if (!ResumeToken.TryDecode(token, out var contents, out string? corrupt))
            return new StorageResult(StorageStatus.InvalidArgument, CannotResumeSend, corrupt);
        if (!contents.TryGet<string>("toname", out var toName) || !contents.TryGetUInt64("toguid", out ulong toGuid))
            return new StorageResult(StorageStatus.InvalidArgument, CannotResumeSend, "resume token is corrupt");
        contents.TryGetUInt64("object", out ulong obj);
        contents.TryGetUInt64("offset", out ulong offset);
        DslDataset? snap = null;
        int at = toName.IndexOf('@');
        if (at > 0 && _byName.TryGetValue(toName[..at], out var dir)) snap = dir.Snapshots.Find(s => s.Guid == toGuid);
        if (snap is null)
            return new StorageResult(StorageStatus.NoSuchDataset, CannotResumeSend, Exists(toName)
                ? $"'{toName}' is no longer the same snapshot used in the initial send"
                : $"'{toName}' used in the initial send no longer exists");
        if (snap.Dir.Type != DatasetType.Filesystem) return new StorageResult(StorageStatus.NotSupported, CannotResumeSend, "only filesystems can be sent");
        ulong creation = (ulong)(snap.Creation / 1_000_000_000);
        if (contents.TryGetUInt64("fromguid", out ulong fromGuid))
        {
            // Rule 5: the base, by its guid, in the snapshot's filesystem (libzfs's guid_to_name from toname).
            var from = snap.Dir.Snapshots.Find(s => s.Guid == fromGuid);
            if (from is null || from.Txg >= snap.Txg)
                return new StorageResult(StorageStatus.NoSuchDataset, CannotResumeSend, "incremental source 0x" + fromGuid.ToString("x", CultureInfo.InvariantCulture) + " no longer exists");
            var both = ReadImages(from, snap, out var fromImage, out var toImage);
            if (!both.IsOk) return both with { Detail = CannotResumeSend };
            SendStream.SendIncremental(fromImage!, toImage!, fromGuid, snap.Name, snap.Guid, creation, output, resume: (obj, offset));
            return StorageResult.Success;
        }
        var read = ReadImage(snap, out var image);
        if (!read.IsOk) return read with { Detail = CannotResumeSend };
        SendStream.SendObjects(image!, snap.Name, snap.Guid, creation, output, (obj, offset));
        return StorageResult.Success;
    }
}
