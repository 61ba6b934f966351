using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Zones;

/// <summary>
/// The storage pools a host has imported (illumos's spa namespace), and the list of them it keeps in
/// its configuration store, zpool.cache, as illumos keeps /etc/zfs/zpool.cache: one line per pool,
/// "name guid directory", so the next boot (or the next one-shot command) imports the same pools.
/// </summary>
/// <remarks>
/// Rules
///   1. A pool's files live in one directory. Relative vdev paths resolve under the host's root
///      directory, or, for a host without one (a scenario, a test), under the command's working
///      directory (a scenario's --outdir); absolute paths are taken as given.
///   2. Guids come from the host's identity source and times from its clock (Pool.cs rule 1), so a
///      scenario creates byte-identical pools on every run and two boots of a host never share a guid.
///   3. The cached pools are imported on first use, not at host boot: a command that never touches
///      storage opens no vdev file. A cached pool that fails to import is reported (Problems) and
///      stays in the cache, so a missing file brought back makes it import again at the next use.
///   4. The cache is rewritten whole, atomically (IConfigStore), after every create, import, export
///      and destroy, before the command reports success.
/// </remarks>
public sealed class PoolTable
{
    public const string CacheName = "zpool.cache";

    private readonly IConfigStore _store;
    private readonly SortedDictionary<string, (Pool Pool, string Dir)> _pools = new(StringComparer.Ordinal);
    private readonly List<(string Name, ulong Guid, string Dir)> _unavailable = [];
    private readonly List<string> _problems = [];
    private bool _loaded;

    /// <param name="probes">The host's probe registry, where its pools fire the io and zfs probes (storage/StorageProbes.cs).</param>
    public PoolTable(IConfigStore store, string? root, Func<long> clock, IIdentitySource identities, SmartOS.Kernel.Trace.ProbeRegistry? probes = null)
    {
        _store = store;
        Root = root;
        Options = new PoolOptions { Clock = clock, Random = identities, Probes = probes };
    }

    /// <summary>The host's root directory, where relative vdev paths resolve (rule 1); null for a host without one.</summary>
    public string? Root { get; }

    /// <summary>The clock and identity source every pool of this host is created and opened with (rule 2).</summary>
    public PoolOptions Options { get; }

    /// <summary>Cached pools that could not be imported, with the reason (rule 3).</summary>
    public IReadOnlyList<string> Problems { get { Load(); return _problems; } }

    /// <summary>Imported pools in name order.</summary>
    public IEnumerable<Pool> All
    {
        get
        {
            Load();
            foreach (var (pool, _) in _pools.Values) yield return pool;
        }
    }

    public Pool? Find(string name)
    {
        Load();
        return _pools.TryGetValue(name, out var entry) ? entry.Pool : null;
    }

    /// <summary>The directory of an imported pool's files.</summary>
    public string DirectoryOf(Pool pool) => _pools[pool.Name].Dir;

    /// <summary>Whether a cached pool of that name could not be imported (it still holds the name).</summary>
    public bool IsUnavailable(string name)
    {
        Load();
        foreach (var entry in _unavailable) if (entry.Name == name) return true;
        return false;
    }

    /// <summary>Raised by Add once a pool is registered: the mount table mounts its file systems (MountTable rule 1).</summary>
    public event Action<Pool>? Added;

    /// <summary>Registers a pool just created or imported, and rewrites the cache (rule 4).</summary>
    public void Add(Pool pool, string dir)
    {
        Load();
        _unavailable.RemoveAll(e => e.Name == pool.Name || e.Guid == pool.Guid);
        _pools[pool.Name] = (pool, Path.GetFullPath(dir));
        Save();
        Added?.Invoke(pool);
    }

    /// <summary>Forgets a pool exported or destroyed, and rewrites the cache (rule 4).</summary>
    public void Remove(string name)
    {
        Load();
        _pools.Remove(name);
        _unavailable.RemoveAll(e => e.Name == name);
        Save();
    }

    /// <summary>The `zones` pool's default vdev size on first boot: a sparse file, so it costs what it holds.</summary>
    public const long DefaultZonesSize = 4L << 30;

    /// <summary>
    /// What SmartOS's first boot does for its `zones` pool, on a file: keeps it if imported (the
    /// cache), imports it from ROOT/dsk if its file is there, else creates ROOT/dsk/zones0 as a sparse
    /// file of size bytes and the pool on it. Null on success, else why not.
    /// </summary>
    public string? EnsureZonesPool(long size)
    {
        const string name = "zones";
        if (Find(name) != null) return null;
        if (Root is null) return "the zones pool needs a host root directory";
        string dir = Path.Combine(Root, "dsk");
        foreach (var found in Pool.Import(dir).Pools)
        {
            if (found.Name != name) continue;
            var opened = Pool.Open(dir, name, Options, out var existing);
            if (!opened.IsOk) return opened.Message;
            Add(existing!, dir);
            return null;
        }
        if (size < Pool.MinVdevSize) return $"cannot create '{name}': one or more devices is less than the minimum size ({Pool.MinVdevSize / (1024 * 1024)}M)";
        string file = Path.Combine(dir, "zones0");
        if (File.Exists(file)) return $"cannot create '{name}': {file} exists and holds no zones pool";
        Directory.CreateDirectory(dir);
        using (var fs = new FileStream(file, FileMode.CreateNew, FileAccess.Write)) fs.SetLength(size);
        var created = Pool.CreateOnFiles(dir, name, [VdevSpec.Disk("zones0")], Options, out var pool);
        if (!created.IsOk)
        {
            File.Delete(file);
            return created.Message;
        }
        pool!.AppendHistory(Options.Clock(), false, $"zpool create {name} {file}");
        pool.Commit();
        Add(pool, dir);
        return null;
    }

    /// <summary>Imports the cached pools once (rule 3).</summary>
    private void Load()
    {
        if (_loaded) return;
        _loaded = true;
        string? text = ConfigText.Read(_store, CacheName, out string? unreadable);
        if (unreadable is not null) { _problems.Add($"{CacheName}: {unreadable}"); return; }
        if (text is null) return;
        int line = 0;
        foreach (string raw in text.Split('\n'))
        {
            line++;
            if (raw.Length == 0) continue;
            string[] parts = raw.Split('\t');
            if (parts.Length != 3 || !ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong guid)
                || !Path.IsPathRooted(parts[2]))
            {
                _problems.Add($"{CacheName}: line {line}: bad record '{ConfigText.Echo(raw)}'");
                continue;
            }
            var result = Pool.Open(parts[2], parts[0], Options, out var pool);
            if (!result.IsOk || pool!.Guid != guid)
            {
                pool?.Dispose();
                _problems.Add($"{CacheName}: pool '{parts[0]}': {(result.IsOk ? "guid does not match" : result.Message)}");
                _unavailable.Add((parts[0], guid, parts[2]));
                continue;
            }
            _pools[pool.Name] = (pool, parts[2]);
        }
    }

    private void Save()
    {
        var sb = new StringBuilder();
        var lines = new List<(string Name, ulong Guid, string Dir)>();
        foreach (var (pool, dir) in _pools.Values) lines.Add((pool.Name, pool.Guid, dir));
        lines.AddRange(_unavailable);
        lines.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var (name, guid, dir) in lines)
            sb.Append(name).Append('\t').Append(guid.ToString(CultureInfo.InvariantCulture)).Append('\t').Append(dir).Append('\n');
        if (sb.Length == 0) _store.Delete(CacheName);
        else _store.Write(CacheName, sb.ToString());
    }
}
