using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>The subcommands that read and change properties: list, get, set, inherit.</summary>
public static partial class Zfs
{
    /// <summary>Column headers (zfs_prop.c's colnames); each, lower-cased, is also accepted for its property.</summary>
    private static readonly Dictionary<string, string> s_headers = new(StringComparer.Ordinal)
    {
        ["name"] = "NAME", ["type"] = "TYPE", ["creation"] = "CREATION", ["used"] = "USED", ["available"] = "AVAIL",
        ["referenced"] = "REFER", ["compressratio"] = "RATIO", ["mounted"] = "MOUNTED", ["quota"] = "QUOTA", ["reservation"] = "RESERV",
        ["volsize"] = "VOLSIZE", ["volblocksize"] = "VOLBLOCK", ["recordsize"] = "RECSIZE", ["mountpoint"] = "MOUNTPOINT",
        ["checksum"] = "CHECKSUM", ["compression"] = "COMPRESS", ["atime"] = "ATIME", ["readonly"] = "RDONLY", ["zoned"] = "ZONED",
        ["canmount"] = "CANMOUNT", ["origin"] = "ORIGIN", ["usedbysnapshots"] = "USEDSNAP", ["usedbydataset"] = "USEDDS",
        ["usedbychildren"] = "USEDCHILD", ["usedbyrefreservation"] = "USEDREFRESERV", ["refquota"] = "REFQUOTA",
        ["refreservation"] = "REFRESERV", ["refcompressratio"] = "REFRATIO", ["written"] = "WRITTEN",
        ["receive_resume_token"] = "RESUMETOK",
    };

    /// <summary>Number properties (PROP_TYPE_NUMBER): right-justified, at least 5 wide ("20.4M"); creation prints as a date.</summary>
    private static bool IsNumber(string property)
        => property is "used" or "available" or "referenced" or "compressratio" or "refcompressratio" or "written"
           or "volblocksize" || property.StartsWith("usedby", StringComparison.Ordinal)
           || (DatasetTree.Describe(property) is { IsSize: true });

    /// <summary>A property as typed (its name, or its column name in any case), or null for an unknown one.</summary>
    private static string? PropertyNamed(string typed)
    {
        if (s_headers.ContainsKey(typed)) return typed;
        foreach (var (name, header) in s_headers)
            if (string.Equals(header, typed, StringComparison.OrdinalIgnoreCase)) return name;
        return null;
    }

    /// <summary>zprop_width: a column at least as wide as a number, or as the longest of an index property's values.</summary>
    private static int MinWidth(string property)
        => IsNumber(property) ? 5 : DatasetTree.Describe(property)?.Choices is { } choices ? choices.Max(c => c.Length) : 0;

    /// <summary>A property of a dataset as zfs_prop_get prints it: sizes as 1.50K unless parsable, creation as a date.</summary>
    private static (string Value, DatasetProperty Raw) Show(Pool pool, string dataset, string property, bool parsable, MountTable mounts)
    {
        if (property == "name") return (dataset, new DatasetProperty("name", dataset, null, PropertySource.None, ""));
        if (property == "mounted")
        {
            // Not the dataset's but the host's: whether its mount table holds it (Zfs.Mounts.cs).
            if (TypeOf(pool, dataset) != "filesystem") return ("-", default);
            string yes = mounts.Find(dataset) != null ? "yes" : "no";
            return (yes, new DatasetProperty("mounted", yes, null, PropertySource.None, "-"));
        }
        if (!pool.Datasets.Get(dataset, property, out var p).IsOk) return ("-", default);
        if (p.Value is "-" or "none" || p.Number is not long n || parsable) return (p.Value, p);
        if (property == "creation") return (Ctime(n), p);
        return (StorageText.Nicenum(n), p);
    }

    /// <summary>strftime "%a %b %e %k:%M %Y", as zfs prints creation: "Thu Dec  3  2:14 2026".</summary>
    private static string Ctime(long seconds)
    {
        var t = DateTime.UnixEpoch.AddSeconds(seconds);
        var c = CultureInfo.InvariantCulture;
        return t.ToString("ddd MMM ", c) + t.Day.ToString(c).PadLeft(2) + " " + t.Hour.ToString(c).PadLeft(2) + t.ToString(":mm yyyy", c);
    }

