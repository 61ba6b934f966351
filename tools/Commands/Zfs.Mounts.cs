using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zfs mount and unmount over the host's mount table (zones/MountTable.cs), and the changelist of
/// libzfs: the mounted file systems a change touches are unmounted before it and mounted again after.
/// </summary>
/// <remarks>
/// Rules
///   1. `zfs mount` without operands lists the mounts as illumos's share_mount does ("%-30s  %s");
///      -a mounts every filesystem that mounts by default (canmount=on, a mountpoint path) and is not
///      mounted yet. -o and -O are refused: no mount options are honoured here.
///   2. On a running host (real time) `zfs mount` also shows the file system to Linux through FUSE
///      under the host's root directory (ROOT/mnt + mountpoint), when FUSE is there (root, /dev/fuse,
///      libfuse); where it is not, the mount is made here and a warning says why Linux cannot see it.
///      A file system mounted here already (create, import) is then only shown to Linux; -a shows
///      every one that mounts by default.
///   3. create and clone mount what they made (ancestors of -p too); destroy unmounts what it takes
///      first and mounts it again if the destroy is refused; rollback, rename, and set or inherit of
///      mountpoint, canmount, readonly and atime unmount the datasets they touch and mount them again
///      after (property changes apply at mount, MountTable rule 3), as libzfs's changelist does.
/// </remarks>
public static partial class Zfs
{
    /// <summary>Properties whose change remounts (rule 3).</summary>
    private static readonly HashSet<string> s_mountProperties = new(StringComparer.Ordinal) { "mountpoint", "canmount", "readonly", "atime" };

