using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Ztest;

/// <summary>The child's work went wrong: the storage did what the model says it must not (or the model is wrong).</summary>
public sealed class ZtestFailure(string message) : Exception(message);

/// <summary>
/// The child's random operations on one pool, kept in step with a model (ZtestState) and logged
/// around every commit (ZtestState.cs rules 1, 4, 5).
/// </summary>
public sealed class ZtestWorkload : IDisposable
{
    public const string PoolName = "ztest";
    public const long VdevSize = 128L * 1024 * 1024;
    public const int MaxHeads = 6;
    public const int MaxSnapshots = 8;
    public const int MaxNodes = 24;
    public const int MaxFileSize = 1536 * 1024;

    private static readonly string[] s_compressions = ["off", "lz4", "gzip-1", "gzip-6", "zstd", "zstd-9"];

    private readonly string _dir;
    private readonly PoolOptions _options;
    private Pool _pool;
    private readonly HostRandom _random;
    private readonly ZtestLog _log;
    private readonly Func<long> _clock;
    private readonly Dictionary<string, ZplFileSystem> _mounted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ObjectSet> _sets = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _dirtyHeads = new(StringComparer.Ordinal);
    private ZtestState _state;
    private ZtestState _durable;   // what a crash must keep: the last commit's state with the heads fsynced since (rule 6)
    private bool _dirty;

    public ZtestWorkload(string dir, PoolOptions options, Pool pool, ZtestState state, HostRandom random, ZtestLog log)
    {
        _dir = dir; _options = options; _pool = pool; _state = state; _random = random; _log = log; _clock = options.Clock;
        _durable = state.Copy();
    }

    public void Dispose() => _pool.Dispose();

    /// <summary>Operations run so far (each Step is one).</summary>
    public long Operations { get; private set; }

    /// <summary>The layouts a child can be asked for: one top vdev of a mirror of two or a raidz1 of three.</summary>
    public static VdevSpec Layout(string name) => name switch
    {
        "mirror" => VdevSpec.Mirror("m0", "m1"),
        "raidz1" => VdevSpec.Raidz1("r0", "r1", "r2"),
        _ => throw new ArgumentException($"unknown layout '{name}' (mirror, raidz1)"),
    };

    /// <summary>One random operation: mostly file changes, a commit now and then, and dataset operations.</summary>
    public void Step()
    {
        Operations++;
        bool full = _pool.Allocated > _pool.Size / 4;
        int pick = _random.Next(100);
        switch (pick)
        {
            case < 30: if (full) Truncate(); else Write(); break;
            case < 38: CreateFile(); break;
            case < 42: MakeDirectory(); break;
            case < 48: Unlink(); break;
            case < 50: RemoveDirectory(); break;
            case < 56: Rename(); break;
            case < 62: Truncate(); break;
            case < 68: Commit("commit"); break;
            case < 78: Fsync(); break;
            case < 82: if (full) Destroy(); else CreateDataset(); break;
            case < 87: Snapshot(); break;
            case < 90: if (full) Destroy(); else Clone(); break;
            case < 94: Destroy(); break;
            case < 97: Rollback(); break;
            case < 99: SetCompression(); break;
            default: ExportImport(); break;
        }
    }

    // ---- commits (rule 1) ----

    /// <summary>Commits the file changes made since the last commit as one txg, logged around.</summary>
    public void Commit(string what)
    {
        if (!_dirty) return;
        Committed(_state, what, () => _pool.Commit());
        _dirty = false;
    }

    /// <summary>Logs the intent of next, runs op (which commits up to txgs txgs), logs done; a refusal for space keeps the old state.</summary>
    private void Committed(ZtestState next, string what, Func<StorageResult> op, int txgs = 1)
    {
        string digest = next.Digest();
        _log.Append(new ZtestRecord(false, txgs, digest, 0, what));
        var result = op();
        if (!result.IsOk && !IsSpace(result)) throw new ZtestFailure($"{what}: {result.Message}");
        if (result.IsOk) _state = next;
        else digest = _state.Digest();
        _log.Append(new ZtestRecord(true, _pool.Txg, digest, Operations, what));
        _durable = _state.Copy();
        _dirtyHeads.Clear();
    }

