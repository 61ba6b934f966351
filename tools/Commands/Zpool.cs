using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zpool(8): the host's storage pools (storage/Pool.cs, zones/PoolTable.cs), with the options, output
/// and wording of illumos's usr/src/cmd/zpool/zpool_main.c.
/// </summary>
/// <remarks>
/// Rules
///   1. Vdevs are files that exist already (made with mkfile or truncate); a relative path resolves
///      under the host's root directory, or a scenario's working directory (PoolTable rule 1). A pool's
///      files must all be in one directory. Names print relative to that base when under it (as
///      illumos prints c0t0d0 for /dev/dsk/c0t0d0), else as full paths.
///   2. Every subcommand checks all its arguments before it changes anything; the pool commits (and
///      the cache is rewritten) before it reports success.
///   3. Every command that changes a pool is logged in the pool's history (`zpool history`), with the
///      host clock's time; internal events (scrub, resilver, vdev changes) are logged for -i.
///   4. Scrubs and resilvers run to completion inside the command (Pool.Admin.cs rule A2), so status
///      never shows one in progress and `scrub -s` finds none to cancel.
///   5. A property the project does not enforce is refused with a message, never silently accepted
///      (cachefile, autoexpand, failmode ...). File system properties (-O) are the root dataset's,
///      checked as `zfs create -o` checks them before the pool is made, and set on it at creation.
/// </remarks>
public static class Zpool
{
    public static readonly CommandDescriptor Descriptor = new("zpool", "configure ZFS storage pools", RunAsync)
    {
        // `zpool iostat ... INTERVAL` without a count repeats until ^C: only a running host has that time.
        NeedsRunningHost = static a => a.Length > 0 && a[0] == "iostat" && IostatInterval(a[1..]) is (> 0, 0),
    };