    private static int MountCommand(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":avo:O");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Has("o") || g.Has("O"))
        {
            ctx.Err.WriteLine($"zfs mount -{(g.Has("o") ? "o" : "O")} is not supported here: no mount options are honoured");
            return 1;
        }
        if (!g.Has("a") && g.Operands.Count == 0)
        {
            if (g.Has("v")) return Usage(ctx, argv, "missing filesystem argument");
            foreach (var m in ctx.Zone == "global" ? ctx.Host.Mounts.List : []) ctx.Out.WriteLine($"{m.Dataset,-30}  {m.MountPoint}");
            return 0;
        }
        if (g.Has("a") && g.Operands.Count > 0) return Usage(ctx, argv, "too many arguments");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        if (g.Has("a"))
        {
            int code = 0;
            foreach (var pool in ctx.Zone == "global" ? ctx.Host.Pools.All.ToList() : [])
            {
                pool.Datasets.List(pool.Name, -1, DatasetKinds.Filesystem, out var names);
                foreach (string name in names.OrderBy(n => Mountpoint(pool, n), StringComparer.Ordinal))
                {
                    bool mounted = ctx.Host.Mounts.Find(name) != null;
                    bool shown = !mounted || ctx.World.Driver == null || ctx.Host.Mounts.ExposedAt(name) != null;
                    if ((!mounted || !shown) && MountsByDefault(pool, name) && MountOne(ctx, name) != 0) code = 1;
                }
            }
            return code;
        }
        string dataset = g.Operands[0];
        var owner = Open(ctx, dataset);
        if (owner == null || MountDenied(ctx, dataset, "mount")) return 1;
        return MountOne(ctx, dataset);
    }

    /// <summary>
    /// Mounts one dataset here and, on a running host, through FUSE (rule 2); one mounted here already
    /// (create and import mount here) is only shown to Linux.
    /// </summary>
    private static int MountOne(CommandContext ctx, string dataset)
    {
        // Mounted here already and not shown to Linux yet (on a running host) is the one case that
        // does not mount here; otherwise the table mounts it, or refuses ("filesystem already mounted").
        bool onlyShow = ctx.World.Driver != null && ctx.Host.Mounts.Find(dataset) != null && ctx.Host.Mounts.ExposedAt(dataset) == null;
        if (!onlyShow)
        {
            var mounted = ctx.Host.Mounts.Mount(dataset);
            if (!mounted.IsOk) return Refused(ctx, mounted);
        }
        if (ctx.World.Driver is not { } driver) return 0;
        string? root = ctx.Host.Pools.Root;
        string? why = root == null ? "the host has no root directory" : FuseMount.Unavailable();
        if (why != null)
        {
            ctx.Err.WriteLine($"warning: '{dataset}' is mounted here only, not on Linux: {why}");
            return 0;
        }
        string path = Path.Join(root, "mnt", ctx.Host.Mounts.Find(dataset)!.MountPoint);
        var exposed = ctx.Host.Mounts.Expose(dataset, ctx.World.Scheduler, driver, path);
        if (exposed.IsOk) return 0;
        if (!onlyShow) ctx.Host.Mounts.Unmount(dataset, force: true);
        ctx.Err.WriteLine($"cannot mount '{path}': {exposed.Reason ?? StorageStatusText.Of(exposed.Status)}");
        return 1;
    }

    private static int UnmountCommand(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":af");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Has("a"))
        {
            if (g.Operands.Count > 0) return Usage(ctx, argv, "too many arguments");
            int code = 0;
            foreach (var m in (ctx.Zone == "global" ? ctx.Host.Mounts.List : []).Reverse().ToList())
                if (ctx.Host.Mounts.Find(m.Dataset) != null && !ctx.Host.Mounts.Unmount(m.Dataset, g.Has("f")).IsOk) code = 1;
            return code;
        }
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing filesystem argument");
        if (g.Operands.Count > 1) return Usage(ctx, argv, "too many arguments");
        string operand = g.Operands[0];
        string dataset = operand;
        if (operand.StartsWith('/'))
        {
            // A mountpoint names what is mounted there (illumos looks it up in mnttab).
            if ((ctx.Zone == "global" ? ctx.Host.Mounts.MountedAt(operand) : null) is not { } at)
            {
                ctx.Err.WriteLine($"cannot unmount '{operand}': not currently mounted");
                return 1;
            }
            dataset = at.Dataset;
        }
        else if (Open(ctx, dataset) == null || MountDenied(ctx, dataset, "unmount")) return 1;
        var result = ctx.Host.Mounts.Unmount(dataset, g.Has("f"));
        return result.IsOk ? 0 : Refused(ctx, result);
    }

    private static string Mountpoint(Pool pool, string dataset)
        => pool.Datasets.Get(dataset, "mountpoint", out var value).IsOk ? value.Value : "";

    // ---- the changelist (rule 3) ----

    /// <summary>Unmounts the mounted datasets of pool that affected names, deepest first; what it unmounted.</summary>
    private static List<string> UnmountAffected(CommandContext ctx, Pool pool, Func<string, bool> affected)
    {
        var before = ctx.Host.Mounts.List.Where(m => m.Pool == pool).Select(m => m.Dataset).ToList();
        foreach (var m in ctx.Host.Mounts.List.Where(m => m.Pool == pool && affected(m.Dataset)).Reverse().ToList())
            if (ctx.Host.Mounts.Find(m.Dataset) != null) ctx.Host.Mounts.Unmount(m.Dataset, force: true);
        // A forced unmount takes what is mounted beneath too: all of it is mounted again after.
        return before.Where(d => ctx.Host.Mounts.Find(d) == null).ToList();
    }

    /// <summary>Mounts those of names that exist, are not mounted and mount by default, parents first.</summary>
    private static void MountAgain(CommandContext ctx, Pool pool, IEnumerable<string> names)
    {
        foreach (string name in names.Where(pool.Datasets.Exists).OrderBy(n => Mountpoint(pool, n), StringComparer.Ordinal))
        {
            if (ctx.Host.Mounts.Find(name) != null || !MountsByDefault(pool, name)) continue;
            var mounted = ctx.Host.Mounts.Mount(name);
            if (!mounted.IsOk) ctx.Err.WriteLine(mounted.Message);
        }
    }

    /// <summary>A name and everything below it.</summary>
    private static Func<string, bool> AtOrBelow(string name) => d => d == name || d.StartsWith(name + "/", StringComparison.Ordinal);

    /// <summary>The datasets at or below name, listed now (for mounting them again after a change).</summary>
    private static List<string> HeadsAtOrBelow(Pool pool, string name)
        => pool.Datasets.List(name, -1, Heads, out var names).IsOk ? [.. names] : [name];
}
