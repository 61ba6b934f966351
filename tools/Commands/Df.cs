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
    { Options = "hkF:", ZoneRefusal = FileTree.ZoneRefusal("df") };

    public static readonly CommandDescriptor DuDescriptor = new("du", "summarize disk usage", RunDu)
    { Options = "ahks", ZoneRefusal = FileTree.ZoneRefusal("du") };

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static Task<int> RunDf(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":" + DfDescriptor.Options);
        if (g.Error != null)
        {
            ctx.Err.WriteLine(g.ErrorMissingValue ? $"df: option requires an argument -- {g.ErrorOption}" : $"df: illegal option -- {g.ErrorOption}");
            ctx.Err.WriteLine("Usage: df [-F FSType] [-h | -k] [file | directory | special ...]");
            return Task.FromResult(1);
        }
        if (g.Value("F") is string type && type != "zfs")
        {
            ctx.Err.WriteLine($"df: operation not applicable for FSType {type}");
            return Task.FromResult(1);
        }
        var tree = new FileTree(ctx, "df");
        var mounts = new List<Mount>();
        int code = 0;
        if (g.Operands.Count == 0) mounts.AddRange(tree.Mounts.List);
        foreach (string operand in g.Operands)
        {
            var status = tree.Stat(operand, true, out _, out var mount, out _);
            if (status == StorageStatus.Ok) mounts.Add(mount);
            else
            {
                ctx.Err.WriteLine($"df: cannot statvfs {operand}: {FileTree.Strerror(status)}");
                code = 1;
            }
        }
        var sb = new StringBuilder();
        if (g.Has("h")) sb.Append("Filesystem             size   used  avail capacity  Mounted on\n");
        else if (g.Has("k")) sb.Append("Filesystem            kbytes    used   avail capacity  Mounted on\n");
        foreach (var m in mounts)
        {
            long used = Number(m, "referenced"), avail = Number(m, "available");
            long size = used + avail;
            long capacity = size == 0 ? 0 : (used * 100 + size / 2) / size;
            string cap = (N(capacity) + "%").PadLeft(6);
            if (g.Has("h"))
                sb.Append($"{m.Dataset,-20} {Zpool.Nicenum(size),6} {Zpool.Nicenum(used),6} {Zpool.Nicenum(avail),6} {cap}    {m.MountPoint}\n");
            else if (g.Has("k"))
                sb.Append($"{m.Dataset,-18} {N(size / 1024),9} {N(used / 1024),7} {N(avail / 1024),7} {cap}    {m.MountPoint}\n");
            else
                sb.Append($"{m.MountPoint,-19}({m.Dataset,-16}):{N(avail / 512),8} blocks {N(m.FileSystem.StatFs().FreeFiles),8} files\n");
        }
        ctx.Out.Write(sb.ToString());
        return Task.FromResult(tree.Finish(code));
    }

    private static long Number(Mount m, string property)
        => m.Pool.Datasets.Get(m.Dataset, property, out var value).IsOk ? value.Number ?? 0 : 0;

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
        var tree = new FileTree(ctx, "du");
        var sb = new StringBuilder();
        int code = 0;
        string Units(long bytes) => g.Has("h") ? Zpool.Nicenum(bytes) : g.Has("k") ? N((bytes + 1023) / 1024) : N((bytes + 511) / 512);
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
