using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Storage;
using FileAttributes = SmartOS.Storage.FileAttributes;

namespace SmartOS.Cli.Commands;

/// <summary>
/// ls(1) over the host's mounted file systems (Files.cs), with illumos's usr/src/cmd/ls output: one
/// entry a line (its output is never a terminal, so -C columns never apply), files operands first, then
/// each directory under a "name:" header when there is more than one operand or -R; the -l line as
/// pentry prints it ("%10llu " inode, "%4lld " blocks, type, mode, ACL mark, "%3lu " links, "%-8s "
/// owner and group, "%7llu" size, " %b %e %H:%M " or " %b %e  %Y " date, name).
/// </summary>
/// <remarks>
/// Options: -1 -a -A -d -F -h -i -l -n -p -r -R -s -t; others are refused as illegal. The date is the
/// year form for a time more than six months before the host's clock or after it. Blocks (-s, total)
/// are 512-byte units of the space the file takes in the pool. Exit status 2 when an operand failed.
/// </remarks>
public static class Ls
{
    public static readonly CommandDescriptor Descriptor = new("ls", "list contents of directory", RunAsync)
    {
        Options = "1aAdFhilnprRst",
    };

    private const long SixMonths = 365L / 2 * 24 * 60 * 60;

    private sealed record Options(bool All, bool AlmostAll, bool Dir, bool Classify, bool Human, bool Inode, bool Long,
        bool Numeric, bool Slash, bool Reverse, bool Recursive, bool Blocks, bool ByTime);