    /// <summary>-t's list: filesystem, volume, snapshot (snap), bookmark, all; null after "invalid type".</summary>
    private static DatasetKinds? ParseTypes(CommandContext ctx, string list)
    {
        DatasetKinds kinds = 0;
        foreach (string t in list.Split(','))
        {
            switch (t)
            {
                case "filesystem": kinds |= DatasetKinds.Filesystem; break;
                case "volume": kinds |= DatasetKinds.Volume; break;
                case "snapshot" or "snap": kinds |= DatasetKinds.Snapshot; break;
                case "bookmark": break;   // there are no bookmarks (Dsl.cs, issue 12): the type matches nothing
                case "all": kinds |= DatasetKinds.All; break;
                default:
                    ctx.Err.WriteLine($"invalid type '{t}'");
                    return null;
            }
        }
        return kinds;
    }

    /// <summary>parse_depth: a non-negative integer, else its complaint.</summary>
    private static string? DepthProblem(string value, out int depth)
    {
        if (!int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out depth)) return $"{value} is not an integer";
        return depth < 0 ? "Depth can not be negative." : null;
    }

    private static DatasetKinds KindOf(Pool pool, string name) => TypeOf(pool, name) switch
    {
        "volume" => DatasetKinds.Volume,
        "snapshot" => DatasetKinds.Snapshot,
        _ => DatasetKinds.Filesystem,
    };

    /// <summary>
    /// zfs_for_each: the datasets named (or, with none, every dataset of every pool the zone sees),
    /// with -r/-d those below them of the kinds recursion takes, deduplicated, in zfs_compare's order.
    /// Failed gets 1 when a named dataset does not exist (after its "cannot open").
    /// </summary>
    private static List<(Pool Pool, string Name)> Select(CommandContext ctx, IReadOnlyList<string> operands, int depth,
                                                          DatasetKinds named, DatasetKinds below, out int failed)
    {
        failed = 0;
        var found = new List<(Pool, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(Pool pool, string name)
        {
            if (seen.Add(name)) found.Add((pool, name));
        }
        if (operands.Count == 0)
        {
            foreach (var pool in ctx.Host.Pools.All.OrderBy(p => p.Name, StringComparer.Ordinal))
            {
                pool.Datasets.List(pool.Name, depth, below, out var names);
                foreach (string n in names)
                    if (Sees(ctx, n)) Add(pool, n);
            }
            return found;
        }
        foreach (string operand in operands)
        {
            var pool = Open(ctx, operand);
            if (pool == null) { failed = 1; continue; }
            if (depth != 0 && !operand.Contains('@'))
            {
                pool.Datasets.List(operand, depth, below, out var names);
                foreach (string n in names)
                    if (n != operand || (KindOf(pool, n) & named) != 0) Add(pool, n);
            }
            else if ((KindOf(pool, operand) & named) != 0) Add(pool, operand);
        }
        // zfs_compare: by filesystem name, a dataset before its snapshots, snapshots in the order taken.
        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var pool in found.Select(f => f.Item1).Distinct())
        {
            pool.Datasets.List(null, -1, DatasetKinds.All, out var all);
            for (int i = 0; i < all.Count; i++) rank[all[i]] = i;
        }
        found.Sort((a, b) => a.Item1 == b.Item1 ? rank[a.Item2].CompareTo(rank[b.Item2]) : string.CompareOrdinal(HeadOf(a.Item2), HeadOf(b.Item2)));
        return found;
    }

    // ---- list ----

    private static int List(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":rHpd:o:s:S:t:");
        if (g.Error != null) return OptionError(ctx, argv, g);
        int depth = g.Has("r") ? -1 : 0;
        if (g.Value("d") is string d)
        {
            if (DepthProblem(d, out depth) is string problem) return Usage(ctx, argv, problem);
        }
        string spec = g.Value("o") ?? "name,used,available,referenced,mountpoint";
        bool space = spec == "space";
        if (space) spec = "name,available,used,usedbysnapshots,usedbydataset,usedbyrefreservation,usedbychildren";
        var fields = new List<string>();
        foreach (string f in spec.Split(','))
        {
            if (PropertyNamed(f) is not string name) return Usage(ctx, argv, $"bad property list: invalid property '{f}'");
            fields.Add(name);
        }
        // -s and -S in the order given, each a key after the ones before it.
        var sorts = new List<(string Property, bool Descending)>();
        var args = argv[1..];
        for (int i = 0; i < args.Length - 1 && args[i] != "--"; i++)
        {
            if (args[i] is not ("-s" or "-S")) continue;
            if (PropertyNamed(args[i + 1]) is not string name) return Usage(ctx, argv, $"invalid property '{args[i + 1]}'");
            sorts.Add((name, args[i] == "-S"));
        }
        DatasetKinds named = DatasetKinds.All, below = DatasetKinds.Filesystem | DatasetKinds.Volume;
        if (g.Value("t") is string types)
        {
            if (ParseTypes(ctx, types) is not DatasetKinds kinds) return Usage(ctx, argv);
            named = below = kinds;
            // `zfs list -t snapshot fs` lists fs's snapshots.
            if (kinds == DatasetKinds.Snapshot && g.Operands.Count > 0 && depth == 0) depth = 1;
        }
        else if (space)
        {
            named = below;
        }
        if (g.Operands.Count == 0 && !g.Has("d")) depth = -1;
        bool parsable = g.Has("p");
        var selected = Select(ctx, g.Operands, depth, named, below, out int failed);
        if (sorts.Count > 0) selected = Sorted(selected, sorts, ctx.Host.Mounts);
        var rows = new List<string[]>();
        foreach (var (pool, name) in selected)
            rows.Add([.. fields.Select(f => Show(pool, name, f, parsable, ctx.Host.Mounts).Value)]);
        if (rows.Count == 0)
        {
            if (failed == 0 && !g.Has("H")) ctx.Out.WriteLine("no datasets available");
            return failed;
        }
        var columns = fields.Select(f => new StorageText.Column(s_headers[f], IsNumber(f), MinWidth(f))).ToList();
        StorageText.PrintTable(ctx.Out, columns, rows, g.Has("H"));
        return failed;
    }

    /// <summary>zfs_sort: by each key in turn (numbers as numbers, a value that does not apply last), stable on the name order.</summary>
    private static List<(Pool Pool, string Name)> Sorted(List<(Pool Pool, string Name)> rows, List<(string Property, bool Descending)> sorts, MountTable mounts)
    {
        int Compare((Pool Pool, string Name) a, (Pool Pool, string Name) b)
        {
            foreach (var (property, descending) in sorts)
            {
                var (left, l) = Show(a.Pool, a.Name, property, parsable: true, mounts);
                var (right, r) = Show(b.Pool, b.Name, property, parsable: true, mounts);
                bool lValid = left != "-", rValid = right != "-";
                int c = lValid != rValid ? (lValid ? -1 : 1)
                    : l.Number is long ln && r.Number is long rn ? ln.CompareTo(rn)
                    : string.CompareOrdinal(left, right);
                if (c != 0) return descending ? -c : c;
            }
            return 0;
        }
        return [.. rows.Order(Comparer<(Pool Pool, string Name)>.Create(Compare))];
    }

    // ---- get ----

    private static readonly string[] s_getColumns = ["name", "property", "value", "received", "source"];

    private static int Get(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":rHpd:o:s:t:");
        if (g.Error != null) return OptionError(ctx, argv, g);
        int depth = g.Has("r") ? -1 : 0;
        if (g.Value("d") is string d && DepthProblem(d, out depth) is string problem) return Usage(ctx, argv, problem);
        string[] columns = ["name", "property", "value", "source"];
        if (g.Value("o") is string spec)
        {
            columns = spec == "all" ? s_getColumns : spec.Split(',');
            if (columns.Length > s_getColumns.Length) return Usage(ctx, argv, "too many fields given to -o option");
            foreach (string c in columns)
                if (Array.IndexOf(s_getColumns, c) < 0) return Usage(ctx, argv, $"invalid column name '{c}'");
        }
        var sources = new HashSet<string>(StringComparer.Ordinal);
        if (g.Value("s") is string sourceList)
        {
            foreach (string s in sourceList.Split(','))
            {
                // temporary: a mount option's value; nothing here is set that way, so it matches nothing.
                if (s is not ("local" or "default" or "inherited" or "received" or "none" or "temporary")) return Usage(ctx, argv, $"invalid source '{s}'");
                sources.Add(s);
            }
        }
        DatasetKinds kinds = DatasetKinds.All;
        if (g.Value("t") is string types)
        {
            if (ParseTypes(ctx, types) is not DatasetKinds k) return Usage(ctx, argv);
            kinds = k;
        }
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing property argument");
        bool all = false;
        var props = new List<string>();
        foreach (string p in g.Operands[0].Split(','))
        {
            if (p == "all") { all = true; continue; }
            if (PropertyNamed(p) is not string name) return Usage(ctx, argv, $"bad property list: invalid property '{p}'");
            props.Add(name);
        }
        if (all)
        {
            // zfs get all's order: mounted, which the mount table answers, comes after compressratio.
            props = [.. DatasetTree.PropertyNames];
            props.Insert(props.IndexOf("compressratio") + 1, "mounted");
        }
        var datasets = g.Operands.Skip(1).ToList();
        if (datasets.Count == 0) depth = g.Has("d") ? depth : -1;
        var selected = Select(ctx, datasets, depth, kinds, kinds, out int failed);
        var rows = new List<string[]>();
        int valueWidth = 0;
        foreach (var (pool, name) in selected)
        {
            foreach (string property in props)
            {
                var (value, raw) = Show(pool, name, property, g.Has("p"), ctx.Host.Mounts);
                // `get all` leaves out what does not apply (zfs_prop_get fails); a named property shows "-".
                if (all && value == "-" && raw.Source == PropertySource.None) continue;
                if (sources.Count > 0 && !sources.Contains(SourceWord(raw.Source))) continue;
                valueWidth = Math.Max(valueWidth, MinWidth(property));
                rows.Add([.. columns.Select(c => c switch
                {
                    "name" => name,
                    "property" => property,
                    "value" => value,
                    "received" => "-",
                    _ => raw.SourceText,
                })]);
            }
        }
        if (rows.Count == 0) return failed;
        var table = columns.Select(c => new StorageText.Column(c.ToUpperInvariant(), false, c == "value" ? valueWidth : 0)).ToList();
        StorageText.PrintTable(ctx.Out, table, rows, g.Has("H"));
        return failed;
    }

    /// <summary>A source as `get -s` names it.</summary>
    private static string SourceWord(PropertySource source) => source switch
    {
        PropertySource.Local => "local",
        PropertySource.Default => "default",
        PropertySource.Inherited => "inherited",
        PropertySource.Received => "received",
        _ => "none",
    };

    // ---- set / inherit ----

    private static int Set(CommandContext ctx, string[] argv)
    {
        string[] args = argv[1..];
        if (args.Length > 0 && args[0].StartsWith('-') && args[0].Length > 1)
            return Usage(ctx, argv, $"invalid option '{args[0][1]}'");
        if (args.Length < 1) return Usage(ctx, argv, "missing arguments");
        int count = 0;
        while (count < args.Length && args[count].Contains('=')) count++;
        if (count == 0) return Usage(ctx, argv, "missing property=value argument(s)");
        if (count == args.Length) return Usage(ctx, argv, "missing dataset name(s)");
        var props = new List<(string, string)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string spec in args[..count])
        {
            int eq = spec.IndexOf('=');
            string prop = spec[..eq];
            if (prop.Length == 0) return Usage(ctx, argv, "missing property in property=value argument");
            if (!seen.Add(prop)) return Usage(ctx, argv, $"property '{prop}' specified multiple times");
            props.Add((prop, spec[(eq + 1)..]));
        }
        int code = 0;
        var changed = new List<Pool>();
        foreach (string name in args[count..])
        {
            var pool = Open(ctx, name);
            if (pool == null) { code = 1; continue; }
            if (Denied(ctx, name, "set property for") || props.Exists(p => PropertyDenied(ctx, name, p.Item1, "set property for"))) { code = 1; continue; }
            // Every name and value is checked before the first is set (rule 2); only a space check can refuse later.
            var kind = KindOf(pool, name);
            if (kind != DatasetKinds.Snapshot)
            {
                var valid = DatasetTree.CheckCreateProperties(props.ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal), kind, $"cannot set property for '{name}'");
                if (!valid.IsOk) { code = Refused(ctx, valid); continue; }
            }
            // The changelist (Zfs.Mounts.cs rule 3): a property that applies at mount remounts what it reaches.
            bool remount = props.Any(p => s_mountProperties.Contains(p.Item1));
            var unmounted = remount ? UnmountAffected(ctx, pool, AtOrBelow(name)) : [];
            foreach (var (prop, value) in props)
            {
                var result = pool.Datasets.Set(name, prop, value);
                if (result.IsOk) { if (!changed.Contains(pool)) changed.Add(pool); continue; }
                code = Refused(ctx, result);
                break;
            }
            if (remount) MountAgain(ctx, pool, [.. unmounted, name]);
        }
        foreach (var pool in changed)
            if (Log(ctx, pool, argv) != 0) code = 1;
        return code;
    }

    private static int Inherit(CommandContext ctx, string[] argv)
    {
        var g = Getopt.Parse(argv[1..], ":rS");
        if (g.Error != null) return OptionError(ctx, argv, g);
        if (g.Has("S"))
        {
            ctx.Err.WriteLine("zfs inherit: -S is not supported here: datasets have no received properties");
            return 1;
        }
        if (g.Operands.Count == 0) return Usage(ctx, argv, "missing property argument");
        if (g.Operands.Count == 1) return Usage(ctx, argv, "missing dataset argument");
        string prop = g.Operands[0];
        if (DatasetTree.Describe(prop) is not { } info) return Usage(ctx, argv, $"invalid property '{prop}'");
        if (!info.Settable)
        {
            ctx.Err.WriteLine($"{prop} property is read-only");
            return 1;
        }
        if (!info.Inheritable)
        {
            ctx.Err.WriteLine($"'{prop}' property cannot be inherited");
            if (info.IsSize && prop != "volsize") ctx.Err.WriteLine($"use 'zfs set {prop}=none' to clear");
            return 1;
        }
        int code = 0;
        var changed = new List<Pool>();
        foreach (string name in g.Operands.Skip(1))
        {
            var pool = Open(ctx, name);
            if (pool == null) { code = 1; continue; }
            if (Denied(ctx, name, $"inherit {prop} for") || PropertyDenied(ctx, name, prop, $"inherit {prop} for")) { code = 1; continue; }
            var targets = new List<string> { name };
            if (g.Has("r") && !name.Contains('@'))
            {
                pool.Datasets.List(name, -1, Heads, out var below);
                targets = [.. below];
            }
            bool remount = s_mountProperties.Contains(prop) && !name.Contains('@');
            var unmounted = remount ? UnmountAffected(ctx, pool, AtOrBelow(name)) : [];
            foreach (string target in targets)
            {
                var result = pool.Datasets.Inherit(target, prop);
                if (result.IsOk) { if (!changed.Contains(pool)) changed.Add(pool); continue; }
                code = Refused(ctx, result);
                break;
            }
            if (remount) MountAgain(ctx, pool, [.. unmounted, .. targets]);
        }
        foreach (var pool in changed)
            if (Log(ctx, pool, argv) != 0) code = 1;
        return code;
    }
}
