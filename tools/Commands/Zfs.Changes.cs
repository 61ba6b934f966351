using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>The subcommands that change the dataset tree: create, destroy, snapshot, rollback, clone, promote, rename.</summary>
public static partial class Zfs
{
    private const DatasetKinds Heads = DatasetKinds.Filesystem | DatasetKinds.Volume;

    /// <summary>The filesystem or volume part of a name ("tank/a" of "tank/a@s").</summary>
    private static string HeadOf(string name) => name.IndexOf('@') is int at and >= 0 ? name[..at] : name;

    /// <summary>The ancestors of name that do not exist yet, outermost first (what -p makes).</summary>
    private static List<string> MissingAncestors(Pool pool, string name)
    {
        var missing = new List<string>();
        for (int slash = name.IndexOf('/'); slash >= 0; slash = name.IndexOf('/', slash + 1))
            if (!pool.Datasets.Exists(name[..slash])) missing.Add(name[..slash]);
        return missing;
    }

    /// <summary>zfs_create_ancestors: makes each missing ancestor a filesystem; on a refusal undoes what it made (rule 2).</summary>
    private static StorageResult CreateAncestors(Pool pool, List<string> missing)
    {
        for (int i = 0; i < missing.Count; i++)
        {
            var made = pool.Datasets.Create(missing[i], DatasetType.Filesystem);
            if (!made.IsOk)
            {
                Undo(pool, missing.GetRange(0, i));
                return made;
            }
        }
        return StorageResult.Success;
    }

    /// <summary>Destroys ancestors -p made for a change that was then refused, innermost first (rule 2).</summary>
    private static void Undo(Pool pool, List<string> made)
    {
        for (int i = made.Count - 1; i >= 0; i--) pool.Datasets.Destroy(made[i]);
    }

    // ---- create ----