    /// <summary>
    /// fsync of one changed filesystem (ZtestState.cs rule 6): with its intent log open, its changes
    /// become durable without a txg, logged as an intent of 0 txgs; with the log closed the fsync
    /// commits a txg, which makes every change durable, logged as a commit.
    /// </summary>
    private void Fsync()
    {
        if (_dirtyHeads.Count == 0) return;
        string head = Pick([.. _dirtyHeads]);
        var fs = Mount(head);
        if (!_sets[head].LogIsOpen)
        {
            Committed(_state, "fsync " + head + " (commit)", () => fs.Fsync());
            _dirty = false;
            return;
        }
        var next = _durable.Copy();
        next.Datasets[head] = _state.Datasets[head].Copy(head);
        string digest = next.Digest();
        _log.Append(new ZtestRecord(false, 0, digest, 0, "fsync " + head));
        long txg = _pool.Txg;
        Expect(fs.Fsync(), "fsync " + head);
        if (_pool.Txg != txg) throw new ZtestFailure($"fsync {head}: the open log committed txg {_pool.Txg}");
        _log.Append(new ZtestRecord(true, txg, digest, Operations, "fsync " + head));
        _durable = next;
        _dirtyHeads.Remove(head);
    }

    private void Dirtied(ZtestDataset head)
    {
        _dirty = true;
        _dirtyHeads.Add(head.Name);
    }

    private static bool IsSpace(StorageResult r) => r.Status is StorageStatus.NoSpace or StorageStatus.QuotaExceeded;

    private static void Expect(StorageResult result, string what)
    {
        if (!result.IsOk) throw new ZtestFailure($"{what}: {result.Message}");
    }

    private static void Expect(StorageResult result, StorageStatus status, string what)
    {
        if (result.Status != status) throw new ZtestFailure($"{what}: expected {status}, got {result.Message}");
    }

    /// <summary>
    /// `zpool export` then `zpool import`: each rewrites the labels and commits a txg of its own (Pool.Admin.cs
    /// rule A3), so a kill can fall in either rewrite; the state stays the same. The reopened pool's
    /// allocator starts again from the front of each vdev, among the space earlier txgs freed.
    /// </summary>
    private void ExportImport()
    {
        Commit("commit before export");
        _mounted.Clear();
        _sets.Clear();
        Committed(_state, "export and import", () =>
        {
            var exported = _pool.Export();
            if (!exported.IsOk) return exported;
            var opened = Pool.Open(_dir, PoolName, _options, out var pool);
            if (opened.IsOk) _pool = pool!;
            return opened;
        }, txgs: 3);
    }

    // ---- the file layer ----

    private List<ZtestDataset> Heads()
    {
        var heads = new List<ZtestDataset>();
        foreach (var ds in _state.Datasets.Values) if (!ds.IsSnapshot) heads.Add(ds);
        return heads;
    }

    private T Pick<T>(List<T> from) => from[_random.Next(from.Count)];

    private ZplFileSystem Mount(string head)
    {
        if (_mounted.TryGetValue(head, out var fs)) return fs;
        Expect(_pool.Datasets.Open(head, out var objects), $"open {head}");
        Expect(ZplFileSystem.Open(objects, new FileSystemOptions { Clock = _clock, Atime = false }, out fs), $"mount {head}");
        _mounted[head] = fs!;
        _sets[head] = objects;
        return fs!;
    }

    private List<string> PathsOf(ZtestDataset ds, bool directories)
    {
        var paths = new List<string>();
        foreach (var (path, node) in ds.Paths) if (node.IsDirectory == directories) paths.Add(path);
        return paths;
    }

    private static string Join(string directory, string name) => directory == "/" ? "/" + name : directory + "/" + name;

    private void CreateFile()
    {
        var head = Pick(Heads());
        if (head.Paths.Count >= MaxNodes) { Unlink(); return; }
        string path = Join(Pick(PathsOf(head, directories: true)), "f" + _random.Next(32));
        var result = Mount(head.Name).CreateFile(path, 0x1A4, 0, 0, out _);
        if (head.Paths.ContainsKey(path)) { Expect(result, StorageStatus.Exists, $"create {head.Name}:{path}"); return; }
        if (IsSpace(result)) return;
        Expect(result, $"create {head.Name}:{path}");
        head.Paths[path] = new ZtestNode([]);
        Dirtied(head);
    }