    private sealed record Entry(string Name, string Path, FileAttributes Attributes, long Blocks, string? Target);

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":" + Descriptor.Options);
        if (g.Error != null)
        {
            ctx.Err.WriteLine(g.ErrorMissingValue ? $"ls: option requires an argument -- {g.ErrorOption}" : $"ls: illegal option -- {g.ErrorOption}");
            ctx.Err.WriteLine("usage: ls -1aAdFhilnprRst [files]");
            return Task.FromResult(2);
        }
        var o = new Options(g.Has("a"), g.Has("A"), g.Has("d"), g.Has("F"), g.Has("h"), g.Has("i"), g.Has("l") || g.Has("n"),
            g.Has("n"), g.Has("p"), g.Has("r"), g.Has("R"), g.Has("s"), g.Has("t"));
        if (FileTree.Open(ctx, "ls") is not { } tree) return Task.FromResult(1);
        var operands = g.Operands.Count == 0 ? ["/"] : g.Operands;
        var files = new List<Entry>();
        var directories = new List<Entry>();
        int code = 0;
        foreach (string operand in operands)
        {
            // lstat, as gstat; a link to a directory is followed to list it unless -l, -F or -d.
            var status = tree.Stat(operand, false, out var attributes, out var mount, out _);
            if (status == StorageStatus.Ok && attributes.Type == FileType.Symlink && !o.Long && !o.Classify && !o.Dir
                && tree.Stat(operand, true, out var followed, out var at, out _) == StorageStatus.Ok && followed.Type == FileType.Directory)
                (attributes, mount) = (followed, at);
            if (status != StorageStatus.Ok)
            {
                ctx.Err.WriteLine($"{operand}: {FileTree.Strerror(status)}");
                code = 2;
                continue;
            }
            var entry = Make(tree, operand, FileTree.Absolute(operand), attributes, mount.FileSystem);
            if (attributes.Type == FileType.Directory && !o.Dir) directories.Add(entry);
            else files.Add(entry);
        }
        var now = ctx.Host.Clock.UnixNanoseconds / Time.Second;
        var sb = new StringBuilder();
        Sort(files, o);
        foreach (var f in files) Line(sb, f, o, now);
        Sort(directories, o);
        bool headers = operands.Count > 1 || o.Recursive;
        var pending = new Stack<Entry>();
        for (int i = directories.Count - 1; i >= 0; i--) pending.Push(directories[i]);
        bool first = files.Count == 0;
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            if (headers)
            {
                if (!first) sb.Append('\n');
                sb.Append(dir.Name).Append(":\n");
            }
            first = false;
            var listed = List(tree, dir, o, out var failure);
            if (failure != StorageStatus.Ok)
            {
                ctx.Out.Write(sb.ToString());
                sb.Clear();
                ctx.Err.WriteLine($"{dir.Name}: {FileTree.Strerror(failure)}");
                code = 2;
                continue;
            }
            Sort(listed, o);
            if (o.Long || o.Blocks)
            {
                long total = 0;
                foreach (var e in listed) total += e.Blocks;
                sb.Append("total ").Append(total.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
            foreach (var e in listed) Line(sb, e, o, now);
            if (o.Recursive)
                for (int i = listed.Count - 1; i >= 0; i--)
                {
                    var e = listed[i];
                    if (e.Attributes.Type == FileType.Directory && e.Target is null && FileTree.BaseName(e.Path) is not ("." or ".."))
                        pending.Push(e with { Name = e.Path });
                }
        }
        ctx.Out.Write(sb.ToString());
        return Task.FromResult(tree.Finish(code));
    }

    private static Entry Make(FileTree tree, string name, string path, FileAttributes attributes, ZplFileSystem fs)
    {
        fs.SpaceUsed(attributes.Inode, out long bytes);
        string? target = null;
        if (attributes.Type == FileType.Symlink && fs.ReadLink(attributes.Inode, out string link).IsOk) target = link;
        return new Entry(name, path, attributes, (bytes + 511) / 512, target);
    }

    /// <summary>A directory's entries (rddir): "." and ".." only with -a, other dot names with -a or -A.</summary>
    private static List<Entry> List(FileTree tree, Entry dir, Options o, out StorageStatus failure)
    {
        var entries = new List<Entry>();
        failure = tree.Locate(dir.Path, true, false, out var mount, out string inner);
        if (failure != StorageStatus.Ok) return entries;
        var names = new List<DirectoryEntry>();
        failure = mount.FileSystem.ReadDirectory(inner, names).Status;
        if (failure != StorageStatus.Ok) return entries;
        foreach (var d in names)
        {
            if (d.Name.StartsWith('.') && !o.All && (!o.AlmostAll || d.Name is "." or "..")) continue;
            if (d.Name is "." or "..")
            {
                // Their inodes are the file system's own (a mount's root is its own "..").
                if (mount.FileSystem.GetAttributes(d.Inode, out var own).IsOk) entries.Add(Make(tree, d.Name, dir.Path + "/" + d.Name, own, mount.FileSystem));
                continue;
            }
            string path = FileTree.Join(dir.Path, d.Name);
            // Each entry is looked at through the whole tree, so a mountpoint shows the mounted root.
            if (tree.Stat(path, false, out var attributes, out var at, out _) != StorageStatus.Ok) continue;
            entries.Add(Make(tree, d.Name, path, attributes, at.FileSystem));
        }
        return entries;
    }

    private static void Sort(List<Entry> entries, Options o)
    {
        entries.Sort((a, b) =>
        {
            int c = o.ByTime ? b.Attributes.Mtime.CompareTo(a.Attributes.Mtime) : 0;
            if (c == 0) c = string.CompareOrdinal(a.Name, b.Name);
            return o.Reverse ? -c : c;
        });
    }

    private static void Line(StringBuilder sb, Entry e, Options o, long now)
    {
        var a = e.Attributes;
        if (o.Inode) sb.Append(a.Inode.ToString(CultureInfo.InvariantCulture).PadLeft(10)).Append(' ');
        if (o.Blocks) sb.Append(e.Blocks.ToString(CultureInfo.InvariantCulture).PadLeft(e.Blocks < 10000 ? 4 : 0)).Append(' ');
        if (o.Long)
        {
            sb.Append(a.Type switch { FileType.Directory => 'd', FileType.Symlink => 'l', _ => '-' });
            sb.Append(Mode(a.Mode)).Append(' ');
            sb.Append(a.Links.ToString(CultureInfo.InvariantCulture).PadLeft(3)).Append(' ');
            sb.Append((o.Numeric ? a.Uid.ToString(CultureInfo.InvariantCulture) : FileTree.Owner(a.Uid)).PadRight(8)).Append(' ');
            sb.Append((o.Numeric ? a.Gid.ToString(CultureInfo.InvariantCulture) : FileTree.Owner(a.Gid)).PadRight(8)).Append(' ');
            sb.Append((o.Human ? Zpool.Nicenum(a.Size) : a.Size.ToString(CultureInfo.InvariantCulture)).PadLeft(7));
            sb.Append(Date(a.Mtime / Time.Second, now));
        }
        sb.Append(e.Name);
        if (o.Long && e.Target is not null) sb.Append(" -> ").Append(e.Target);
        else if ((o.Classify || o.Slash) && a.Type == FileType.Directory) sb.Append('/');
        else if (o.Classify && a.Type == FileType.Symlink) sb.Append('@');
        else if (o.Classify && (a.Mode & 0x49) != 0) sb.Append('*');
        sb.Append('\n');
    }

    /// <summary>pmode: rwx triples with s/S, t/T for setuid, setgid and sticky.</summary>
    public static string Mode(uint mode)
    {
        Span<char> c = stackalloc char[9];
        for (int i = 0; i < 3; i++)
        {
            uint bits = mode >> (6 - 3 * i);
            c[3 * i] = (bits & 4) != 0 ? 'r' : '-';
            c[3 * i + 1] = (bits & 2) != 0 ? 'w' : '-';
            c[3 * i + 2] = (bits & 1) != 0 ? 'x' : '-';
        }
        if ((mode & 0x800) != 0) c[2] = c[2] == 'x' ? 's' : 'S';
        if ((mode & 0x400) != 0) c[5] = c[5] == 'x' ? 's' : 'l';
        if ((mode & 0x200) != 0) c[8] = c[8] == 'x' ? 't' : 'T';
        return new string(c);
    }

    /// <summary>format_time: " %b %e %H:%M " within six months before now, else " %b %e  %Y ".</summary>
    public static string Date(long seconds, long now)
    {
        var t = DateTime.UnixEpoch.AddSeconds(seconds);
        string day = t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2);
        string month = t.ToString("MMM", CultureInfo.InvariantCulture);
        bool recent = seconds > now - SixMonths && seconds <= now;
        return recent
            ? $" {month} {day} {t.ToString("HH:mm", CultureInfo.InvariantCulture)} "
            : $" {month} {day}  {t.Year.ToString(CultureInfo.InvariantCulture)} ";
    }
}
