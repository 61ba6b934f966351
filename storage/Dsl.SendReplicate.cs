/*
 * zfs send -R and the receive of its stream: a tree of filesystems with their snapshots and
 * properties in one replication stream, as libzfs writes it (zfs_send with replicate, and
 * zfs_receive_package in libzfs_sendrecv.c; zfs-fuse 0.7 writes and reads the same).
 *
 * The stream
 *   BEGIN   compound (DMU_COMPOUNDSTREAM in drr_versioninfo), toname top@tosnap, guids 0, and
 *           drr_payloadlen bytes of a packed XDR nvlist (Send/PackedNvList.cs):
 *             "fromsnap" string (-i/-I only), "tosnap" string,
 *             "fss" { "0x<guid of the filesystem>" -> {
 *                 "name" string, "parentfromsnap" uint64 (the guid of the parent's fromsnap, or of
 *                 its tosnap when it has none; 0 at the top), "origin" uint64 (a clone's origin
 *                 snapshot), "props" { locally set properties: strings as strings, numbers and
 *                 choices as uint64 (zfs's index values: compression=gzip is 10) },
 *                 "snaps" { snapshot name -> guid, every snapshot }, "snapprops" { name -> {} } } }
 *   END     the fletcher-4 of that BEGIN and its payload
 *   then, filesystem by filesystem (parents first, a clone after its origin's filesystem), its
 *   substreams: without -i every snapshot up to tosnap (the first full, or an incremental
 *   flagged DRR_FLAG_CLONE from the origin for a clone, then one incremental per snapshot); with
 *   -i one incremental fromsnap..tosnap; with -I each snapshot after fromsnap; a filesystem that
 *   has no fromsnap travels as without -i. Each substream is the ordinary one (Dsl.Send.cs).
 *   END     a bare END (zero checksum) closes the package.
 *
 * Rules
 *   1. Send reads every snapshot of the tree before it writes a byte, and refuses a tree where a
 *      filesystem lacks tosnap (zfs warns and sends the rest: here a stream is whole or not at all)
 *      or that holds a volume (volumes travel as Send/ZvolStream.cs writes them, one at a time).
 *   2. Receive reads and checks the whole package (header nvlist, its checksum, every substream's
 *      checksum, every snapshot named in "fss") before it changes anything; then checks the
 *      targets of full substreams (exists without -F, has snapshots); then receives each substream
 *      as Dsl.Send.cs does. If one fails (out of space, a base that does not match), what the
 *      package made is undone: filesystems it created are destroyed, filesystems it added
 *      snapshots to are rolled back to their newest snapshot before it, properties it set are put
 *      back. A substream whose snapshot already exists with the stream's guid is skipped, as
 *      zfs_receive_one does.
 *   3. Names as libzfs maps them: with -d the sent name less its pool, with -e its last element
 *      and below, under the target, its missing parents created; without either (as OpenZFS; zfs-fuse
 *      insists on -d) the part below the sent top filesystem is appended to the target.
 *   4. Properties of the stream's "props" are set on each received filesystem after its
 *      substreams, checked as zfs set checks them, as received values (source "received", under
 *      a local value if one is set; Dsl.Properties.cs ReceivedPrefix), and sent again by -R (so
 *      compression and recordsize apply to later writes; the
 *      received blocks are written with the settings the filesystem had while receiving). One
 *      this pool does not have or refuses (user properties, sharenfs, compression=lzjb) is not
 *      set: receive goes on and says so, "cannot receive <prop> property on <fs>: <why>", as zfs
 *      does for a property it cannot set.
 *   5. An incremental package replays the source's renames (of filesystems and snapshots) and
 *      promotions since fromsnap before its substreams, and with -F destroys what the source
 *      destroyed after them, matching filesystems by their snapshots' guids
 *      (Dsl.SendReplicateChanges.cs, libzfs's recv_incremental_replication). Received property
 *      values that the stream no longer lists are cleared, so a property the source inherits
 *      again is inherited in the copy.
 */