    private void MakeDirectory()
    {
        var head = Pick(Heads());
        if (head.Paths.Count >= MaxNodes) { RemoveDirectory(); return; }
        string path = Join(Pick(PathsOf(head, directories: true)), "d" + _random.Next(8));
        var result = Mount(head.Name).MakeDirectory(path, 0x1ED, 0, 0, out _);
        if (head.Paths.ContainsKey(path)) { Expect(result, StorageStatus.Exists, $"mkdir {head.Name}:{path}"); return; }
        if (IsSpace(result)) return;
        Expect(result, $"mkdir {head.Name}:{path}");
        head.Paths[path] = ZtestNode.Directory;
        Dirtied(head);
    }

    /// <summary>A write of 1 byte to 320 KiB at the start, the end, inside, or past the end (a hole), of random, repeating, text or zero bytes.</summary>
    private void Write()
    {
        var head = Pick(Heads());
        var files = PathsOf(head, directories: false);
        if (files.Count == 0) { CreateFile(); return; }
        string path = Pick(files);
        var old = head.Paths[path].Content!;
        int length = _random.Next(10) switch
        {
            < 4 => 1 + _random.Next(512),
            < 7 => 1 + _random.Next(16 * 1024),
            < 9 => 1 + _random.Next(128 * 1024),
            _ => 128 * 1024 + _random.Next(192 * 1024),
        };
        long offset = _random.Next(4) switch
        {
            0 => 0,
            1 => old.Length,
            2 => _random.Next(old.Length + 1),
            _ => old.Length + _random.Next(512 * 1024),
        };
        offset = Math.Max(0, Math.Min(offset, MaxFileSize - length));
        var data = new byte[length];
        switch (_random.Next(4))
        {
            case 0: _random.NextBytes(data); break;
            case 1:
                Span<byte> pattern = stackalloc byte[16];
                _random.NextBytes(pattern);
                for (int i = 0; i < data.Length; i++) data[i] = pattern[i % 16];
                break;
            case 2: break;   // zeros: blocks that become holes
            default:
                for (int i = 0; i < data.Length; i++) data[i] = (byte)('a' + _random.Next(8));
                break;
        }
        var fs = Mount(head.Name);
        Expect(fs.Lookup(path, out long inode), $"lookup {head.Name}:{path}");
        var result = fs.Write(inode, offset, data);
        if (IsSpace(result)) return;
        Expect(result, $"write {head.Name}:{path} {offset}+{length}");
        var content = new byte[Math.Max(old.Length, offset + length)];
        old.CopyTo(content, 0);
        data.CopyTo(content, offset);
        head.Paths[path] = new ZtestNode(content);
        Dirtied(head);
    }

    private void Truncate()
    {
        var head = Pick(Heads());
        var files = PathsOf(head, directories: false);
        if (files.Count == 0) return;
        string path = Pick(files);
        var old = head.Paths[path].Content!;
        long length = _random.Next(4) switch
        {
            0 => 0,
            1 => old.Length / 2,
            2 => Math.Min(MaxFileSize, old.Length + _random.Next(256 * 1024)),   // grows: the new end is a hole
            _ => _random.Next(old.Length + 1),
        };
        var result = Mount(head.Name).Truncate(path, length);
        if (IsSpace(result)) return;
        Expect(result, $"truncate {head.Name}:{path} {length}");
        var content = new byte[length];
        old.AsSpan(0, (int)Math.Min(length, old.Length)).CopyTo(content);
        head.Paths[path] = new ZtestNode(content);
        Dirtied(head);
    }

    private void Unlink()
    {
        var head = Pick(Heads());
        var files = PathsOf(head, directories: false);
        if (files.Count == 0) return;
        string path = Pick(files);
        Expect(Mount(head.Name).Unlink(path), $"unlink {head.Name}:{path}");
        head.Paths.Remove(path);
        Dirtied(head);
    }

    private void RemoveDirectory()
    {
        var head = Pick(Heads());
        var directories = PathsOf(head, directories: true);
        directories.Remove("/");
        if (directories.Count == 0) return;
        string path = Pick(directories);
        var result = Mount(head.Name).RemoveDirectory(path);
        if (HasChildren(head, path)) { Expect(result, StorageStatus.NotEmpty, $"rmdir {head.Name}:{path}"); return; }
        Expect(result, $"rmdir {head.Name}:{path}");
        head.Paths.Remove(path);
        Dirtied(head);
    }

    private static bool HasChildren(ZtestDataset head, string directory)
    {
        foreach (var path in head.Paths.Keys)
            if (path.StartsWith(directory + "/", StringComparison.Ordinal)) return true;
        return false;
    }

