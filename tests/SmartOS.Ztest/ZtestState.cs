/*
 * ztest: crash safety proven the way OpenZFS's ztest proves it, with a real process killed by SIGKILL.
 *
 * A child process (Program.cs, ZtestWorkload.cs) opens a pool of file vdevs (a mirror or a raidz1) and
 * runs random operations on it forever: datasets created, snapshotted, cloned, destroyed, rolled back,
 * their compression changed; files created, written (small and large, past their end so that they have
 * holes, sometimes with zeros that become holes), truncated, unlinked, renamed, directories made and
 * removed, all through the ZPL; and commits. It keeps a model of what every dataset and file should
 * hold (ZtestState, independent of the storage code) and a log (ZtestLog.cs) of what is durable. The
 * parent (ZtestRunner.cs) starts it, waits a random time, kills it with SIGKILL, imports the pool from
 * its labels, scrubs it, reads every dataset and file back into a ZtestState and compares digests.
 * The next child continues on the same pool, so damage would accumulate.
 *
 * Terms
 *   state      every dataset (name, kind, origin, compression and whether it is set locally) and,
 *              in every filesystem and snapshot, every path with its kind and bytes (ZtestState).
 *   digest     SHA-256 of the state's canonical text: datasets and paths in ordinal order.
 *   intent     a log record "intent D k": the child is about to commit up to k txgs (1, or 3 for an
 *              export and import, each of which rewrites the labels and commits, the import after
 *              replaying the intent logs in a txg of its own) ending at state D; k = 0 for an fsync
 *              through the intent log (rule 6).
 *   done       a log record "done T D": txg T, with state D, is on disk (its Commit returned, so its
 *              uberblock was written to both labels of every leaf and flushed, Pool.cs rule 5).
 *
 * Rules
 *   1. The child writes and fsyncs an intent before every commit (an explicit Commit of file changes,
 *      or a dataset operation, which commits its own txg: Dsl.cs rule 6) and a done after it returns.
 *      It commits file changes before a dataset operation, so the operation's flush commit is empty
 *      and the operation is exactly one txg. A refused operation logs a done of the unchanged state.
 *      An export followed by an import (Pool.Admin.cs rule A3: each rewrites the labels, then commits;
 *      the import first commits the replay of any open intent log, IntentLog.cs L4) is up to three
 *      txgs with the same state; it also starts the allocator again at the front of each vdev,
 *      among blocks freed by earlier txgs, where a free that came too early would be overwritten.
 *   2. Allowed states after a kill. Let the last done be (T, D). If no intent follows it, the pool
 *      must open at txg T with state D: nothing commits without an intent. If an intent (D', k)
 *      follows, the kill fell inside that operation, and the pool must open either at T with D (the
 *      uberblock of T+1 never reached a label) or at T+j, 1 <= j <= k, with D' (it did; a process kill
 *      loses no write that returned, so a txg whose uberblock is on disk is whole). Nothing else: not
 *      T+1 with D (unless D' = D), not a mixture, not T-1. "Opens at" is the txg the labels lead to
 *      (Pool.Import), before an import of an exported pool commits one more.
 *   3. The scrub after a kill finds 0 errors and repairs nothing: a killed process loses no write
 *      that returned, and every block of a committed txg was written (on every side of a mirror,
 *      every raidz1 column) before its uberblock, so a copy that needed repair would be a bug.
 *   4. Randomness comes from HostRandom seeded per run (HostRandom.Derive(seed, "run" + n)), time
 *      from a counter: the child's operations are a function of its seed and the state it opens, so
 *      a failing seed replays (the kill moment is the only wall-clock input; `--ops N` stops a child
 *      by its own SIGKILL after N operations, to replay a failure exactly).
 *   5. Bounded: at most MaxHeads filesystems, MaxSnapshots snapshots, MaxNodes paths per
 *      filesystem, files of at most MaxFileSize bytes, vdevs of VdevSize; a write refused for space
 *      (ENOSPC, EDQUOT) leaves the model as it was (ZplFileSystem.cs rule 5).
 *   6. fsync (IntentLog.cs): the child fsyncs one changed filesystem now and then. Its durable state
 *      is the last commit's with the filesystems fsynced since then as they were at their fsync. With
 *      the filesystem's intent log open, the fsync writes the log and no txg: it is logged as
 *      "intent D 0" (D: that durable state with this filesystem's present contents) and "done T D"
 *      with T unchanged; a kill inside it must open at T with the old durable state or D, the log
 *      replayed at import. With the log closed, the fsync commits a txg (every change durable),
 *      logged as a commit. Data an fsync returned for must be there after the kill: that is the
 *      check of "done T D" when the pool opens at T, its uberblock unchanged since.
 *
 * What a SIGKILL cannot show: writes lost in a power failure (the page cache survives a killed
 * process). tests/SmartOS.Storage.Tests/CrashTests.cs stops and tears writes in process for that.
 */
using System.Security.Cryptography;
using System.Text;
using SmartOS.Storage;

namespace SmartOS.Ztest;

/// <summary>One path of a filesystem in the model: a directory, or a file's bytes (never changed in place, so snapshots share it).</summary>
public sealed class ZtestNode
{
    private string? _hash;

    public ZtestNode(byte[]? content) { Content = content; }

    /// <summary>Null for a directory.</summary>
    public byte[]? Content { get; }

    public bool IsDirectory => Content is null;

    public string Hash => _hash ??= Content is null ? "-" : Convert.ToHexString(SHA256.HashData(Content));

    public static readonly ZtestNode Directory = new(null);
}

/// <summary>One dataset of the model: a filesystem (head) or a snapshot, with its paths.</summary>
public sealed class ZtestDataset
{
    public required string Name { get; init; }