using System.Globalization;
using SmartOS.Storage.Send;

namespace SmartOS.Storage;

public sealed partial class DatasetTree
{
    /// <summary>zfs's index values of the choice properties (zfs_prop.c's tables, zio.h's enums).</summary>
    private static readonly Dictionary<string, (string Name, ulong Index)[]> s_indexes = new(StringComparer.Ordinal)
    {
        ["compression"] =
        [
            ("on", 1), ("off", 2), ("lzjb", 3), ("gzip", 10), ("gzip-1", 5), ("gzip-2", 6), ("gzip-3", 7), ("gzip-4", 8), ("gzip-5", 9),
            ("gzip-6", 10), ("gzip-7", 11), ("gzip-8", 12), ("gzip-9", 13), ("zle", 14), ("lz4", 15), ("zstd", 16),
        ],
        ["checksum"] = [("on", 1), ("off", 2), ("fletcher2", 6), ("fletcher4", 7), ("sha256", 8), ("blake3", 13)],
        ["atime"] = [("off", 0), ("on", 1)],
        ["readonly"] = [("off", 0), ("on", 1)],
        ["zoned"] = [("off", 0), ("on", 1)],
        ["canmount"] = [("off", 0), ("on", 1), ("noauto", 2)],
    };

    /// <summary>A locally set property as send_iterate_prop puts it in "props".</summary>
    private static object StreamValue(string name, string stored)
    {
        if (s_indexes.TryGetValue(name, out var table))
        {
            foreach (var (n, index) in table) if (n == stored) return index;
            // zstd-N: OpenZFS keeps the level in the upper bits (ZIO_COMPLEVEL_SHIFT 7).
            if (stored.StartsWith("zstd-", StringComparison.Ordinal)) return 16UL | ulong.Parse(stored[5..], CultureInfo.InvariantCulture) << 7;
        }
        var def = Lookup(name)!;
        return def.Kind == Kind.Size ? ulong.Parse(stored == "none" ? "0" : stored, CultureInfo.InvariantCulture) : stored;
    }

    /// <summary>A "props" value as zfs set's text, or a reason it cannot be set here.</summary>
    private static string? PropertyText(string name, object value, out string? why)
    {
        why = null;
        var def = Lookup(name);
        if (def is null || !def.Settable)
        {
            why = name.Contains(':') ? "user properties are not supported here" : "property is not supported here";
            return null;
        }
        if (s_indexes.TryGetValue(name, out var table))
        {
            if (value is not ulong index) { why = "bad value in the stream"; return null; }
            foreach (var (n, i) in table) if (i == index) return n;
            if (name == "compression" && (index & 0x7f) == 16 && index >> 7 is >= 1 and <= 19) return "zstd-" + (index >> 7).ToString(CultureInfo.InvariantCulture);
            why = $"value {index} is not supported here";
            return null;
        }
        if (def.Kind == Kind.Size)
        {
            if (value is not ulong n) { why = "bad value in the stream"; return null; }
            return n == 0 && name is "quota" or "refquota" or "reservation" or "refreservation" ? "none" : n.ToString(CultureInfo.InvariantCulture);
        }
        if (value is string s) return s;
        why = "bad value in the stream";
        return null;
    }

    // ---- send -R ----

