using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// df and du (illumos's usr/src/cmd/fs.d/df.c and du): space of the mounted file systems and of trees
/// of files. df's figures are ZFS's: size is the dataset's referenced bytes plus what it has available,
/// used its referenced bytes, so a dataset's quota shows as its size; du's are the blocks files take in
/// the pool (st_blocks), a file with several names counted once.
/// </summary>
public static class Df
{
    public static readonly CommandDescriptor DfDescriptor = new("df", "displays number of free disk blocks and files", RunDf)
    { Options = "hkF:" };

    public static readonly CommandDescriptor DuDescriptor = new("du", "summarize disk usage", RunDu)
    { Options = "ahks" };

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);

    private const string DfUsage = "Usage: df [-F FSType] [-abeghklntVvZ] [-o FSType-specific_options] [directory | block_device | resource]";

    private static Task<int> RunDf(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":" + DfDescriptor.Options);
        if (g.Error != null)
        {
            ctx.Err.WriteLine(g.ErrorMissingValue ? $"df: option requires an argument -- {g.ErrorOption}" : $"df: unknown option: {g.ErrorOption}");
            ctx.Err.WriteLine(DfUsage);
            return Task.FromResult(1);
        }
        if (FileTree.Open(ctx, "df") is not { } tree) return Task.FromResult(1);
        var rows = new List<Row>();
        int code = 0;
        string? type = g.Value("F");
        // -F names the type to report: a mount of another type is skipped quietly, or with a warning when named (prune_list).
        if (g.Operands.Count == 0)
            foreach (var row in Rows(tree.View))
                if (type is null || type == row.Type) rows.Add(row);
        foreach (string operand in g.Operands)
        {
            var status = tree.Stat(operand, true, out _);
            if (status != StorageStatus.Ok || RowOf(tree.View, operand) is not { } row)
            {
                ctx.Err.WriteLine($"df: cannot statvfs {operand}: {FileTree.Strerror(status == StorageStatus.Ok ? StorageStatus.NoSuchObject : status)}");
                code = 1;
            }
            else if (type is not null && type != row.Type)
            {
                ctx.Err.WriteLine($"df: Warning: {operand} mounted as a {row.Type} file system");
                code = 1;
            }
            else rows.Add(row);
        }
        var sb = new StringBuilder();
        if (g.Has("h")) sb.Append($"{"Filesystem",-20} {"size",6} {"used",6} {"avail",6} {"capacity",-9} Mounted on\n");
        else if (g.Has("k")) sb.Append($"{"Filesystem",-20} {"kbytes",7} {"used",7} {"avail",7} {"capacity",-9} Mounted on\n");
        foreach (var (m, name, on, _) in rows)
        {
            long used = Number(m, m.Dataset, "referenced"), avail = Number(m, m.Dataset, "available");
            long size = Total(m, used + avail);
            // k_output: used / (used + avail) * 100 + 0.5, printed with %5.0f.
            double percent = used + avail == 0 ? 0 : (double)used / (used + avail) * 100 + 0.5;
            string capacity = (Math.Round(percent, MidpointRounding.ToEven).ToString(CultureInfo.InvariantCulture) + "%").PadLeft(6);
            if (g.Has("h"))
                sb.Append($"{name,-20} {Scaled(size),6} {Scaled(used),6} {Scaled(avail),6} {capacity,-9} {on}\n");
            else if (g.Has("k"))
                sb.Append($"{name,-20} {N(size / 1024),7} {N(used / 1024),7} {N(avail / 1024),7} {capacity,-9} {on}\n");
            else
                sb.Append($"{on,-19}({name,-18}):{N(avail / 512),8} blocks {N(m.FileSystem.StatFs().FreeFiles),8} files\n");
        }
        ctx.Out.Write(sb.ToString());
        return Task.FromResult(tree.Finish(code));
    }

    /// <summary>One line of df: the mount whose figures it shows, the resource (a dataset, or a lofs
    /// special), where the view sees it mounted, and its type.</summary>
    private readonly record struct Row(Mount Mount, string Name, string On, string Type);

    /// <summary>
    /// The mounts a view sees, in mount order: in the global zone every mount; in a zone its root
    /// dataset at "/" (so its quota is df's size, as in a SmartOS zone), the mounts inside its root, and
    /// its lofs mounts with their special paths (FileView.cs).
    /// </summary>
    private static List<Row> Rows(FileView view)
    {
        var rows = new List<Row>();
        foreach (var m in view.Mounts.List)
            if (view.ViewPathOf(m.MountPoint) is { } on && (view.IsGlobal || on != "/")) rows.Add(new Row(m, m.Dataset, on, "zfs"));
        if (!view.IsGlobal && view.Mounts.Find(view.Dataset!) is { } root) rows.Insert(0, new Row(root, root.Dataset, "/", "zfs"));
        foreach (var lofs in view.Lofs)
            if (view.Mounts.Resolve(lofs.Special, out var under, out _)) rows.Add(new Row(under!, lofs.Special, lofs.Dir, "lofs"));
        return rows;
    }

    /// <summary>The line df shows for a path of the view: the innermost mount (or lofs) holding it.</summary>
    private static Row? RowOf(FileView view, string operand)
    {
        if (view.Walk(FileTree.Absolute(operand), true, out string path) != StorageStatus.Ok) return null;
        Row? best = null;
        foreach (var row in Rows(view))
            if ((row.On == "/" || path == row.On || path.StartsWith(row.On + "/", StringComparison.Ordinal)) && (best is null || row.On.Length > best.Value.On.Length))
                best = row;
        return best;
    }

    private static long Number(Mount m, string dataset, string property)
        => m.Pool.Datasets.Get(dataset, property, out var value).IsOk ? value.Number ?? 0 : 0;

    /// <summary>adjust_total_blocks: the nearest quota up the tree, else the pool's used plus available.</summary>
    private static long Total(Mount m, long fallback)
    {
        for (string name = m.Dataset; ; name = name[..name.LastIndexOf('/')])
        {
            long quota = Number(m, name, "quota");
            if (quota != 0) return quota;
            if (!name.Contains('/')) break;
        }
        string root = m.Pool.Name;
        long total = Number(m, root, "used") + Number(m, root, "available");
        return total == 0 ? fallback : total;
    }

    /// <summary>number_to_scaled_string: kilobytes scaled by 1024 with rounding, one decimal below 10.</summary>
    public static string Scaled(long bytes)
    {
        const string units = "KMGTPE";
        ulong number = (ulong)Math.Max(0, bytes) / 1024, save = 0;
        int unit = 0;
        while (number >= 1024 && unit < units.Length - 1)
        {
            unit++;
            save = number;
            number = (number + 512) / 1024;
        }
        if (save != 0 && save / 1024 < 10)
            return ((float)save / 1024).ToString("0.0", CultureInfo.InvariantCulture).PadLeft(2) + units[unit];
        return number.ToString(CultureInfo.InvariantCulture).PadLeft(4) + units[unit];
    }

    // ---- du ----

    private static Task<int> RunDu(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":" + DuDescriptor.Options);
        if (g.Error != null)
        {
            ctx.Err.WriteLine($"du: illegal option -- {g.ErrorOption}");
            ctx.Err.WriteLine("usage: du [-Hh] [-L] [-a|-s] [-d] [-k] [-o] [-x] [file...]");
            return Task.FromResult(2);
        }
        if (g.Has("a") && g.Has("s"))
        {
            ctx.Err.WriteLine("du: -a and -s are mutually exclusive");
            return Task.FromResult(2);
        }
        if (FileTree.Open(ctx, "du") is not { } tree) return Task.FromResult(1);
        var sb = new StringBuilder();
        int code = 0;
        string Units(long bytes) => g.Has("h") ? Scaled(bytes).TrimStart() : g.Has("k") ? N((bytes + 1023) / 1024) : N((bytes + 511) / 512);
        var operands = g.Operands.Count == 0 ? ["/"] : g.Operands;
        foreach (string operand in operands)
        {
            var seen = new HashSet<(ZplFileSystem, long)>();
            long total = Walk(tree, FileTree.Absolute(operand), operand, top: true, g.Has("a"), g.Has("s"), seen, sb, Units, ref code);
            if (total >= 0 && g.Has("s")) sb.Append(Units(total)).Append('\t').Append(operand).Append('\n');
        }
        ctx.Out.Write(sb.ToString());
        return Task.FromResult(tree.Finish(code));
    }

    /// <summary>Bytes under a path, printing each directory (and file with -a) after its contents; -1 when it failed.</summary>
    private static long Walk(FileTree tree, string path, string shown, bool top, bool all, bool summary,
        HashSet<(ZplFileSystem, long)> seen, StringBuilder sb, Func<long, string> units, ref int code)
    {
        var status = tree.Stat(path, false, out var a, out var mount, out string inner);
        if (status != StorageStatus.Ok)
        {
            tree.Context.Out.Write(sb.ToString());
            sb.Clear();
            tree.Context.Err.WriteLine($"du: cannot access {shown}: {FileTree.Strerror(status)}");
            code = 2;
            return -1;
        }
        var fs = mount.FileSystem;
        long bytes = 0;
        if (seen.Add((fs, a.Inode))) fs.SpaceUsed(a.Inode, out bytes);
        if (a.Type == FileType.Directory)
        {
            var names = new List<DirectoryEntry>();
            fs.ReadDirectory(inner, names);
            foreach (var d in names)
            {
                if (d.Name is "." or "..") continue;
                long child = Walk(tree, FileTree.Join(path, d.Name), shown.TrimEnd('/') + "/" + d.Name, false, all, summary, seen, sb, units, ref code);
                if (child > 0) bytes += child;
            }
            if (!summary) sb.Append(units(bytes)).Append('\t').Append(shown).Append('\n');
        }
        else if (!summary && (all || top)) sb.Append(units(bytes)).Append('\t').Append(shown).Append('\n');
        return bytes;
    }
}
