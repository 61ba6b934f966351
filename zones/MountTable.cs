/*
 * The host's mount table: which file system datasets are mounted where, and which file system a path
 * of the host's one directory tree lands in (illumos's vfs list and lookuppn across mount points).
 *
 * Terms
 *   mount        a filesystem dataset of an imported pool, opened as a ZplFileSystem (storage/
 *                ZplFileSystem.cs) and attached at its mountpoint, an absolute path.
 *   mountpoint   the dataset's `mountpoint` property: inherited ones extend the ancestor's path by the
 *                rest of the name, the default is /POOL/CHILD (storage/Dsl.Properties.cs), as ZFS's.
 *   resolve      an absolute path, cleaned lexically ("." and ".." and repeated '/'), is in the mount
 *                with the longest mountpoint that is the path or a '/'-prefix of it; the rest of the
 *                path is looked up inside that file system. A path under no mount is ENOENT. The
 *                table keeps its mounts by dataset and by mountpoint as well as in mountpoint order,
 *                so resolve looks up the path and each parent of it: its cost is the path's depth,
 *                not the number of mounts (3,000 zones mounted cost what 3 do; issue 13).
 *
 * Rules
 *   1. A pool's file systems are mounted when the pool is created or imported (PoolTable.Added), or,
 *      for the cached pools a host imports on first use (PoolTable rule 3), at the table's first use,
 *      as `zfs mount -a` does at import: every filesystem with canmount=on and a mountpoint other than
 *      none or legacy, in mountpoint order, so a parent is mounted before a child under it. The table
 *      also checks the pools on every use (Refresh): one exported or destroyed since has its mounts
 *      dropped (the pool has committed and closed; nothing of it is left to write).
 *   2. Mounting makes the mountpoint directory in the file system it lies in when it is missing
 *      (zfs_mount's mkdirp), so `ls` of the parent shows it; a mountpoint another mount holds is
 *      refused ("mountpoint or dataset is busy"). A mounted dataset is held (DatasetTree.Hold), so
 *      destroy and rollback refuse it until it is unmounted.
 *   3. readonly=on mounts read-only: every change is EROFS (ZplFileSystem rule 8). atime follows the
 *      dataset's `atime` property. Property changes apply at the next mount, as zfs remounts.
 *   4. Unmounting a mount with another mounted beneath it is "Device busy", unless forced, which
 *      unmounts those beneath first.
 *   5. File times come from the host's clock (Host.Clock: virtual time in a scenario, never the wall
 *      clock). Durability: every file command commits the pools it used before it returns (Commit),
 *      so the state a scenario leaves is on the vdev files, deterministic, and survives an export,
 *      an import and a crash after the command.
 *   6. One object set has one user (ZplFileSystem rule 2): the table opens each mounted dataset once
 *      and every file command uses that file system.
 *   7. On a running host, `zfs mount` also shows a mount to Linux through FUSE (Expose; storage/Fuse/
 *      FuseMount.cs) at the host's root directory's mnt/ plus the mountpoint, with the same file
 *      system object (rule 6). Unmounting, and a pool's export or destroy (Release, before the pool
 *      closes), take the FUSE mount down first, forcibly: the pool must not close under it.
 *
 * Paths as a command sees them go through a view first (FileView.cs): the global zone's, or a zone's
 * whose "/" is its zonepath's root/ directory, with its lofs mounts. The view follows symbolic links
 * one name at a time, so a link may cross mounts and an absolute target is taken from the view's root;
 * this table then places the link-free host path (resolve, above).
 *
 * Not done yet (issue 12): a renamed dataset keeps its mount until it is remounted.
 */
using SmartOS.Storage;

namespace SmartOS.Zones;

/// <summary>One mounted file system: its pool and dataset, where it is mounted, the open file system.</summary>
public sealed record Mount(Pool Pool, string Dataset, string MountPoint, ZplFileSystem FileSystem)
{
    public bool ReadOnly => FileSystem.ReadOnly;
}