    private StorageResult SendReplicated(DslDataset to, DslDataset? from, bool intermediates, Stream output, string what)
    {
        string tosnap = to.SnapName;
        string? fromsnap = from?.SnapName;
        var dirs = new List<DslDir>();
        var pending = new Stack<DslDir>();
        pending.Push(to.Dir);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            dirs.Add(dir);
            foreach (var child in dir.Children.OrderByDescending(c => c.Name, StringComparer.Ordinal))
                if (!IsHidden(child)) pending.Push(child);
        }
        var fss = new NvList();
        var parentFrom = new Dictionary<DslDir, ulong>();
        foreach (var dir in dirs)
        {
            if (dir.Type != DatasetType.Filesystem)
                return new StorageResult(StorageStatus.NotSupported, what, $"{dir.FullName} is a volume: -R of a tree holding volumes is not supported here");
            if (!dir.Snapshots.Exists(s => s.SnapName == tosnap))
                return new StorageResult(StorageStatus.NoSuchDataset, what, $"snapshot {dir.FullName}@{tosnap} does not exist");
            ulong mine = 0;
            var snaps = new NvList();
            var snapprops = new NvList();
            foreach (var s in dir.Snapshots)
            {
                snaps.Add(s.SnapName, s.Guid);
                snapprops.Add(s.SnapName, new NvList());
                if (fromsnap is not null && s.SnapName == fromsnap || mine == 0 && s.SnapName == tosnap) mine = s.Guid;
            }
            parentFrom[dir] = mine;
            var props = new NvList();
            // Received values, then local ones over them (send_iterate_prop sends both); not Dsl.SendResume.cs's %recv.
            foreach (var (name, value) in dir.Local)
                if (name.StartsWith(ReceivedPrefix, StringComparison.Ordinal)) props.Add(name[ReceivedPrefix.Length..], StreamValue(name[ReceivedPrefix.Length..], value));
            foreach (var (name, value) in dir.Local)
                if (!name.StartsWith('%')) props.Add(name, StreamValue(name, value));
            var fs = new NvList()
                .Add("name", dir.FullName)
                .Add("parentfromsnap", dir == to.Dir ? 0UL : parentFrom[dir.Parent!]);
            if (dir.Origin is not null) fs.Add("origin", dir.Origin.Guid);
            fs.Add("props", props).Add("snaps", snaps).Add("snapprops", snapprops);
            fss.Add("0x" + DerivedGuid(dir.Head.Id).ToString("x", CultureInfo.InvariantCulture), fs);
        }
        var header = new NvList();
        if (fromsnap is not null) header.Add("fromsnap", fromsnap);
        header.Add("tosnap", tosnap).Add("fss", fss);

        // A clone's substreams follow its origin's filesystem (dump_filesystems' "needagain").
        var order = new List<DslDir>();
        var left = new List<DslDir>(dirs);
        while (left.Count > 0)
        {
            var next = left.Find(d => d.Origin is null || !left.Contains(d.Origin.Dir) || d.Origin.Dir == d) ?? left[0];
            left.Remove(next);
            order.Add(next);
        }