    private static int Create(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":pso:b:V:");
        if (g.Error != null) return OptionError(ctx, argv, g);
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!ParseProps(ctx, g.Values("o"), props)) return Usage(ctx, argv);
        bool volume = g.Has("V");
        if ((g.Has("b") || g.Has("s")) && !volume) return Usage(ctx, argv, "'-s' and '-b' can only be used when creating a volume");
        if (volume)
        {
            string size = g.Value("V")!;
            var parsed = DatasetTree.ParseSize(size, out _);
            if (!parsed.IsOk)
            {
                ctx.Err.WriteLine($"bad volume size '{size}': {parsed.Reason}");
                return 1;
            }
            if (!props.TryAdd("volsize", size)) return Usage(ctx, argv, "property 'volsize' specified multiple times");
        }
        if (g.Value("b") is string block)
        {
            var parsed = DatasetTree.ParseSize(block, out _);
            if (!parsed.IsOk)
            {
                ctx.Err.WriteLine($"bad volume block size '{block}': {parsed.Reason}");
                return 1;
            }
            if (!props.TryAdd("volblocksize", block)) return Usage(ctx, argv, "property 'volblocksize' specified multiple times");
        }
        if (g.Operands.Count == 0) return Usage(ctx, argv, $"missing {(volume ? "volume" : "filesystem")} argument");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        string name = g.Operands[0];
        if (DatasetName.Check(name, snapshot: false) is string bad)
        {
            ctx.Err.WriteLine($"cannot create '{name}': {bad}");
            return 1;
        }
        // In a zone that sees the pool, a name outside its delegated trees is refused, not unknown.
        if (ZoneOf(ctx) is ZoneConfig zone && ZoneDatasets.SeesPool(zone, name.Split('/')[0]) && Denied(ctx, name, "create")) return 1;
        var pool = PoolOf(ctx, name);
        if (pool == null)
        {
            int slash = name.IndexOf('/');
            ctx.Err.WriteLine($"cannot create '{name}': no such pool '{(slash < 0 ? name : name[..slash])}'");
            return 1;
        }
        var missing = new List<string>();
        if (g.Has("p"))
        {
            if (pool.Datasets.Exists(name)) return 0;
            missing = MissingAncestors(pool, name);
            var ancestors = CreateAncestors(pool, missing);
            if (!ancestors.IsOk) return Refused(ctx, ancestors);
        }
        var result = pool.Datasets.Create(name, volume ? DatasetType.Volume : DatasetType.Filesystem, props, sparse: g.Has("s"));
        if (!result.IsOk)
        {
            Undo(pool, missing);
            return Refused(ctx, result);
        }
        MountAgain(ctx, pool, [.. missing, name]);
        return Log(ctx, pool, argv);
    }

    // ---- destroy ----

    private static int Destroy(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":fnpRrv");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing dataset argument");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        string name = g.Operands[0];
        bool snapshot = name.Contains('@');
        if (snapshot && name.IndexOfAny(['%', ',']) >= 0)
        {
            ctx.Err.WriteLine($"cannot destroy '{name}': snapshot ranges and lists are not supported here");
            return 1;
        }
        var pool = Open(ctx, HeadOf(name));
        if (pool == null || Denied(ctx, name, "destroy")) return 1;
        var flags = DestroyFlags.None;
        if (g.Has("r")) flags |= DestroyFlags.Recursive;
        if (g.Has("R")) flags |= DestroyFlags.Dependents;
        if (g.Has("n")) flags |= DestroyFlags.DryRun;
        // What goes, listed before it goes (the listing needs the datasets).
        var doomed = snapshot ? DoomedSnapshots(pool, name, g.Has("r") || g.Has("R"), g.Has("R"), out long reclaim)
                              : DoomedTree(pool, name, g.Has("r") || g.Has("R"), g.Has("R"), out reclaim);
        // The changelist (Zfs.Mounts.cs rule 3): what goes is unmounted first, and mounted again if it stays.
        var doomedSet = new HashSet<string>(doomed, StringComparer.Ordinal) { name };
        var unmounted = UnmountAffected(ctx, pool, doomedSet.Contains);
        var result = pool.Datasets.Destroy(name, flags);
        if (!result.IsOk || g.Has("n")) MountAgain(ctx, pool, unmounted);
        if (!result.IsOk)
        {
            if (snapshot && result.Status == StorageStatus.NoSuchDataset)
            {
                ctx.Err.WriteLine("could not find any snapshots to destroy; check snapshot names.");
                return 1;
            }
            return Refused(ctx, result);
        }
        if (g.Has("v")) PrintDoomed(ctx, doomed, snapshot ? reclaim : null, dryRun: g.Has("n"), parsable: g.Has("p"));
        return g.Has("n") ? 0 : Log(ctx, pool, argv);
    }

    private static void PrintDoomed(CommandContext ctx, List<string> doomed, long? reclaim, bool dryRun, bool parsable)
    {
        foreach (string d in doomed)
            ctx.Out.WriteLine(parsable ? "destroy\t" + d : (dryRun ? "would destroy " : "will destroy ") + d);
        if (reclaim is not long bytes) return;
        ctx.Out.WriteLine(parsable ? "reclaim\t" + bytes.ToString(CultureInfo.InvariantCulture)
                                   : (dryRun ? "would reclaim " : "will reclaim ") + StorageText.Nicenum(bytes));
    }

    /// <summary>The clones of each snapshot of a pool, by origin.</summary>
    private static Dictionary<string, List<string>> ClonesByOrigin(Pool pool)
    {
        var clones = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        pool.Datasets.List(null, -1, Heads, out var heads);
        foreach (string head in heads)
        {
            if (!pool.Datasets.Get(head, "origin", out var origin).IsOk || origin.Value == "-") continue;
            if (!clones.TryGetValue(origin.Value, out var list)) clones[origin.Value] = list = [];
            list.Add(head);
        }
        return clones;
    }

    /// <summary>
    /// What destroy takes, in the order zfs_iter_dependents visits it (children, then each snapshot
    /// after its clones when -R, then the dataset itself).
    /// </summary>
    private static List<string> DoomedTree(Pool pool, string name, bool recursive, bool dependents, out long reclaim)
    {
        reclaim = 0;
        var order = new List<string>();
        var clones = dependents ? ClonesByOrigin(pool) : [];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Visit(string head)
        {
            if (!seen.Add(head)) return;
            if (recursive)
            {
                pool.Datasets.List(head, 1, Heads, out var children);
                foreach (string child in children) if (child != head) Visit(child);
                pool.Datasets.List(head, 1, DatasetKinds.Snapshot, out var snaps);
                foreach (string snap in snaps)
                {
                    foreach (string clone in clones.GetValueOrDefault(snap, [])) Visit(clone);
                    order.Add(snap);
                }
            }
            order.Add(head);
        }
        Visit(name);
        // The pool's root dataset stays: -r takes what is under it (Dsl.Destroy).
        if (!name.Contains('/')) order.Remove(name);
        return order;
    }

    /// <summary>The snapshots `destroy fs@snap` takes (with -r the same-named ones below), each after its clones when -R; reclaim is what they alone hold.</summary>
    private static List<string> DoomedSnapshots(Pool pool, string name, bool recursive, bool dependents, out long reclaim)
    {
        reclaim = 0;
        var order = new List<string>();
        string snap = name[name.IndexOf('@')..];
        pool.Datasets.List(HeadOf(name), recursive ? -1 : 0, Heads, out var heads);
        var clones = dependents ? ClonesByOrigin(pool) : [];
        foreach (string head in heads)
        {
            if (!pool.Datasets.Exists(head + snap)) continue;
            foreach (string clone in clones.GetValueOrDefault(head + snap, [])) order.AddRange(DoomedTree(pool, clone, true, true, out _));
            order.Add(head + snap);
            if (pool.Datasets.Get(head + snap, "used", out var used).IsOk && used.Number is long n) reclaim += n;
        }
        return order;
    }

    // ---- snapshot ----

    private static int Snapshot(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":ro:");
        if (g.Error != null) return OptionError(ctx, argv, g);
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!ParseProps(ctx, g.Values("o"), props)) return Usage(ctx, argv);
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing snapshot argument");
        bool recursive = g.Has("r");
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var pools = new List<Pool>();
        foreach (string name in g.Operands)
        {
            string what = $"cannot create snapshot '{name}'";
            if (DatasetName.Check(name, snapshot: true) is string bad)
            {
                ctx.Err.WriteLine($"{what}: {bad}");
                return 1;
            }
            // No property applies to a snapshot alone yet (user properties wait for issue 12).
            if (props.Count > 0)
            {
                string prop = props.Keys.First();
                var info = DatasetTree.Describe(prop);
                ctx.Err.WriteLine($"{what}: " + (info is null ? $"invalid property '{prop}'" : !info.Settable ? $"'{prop}' is readonly" : $"'{prop}' does not apply to datasets of this type"));
                return 1;
            }
            var pool = PoolOf(ctx, name);
            string head = HeadOf(name), snap = name[name.IndexOf('@')..];
            if (pool == null || !pool.Datasets.Exists(head))
            {
                ctx.Err.WriteLine($"{what}: dataset does not exist");
                return 1;
            }
            if (Denied(ctx, name, "create snapshot")) return 1;
            pool.Datasets.List(head, recursive ? -1 : 0, Heads, out var heads);
            foreach (string h in heads)
            {
                if (pool.Datasets.Exists(h + snap) || !taken.Add(h + snap))
                {
                    ctx.Err.WriteLine($"cannot create snapshot '{h}{snap}': dataset already exists");
                    return 1;
                }
            }
            if (!pools.Contains(pool)) pools.Add(pool);
        }
        foreach (string name in g.Operands)
        {
            var result = PoolOf(ctx, name)!.Datasets.Snapshot(name, recursive);
            if (!result.IsOk) return Refused(ctx, result);
        }
        foreach (var pool in pools)
            if (Log(ctx, pool, argv) != 0) return 1;
        return 0;
    }

    // ---- rollback / clone / promote ----

    /// <summary>zfs_open of a name that must be a snapshot (or, wantSnapshot false, must not be one).</summary>
    private static Pool? OpenOfType(CommandContext ctx, string name, bool wantSnapshot)
    {
        var pool = Open(ctx, name);
        if (pool == null) return null;
        if (name.Contains('@') == wantSnapshot) return pool;
        ctx.Err.WriteLine($"cannot open '{name}': operation not applicable to datasets of this type");
        return null;
    }

    private static int Rollback(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":rRf");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing dataset argument");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        var pool = OpenOfType(ctx, g.Operands[0], wantSnapshot: true);
        if (pool == null || Denied(ctx, g.Operands[0], "rollback to")) return 1;
        var flags = g.Has("R") ? DestroyFlags.Recursive | DestroyFlags.Dependents : g.Has("r") ? DestroyFlags.Recursive : DestroyFlags.None;
        string head = HeadOf(g.Operands[0]);
        var clones = g.Has("R") ? ClonesByOrigin(pool).Where(c => c.Key.StartsWith(head + "@", StringComparison.Ordinal)).SelectMany(c => c.Value).ToHashSet(StringComparer.Ordinal) : [];
        var unmounted = UnmountAffected(ctx, pool, d => d == head || clones.Contains(d));
        var result = pool.Datasets.Rollback(g.Operands[0], flags);
        MountAgain(ctx, pool, unmounted);
        return result.IsOk ? Log(ctx, pool, argv) : Refused(ctx, result);
    }

    private static int Clone(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":po:");
        if (g.Error != null) return OptionError(ctx, argv, g);
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!ParseProps(ctx, g.Values("o"), props)) return Usage(ctx, argv);
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing source dataset argument");
        if (g.Operands.Count == 1) return Usage(ctx, argv, "missing target dataset argument");
        if (g.Operands.Count > 2) return Usage(ctx, argv, "too many arguments");
        string origin = g.Operands[0], target = g.Operands[1];
        var pool = OpenOfType(ctx, origin, wantSnapshot: true);
        if (pool == null) return 1;
        if (DatasetName.Check(target, snapshot: false) is string bad)
        {
            ctx.Err.WriteLine($"cannot create '{target}': {bad}");
            return 1;
        }
        if (Denied(ctx, target, "create")) return 1;
        var missing = new List<string>();
        if (g.Has("p") && PoolOf(ctx, target) == pool)
        {
            if (pool.Datasets.Exists(target)) return 0;
            missing = MissingAncestors(pool, target);
            var ancestors = CreateAncestors(pool, missing);
            if (!ancestors.IsOk) return Refused(ctx, ancestors);
        }
        var result = pool.Datasets.Clone(origin, target, props);
        if (!result.IsOk)
        {
            Undo(pool, missing);
            return Refused(ctx, result);
        }
        MountAgain(ctx, pool, [.. missing, target]);
        return Log(ctx, pool, argv);
    }

    private static int Promote(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing clone filesystem argument");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        var pool = OpenOfType(ctx, g.Operands[0], wantSnapshot: false);
        if (pool == null || Denied(ctx, g.Operands[0], "promote")) return 1;
        var result = pool.Datasets.Promote(g.Operands[0]);
        return result.IsOk ? Log(ctx, pool, argv) : Refused(ctx, result);
    }

    // ---- rename ----

    private static int Rename(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":fpr");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing source dataset argument");
        if (g.Operands.Count == 1) return Usage(ctx, argv, "missing target dataset argument");
        if (g.Operands.Count > 2) return Usage(ctx, argv, "too many arguments");
        if (g.Has("r") && g.Has("p")) return Usage(ctx, argv, "-p and -r options are mutually exclusive");
        string from = g.Operands[0], to = g.Operands[1];
        if (g.Has("r") && !from.Contains('@')) return Usage(ctx, argv, "source dataset for recursive rename must be a snapshot");
        var pool = Open(ctx, from);
        if (pool == null || Denied(ctx, from, "rename") || Denied(ctx, to, "rename")) return 1;
        if (!from.Contains('@'))
        {
            var missing = new List<string>();
            if (g.Has("p") && DatasetName.Check(to, snapshot: false) is null && PoolOf(ctx, to) == pool && !pool.Datasets.Exists(to)
                && !to.StartsWith(from + "/", StringComparison.Ordinal))
            {
                missing = MissingAncestors(pool, to);
                var ancestors = CreateAncestors(pool, missing);
                if (!ancestors.IsOk) return Refused(ctx, ancestors);
            }
            var unmounted = UnmountAffected(ctx, pool, AtOrBelow(from));
            var moved = pool.Datasets.Rename(from, to);
            if (!moved.IsOk)
            {
                MountAgain(ctx, pool, unmounted);
                Undo(pool, missing);
                return Refused(ctx, moved);
            }
            MountAgain(ctx, pool, [.. missing, .. unmounted.Select(d => to + d[from.Length..])]);
            return Log(ctx, pool, argv);
        }
        // zfs_rename's shorthand: "tank/a@new" or "@new" or "new" for a snapshot of the same dataset.
        string head = HeadOf(from);
        if (!to.Contains('@')) to = head + "@" + to;
        else if (to[0] == '@') to = head + to;
        if (!g.Has("r"))
        {
            var renamed = pool.Datasets.Rename(from, to);
            return renamed.IsOk ? Log(ctx, pool, argv) : Refused(ctx, renamed);
        }
        return RenameSnapshots(ctx, pool, argv, from, to);
    }

    /// <summary>rename -r: the snapshot of that name on the dataset and every descendant, checked whole first.</summary>
    private static int RenameSnapshots(CommandContext ctx, Pool pool, string[] argv, string from, string to)
    {
        string what = $"cannot rename '{from}'";
        if (DatasetName.Check(to, snapshot: true) is string bad)
        {
            ctx.Err.WriteLine($"{what}: {bad}");
            return 1;
        }
        string head = HeadOf(from);
        if (HeadOf(to) != head)
        {
            ctx.Err.WriteLine($"{what}: snapshots must be part of same dataset");
            return 1;
        }
        string oldSnap = from[from.IndexOf('@')..], newSnap = to[to.IndexOf('@')..];
        pool.Datasets.List(head, -1, Heads, out var heads);
        var having = heads.Where(h => pool.Datasets.Exists(h + oldSnap)).ToList();
        foreach (string h in having)
        {
            if (!pool.Datasets.Exists(h + newSnap)) continue;
            ctx.Err.WriteLine($"cannot rename to '{h}{newSnap}': dataset already exists");
            return 1;
        }
        foreach (string h in having)
        {
            var renamed = pool.Datasets.Rename(h + oldSnap, h + newSnap);
            if (!renamed.IsOk) return Refused(ctx, renamed);
        }
        return Log(ctx, pool, argv);
    }
}