    /// <summary>Renames a file or directory to a new name; a directory into itself must be refused with EINVAL.</summary>
    private void Rename()
    {
        var head = Pick(Heads());
        var sources = new List<string>(head.Paths.Keys);
        sources.Remove("/");
        if (sources.Count == 0) return;
        string from = Pick(sources);
        bool directory = head.Paths[from].IsDirectory;
        string to = Join(Pick(PathsOf(head, directories: true)), (directory ? "d" : "f") + _random.Next(32));
        if (head.Paths.ContainsKey(to)) return;
        var result = Mount(head.Name).Rename(from, to);
        if (to.StartsWith(from + "/", StringComparison.Ordinal)) { Expect(result, StorageStatus.InvalidArgument, $"rename {head.Name}:{from} {to}"); return; }
        if (IsSpace(result)) return;
        Expect(result, $"rename {head.Name}:{from} {to}");
        var moved = new List<string>();
        foreach (var path in head.Paths.Keys)
            if (path == from || path.StartsWith(from + "/", StringComparison.Ordinal)) moved.Add(path);
        foreach (var path in moved)
        {
            var node = head.Paths[path];
            head.Paths.Remove(path);
            head.Paths[to + path[from.Length..]] = node;
        }
        Dirtied(head);
    }

    // ---- datasets: each is one txg of its own (Dsl.cs rule 6), after the file changes are committed ----

    /// <summary>Runs a dataset operation whose outcome the model computed as next.</summary>
    private void DatasetOperation(ZtestState next, string what, Func<StorageResult> op)
    {
        Commit("commit before " + what);
        Committed(next, what, op);
        _mounted.Clear();   // a rollback or destroy replaces or drops object sets; mount afresh
        _sets.Clear();
    }

    private int SnapshotCount()
    {
        int n = 0;
        foreach (var ds in _state.Datasets.Values) if (ds.IsSnapshot) n++;
        return n;
    }

    private void CreateDataset()
    {
        var heads = Heads();
        if (heads.Count >= MaxHeads) return;
        var parent = Pick(heads);
        if (parent.Name.Split('/').Length > 2) return;
        string name = parent.Name + "/f" + _random.Next(100);
        if (_state.Datasets.ContainsKey(name)) return;
        string? compression = _random.Next(3) == 0 ? Pick([.. s_compressions]) : null;
        var next = _state.Copy();
        var ds = new ZtestDataset { Name = name, LocalCompression = compression };
        ds.Paths["/"] = ZtestNode.Directory;
        next.Datasets[name] = ds;
        var properties = compression is null ? null : new Dictionary<string, string> { ["compression"] = compression };
        DatasetOperation(next, "create " + name, () => _pool.Datasets.Create(name, DatasetType.Filesystem, properties));
    }

    private void Snapshot()
    {
        if (SnapshotCount() >= MaxSnapshots) { Destroy(); return; }
        var head = Pick(Heads());
        string name = head.Name + "@s" + _random.Next(100);
        if (_state.Datasets.ContainsKey(name)) return;
        var next = _state.Copy();
        long sequence = 0;
        foreach (var ds in next.Datasets.Values) sequence = Math.Max(sequence, ds.Sequence);
        var snapshot = next.Datasets[head.Name].Copy(name);
        snapshot.Origin = "-";
        snapshot.LocalCompression = null;
        snapshot.Sequence = sequence + 1;
        next.Datasets[name] = snapshot;
        DatasetOperation(next, "snapshot " + name, () => _pool.Datasets.Snapshot(name));
    }

    private void Clone()
    {
        if (Heads().Count >= MaxHeads) return;
        var snapshots = new List<ZtestDataset>();
        foreach (var ds in _state.Datasets.Values) if (ds.IsSnapshot) snapshots.Add(ds);
        if (snapshots.Count == 0) { Snapshot(); return; }
        var origin = Pick(snapshots);
        string name = PoolName + "/c" + _random.Next(100);
        if (_state.Datasets.ContainsKey(name)) return;
        var next = _state.Copy();
        var clone = origin.Copy(name);
        clone.Origin = origin.Name;
        clone.LocalCompression = null;
        clone.Sequence = 0;
        next.Datasets[name] = clone;
        DatasetOperation(next, $"clone {origin.Name} {name}", () => _pool.Datasets.Clone(origin.Name, name));
    }