    /// <summary>The snapshot a clone started from ("-" for none; snapshots have none).</summary>
    public string Origin { get; set; } = "-";

    /// <summary>The compression set on this dataset itself; null when inherited or the default.</summary>
    public string? LocalCompression { get; set; }

    /// <summary>For a snapshot: its place among its filesystem's snapshots (oldest first).</summary>
    public long Sequence { get; set; }

    public SortedDictionary<string, ZtestNode> Paths { get; set; } = new(StringComparer.Ordinal);

    public bool IsSnapshot => Name.Contains('@');

    public string Head => IsSnapshot ? Name[..Name.IndexOf('@')] : Name;

    public ZtestDataset Copy(string name) => new()
    {
        Name = name, Origin = Origin, LocalCompression = LocalCompression, Sequence = Sequence,
        Paths = new SortedDictionary<string, ZtestNode>(Paths, StringComparer.Ordinal),
    };
}

/// <summary>The expected (or, loaded from a pool, the actual) contents of every dataset (rule "state").</summary>
public sealed class ZtestState
{
    public SortedDictionary<string, ZtestDataset> Datasets { get; } = new(StringComparer.Ordinal);

    public ZtestState Copy()
    {
        var copy = new ZtestState();
        foreach (var (name, ds) in Datasets) copy.Datasets[name] = ds.Copy(name);
        return copy;
    }

    /// <summary>The compression that applies to a filesystem: its own, else its nearest ancestor's, else off.</summary>
    public string EffectiveCompression(string head)
    {
        for (string name = head; ; name = name[..name.LastIndexOf('/')])
        {
            if (Datasets.TryGetValue(name, out var ds) && ds.LocalCompression is { } local) return local;
            if (!name.Contains('/')) return "off";
        }
    }

    /// <summary>The snapshots of a filesystem, oldest first.</summary>
    public List<ZtestDataset> SnapshotsOf(string head)
    {
        var list = new List<ZtestDataset>();
        foreach (var ds in Datasets.Values)
            if (ds.IsSnapshot && ds.Head == head) list.Add(ds);
        list.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        return list;
    }

    /// <summary>The canonical text the digest is taken of: datasets and paths in ordinal order.</summary>
    public string Canonical()
    {
        var text = new StringBuilder();
        foreach (var ds in Datasets.Values)
        {
            text.Append("dataset ").Append(ds.Name).Append(' ').Append(ds.IsSnapshot ? "snapshot" : "filesystem");
            if (!ds.IsSnapshot)
                text.Append(" origin=").Append(ds.Origin).Append(" compression=").Append(EffectiveCompression(ds.Name))
                    .Append(ds.LocalCompression is null ? "" : " local");
            text.Append('\n');
            foreach (var (path, node) in ds.Paths)
            {
                if (node.IsDirectory) text.Append("  dir ").Append(path).Append('\n');
                else text.Append("  file ").Append(path).Append(' ').Append(node.Content!.Length).Append(' ').Append(node.Hash).Append('\n');
            }
        }
        return text.ToString();
    }

    public string Digest() => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(Canonical())))[..32];

    /// <summary>
    /// Reads every dataset of the pool and every path of every filesystem and snapshot through the
    /// ZPL, as the parent does after a kill and the child does when it starts on an existing pool.
    /// </summary>
    public static StorageResult Load(Pool pool, Func<long> clock, out ZtestState state)
    {
        state = new ZtestState();
        var listed = pool.Datasets.List(null, -1, DatasetKinds.All, out var names);
        if (!listed.IsOk) return listed;
        long sequence = 0;
        foreach (string name in names)
        {
            var ds = new ZtestDataset { Name = name, Sequence = ++sequence };
            if (!ds.IsSnapshot)
            {
                var origin = pool.Datasets.Get(name, "origin", out var o);
                if (!origin.IsOk) return origin;
                ds.Origin = o.Value;
                var compression = pool.Datasets.Get(name, "compression", out var c);
                if (!compression.IsOk) return compression;
                if (c.Source == PropertySource.Local) ds.LocalCompression = c.Value;
            }
            var read = LoadPaths(pool, name, clock, ds.IsSnapshot, ds.Paths);
            if (!read.IsOk) return new StorageResult(read.Status, $"{name}: {read.Message}");
            state.Datasets[name] = ds;
        }
        return StorageResult.Success;
    }

    private static StorageResult LoadPaths(Pool pool, string name, Func<long> clock, bool snapshot, SortedDictionary<string, ZtestNode> into)
    {
        var opened = pool.Datasets.Open(name, out var objects);
        if (!opened.IsOk) return opened;
        var mounted = ZplFileSystem.Open(objects, new FileSystemOptions { Clock = clock, ReadOnly = snapshot, Atime = false }, out var fs);
        if (!mounted.IsOk) return mounted;
        var failure = StorageResult.Success;
        var walked = fs!.Walk("/", entry =>
        {
            switch (entry.Attributes.Type)
            {
                case FileType.Directory:
                    into[entry.Path] = ZtestNode.Directory;
                    return true;
                case FileType.Regular:
                    var content = new byte[entry.Attributes.Size];
                    var read = fs.Read(entry.Attributes.Inode, 0, content, out int n);
                    if (read.IsOk && n != content.Length) read = new StorageResult(StorageStatus.IoError, $"{entry.Path}: short read {n} of {content.Length}");
                    if (!read.IsOk) { failure = read; return false; }
                    into[entry.Path] = new ZtestNode(content);
                    return true;
                default:
                    failure = new StorageResult(StorageStatus.InvalidArgument, $"{entry.Path}: unexpected {entry.Attributes.Type}");
                    return false;
            }
        });
        return walked.IsOk ? failure : walked;
    }
}