        // Rule 1: every substream's images before the first byte.
        var parts = new List<(DslDataset? From, DslDataset To, ObjectSetImage? FromImage, ObjectSetImage ToImage, bool Clone)>();
        foreach (var dir in order)
        {
            int end = dir.Snapshots.FindIndex(s => s.SnapName == tosnap);
            int start = fromsnap is null ? -1 : dir.Snapshots.FindIndex(s => s.SnapName == fromsnap);
            if (start > end)
                return new StorageResult(StorageStatus.InvalidArgument, what, $"incremental source ({dir.FullName}@{fromsnap}) is not earlier than it");
            var steps = new List<(DslDataset? From, DslDataset To)>();
            if (start < 0)
            {
                // No fromsnap here: every snapshot from the first (zfs's doall), or with -i only tosnap.
                bool all = fromsnap is null || intermediates;
                int first = all ? 0 : end;
                for (int i = first; i <= end; i++) steps.Add((i == first ? dir.Origin : dir.Snapshots[i - 1], dir.Snapshots[i]));
            }
            else if (intermediates)
                for (int i = start + 1; i <= end; i++) steps.Add((dir.Snapshots[i - 1], dir.Snapshots[i]));
            else if (start < end) steps.Add((dir.Snapshots[start], dir.Snapshots[end]));
            foreach (var (f, t) in steps)
            {
                if (f is null)
                {
                    var read = ReadImage(t, out var image);
                    if (!read.IsOk) return read with { Detail = what };
                    parts.Add((null, t, null, image!, false));
                }
                else
                {
                    var read = ReadImages(f, t, out var fromImage, out var toImage);
                    if (!read.IsOk) return read with { Detail = what };
                    parts.Add((f, t, fromImage, toImage!, f.Dir != t.Dir));
                }
            }
        }
        var writer = new SendStreamWriter(output);
        writer.Write(new BeginRecord(SendFormat.HeaderTypeCompound, 0, 0, 0, 0, 0, to.Name, header.PackXdr()));
        writer.WriteEnd(0);
        foreach (var (f, t, fromImage, toImage, clone) in parts)
        {
            ulong creation = (ulong)(t.Creation / 1_000_000_000);
            if (f is null) SendStream.SendObjects(toImage, t.Name, t.Guid, creation, output);
            else SendStream.SendIncremental(fromImage!, toImage, f.Guid, t.Name, t.Guid, creation, output, clone ? SendFormat.FlagClone : 0);
        }
        new SendStreamWriter(output).WriteEnd(0);
        return StorageResult.Success;
    }

    // ---- receive of a -R package ----

    private sealed record Substream(BeginRecord Begin, List<SendRecord> Records, string FsName, string SnapName);

    private StorageResult ReceivePackage(SendStreamReader reader, BeginRecord begin, string target, ReceiveOptions options, List<string> verbose,
        out ReceiveSummary? summary)
    {
        summary = null;
        if (target.Contains('@'))
            return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "cannot specify snapshot name for multi-snapshot stream");
        if (!NvList.TryUnpackXdr(begin.Payload, out var header, out string? malformed)
            || !header.TryGet<NvList>("fss", out var fss) || !header.TryGet<string>("tosnap", out _))
            return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "invalid stream (malformed nvlist)");
        header.TryGet<string>("fromsnap", out string? fromsnap);
        if (!reader.TryRead(out var end) || end is not EndRecord)
        {
            if (reader.Error is { Kind: ReceiveErrorKind.ChecksumMismatch })
                return new StorageResult(StorageStatus.ChecksumError, CannotReceive, "incorrect header checksum");
            return StreamError(reader);
        }
        // fsavl_create: every snapshot guid to its filesystem's nvlist and name.
        var byGuid = new Dictionary<ulong, (NvList Fs, string Snap)>();
        foreach (var (_, value) in fss.Pairs)
        {
            if (value is not NvList fs || !fs.TryGet<NvList>("snaps", out var snaps) || !fs.TryGet<string>("name", out _))
                return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "invalid stream (malformed nvlist)");
            foreach (var (snap, guid) in snaps.Pairs)
                if (guid is ulong g) byGuid.TryAdd(g, (fs, snap));
        }
        int at = begin.ToName.IndexOf('@');
        if (at <= 0) return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "invalid stream (bad snapshot name)");
        string sendFs = begin.ToName[..at];
        string prefix = options.DiscardFirst ? (sendFs.Contains('/') ? sendFs[..sendFs.IndexOf('/')] : sendFs)
            : options.KeepLast ? (sendFs.Contains('/') ? sendFs[..sendFs.LastIndexOf('/')] : sendFs)
            : sendFs;

        // Rule 2: the whole package, checked, before any change.
        var subs = new List<Substream>();
        while (true)
        {
            if (!reader.TryRead(out var next)) return StreamError(reader);
            if (next is EndRecord) break;
            if (next is not BeginRecord sub || sub.HeaderType != SendFormat.HeaderTypeSubstream)
                return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, "invalid backup stream");
            var records = new List<SendRecord>();
            while (true)
            {
                if (!reader.TryRead(out var record)) return StreamError(reader);
                if (record is EndRecord) break;
                records.Add(record);
            }
            int subAt = sub.ToName.IndexOf('@');
            string subFs = subAt > 0 ? sub.ToName[..subAt] : "";
            if (subAt <= 0 || !byGuid.ContainsKey(sub.ToGuid) || subFs != sendFs && !subFs.StartsWith(sendFs + "/", StringComparison.Ordinal))
                return new StorageResult(StorageStatus.InvalidArgument, CannotReceive, $"invalid backup stream ({sub.ToName} is not described by the stream's header)");
            subs.Add(new Substream(sub, records, LocalName(subFs), sub.ToName[(subAt + 1)..]));
        }
        string LocalName(string subFs)
        {
            string rel = subFs == prefix ? "" : subFs[prefix.Length..];
            string fsName = options.DiscardFirst || options.KeepLast ? target + (rel.StartsWith('/') ? rel : "/" + rel) : target + subFs[sendFs.Length..];
            return fsName.TrimEnd('/');
        }
        foreach (var s in subs)
        {
            string name = s.FsName + "@" + s.SnapName;
            string? bad = DatasetName.Check(name, snapshot: true);
            if (bad is not null) return new StorageResult(StorageStatus.InvalidArgument, Cannot("receive", name), bad);
        }

        // Rule 5: the source's renames and promotions since fromsnap, before the substreams (undone if the package fails).
        string tofs = LocalName(sendFs);
        var changes = new List<ReplicationChange>();
        if (fromsnap is not null && !options.DryRun) ReplicateChanges(tofs, fromsnap, byGuid, options.Force, changes, verbose);
        var plannedNew = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in subs)
        {
            string name = s.FsName + "@" + s.SnapName;
            bool wantsNew = !s.Begin.IsIncremental || (s.Begin.Flags & SendFormat.FlagClone) != 0;
            if (wantsNew && !plannedNew.Contains(s.FsName) && _byName.TryGetValue(s.FsName, out var existing) && !AlreadyHas(existing, s.Begin.ToGuid))
            {
                var full = CheckFullTarget(s.FsName, name, options.Force, out _);
                if (!full.IsOk)
                {
                    UndoReplicationChanges(changes);
                    return full;
                }
            }
            if (!_byName.ContainsKey(s.FsName)) plannedNew.Add(s.FsName);
        }
        if (options.DryRun)
        {
            foreach (var s in subs)
                verbose.Add($"would receive {(s.Begin.IsIncremental ? "incremental" : "full")} stream of {s.Begin.ToName} into {s.FsName}@{s.SnapName}");
            summary = new ReceiveSummary(subs.Count > 0 ? subs[^1].FsName + "@" + subs[^1].SnapName : target, fromsnap is not null, reader.Position, verbose);
            return StorageResult.Success;
        }

        // Apply, keeping what undoes it.
        var created = new List<string>();
        var newestBefore = new Dictionary<string, string?>(StringComparer.Ordinal);
        var propsBefore = new Dictionary<string, SortedDictionary<string, string>>(StringComparer.Ordinal);
        var received = new List<string>();
        var warnings = new List<string>();
        StorageResult Undo(StorageResult failure)
        {
            foreach (var (fs, snap) in newestBefore)
                if (snap is not null && _byName.TryGetValue(fs, out var d) && d.Snapshots.Count > 0 && d.Snapshots[^1].Name != snap)
                    Rollback(snap, DestroyFlags.Recursive);
            foreach (var (fs, local) in propsBefore)
                if (_byName.TryGetValue(fs, out var d))
                {
                    foreach (var name in d.Local.Keys.ToList()) if (!local.ContainsKey(name)) SetLocal(d, name, null);
                    foreach (var (name, value) in local) SetLocal(d, name, value);
                    Touch(d);
                }
            for (int i = created.Count - 1; i >= 0; i--)
                if (_byName.ContainsKey(created[i])) Destroy(created[i], DestroyFlags.Recursive | DestroyFlags.Dependents);
            UndoReplicationChanges(changes);
            _pool.CommitTxg(force: true);
            return failure;
        }
        foreach (var s in subs)
        {
            if (_byName.TryGetValue(s.FsName, out var dir))
            {
                if (AlreadyHas(dir, s.Begin.ToGuid))
                {
                    verbose.Add($"skipping {s.Begin.ToName}: {s.FsName}@{s.SnapName} is already here");
                    continue;
                }
                if (!newestBefore.ContainsKey(s.FsName) && !created.Contains(s.FsName))
                {
                    newestBefore[s.FsName] = dir.Snapshots.Count > 0 ? dir.Snapshots[^1].Name : null;
                    propsBefore[s.FsName] = new SortedDictionary<string, string>(dir.Local, StringComparer.Ordinal);
                }
            }
            else if (options.DiscardFirst || options.KeepLast)
            {
                var parents = CreateParents(s.FsName, created);
                if (!parents.IsOk) return Undo(parents with { Detail = CannotReceiveFull });
            }
            bool existed = _byName.ContainsKey(s.FsName);
            var one = ReceiveOne(reader, s.Begin, s.FsName + "@" + s.SnapName, options with { DiscardFirst = false, KeepLast = false }, verbose, out _, s.Records);
            if (!one.IsOk) return Undo(one);
            if (!existed) created.Add(s.FsName);
            if (!received.Contains(s.FsName)) received.Add(s.FsName);
        }
        // Rule 4: each filesystem's properties, as the stream lists them.
        foreach (var s in subs)
        {
            var (fs, _) = byGuid[s.Begin.ToGuid];
            if (!_byName.TryGetValue(s.FsName, out var dir) || !fs.TryGet<NvList>("props", out var props)) continue;
            if (!propsBefore.ContainsKey(s.FsName) && !created.Contains(s.FsName)) propsBefore[s.FsName] = new SortedDictionary<string, string>(dir.Local, StringComparer.Ordinal);
            foreach (var (name, value) in props.Pairs)
            {
                if (dir.Local.TryGetValue(ReceivedPrefix + name, out var have) && PropertyText(name, value, out _) is string same && Parse(Lookup(name)!, same, out string canon).IsOk && canon == have)
                    continue;
                string? text = PropertyText(name, value, out string? why);
                var set = text is null ? new StorageResult(StorageStatus.BadProperty, "", why!) : Set(s.FsName, name, text, received: true);
                if (!set.IsOk)
                {
                    string line = $"cannot receive {name} property on {s.FsName}: {set.Reason ?? set.Message}";
                    if (!warnings.Contains(line)) warnings.Add(line);
                }
            }
            // A received value the source no longer sends is cleared (the receive replaces the received set whole).
            foreach (var key in dir.Local.Keys.Where(k => k.StartsWith(ReceivedPrefix, StringComparison.Ordinal)).ToList())
                if (!props.Has(key[ReceivedPrefix.Length..]))
                {
                    SetLocal(dir, key, null);
                    Touch(dir);
                }
        }
        if (fromsnap is not null) ReplicateChanges(tofs, fromsnap, byGuid, options.Force, null, verbose);
        var last = subs.Count > 0 ? subs.FindLast(s => received.Contains(s.FsName)) : null;
        summary = new ReceiveSummary(last is null ? target : last.FsName + "@" + last.SnapName, fromsnap is not null, reader.Position, verbose)
        {
            Filesystems = received,
            Warnings = warnings,
        };
        return _pool.CommitTxg(force: true);
    }

    private static bool AlreadyHas(DslDir dir, ulong guid) => dir.Snapshots.Exists(s => s.Guid == guid);

    /// <summary>The missing ancestors of a received filesystem (zfs_receive_one's create_parents with -d).</summary>
    private StorageResult CreateParents(string fsName, List<string> created)
    {
        var missing = new Stack<string>();
        for (string p = fsName; p.Contains('/');)
        {
            p = p[..p.LastIndexOf('/')];
            if (_byName.ContainsKey(p)) break;
            missing.Push(p);
        }
        while (missing.Count > 0)
        {
            string p = missing.Pop();
            var made = Create(p, DatasetType.Filesystem);
            if (!made.IsOk) return made;
            created.Add(p);
        }
        return StorageResult.Success;
    }
}