/// <summary>The host's mounts (see the theory statement above).</summary>
public sealed class MountTable
{
    private readonly PoolTable _pools;
    private readonly Func<long> _clock;
    private readonly List<Mount> _mounts = [];
    // The same mounts by dataset and by mountpoint, and how many each pool has: a lookup, a mount and
    // a commit cost the same with 3,000 zones mounted as with 3 (issue 13).
    private readonly Dictionary<string, Mount> _byDataset = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Mount> _byMountPoint = new(StringComparer.Ordinal);
    private readonly Dictionary<Pool, int> _perPool = [];
    private readonly HashSet<Pool> _seen = [];
    private readonly Dictionary<Mount, FuseMount> _exposed = [];

    public MountTable(PoolTable pools, Func<long> clock)
    {
        _pools = pools;
        _clock = clock;
        pools.Added += _ => Refresh();
    }

    /// <summary>The mounts in mountpoint order (`zfs mount` without arguments, df).</summary>
    public IReadOnlyList<Mount> List
    {
        get { Refresh(); return _mounts; }
    }

    /// <summary>The mount of a dataset, or null when it is not mounted.</summary>
    public Mount? Find(string dataset)
    {
        Refresh();
        return _byDataset.GetValueOrDefault(dataset);
    }

    /// <summary>Mounts every eligible file system of pools imported since the last look, and drops the
    /// mounts of pools gone since (rule 1).</summary>
    public void Refresh()
    {
        var live = new HashSet<Pool>(_pools.All);
        bool gone = false;
        foreach (var pool in _seen) gone |= !live.Contains(pool);
        if (gone)
        {
            _mounts.RemoveAll(m => !live.Contains(m.Pool));
            _seen.RemoveWhere(p => !live.Contains(p));
            Reindex();
        }
        foreach (var pool in live)
        {
            if (!_seen.Add(pool)) continue;
            MountAll(pool);
        }
    }

    private void MountAll(Pool pool)
    {
        if (!pool.Datasets.List(pool.Name, -1, DatasetKinds.Filesystem, out var names).IsOk) return;
        var eligible = new List<(string MountPoint, string Dataset)>();
        foreach (string name in names)
            if (Eligible(pool, name, out string mountPoint) is null && Property(pool, name, "canmount") == "on") eligible.Add((mountPoint, name));
        eligible.Sort((a, b) => string.CompareOrdinal(a.MountPoint, b.MountPoint));
        // A dataset that cannot mount (its mountpoint taken) stays unmounted, as zfs mount -a leaves it.
        foreach (var (_, name) in eligible) MountDataset(pool, name);
    }

    /// <summary>`zfs mount DATASET`: mounts a filesystem at its mountpoint (rules 2, 3).</summary>
    public StorageResult Mount(string dataset)
    {
        Refresh();
        var pool = _pools.Find(dataset.Split('/')[0].Split('@')[0]);
        if (pool is null || !pool.Datasets.Exists(dataset))
            return new StorageResult(StorageStatus.NoSuchDataset, $"cannot open '{dataset}'");
        return MountDataset(pool, dataset);
    }