    /// <summary>iostat's trailing [interval [count]] operands: (0, 0) when there are none.</summary>
    private static (long Interval, long Count) IostatInterval(string[] args)
    {
        var ops = Getopt.Parse(args, ":vT:").Operands;
        static bool Num(string s, out long n) => long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out n) && n > 0;
        if (ops.Count >= 2 && Num(ops[^1], out long count) && Num(ops[^2], out long interval)) return (interval, count);
        if (ops.Count >= 1 && Num(ops[^1], out long only)) return (only, 0);
        return (0, 0);
    }

    private const string UsageText = """
        usage: zpool command args ...
        where 'command' is one of the following:

        	create [-fn] [-o property=value] ... [-O file-system-property=value] ...
        	    <pool> <vdev> ...
        	destroy [-f] <pool>

        	attach [-f] <pool> <device> <new-device>
        	detach <pool> <device>
        	online <pool> <device> ...
        	offline [-t] <pool> <device> ...
        	clear <pool> [device]
        	replace [-f] <pool> <device> [new-device]

        	scrub [-s] <pool> ...

        	import [-d dir] [-N] [-f]
        	import [-d dir] [-N] [-f] -a
        	import [-d dir] [-N] [-f] <pool | id>
        	export [-f] <pool> ...

        	list [-Hp] [-o property[,...]] [pool] ...
        	iostat [-v] [pool] ... [interval [count]]
        	status [-vx] [pool] ...

        	history [-il] [<pool>] ...
        	get [-Hp] [-o "all" | field[,...]] <"all" | property[,...]> <pool> ...
        	set <property=value> <pool>
        """;

    private static int Usage(CommandContext ctx, string? why = null)
    {
        if (why != null) ctx.Err.WriteLine(why);
        ctx.Err.Write(UsageText);
        return 2;
    }

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        if (ctx.Zone != "global" && ZoneRefusal(ctx, args) is string refused)
        {
            ctx.Err.WriteLine(refused);
            return Task.FromResult(1);
        }
        if (args.Length == 0) return Task.FromResult(Usage(ctx, "missing command"));
        string[] rest = args[1..];
        if (args[0] == "iostat") return IostatAsync(ctx, rest);
        int code = args[0] switch
        {
            "create" => Create(ctx, rest, args),
            "destroy" => Destroy(ctx, rest),
            "list" => List(ctx, rest),
            "status" => Status(ctx, rest),
            "get" => Get(ctx, rest),
            "set" => Set(ctx, rest, args),
            "scrub" => Scrub(ctx, rest, args),
            "import" => Import(ctx, rest, args),
            "export" => Export(ctx, rest),
            "history" => History(ctx, rest),
            "online" => Online(ctx, rest, args),
            "offline" => Offline(ctx, rest, args),
            "clear" => Clear(ctx, rest, args),
            "attach" => AttachOrReplace(ctx, rest, args, replace: false),
            "replace" => AttachOrReplace(ctx, rest, args, replace: true),
            "detach" => Detach(ctx, rest, args),
            _ => Usage(ctx, $"unrecognized command '{args[0]}'"),
        };
        return Task.FromResult(code);
    }

    // ---- shared helpers ----

    private static PoolTable Pools(CommandContext ctx) => ctx.Host.Pools;

    /// <summary>The zone the command runs in; null in the global zone.</summary>
    private static ZoneConfig? ZoneOf(CommandContext ctx)
        => ctx.Zone == "global" ? null : ctx.Host.Zones.Find(ctx.Zone)?.Config ?? new ZoneConfig { Name = ctx.Zone };

    /// <summary>
    /// zpool in a non-global zone (zones/ZoneDatasets.cs rule 2): a zone with nothing delegated has no
    /// ZFS at all (libzfs cannot open /dev/zfs there); one with a delegated dataset may list, show the
    /// status and get the properties of the pools that hold them, and change nothing.
    /// </summary>
    private static string? ZoneRefusal(CommandContext ctx, string[] args)
    {
        if (ZoneOf(ctx) is not { Datasets.Count: > 0 }) return "internal error: failed to initialize ZFS library";
        if (args.Length == 0 || args[0] is "list" or "status" or "get") return null;
        string? operand = null;
        foreach (string a in args[1..]) if (!a.StartsWith('-')) operand ??= a;
        return operand == null ? $"cannot {args[0]}: permission denied" : $"cannot {args[0]} '{operand}': permission denied";
    }

    /// <summary>Where relative vdev paths resolve (rule 1).</summary>
    private static string BaseDir(CommandContext ctx) => Pools(ctx).Root ?? ctx.WorkingDirectory;

    private static string Resolve(CommandContext ctx, string path) => Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(BaseDir(ctx), path));

    /// <summary>A leaf's name as status prints it (rule 1).</summary>
    private static string Display(CommandContext ctx, string path)
    {
        string baseDir = Path.GetFullPath(BaseDir(ctx));
        string relative = Path.GetRelativePath(baseDir, path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? path : relative;
    }

    /// <summary>A cached pool that could not be imported (its files gone) leaves the cache on destroy or export.</summary>
    private static bool ForgetUnavailable(CommandContext ctx, string name)
    {
        if (Pools(ctx).Find(name) != null || !Pools(ctx).IsUnavailable(name)) return false;
        Pools(ctx).Remove(name);
        return true;
    }

    /// <summary>Cached pools that did not import, said once per command that lists pools.</summary>
    private static void ReportUnavailable(CommandContext ctx)
    {
        foreach (string problem in Pools(ctx).Problems) ctx.Err.WriteLine("zpool: " + problem);
    }

    private static Pool? Open(CommandContext ctx, string name)
    {
        var pool = Pools(ctx).Find(name);
        if (pool != null && !ZoneDatasets.SeesPool(ZoneOf(ctx), pool.Name)) pool = null;
        if (pool == null) ctx.Err.WriteLine($"cannot open '{name}': no such pool");
        return pool;
    }

    private static long Now(CommandContext ctx) => ctx.Host.Scheduler.Now;

    private static DateTime Date(long ns) => DateTime.UnixEpoch.AddTicks(ns / 100);

    /// <summary>ctime(3C) without its newline: "Wed Dec  2 21:53:49 2026".</summary>
    private static string Ctime(long ns)
    {
        var t = Date(ns);
        return t.ToString("ddd MMM ", CultureInfo.InvariantCulture) + t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2)
               + t.ToString(" HH:mm:ss yyyy", CultureInfo.InvariantCulture);
    }

    /// <summary>Logs a command line in the pool's history and commits (rule 3).</summary>
    private static void Log(CommandContext ctx, Pool pool, string[] argv)
    {
        pool.AppendHistory(Now(ctx), false, "zpool " + string.Join(' ', argv));
        pool.Commit();
    }

    private static void LogInternal(CommandContext ctx, Pool pool, string evnt, string detail)
    {
        pool.AppendHistory(Now(ctx), true, $"{evnt}\t{pool.Txg + 1}\t{detail}");
    }

    public static string Nicenum(long num) => StorageText.Nicenum(num);

    /// <summary>zpool_name_valid's complaints, or null for a good name.</summary>
    private static string? NameProblem(string name)
    {
        if (name.Length == 0 || !char.IsAsciiLetter(name[0])) return "name must begin with a letter";
        foreach (char c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-' or '.' or ':' or ' ')) return $"invalid character '{c}' in pool name";
        if (name.Contains(' ')) return "invalid character ' ' in pool name";
        if (name.Length > 255) return "name is too long";
        if (name is "mirror" or "raidz" or "draid" or "spare" or "log" || name.StartsWith("mirror", StringComparison.Ordinal)
            || name.StartsWith("raidz", StringComparison.Ordinal) || name.StartsWith("draid", StringComparison.Ordinal)
            || name.StartsWith("spare", StringComparison.Ordinal))
            return "name is reserved";
        return null;
    }

    /// <summary>The pool (imported or exported) whose labels claim a file, as zpool's in-use check sees it.</summary>
    private static (string Pool, bool Active)? Owner(CommandContext ctx, string path)
    {
        foreach (var pool in Pools(ctx).All)
            if (pool.FindLeaf(path, out _) is { } leaf && leaf.Path == path) return (pool.Name, true);
        string? dir = Path.GetDirectoryName(path);
        if (dir == null) return null;
        foreach (var found in Storage.Pool.Import(dir).Pools)
            if (found.Paths.Values.Contains(path)) return (found.Name, !found.Config.Exported);
        return null;
    }

    /// <summary>Checks files that join a pool: they exist, and no pool claims them (an exported one may, with -f).</summary>
    private static bool CheckNewFiles(CommandContext ctx, IReadOnlyList<string> paths, bool force)
    {
        foreach (string path in paths)
        {
            if (!File.Exists(path))
            {
                ctx.Err.WriteLine($"cannot open '{path}': No such file or directory");
                return false;
            }
        }
        var forceable = new List<string>();
        var fatal = new List<string>();
        foreach (string path in paths)
        {
            if (Owner(ctx, path) is not (string owner, bool active)) continue;
            if (active) fatal.Add($"{path} is part of active pool '{owner}'");
            else forceable.Add($"{path} is part of exported pool '{owner}'");
        }
        if (fatal.Count > 0)
        {
            ctx.Err.WriteLine("invalid vdev specification");
            ctx.Err.WriteLine("the following errors must be manually repaired:");
            foreach (string f in fatal) ctx.Err.WriteLine(f);
            return false;
        }
        if (forceable.Count > 0 && !force)
        {
            ctx.Err.WriteLine("invalid vdev specification");
            ctx.Err.WriteLine("use '-f' to override the following errors:");
            foreach (string f in forceable) ctx.Err.WriteLine(f);
            return false;
        }
        return true;
    }

    /// <summary>Clears what an exported pool's labels say about files a forced create or attach takes over.</summary>
    private static void TakeOver(IReadOnlyList<string> paths)
    {
        var zeros = new byte[VdevLabel.ConfigSize];
        foreach (string path in paths)
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Write);
            long length = fs.Length;
            if (length < 2L * VdevLabel.LabelSize) continue;
            fs.Position = 0; fs.Write(zeros);
            fs.Position = length - VdevLabel.LabelSize; fs.Write(zeros);
        }
    }

    // ---- create / destroy ----

    /// <summary>Properties `zpool create -o` and `zpool set` accept; the rest are refused (rule 5).</summary>
    private static string? SettableProblem(string property, bool atCreate)
    {
        switch (property)
        {
            case "comment":
                return null;
            case "altroot":
            case "readonly":
                return atCreate ? $"property '{property}' is not supported here: pools have no mounted file systems yet"
                                : $"property '{property}' can only be set during pool creation or import";
            case "cachefile":
            case "autoexpand":
            case "autoreplace":
            case "failmode":
            case "delegation":
            case "listsnapshots":
            case "bootfs":
            case "dedupditto":
            case "version":
            case "multihost":
                return $"property '{property}' is not supported here: it would not be enforced";
            default:
                if (Array.IndexOf(s_properties, property) >= 0) return $"'{property}' is readonly";
                return $"invalid property '{property}'";
        }
    }

    /// <summary>zpool_valid_proplist's check of a comment (ZPROP_MAX_COMMENT is 32).</summary>
    private static string? CommentProblem(string value)
        => value.Any(c => c < 0x20 || c > 0x7e) ? "comment may only have printable characters"
           : value.Length > 32 ? "comment must not exceed 32 characters" : null;

    private static int Create(CommandContext ctx, string[] args, string[] argv)
    {
        var g = Getopt.Parse(args, ":fndR:m:o:O:");
        if (g.Error != null) return Usage(ctx, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");
        foreach (string opt in new[] { "R", "m", "d" })
            if (g.Has(opt))
            {
                ctx.Err.WriteLine($"cannot create: option '-{opt}' is not supported here: pools have no mounted file systems yet");
                return 1;
            }
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool name argument");
        string name = g.Operands[0];
        if (g.Operands.Count == 1) return Usage(ctx, "missing vdev specification");
        string comment = "";
        foreach (string spec in g.Values("o"))
        {
            int eq = spec.IndexOf('=');
            if (eq <= 0)
            {
                ctx.Err.WriteLine($"missing '=' for -o option");
                return Usage(ctx);
            }
            string prop = spec[..eq], value = spec[(eq + 1)..];
            if ((SettableProblem(prop, atCreate: true) ?? CommentProblem(value)) is string problem)
            {
                ctx.Err.WriteLine($"cannot create '{name}': {problem}");
                return 1;
            }
            comment = value;
        }
        if (NameProblem(name) is string bad)
        {
            ctx.Err.WriteLine($"cannot create '{name}': {bad}");
            return 1;
        }
        // -O: the root dataset's properties, checked before the pool is made (rule 5).
        var fsProps = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string spec in g.Values("O"))
        {
            int eq = spec.IndexOf('=');
            if (eq <= 0)
            {
                ctx.Err.WriteLine("missing '=' for -O argument");
                return Usage(ctx);
            }
            if (!fsProps.TryAdd(spec[..eq], spec[(eq + 1)..]))
            {
                ctx.Err.WriteLine($"property '{spec[..eq]}' specified multiple times");
                return Usage(ctx);
            }
        }
        var checkedProps = DatasetTree.CheckCreateProperties(fsProps, DatasetKinds.Filesystem, $"cannot create '{name}'");
        if (!checkedProps.IsOk)
        {
            ctx.Err.WriteLine(checkedProps.Message);
            return 1;
        }
        if (!ParseLayout(ctx, g.Operands.Skip(1).ToList(), out var layout)) return 1;
        var all = layout.SelectMany(v => v.Paths).ToList();
        if (!CheckNewFiles(ctx, all, g.Has("f"))) return 1;
        string? dir = Path.GetDirectoryName(all[0]);
        foreach (string path in all)
            if (Path.GetDirectoryName(path) != dir)
            {
                ctx.Err.WriteLine($"cannot create '{name}': the files of a pool must be in one directory");
                return 1;
            }
        if (all.Distinct(StringComparer.Ordinal).Count() != all.Count)
        {
            ctx.Err.WriteLine("invalid vdev specification");
            ctx.Err.WriteLine("use '-f' to override the following errors:");
            ctx.Err.WriteLine($"{all.GroupBy(p => p).First(x => x.Count() > 1).Key} is part of the same pool twice");
            return 1;
        }
        if (Pools(ctx).Find(name) != null || Pools(ctx).IsUnavailable(name))
        {
            ctx.Err.WriteLine($"cannot create '{name}': pool already exists");
            return 1;
        }
        foreach (string path in all)
            if (new FileInfo(path).Length < Storage.Pool.MinVdevSize)
            {
                ctx.Err.WriteLine($"cannot create '{name}': one or more devices is less than the minimum size ({Storage.Pool.MinVdevSize / (1024 * 1024)}M)");
                return 1;
            }
        if (g.Has("n"))
        {
            ctx.Out.WriteLine($"would create '{name}' with the following layout:");
            ctx.Out.WriteLine();
            ctx.Out.WriteLine($"\t{name}");
            foreach (var vdev in layout)
            {
                if (vdev.Kind == VdevKind.Disk) { ctx.Out.WriteLine($"\t  {Display(ctx, vdev.Paths[0])}"); continue; }
                ctx.Out.WriteLine($"\t  {(vdev.Kind == VdevKind.Mirror ? "mirror" : "raidz1")}");
                foreach (string path in vdev.Paths) ctx.Out.WriteLine($"\t    {Display(ctx, path)}");
            }
            return 0;
        }
        if (g.Has("f")) TakeOver(all);
        var specs = layout.Select(v => new VdevSpec(v.Kind, v.Paths.Select(Path.GetFileName).ToList()!)).ToList();
        var result = Storage.Pool.CreateOnFiles(dir!, name, specs, Pools(ctx).Options, out var pool);
        if (!result.IsOk)
        {
            ctx.Err.WriteLine(result.Message);
            return 1;
        }
        foreach (var (prop, value) in fsProps)
        {
            // Only the space checks are left to fail here (a reservation the new pool cannot hold): the pool goes again.
            var set = pool!.Datasets.Set(name, prop, value);
            if (set.IsOk) continue;
            pool.Destroy();
            ctx.Err.WriteLine($"cannot create '{name}': {set.Reason ?? StorageStatusText.Of(set.Status)}");
            return 1;
        }
        if (comment.Length > 0) pool!.SetComment(comment);
        Pools(ctx).Add(pool!, dir!);
        LogInternal(ctx, pool!, "create", $"pool version 5000; software version SmartOS in C#; host {ctx.Host.Name}");
        Log(ctx, pool!, argv);
        return 0;
    }

    private sealed record VdevArg(VdevKind Kind, List<string> Paths);

    /// <summary>The vdev list of create: [mirror|raidz|raidz1] FILE ..., each group up to the next keyword.</summary>
    private static bool ParseLayout(CommandContext ctx, List<string> words, out List<VdevArg> layout)
    {
        layout = [];
        VdevArg? group = null;
        foreach (string word in words)
        {
            VdevKind? kind = word switch
            {
                "mirror" => VdevKind.Mirror,
                "raidz" or "raidz1" => VdevKind.Raidz1,
                _ => null,
            };
            if (kind is VdevKind k)
            {
                if (group is { } g0 && !CheckGroup(ctx, g0)) return false;
                group = new VdevArg(k, []);
                layout.Add(group);
                continue;
            }
            if (word is "raidz2" or "raidz3" or "draid" or "spare" or "log" or "cache" or "special" or "dedup")
            {
                ctx.Err.WriteLine($"invalid vdev specification: '{word}' vdevs are not supported here");
                return false;
            }
            if (group is { Kind: not VdevKind.Disk })
            {
                group.Paths.Add(Resolve(ctx, word));
                continue;
            }
            layout.Add(new VdevArg(VdevKind.Disk, [Resolve(ctx, word)]));
        }
        if (group is { } last && !CheckGroup(ctx, last)) return false;
        var kinds = layout.Select(v => v.Kind == VdevKind.Disk ? "disk" : v.Kind == VdevKind.Mirror ? "mirror" : "raidz").Distinct().ToList();
        if (kinds.Count > 1)
        {
            ctx.Err.WriteLine("invalid vdev specification");
            ctx.Err.WriteLine("use '-f' to override the following errors:");
            ctx.Err.WriteLine($"mismatched replication level: both {kinds[0]} and {kinds[1]} vdevs are present");
            return false;
        }
        return true;
    }

    private static bool CheckGroup(CommandContext ctx, VdevArg group)
    {
        if (group.Paths.Count >= 2) return true;
        string what = group.Kind == VdevKind.Mirror ? "mirror" : "raidz";
        ctx.Err.WriteLine($"invalid vdev specification: {what} requires at least 2 devices");
        return false;
    }

    private static int Destroy(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":f");
        if (g.Error != null) return Usage(ctx, $"invalid option '{g.ErrorOption}'");
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool argument");
        if (g.Operands.Count > 1) return Usage(ctx, "too many arguments");
        if (ForgetUnavailable(ctx, g.Operands[0])) return 0;
        var pool = Open(ctx, g.Operands[0]);
        if (pool == null) return 1;
        Pools(ctx).Remove(pool.Name);
        ctx.Host.Mounts.Release(pool);
        pool.Destroy();
        return 0;
    }

    // ---- list / get / set ----

    /// <summary>zpool's pool properties, in its property table's order (`zpool get all`).</summary>
    private static readonly string[] s_properties =
    [
        "size", "capacity", "altroot", "health", "guid", "version", "bootfs", "delegation", "autoreplace", "cachefile",
        "failmode", "listsnapshots", "autoexpand", "dedupditto", "dedupratio", "free", "allocated", "readonly", "comment",
        "expandsize", "freeing", "fragmentation", "leaked", "checkpoint",
    ];

    /// <summary>A property's value and source; parsable gives exact numbers (-p).</summary>
    private static (string Value, string Source) Property(Pool pool, string property, bool parsable)
    {
        long size = pool.Size, alloc = pool.Allocated;
        string Bytes(long n) => parsable ? n.ToString(CultureInfo.InvariantCulture) : Nicenum(n);
        return property switch
        {
            "name" => (pool.Name, "-"),
            "size" => (Bytes(size), "-"),
            "allocated" => (Bytes(alloc), "-"),
            "free" => (Bytes(size - alloc), "-"),
            "capacity" => (size == 0 ? "0" : (alloc * 100 / size).ToString(CultureInfo.InvariantCulture) + (parsable ? "" : "%"), "-"),
            "health" => (pool.Health, "-"),
            "guid" => (pool.Guid.ToString(CultureInfo.InvariantCulture), "-"),
            "altroot" => ("-", "default"),
            "version" => ("-", "default"),
            "bootfs" => ("-", "default"),
            "delegation" => ("on", "default"),
            "autoreplace" => ("off", "default"),
            "cachefile" => ("-", "default"),
            "failmode" => ("wait", "default"),
            "listsnapshots" => ("off", "default"),
            "autoexpand" => ("off", "default"),
            "dedupditto" => ("0", "default"),
            "dedupratio" => (parsable ? "1.00" : "1.00x", "-"),
            "readonly" => ("off", "-"),
            "comment" => pool.Config.Comment.Length == 0 ? ("-", "default") : (pool.Config.Comment, "local"),
            "expandsize" => ("-", "-"),
            "freeing" => ("0", "-"),
            "fragmentation" => ("-", "-"),
            "leaked" => ("0", "-"),
            "checkpoint" => ("-", "-"),
            _ => ("-", "-"),
        };
    }

    /// <summary>`zpool list` fields: name, header, right-justified.</summary>
    private static readonly (string Name, string Header, bool Right)[] s_listFields =
    [
        ("name", "NAME", false), ("size", "SIZE", true), ("allocated", "ALLOC", true), ("free", "FREE", true),
        ("checkpoint", "CKPOINT", true), ("expandsize", "EXPANDSZ", true), ("fragmentation", "FRAG", true),
        ("capacity", "CAP", true), ("dedupratio", "DEDUP", true), ("health", "HEALTH", false), ("altroot", "ALTROOT", false),
    ];

    private static readonly Dictionary<string, string> s_listAliases = new(StringComparer.Ordinal)
    {
        ["alloc"] = "allocated", ["cap"] = "capacity", ["frag"] = "fragmentation", ["dedup"] = "dedupratio",
        ["expandsz"] = "expandsize", ["ckpoint"] = "checkpoint",
    };

    /// <summary>zpool's print_header/print_pool table (StorageText.PrintTable): a number column is at least 5 wide.</summary>
    private static void PrintTable(CommandContext ctx, List<(string Header, bool Right)> columns, List<string[]> rows, bool scripted)
        => StorageText.PrintTable(ctx.Out, [.. columns.Select(c => new StorageText.Column(c.Header, c.Right, c.Right ? 5 : 0))], rows, scripted);

    private static List<Pool>? SelectPools(CommandContext ctx, IReadOnlyList<string> names)
    {
        var pools = new List<Pool>();
        if (names.Count == 0) return [.. Pools(ctx).All.Where(p => ZoneDatasets.SeesPool(ZoneOf(ctx), p.Name))];
        foreach (string name in names)
        {
            var pool = Open(ctx, name);
            if (pool == null) return null;
            pools.Add(pool);
        }
        return pools;
    }

    private static int List(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":Hpo:T:");
        if (g.Error != null) return Usage(ctx, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");
        if (g.Has("T"))
        {
            ctx.Err.WriteLine("zpool list: -T is not supported here");
            return 1;
        }
        var fields = new List<(string Name, string Header, bool Right)>();
        if (g.Value("o") is string spec)
        {
            foreach (string raw in spec.Split(','))
            {
                string f = s_listAliases.GetValueOrDefault(raw, raw);
                int i = Array.FindIndex(s_listFields, x => x.Name == f);
                if (i < 0 && Array.IndexOf(s_properties, f) >= 0) { fields.Add((f, f.ToUpperInvariant(), false)); continue; }
                if (i < 0)
                {
                    ctx.Err.WriteLine($"property '{raw}' is not a valid pool property");
                    return Usage(ctx);
                }
                fields.Add(s_listFields[i]);
            }
        }
        else fields.AddRange(s_listFields);
        bool parsable = g.Has("p");
        var pools = SelectPools(ctx, g.Operands);
        if (pools == null) return 1;
        ReportUnavailable(ctx);
        if (pools.Count == 0)
        {
            ctx.Out.WriteLine("no pools available");
            return 0;
        }
        var rows = pools.Select(p => fields.Select(f => Property(p, f.Name, parsable).Value).ToArray()).ToList();
        PrintTable(ctx, fields.Select(f => (f.Header, f.Right)).ToList(), rows, g.Has("H"));
        return 0;
    }

    private static int Get(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":Hpo:");
        if (g.Error != null) return Usage(ctx, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");
        if (g.Operands.Count == 0) return Usage(ctx, "missing property argument");
        string[] columns = ["name", "property", "value", "source"];
        if (g.Value("o") is string spec && spec != "all")
        {
            columns = spec.Split(',');
            foreach (string c in columns)
                if (c is not ("name" or "property" or "value" or "source"))
                {
                    ctx.Err.WriteLine($"invalid field '{c}'");
                    return Usage(ctx);
                }
        }
        string list = g.Operands[0];
        var props = new List<string>();
        foreach (string p in list.Split(','))
        {
            if (p == "all") { props.AddRange(s_properties); continue; }
            if (p != "name" && Array.IndexOf(s_properties, p) < 0)
            {
                ctx.Err.WriteLine($"bad property list: invalid property '{p}'");
                return Usage(ctx);
            }
            props.Add(p);
        }
        var pools = SelectPools(ctx, g.Operands.Skip(1).ToList());
        if (pools == null) return 1;
        var rows = new List<string[]>();
        foreach (var pool in pools)
            foreach (string p in props)
            {
                var (value, source) = Property(pool, p, g.Has("p"));
                rows.Add(columns.Select(c => c switch { "name" => pool.Name, "property" => p, "value" => value, _ => source }).ToArray());
            }
        PrintTable(ctx, columns.Select(c => (c.ToUpperInvariant(), false)).ToList(), rows, g.Has("H"));
        return 0;
    }

    private static int Set(CommandContext ctx, string[] args, string[] argv)
    {
        if (args.Length == 0) return Usage(ctx, "missing property=value argument");
        if (args.Length == 1) return Usage(ctx, "missing pool name");
        if (args.Length > 2) return Usage(ctx, "too many pool names");
        int eq = args[0].IndexOf('=');
        if (eq < 0) return Usage(ctx, "missing value in property=value argument");
        string prop = args[0][..eq], value = args[0][(eq + 1)..];
        var pool = Open(ctx, args[1]);
        if (pool == null) return 1;
        if (SettableProblem(prop, atCreate: false) is string problem)
        {
            ctx.Err.WriteLine($"cannot set property for '{pool.Name}': {problem}");
            return 1;
        }
        if (CommentProblem(value) is string bad)
        {
            ctx.Err.WriteLine($"cannot set property for '{pool.Name}': {bad}");
            return 1;
        }
        var result = pool.SetComment(value);
        if (!result.IsOk)
        {
            ctx.Err.WriteLine($"cannot set property for '{pool.Name}': {result.Message}");
            return 1;
        }
        Log(ctx, pool, argv);
        return 0;
    }

    // ---- status ----

    private static int Status(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":vxDT:");
        if (g.Error != null) return Usage(ctx, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");
        if (g.Has("T") || g.Has("D"))
        {
            ctx.Err.WriteLine($"zpool status: -{(g.Has("T") ? 'T' : 'D')} is not supported here");
            return 1;
        }
        var pools = SelectPools(ctx, g.Operands);
        if (pools == null) return 1;
        ReportUnavailable(ctx);
        if (pools.Count == 0)
        {
            ctx.Out.WriteLine("no pools available");
            return 0;
        }
        bool onlyUnhealthy = g.Has("x");
        bool first = true;
        foreach (var pool in pools)
        {
            if (onlyUnhealthy && Problem(pool) == StatusProblem.None) continue;
            if (!first) ctx.Out.WriteLine();
            first = false;
            ctx.Out.Write(FormatStatus(ctx, pool, g.Has("v")));
        }
        if (onlyUnhealthy && first) ctx.Out.WriteLine(g.Operands.Count == 0 ? "all pools are healthy" : $"pool '{g.Operands[0]}' is healthy");
        return 0;
    }

    private enum StatusProblem { None, MissingDevice, CorruptData, FailingDevice, OfflineDevice }

    /// <summary>zpool_get_status's answer, in its order of precedence.</summary>
    private static StatusProblem Problem(Pool pool)
    {
        bool missing = false, offline = false, failing = false;
        foreach (var top in pool.Vdevs)
            foreach (var leaf in top.Leaves)
            {
                missing |= leaf.State == LeafState.Unavail;
                offline |= leaf.State == LeafState.Offline;
                failing |= leaf.ReadErrors + leaf.WriteErrors + leaf.ChecksumErrors > 0;
            }
        if (missing) return StatusProblem.MissingDevice;
        if (pool.DataErrors > 0) return StatusProblem.CorruptData;
        if (failing) return StatusProblem.FailingDevice;
        if (offline) return StatusProblem.OfflineDevice;
        return StatusProblem.None;
    }

    private static string FormatStatus(CommandContext ctx, Pool pool, bool verbose)
    {
        var sb = new StringBuilder();
        sb.Append("  pool: ").Append(pool.Name).Append('\n');
        sb.Append(" state: ").Append(pool.Health).Append('\n');
        switch (Problem(pool))
        {
            case StatusProblem.MissingDevice:
                sb.Append("status: One or more devices could not be opened.  Sufficient replicas exist for\n\tthe pool to continue functioning in a degraded state.\n");
                sb.Append("action: Attach the missing device and online it using 'zpool online'.\n");
                sb.Append("   see: http://illumos.org/msg/ZFS-8000-2Q\n");
                break;
            case StatusProblem.CorruptData:
                sb.Append("status: One or more devices has experienced an error resulting in data\n\tcorruption.  Applications may be affected.\n");
                sb.Append("action: Restore the file in question if possible.  Otherwise restore the\n\tentire pool from backup.\n");
                sb.Append("   see: http://illumos.org/msg/ZFS-8000-8A\n");
                break;
            case StatusProblem.FailingDevice:
                sb.Append("status: One or more devices has experienced an unrecoverable error.  An\n\tattempt was made to correct the error.  Applications are unaffected.\n");
                sb.Append("action: Determine if the device needs to be replaced, and clear the errors\n\tusing 'zpool clear' or replace the device with 'zpool replace'.\n");
                sb.Append("   see: http://illumos.org/msg/ZFS-8000-9P\n");
                break;
            case StatusProblem.OfflineDevice:
                sb.Append("status: One or more devices has been taken offline by the administrator.\n\tSufficient replicas exist for the pool to continue functioning in a\n\tdegraded state.\n");
                sb.Append("action: Online the device using 'zpool online' or replace the device with\n\t'zpool replace'.\n");
                break;
        }
        sb.Append("  scan: ").Append(ScanLine(pool.LastScan)).Append('\n');
        sb.Append("config:\n\n");
        AppendConfig(ctx, sb, pool.Name, pool.Health, pool.Vdevs, withCounters: true);
        sb.Append('\n');
        if (pool.DataErrors == 0) sb.Append("errors: No known data errors\n");
        else if (!verbose) sb.Append($"errors: {pool.DataErrors} data errors, use '-v' for a list\n");
        else
        {
            sb.Append("errors: Permanent errors have been detected in the following files:\n\n");
            foreach (long id in pool.Objects.DamagedObjects) sb.Append($"        <metadata>:<0x{id:x}>\n");
        }
        return sb.ToString();
    }

    /// <summary>print_scan_status's line for a finished scan.</summary>
    private static string ScanLine(ScanRecord? scan)
    {
        if (scan == null) return "none requested";
        long seconds = Math.Max(0, (scan.End - scan.Start) / Time.Second);
        string took = $"{seconds / 86400} days {seconds / 3600 % 24:00}:{seconds / 60 % 60:00}:{seconds % 60:00}";
        string what = scan.Kind == ScanKind.Scrub ? $"scrub repaired {Nicenum(scan.Bytes)}" : $"resilvered {Nicenum(scan.Bytes)}";
        return $"{what} in {took} with {scan.Errors} errors on {Ctime(scan.End)}";
    }

    /// <summary>The config: table of status (with counters) or import (without).</summary>
    private static void AppendConfig(CommandContext ctx, StringBuilder sb, string poolName, string health, IReadOnlyList<TopVdev> tops, bool withCounters)
    {
        var rows = new List<(int Depth, string Name, string State, LeafVdev? Leaf)> { (0, poolName, health, null) };
        foreach (var top in tops)
        {
            if (top.Kind == VdevKind.Disk)
            {
                var leaf = top.Leaves[0];
                rows.Add((2, Display(ctx, leaf.Path), LeafStateName(leaf), leaf));
                continue;
            }
            rows.Add((2, top.Name, top.Health, null));
            foreach (var leaf in top.Leaves) rows.Add((4, Display(ctx, leaf.Path), LeafStateName(leaf), leaf));
        }
        AppendRows(sb, rows.Select(r => (r.Depth, r.Name, r.State, r.Leaf, r.Leaf?.State == LeafState.Unavail ? "cannot open" : "")).ToList(), withCounters);
    }

    private static void AppendRows(StringBuilder sb, List<(int Depth, string Name, string State, LeafVdev? Leaf, string Note)> rows, bool withCounters)
    {
        int width = 10;
        foreach (var r in rows) width = Math.Max(width, r.Depth + r.Name.Length);
        if (withCounters) sb.Append('\t').Append("NAME".PadRight(width)).Append("  ").Append("STATE".PadRight(8)).Append("  READ WRITE CKSUM\n");
        foreach (var (depth, name, state, leaf, note) in rows)
        {
            sb.Append('\t').Append(' ', depth).Append(name.PadRight(width - depth)).Append("  ");
            if (withCounters)
            {
                sb.Append(state.PadRight(8));
                sb.Append(' ').Append(Nicenum(leaf?.ReadErrors ?? 0).PadLeft(5));
                sb.Append(' ').Append(Nicenum(leaf?.WriteErrors ?? 0).PadLeft(5));
                sb.Append(' ').Append(Nicenum(leaf?.ChecksumErrors ?? 0).PadLeft(5));
                if (note.Length > 0) sb.Append("  ").Append(note);
            }
            else
            {
                sb.Append(note.Length > 0 ? state + "  " + note : state);
            }
            sb.Append('\n');
        }
    }

    private static string LeafStateName(LeafVdev leaf) => leaf.State switch
    {
        LeafState.Offline => "OFFLINE",
        LeafState.Unavail => "UNAVAIL",
        _ => "ONLINE",
    };

    // ---- scrub / clear ----

    private static int Scrub(CommandContext ctx, string[] args, string[] argv)
    {
        var g = Getopt.Parse(args, ":s");
        if (g.Error != null) return Usage(ctx, $"invalid option '{g.ErrorOption}'");
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool name argument");
        var pools = SelectPools(ctx, g.Operands);
        if (pools == null) return 1;
        foreach (var pool in pools)
        {
            if (g.Has("s"))
            {
                ctx.Err.WriteLine($"cannot cancel scrubbing {pool.Name}: there is no active scrub");
                return 1;
            }
        }
        foreach (var pool in pools)
        {
            LogInternal(ctx, pool, "scan setup", "func=1");
            var result = pool.Scrub();
            LogInternal(ctx, pool, "scan done", $"complete={(result.Errors == 0 ? 1 : 0)}");
            Log(ctx, pool, argv);
        }
        return 0;
    }

    private static int Clear(CommandContext ctx, string[] args, string[] argv)
    {
        if (args.Length == 0) return Usage(ctx, "missing pool name");
        if (args.Length > 2) return Usage(ctx, "too many arguments");
        var pool = Open(ctx, args[0]);
        if (pool == null) return 1;
        if (args.Length == 2 && pool.FindLeaf(Resolve(ctx, args[1]), out _) == null && pool.FindLeaf(args[1], out _) == null)
        {
            ctx.Err.WriteLine($"cannot clear errors for {args[1]}: no such device in pool");
            return 1;
        }
        pool.ClearErrors(args.Length == 2 ? (pool.FindLeaf(Resolve(ctx, args[1]), out _) ?? pool.FindLeaf(args[1], out _)) : null);
        Log(ctx, pool, argv);
        return 0;
    }

    // ---- import / export ----

    private static int Import(CommandContext ctx, string[] args, string[] argv)
    {
        var g = Getopt.Parse(args, ":d:NfaDo:R:c:");
        if (g.Error != null) return Usage(ctx, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");
        foreach (string opt in new[] { "D", "o", "R", "c" })
            if (g.Has(opt))
            {
                ctx.Err.WriteLine($"cannot import: option '-{opt}' is not supported here");
                return 1;
            }
        var dirs = g.Values("d").Select(d => Resolve(ctx, d)).ToList();
        if (dirs.Count == 0) dirs.Add(Path.GetFullPath(BaseDir(ctx)));
        var candidates = new List<(ImportCandidate Candidate, string Dir)>();
        foreach (string dir in dirs)
        {
            if (!Directory.Exists(dir))
            {
                ctx.Err.WriteLine($"cannot open '{dir}': must be a directory");
                return 1;
            }
            foreach (var c in Storage.Pool.Import(dir).Pools)
                if (Pools(ctx).Find(c.Name) is not { } imported || imported.Guid != c.Guid) candidates.Add((c, dir));
        }
        if (g.Operands.Count == 0 && !g.Has("a"))
        {
            if (candidates.Count == 0)
            {
                ctx.Err.WriteLine("no pools available to import");
                return 1;
            }
            bool first = true;
            foreach (var (c, dir) in candidates)
            {
                if (!first) ctx.Out.WriteLine();
                first = false;
                ctx.Out.Write(FormatCandidate(ctx, c, dir));
            }
            return 0;
        }
        if (g.Operands.Count > 2) return Usage(ctx, "too many arguments");
        if (g.Operands.Count == 2)
        {
            ctx.Err.WriteLine($"cannot import '{g.Operands[0]}': renaming a pool on import is not supported here");
            return 1;
        }
        var chosen = new List<(ImportCandidate Candidate, string Dir)>();
        if (g.Has("a")) chosen.AddRange(candidates);
        else
        {
            string wanted = g.Operands[0];
            var matches = candidates.Where(c => c.Candidate.Name == wanted || c.Candidate.Guid.ToString(CultureInfo.InvariantCulture) == wanted).ToList();
            if (matches.Count == 0)
            {
                if (Pools(ctx).Find(wanted) != null)
                    ctx.Err.WriteLine($"cannot import '{wanted}': a pool with that name is already created/imported,\nand no additional pools with that name were found");
                else
                    ctx.Err.WriteLine($"cannot import '{wanted}': no such pool available");
                return 1;
            }
            if (matches.Count > 1)
            {
                ctx.Err.WriteLine($"cannot import '{wanted}': more than one matching pool");
                ctx.Err.WriteLine("import by numeric ID instead");
                return 1;
            }
            chosen.Add(matches[0]);
        }
        int code = 0;
        foreach (var (c, dir) in chosen)
        {
            if (Pools(ctx).Find(c.Name) != null)
            {
                ctx.Err.WriteLine($"cannot import '{c.Name}': a pool with that name already exists");
                ctx.Err.WriteLine("use the form 'zpool import <pool | id> <newpool>' to give it a new name");
                code = 1;
                continue;
            }
            if (c.State == "UNAVAIL")
            {
                ctx.Err.WriteLine($"cannot import '{c.Name}': one or more devices is currently unavailable");
                code = 1;
                continue;
            }
            if (!c.Config.Exported && !g.Has("f"))
            {
                ctx.Err.WriteLine($"cannot import '{c.Name}': pool may be in use from other system");
                ctx.Err.WriteLine("use '-f' to import anyway");
                code = 1;
                continue;
            }
            var result = Storage.Pool.Open(dir, c.Name, Pools(ctx).Options, out var pool);
            if (!result.IsOk)
            {
                ctx.Err.WriteLine(result.Message);
                code = 1;
                continue;
            }
            Pools(ctx).Add(pool!, dir);
            if (g.Has("N"))   // import without mounting: the mount table mounted them on Add
                foreach (var mount in ctx.Host.Mounts.List.Where(m => m.Pool == pool).Reverse().ToList())
                    ctx.Host.Mounts.Unmount(mount.Dataset, force: true);
            LogInternal(ctx, pool!, "open", $"pool version 5000; software version SmartOS in C#; host {ctx.Host.Name}");
            Log(ctx, pool!, argv);
        }
        return code;
    }

    private static string FormatCandidate(CommandContext ctx, ImportCandidate c, string dir)
    {
        var sb = new StringBuilder();
        sb.Append("   pool: ").Append(c.Name).Append('\n');
        sb.Append("     id: ").Append(c.Guid.ToString(CultureInfo.InvariantCulture)).Append('\n');
        sb.Append("  state: ").Append(c.State).Append('\n');
        if (c.State == "ONLINE" && !c.Config.Exported)
        {
            sb.Append(" status: The pool was last accessed by another system.\n");
            sb.Append(" action: The pool can be imported using its name or numeric identifier and\n\tthe '-f' flag.\n");
            sb.Append("   see: http://illumos.org/msg/ZFS-8000-EY\n");
        }
        else if (c.State == "ONLINE")
        {
            sb.Append(" action: The pool can be imported using its name or numeric identifier.\n");
        }
        else if (c.State == "DEGRADED")
        {
            sb.Append(c.Missing.Count > 0 ? " status: One or more devices are missing from the system.\n" : " status: One or more devices are offlined.\n");
            sb.Append(" action: The pool can be imported despite missing or damaged devices.  The\n\tfault tolerance of the pool may be compromised if imported.\n");
            if (c.Missing.Count > 0) sb.Append("   see: http://illumos.org/msg/ZFS-8000-2Q\n");
        }
        else
        {
            sb.Append(" status: One or more devices are missing from the system.\n");
            sb.Append(" action: The pool cannot be imported. Attach the missing\n\tdevices and try again.\n");
            sb.Append("   see: http://illumos.org/msg/ZFS-8000-3C\n");
        }
        sb.Append(" config:\n\n");
        var rows = new List<(int, string, string, LeafVdev?, string)> { (0, c.Name, c.State, null, "") };
        foreach (var top in c.Config.Tops)
        {
            string LeafState(LeafConfig leaf) => !c.Paths.ContainsKey(leaf.Guid) ? "UNAVAIL" : leaf.Offline ? "OFFLINE" : "ONLINE";
            string LeafName(LeafConfig leaf) => Display(ctx, c.Paths.TryGetValue(leaf.Guid, out var p) ? p : Path.Combine(dir, leaf.FileName));
            string Note(LeafConfig leaf) => c.Paths.ContainsKey(leaf.Guid) ? "" : "cannot open";
            if (top.Kind == VdevKind.Disk)
            {
                rows.Add((2, LeafName(top.Leaves[0]), LeafState(top.Leaves[0]), null, Note(top.Leaves[0])));
                continue;
            }
            int down = top.Leaves.Count(l => LeafState(l) != "ONLINE");
            bool usable = top.Kind == VdevKind.Mirror ? down < top.Leaves.Count : down <= 1;
            int index = c.Config.Tops.ToList().IndexOf(top);
            rows.Add((2, (top.Kind == VdevKind.Mirror ? "mirror-" : "raidz1-") + index, down == 0 ? "ONLINE" : usable ? "DEGRADED" : "UNAVAIL", null, ""));
            foreach (var leaf in top.Leaves) rows.Add((4, LeafName(leaf), LeafState(leaf), null, Note(leaf)));
        }
        AppendRows(sb, rows, withCounters: false);
        return sb.ToString();
    }

    private static int Export(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":f");
        if (g.Error != null) return Usage(ctx, $"invalid option '{g.ErrorOption}'");
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool argument");
        var operands = g.Operands.Where(name => !ForgetUnavailable(ctx, name)).ToList();
        var pools = SelectPools(ctx, operands);
        if (pools == null) return 1;
        int code = 0;
        foreach (var pool in pools)
        {
            Log(ctx, pool, ["export", .. args]);
            Pools(ctx).Remove(pool.Name);
            ctx.Host.Mounts.Release(pool);
            var result = pool.Export();
            if (!result.IsOk)
            {
                ctx.Err.WriteLine($"cannot export '{pool.Name}': {result.Message}");
                code = 1;
            }
        }
        return code;
    }

    // ---- iostat / history ----

    /// <summary>
    /// print_iostat: the first report averages each pool's I/O per second since it was opened; with an
    /// interval, every later one the rates over the last interval (seconds of the host's clock), count
    /// times or until ^C.
    /// </summary>
    private static async Task<int> IostatAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":vT:");
        if (g.Error != null) return Usage(ctx, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");
        if (g.Has("T"))
        {
            ctx.Err.WriteLine("zpool iostat: -T is not supported here");
            return 1;
        }
        var (interval, count) = IostatInterval(args);
        var names = g.Operands.ToList();
        if (interval > 0) names.RemoveAt(names.Count - 1);
        if (count > 0) names.RemoveAt(names.Count - 1);
        var pools = SelectPools(ctx, names);
        if (pools == null) return 1;
        if (pools.Count == 0)
        {
            ctx.Out.WriteLine("no pools available");
            return 0;
        }
        var previous = new Dictionary<object, long[]>();
        long last = 0;
        for (long report = 1; ; report++)
        {
            ctx.Out.Write(IostatReport(ctx, pools, g.Has("v"), previous, Now(ctx) - last));
            last = Now(ctx);
            if (interval == 0 || (count > 0 && report >= count)) return 0;
            try { await LoopSynchronizationContext.Delay(ctx.Host.Scheduler, interval * Time.Second, ctx.Cancel); }
            catch (OperationCanceledException) { return 0; }
        }
    }

    /// <summary>One report; previous holds each row's counters from the last one (empty: since the pool was opened).</summary>
    private static string IostatReport(CommandContext ctx, List<Pool> pools, bool verbose, Dictionary<object, long[]> previous, long sinceLast)
    {
        var rows = new List<(int Depth, string Name, string Alloc, string Free, long[] Rates, bool Rule)>();
        long[] Rates(object key, IEnumerable<LeafVdev> leaves, long openedAt)
        {
            long[] now = [0, 0, 0, 0];
            foreach (var l in leaves) { now[0] += l.ReadOps; now[1] += l.WriteOps; now[2] += l.ReadBytes; now[3] += l.WriteBytes; }
            bool first = !previous.TryGetValue(key, out var before);
            long seconds = Math.Max(1, (first ? Now(ctx) - openedAt : sinceLast) / Time.Second);
            previous[key] = now;
            return [.. now.Select((n, i) => (n - (before?[i] ?? 0)) / seconds)];
        }
        foreach (var pool in pools)
        {
            var leaves = pool.Vdevs.SelectMany(t => t.Leaves).ToList();
            rows.Add((0, pool.Name, Nicenum(pool.Allocated), Nicenum(pool.Size - pool.Allocated), Rates(pool, leaves, pool.OpenedAt), false));
            if (!verbose) continue;
            foreach (var top in pool.Vdevs)
            {
                string name = top.Kind == VdevKind.Disk ? Display(ctx, top.Leaves[0].Path) : top.Name;
                rows.Add((2, name, Nicenum(top.Space.Allocated), Nicenum(top.Space.Capacity - top.Space.Allocated), Rates(top, top.Leaves, pool.OpenedAt), false));
                if (top.Kind == VdevKind.Disk) continue;
                foreach (var leaf in top.Leaves)
                    rows.Add((4, Display(ctx, leaf.Path), "-", "-", Rates(leaf, [leaf], pool.OpenedAt), false));
            }
            rows.Add((0, "", "", "", [], true));
        }
        int width = 10;
        foreach (var r in rows) width = Math.Max(width, r.Depth + r.Name.Length);
        string rule = new string('-', width) + "  -----  -----  -----  -----  -----  -----";
        var sb = new StringBuilder();
        sb.Append(' ', width).Append("     capacity     operations    bandwidth\n");
        sb.Append("pool".PadRight(width)).Append("  alloc   free   read  write   read  write\n");
        sb.Append(rule).Append('\n');
        foreach (var r in rows)
        {
            if (r.Rule) { sb.Append(rule).Append('\n'); continue; }
            sb.Append(' ', r.Depth).Append(r.Name.PadRight(width - r.Depth));
            foreach (string cell in new[] { r.Alloc, r.Free, Nicenum(r.Rates[0]), Nicenum(r.Rates[1]), Nicenum(r.Rates[2]), Nicenum(r.Rates[3]) })
                sb.Append("  ").Append(cell.PadLeft(5));
            sb.Append('\n');
        }
        return sb.ToString();
    }

    private static int History(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":il");
        if (g.Error != null) return Usage(ctx, $"invalid option '{g.ErrorOption}'");
        var pools = SelectPools(ctx, g.Operands);
        if (pools == null) return 1;
        if (pools.Count == 0)
        {
            ctx.Out.WriteLine("no pools available");
            return 0;
        }
        var sb = new StringBuilder();
        foreach (var pool in pools)
        {
            var result = pool.ReadHistory(out var entries);
            if (!result.IsOk)
            {
                ctx.Err.WriteLine($"cannot get history for '{pool.Name}': {result.Message}");
                return 1;
            }
            sb.Append("History for '").Append(pool.Name).Append("':\n");
            foreach (var e in entries)
            {
                string when = Date(e.Time).ToString("yyyy-MM-dd.HH:mm:ss", CultureInfo.InvariantCulture);
                if (e.Internal)
                {
                    if (!g.Has("i")) continue;
                    string[] parts = e.Text.Split('\t');
                    if (parts.Length != 3) continue;
                    sb.Append(when).Append(" [internal ").Append(parts[0]).Append(" txg:").Append(parts[1]).Append("] ").Append(parts[2]);
                }
                else
                {
                    sb.Append(when).Append(' ').Append(e.Text);
                }
                if (g.Has("l")) sb.Append(" [user 0 (root) on ").Append(ctx.Host.Name).Append(":global]");
                sb.Append('\n');
            }
            sb.Append('\n');
        }
        ctx.Out.Write(sb.ToString());
        return 0;
    }

    // ---- online / offline / attach / detach / replace ----

    /// <summary>A device operand: the leaf's path (resolved as create resolves it) or its name or guid.</summary>
    private static string Device(CommandContext ctx, Pool pool, string operand)
        => pool.FindLeaf(Resolve(ctx, operand), out _) is { } leaf ? leaf.Path : operand;

    /// <summary>An engine refusal, with the device named as the user typed it.</summary>
    private static int Refused(CommandContext ctx, StorageResult result, string device, string operand)
    {
        ctx.Err.WriteLine(result.Message.Replace(device, operand, StringComparison.Ordinal));
        return 1;
    }

    private static int Online(CommandContext ctx, string[] args, string[] argv)
    {
        var g = Getopt.Parse(args, ":e");
        if (g.Error != null) return Usage(ctx, $"invalid option '{g.ErrorOption}'");
        if (g.Has("e"))
        {
            ctx.Err.WriteLine("cannot expand: -e is not supported here: vdevs do not grow");
            return 1;
        }
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool name");
        if (g.Operands.Count == 1) return Usage(ctx, "missing device name");
        var pool = Open(ctx, g.Operands[0]);
        if (pool == null) return 1;
        foreach (string operand in g.Operands.Skip(1))
        {
            if (pool.FindLeaf(Device(ctx, pool, operand), out _) == null)
            {
                ctx.Err.WriteLine($"cannot online {operand}: no such device in pool");
                return 1;
            }
        }
        foreach (string operand in g.Operands.Skip(1))
        {
            string device = Device(ctx, pool, operand);
            var leaf = pool.FindLeaf(device, out _)!;
            bool was = leaf.State == LeafState.Online;
            var result = pool.Online(device, FileVdevIo.Opener);
            if (!result.IsOk) return Refused(ctx, result, device, operand);
            if (!was) LogInternal(ctx, pool, "vdev online", $"{leaf.Path} (guid {leaf.Guid})");
        }
        Log(ctx, pool, argv);
        return 0;
    }

    private static int Offline(CommandContext ctx, string[] args, string[] argv)
    {
        var g = Getopt.Parse(args, ":t");
        if (g.Error != null) return Usage(ctx, $"invalid option '{g.ErrorOption}'");
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool name");
        if (g.Operands.Count == 1) return Usage(ctx, "missing device name");
        var pool = Open(ctx, g.Operands[0]);
        if (pool == null) return 1;
        foreach (string operand in g.Operands.Skip(1))
        {
            if (pool.FindLeaf(Device(ctx, pool, operand), out _) == null)
            {
                ctx.Err.WriteLine($"cannot offline {operand}: no such device in pool");
                return 1;
            }
        }
        foreach (string operand in g.Operands.Skip(1))
        {
            string device = Device(ctx, pool, operand);
            var result = pool.Offline(device, g.Has("t"));
            if (!result.IsOk) return Refused(ctx, result, device, operand);
        }
        Log(ctx, pool, argv);
        return 0;
    }

    private static int AttachOrReplace(CommandContext ctx, string[] args, string[] argv, bool replace)
    {
        var g = Getopt.Parse(args, ":fo:");
        if (g.Error != null) return Usage(ctx, g.ErrorMissingValue ? $"missing argument for '{g.ErrorOption}' option" : $"invalid option '{g.ErrorOption}'");
        if (g.Has("o"))
        {
            ctx.Err.WriteLine("cannot attach: -o is not supported here");
            return 1;
        }
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool name argument");
        if (g.Operands.Count == 1) return Usage(ctx, replace ? "missing source device" : "missing <device> specification");
        if (g.Operands.Count == 2)
        {
            if (!replace) return Usage(ctx, "missing <new_device> specification");
            ctx.Err.WriteLine($"cannot replace {g.Operands[1]} with {g.Operands[1]}: replacing a device with itself is not supported here; name a new file");
            return 1;
        }
        if (g.Operands.Count > 3) return Usage(ctx, "too many arguments");
        var pool = Open(ctx, g.Operands[0]);
        if (pool == null) return 1;
        string oldOperand = g.Operands[1], newOperand = g.Operands[2];
        string device = Device(ctx, pool, oldOperand);
        string newPath = Resolve(ctx, newOperand);
        string what = replace ? $"cannot replace {oldOperand} with {newOperand}" : $"cannot attach {newOperand} to {oldOperand}";
        if (pool.FindLeaf(device, out _) == null)
        {
            ctx.Err.WriteLine($"{what}: no such device in pool");
            return 1;
        }
        if (!CheckNewFiles(ctx, [newPath], g.Has("f"))) return 1;
        if (Path.GetDirectoryName(newPath) != Pools(ctx).DirectoryOf(pool))
        {
            ctx.Err.WriteLine($"{what}: the files of a pool must be in one directory");
            return 1;
        }
        if (g.Has("f")) TakeOver([newPath]);
        ulong guid = Pools(ctx).Options.Random!.NextUInt64();
        var result = replace ? pool.Replace(device, newPath, guid, FileVdevIo.Opener) : pool.Attach(device, newPath, guid, FileVdevIo.Opener);
        if (!result.IsOk)
        {
            ctx.Err.WriteLine(result.Message.Replace(result.Detail, what, StringComparison.Ordinal));
            return 1;
        }
        LogInternal(ctx, pool, replace ? "vdev replace" : "vdev attach", $"{newPath} (guid {guid})");
        Log(ctx, pool, argv);
        return 0;
    }

    private static int Detach(CommandContext ctx, string[] args, string[] argv)
    {
        var g = Getopt.Parse(args, ":");
        if (g.Error != null) return Usage(ctx, $"invalid option '{g.ErrorOption}'");
        if (g.Operands.Count == 0) return Usage(ctx, "missing pool name");
        if (g.Operands.Count == 1) return Usage(ctx, "missing device name");
        if (g.Operands.Count > 2) return Usage(ctx, "too many arguments");
        var pool = Open(ctx, g.Operands[0]);
        if (pool == null) return 1;
        string operand = g.Operands[1];
        string device = Device(ctx, pool, operand);
        if (pool.FindLeaf(device, out _) == null)
        {
            ctx.Err.WriteLine($"cannot detach {operand}: no such device in pool");
            return 1;
        }
        var result = pool.Detach(device);
        if (!result.IsOk) return Refused(ctx, result, device, operand);
        LogInternal(ctx, pool, "vdev detach", device);
        Log(ctx, pool, argv);
        return 0;
    }
}