    /// <summary>
    /// Everything a destroy takes with it (Dsl.Operations.cs DependentClones): the start set, then
    /// every filesystem cloned from a snapshot in the set, with its descendants and their snapshots.
    /// </summary>
    private SortedSet<string> Closure(IEnumerable<string> start, out bool clones)
    {
        var set = new SortedSet<string>(start, StringComparer.Ordinal);
        clones = false;
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach (var ds in _state.Datasets.Values)
            {
                if (ds.IsSnapshot || set.Contains(ds.Name) || !set.Contains(ds.Origin)) continue;
                foreach (var name in _state.Datasets.Keys)
                    if (name == ds.Name || name.StartsWith(ds.Name + "/", StringComparison.Ordinal) || name.StartsWith(ds.Name + "@", StringComparison.Ordinal))
                        set.Add(name);
                clones = grew = true;
            }
        }
        return set;
    }

    private void Destroy()
    {
        var candidates = new List<string>(_state.Datasets.Keys);
        candidates.Remove(PoolName);
        if (candidates.Count == 0) return;
        string name = Pick(candidates);
        var target = _state.Datasets[name];
        SortedSet<string> doomed;
        DestroyFlags flags;
        if (target.IsSnapshot)
        {
            doomed = Closure([name], out bool clones);
            flags = DestroyFlags.None;
            if (clones)
            {
                // -R takes the same-named snapshot of every descendant too, and the clones of all of them.
                string snap = name[(name.IndexOf('@') + 1)..];
                var same = new List<string>();
                foreach (var ds in _state.Datasets.Values)
                    if (ds.IsSnapshot && ds.Name.EndsWith("@" + snap, StringComparison.Ordinal)
                        && (ds.Head == target.Head || ds.Head.StartsWith(target.Head + "/", StringComparison.Ordinal)))
                        same.Add(ds.Name);
                doomed = Closure(same, out _);
                flags = DestroyFlags.Dependents;
            }
        }
        else
        {
            var start = new List<string>();
            foreach (var key in _state.Datasets.Keys)
                if (key == name || key.StartsWith(name + "/", StringComparison.Ordinal) || key.StartsWith(name + "@", StringComparison.Ordinal))
                    start.Add(key);
            doomed = Closure(start, out bool clones);
            flags = clones ? DestroyFlags.Dependents : start.Count > 1 ? DestroyFlags.Recursive : DestroyFlags.None;
        }
        var next = _state.Copy();
        foreach (var d in doomed) next.Datasets.Remove(d);
        DatasetOperation(next, $"destroy {name} {flags}", () => _pool.Datasets.Destroy(name, flags));
    }

    /// <summary>Rolls a filesystem back to its newest snapshot, or with -r to an older one when no clone hangs on the later ones.</summary>
    private void Rollback()
    {
        var heads = new List<ZtestDataset>();
        foreach (var ds in Heads()) if (_state.SnapshotsOf(ds.Name).Count > 0) heads.Add(ds);
        if (heads.Count == 0) { Snapshot(); return; }
        var head = Pick(heads);
        var snapshots = _state.SnapshotsOf(head.Name);
        int k = _random.Next(2) == 0 ? snapshots.Count - 1 : _random.Next(snapshots.Count);
        var later = snapshots.GetRange(k + 1, snapshots.Count - k - 1);
        foreach (var ds in _state.Datasets.Values)
            foreach (var s in later)
                if (ds.Origin == s.Name) return;
        var next = _state.Copy();
        foreach (var s in later) next.Datasets.Remove(s.Name);
        next.Datasets[head.Name].Paths = new SortedDictionary<string, ZtestNode>(snapshots[k].Paths, StringComparer.Ordinal);
        var flags = later.Count > 0 ? DestroyFlags.Recursive : DestroyFlags.None;
        string to = snapshots[k].Name;
        // Uncommitted changes are the head's too: they are committed first, then rolled back.
        DatasetOperation(next, $"rollback {to} {flags}", () => _pool.Datasets.Rollback(to, flags));
    }

    private void SetCompression()
    {
        var head = Pick(Heads());
        var next = _state.Copy();
        if (head.LocalCompression is not null && _random.Next(3) == 0)
        {
            next.Datasets[head.Name].LocalCompression = null;
            DatasetOperation(next, $"inherit compression {head.Name}", () => _pool.Datasets.Inherit(head.Name, "compression"));
            return;
        }
        string value = Pick([.. s_compressions]);
        next.Datasets[head.Name].LocalCompression = value;
        DatasetOperation(next, $"set compression={value} {head.Name}", () => _pool.Datasets.Set(head.Name, "compression", value));
    }
}