    private StorageResult MountDataset(Pool pool, string dataset)
    {
        string what = $"cannot mount '{dataset}'";
        if (_byDataset.TryGetValue(dataset, out var mounted) && mounted.Pool == pool)
            return new StorageResult(StorageStatus.DatasetBusy, what, "filesystem already mounted");
        string? why = Eligible(pool, dataset, out string mountPoint);
        if (why is not null) return new StorageResult(StorageStatus.InvalidArgument, what, why);
        if (_byMountPoint.ContainsKey(mountPoint)) return new StorageResult(StorageStatus.DatasetBusy, what, "mountpoint or dataset is busy");
        var made = MakeMountPoint(mountPoint);
        if (!made.IsOk) return new StorageResult(made.Status, what, "failed to create mountpoint");
        var opened = pool.Datasets.Open(dataset, out var set);
        if (!opened.IsOk) return new StorageResult(opened.Status, what, opened.Reason ?? StorageStatusText.Of(opened.Status));
        var options = new FileSystemOptions
        {
            Clock = _clock,
            ReadOnly = Property(pool, dataset, "readonly") == "on",
            Atime = Property(pool, dataset, "atime") != "off",
        };
        var fs = ZplFileSystem.Open(set, options, out var zpl);
        if (!fs.IsOk) return new StorageResult(fs.Status, what, fs.Message);
        var held = pool.Datasets.Hold(dataset);
        if (!held.IsOk) return held;
        // In mountpoint order: the first mount whose mountpoint sorts after this one's (a binary search).
        int lo = 0, hi = _mounts.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (string.CompareOrdinal(_mounts[mid].MountPoint, mountPoint) < 0) lo = mid + 1; else hi = mid;
        }
        var mount = new Mount(pool, dataset, mountPoint, zpl!);
        _mounts.Insert(lo, mount);
        Index(mount);
        return StorageResult.Success;
    }

    private void Index(Mount mount)
    {
        _byDataset[mount.Dataset] = mount;
        _byMountPoint[mount.MountPoint] = mount;
        _perPool[mount.Pool] = _perPool.GetValueOrDefault(mount.Pool) + 1;
    }

    private void Reindex()
    {
        _byDataset.Clear();
        _byMountPoint.Clear();
        _perPool.Clear();
        foreach (var m in _mounts) Index(m);
    }

    /// <summary>Null when the dataset may be mounted, else libzfs's reason; its mountpoint.</summary>
    private static string? Eligible(Pool pool, string dataset, out string mountPoint)
    {
        mountPoint = "";
        if (dataset.Contains('@') || !pool.Datasets.Get(dataset, "type", out var type).IsOk || type.Value != "filesystem")
            return "operation not applicable to datasets of this type";
        if (Property(pool, dataset, "canmount") == "off") return "'canmount' property is set to 'off'";
        mountPoint = Property(pool, dataset, "mountpoint");
        if (mountPoint == "legacy") return "legacy mountpoint";
        if (mountPoint is "none" or "") return "no mountpoint set";
        mountPoint = Clean(mountPoint);
        return null;
    }

    private static string Property(Pool pool, string dataset, string name)
        => pool.Datasets.Get(dataset, name, out var value).IsOk ? value.Value : "";

    /// <summary>mkdir -p of a mountpoint inside the file system it lies in, if any (rule 2).</summary>
    private StorageResult MakeMountPoint(string mountPoint)
    {
        if (!Resolve(mountPoint, out var parent, out string inner)) return StorageResult.Success;
        var fs = parent!.FileSystem;
        if (fs.Stat(inner, out var attributes).IsOk)
            return attributes.Type == FileType.Directory ? StorageResult.Success : new StorageResult(StorageStatus.NotDirectory, mountPoint);
        string path = "";
        foreach (string part in inner.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            path += "/" + part;
            if (fs.Stat(path, out _).IsOk) continue;
            var made = fs.MakeDirectory(path, 0x1ED, 0, 0, out _);
            if (!made.IsOk) return made;
        }
        return parent.Pool.Commit();
    }

    /// <summary>`zfs unmount [-f] DATASET`: detaches it (rule 4) and releases its hold.</summary>
    public StorageResult Unmount(string dataset, bool force = false)
    {
        Refresh();
        var mount = Find(dataset);
        if (mount is null) return new StorageResult(StorageStatus.InvalidArgument, $"cannot unmount '{dataset}'", "not currently mounted");
        var beneath = new List<Mount>();
        foreach (var m in _mounts)
            if (m != mount && Under(m.MountPoint, mount.MountPoint)) beneath.Add(m);
        if (beneath.Count > 0 && !force) return new StorageResult(StorageStatus.DatasetBusy, $"cannot unmount '{mount.MountPoint}'", "Device busy");
        for (int i = beneath.Count - 1; i >= 0; i--) Detach(beneath[i]);
        var committed = mount.Pool.Commit();
        Detach(mount);
        return committed;
    }

    private void Detach(Mount mount)
    {
        if (_exposed.Remove(mount, out var fuse)) fuse.Unmount(force: true);
        mount.Pool.Commit();
        _mounts.Remove(mount);
        _byDataset.Remove(mount.Dataset);
        _byMountPoint.Remove(mount.MountPoint);
        if (--_perPool[mount.Pool] == 0) _perPool.Remove(mount.Pool);
        mount.Pool.Datasets.Release(mount.Dataset);
    }

    /// <summary>
    /// `zfs mount` on a running host (rule 7): mounts a mounted dataset's file system on Linux at path
    /// through FUSE, until it is unmounted here. On the loop thread.
    /// </summary>
    public StorageResult Expose(string dataset, Kernel.Scheduler scheduler, Kernel.RealTimeDriver driver, string path)
    {
        var mount = Find(dataset);
        if (mount is null) return new StorageResult(StorageStatus.InvalidArgument, $"cannot mount '{dataset}'", "not currently mounted");
        if (_exposed.ContainsKey(mount)) return StorageResult.Success;
        var result = FuseMount.Mount(scheduler, driver, mount.Pool, mount.FileSystem, dataset, path, out var fuse);
        if (result.IsOk) _exposed[mount] = fuse!;
        return result;
    }

    /// <summary>Where Linux sees a dataset's mount through FUSE (rule 7), or null.</summary>
    public string? ExposedAt(string dataset)
    {
        foreach (var (m, fuse) in _exposed) if (m.Dataset == dataset && fuse.IsConnected) return fuse.Mountpoint;
        return null;
    }

    /// <summary>Before a pool is exported or destroyed: its mounts go, FUSE ones first (rule 7).</summary>
    public void Release(Pool pool)
    {
        for (int i = _mounts.Count - 1; i >= 0; i--)
            if (_mounts[i].Pool == pool) Detach(_mounts[i]);
    }

    /// <summary>
    /// Which mount an absolute path is in, and the path inside it ("/" for the mount's root); false
    /// when no mount holds it (ENOENT).
    /// </summary>
    public bool Resolve(string path, out Mount? mount, out string inner)
    {
        Refresh();
        return ResolveClean(Clean(path), out mount, out inner);
    }

    /// <summary>Resolve of a path already clean, without the pools' refresh: for a caller that resolves
    /// many paths in one operation and refreshed once before (FileView's walk).</summary>
    internal bool ResolveClean(string clean, out Mount? mount, out string inner)
    {
        mount = null;
        inner = "";
        // The longest mountpoint that is the path or a '/'-prefix of it: the path, then each parent, then "/".
        for (int end = clean.Length; mount is null; end = clean.LastIndexOf('/', end - 1))
        {
            if (end <= 0) { mount = _byMountPoint.GetValueOrDefault("/"); break; }
            mount = _byMountPoint.GetValueOrDefault(end == clean.Length ? clean : clean[..end]);
        }
        if (mount is null) return false;
        inner = mount.MountPoint == "/" ? clean : clean.Length == mount.MountPoint.Length ? "/" : clean[mount.MountPoint.Length..];
        return true;
    }

    /// <summary>The mount whose mountpoint is exactly this path, or null (rmdir and rename of it are EBUSY).</summary>
    public Mount? MountedAt(string path)
    {
        Refresh();
        return _byMountPoint.GetValueOrDefault(Clean(path));
    }

    /// <summary>Commits every pool with a mount (rule 5); the first failure, else success.</summary>
    public StorageResult Commit()
    {
        var result = StorageResult.Success;
        foreach (var pool in _perPool.Keys)
        {
            var committed = pool.Commit();
            if (!committed.IsOk && result.IsOk) result = committed;
        }
        return result;
    }

    private static bool Under(string path, string mountPoint)
        => mountPoint == "/" || path == mountPoint || (path.StartsWith(mountPoint, StringComparison.Ordinal) && path[mountPoint.Length] == '/');

    /// <summary>An absolute path with "." and ".." applied and no repeated or trailing '/'.</summary>
    public static string Clean(string path)
    {
        var parts = new List<string>();
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            if (part == "..") { if (parts.Count > 0) parts.RemoveAt(parts.Count - 1); continue; }
            parts.Add(part);
        }
        return "/" + string.Join('/', parts);
    }
}
