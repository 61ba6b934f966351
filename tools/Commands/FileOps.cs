using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Storage;
using FileAttributes = SmartOS.Storage.FileAttributes;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// The commands that change names and attributes: mkdir, rmdir, rm, touch, ln, mv, cp (illumos's
/// usr/src/cmd/mkdir, rmdir, rm, touch, mv (which is also cp and ln)), over the host's mounts (Files.cs).
/// Each checks its options before it changes anything, works operand by operand as illumos's do (a
/// failed operand is reported and the rest go on), exits 2 when any failed, and commits before it returns.
/// </summary>
public static class FileOps
{
    public static readonly CommandDescriptor MkdirDescriptor = new("mkdir", "make directories", Mkdir)
    { Options = "pm:" };

    public static readonly CommandDescriptor RmdirDescriptor = new("rmdir", "remove directories", Rmdir)
    { Options = "ps" };

    public static readonly CommandDescriptor RmDescriptor = new("rm", "remove directory entries", Rm)
    { Options = "rRf" };

    public static readonly CommandDescriptor TouchDescriptor = new("touch", "change file access and modification times", Touch)
    { Options = "acmr:t:" };

    public static readonly CommandDescriptor LnDescriptor = new("ln", "make hard or symbolic links to files", Ln)
    { Options = "fs" };

    public static readonly CommandDescriptor MvDescriptor = new("mv", "move files", Mv)
    { Options = "f" };

    public static readonly CommandDescriptor CpDescriptor = new("cp", "copy files", Cp)
    { Options = "fprR" };

    public static readonly CommandDescriptor ChmodDescriptor = new("chmod", "change the permissions mode of a file", Chmod)
    { Options = "fR" };

    private static int Usage(CommandContext ctx, Getopt g, string command, string usage)
    {
        if (g.Error != null) ctx.Err.WriteLine(g.ErrorMissingValue ? $"{command}: option requires an argument -- {g.ErrorOption}" : $"{command}: illegal option -- {g.ErrorOption}");
        ctx.Err.WriteLine(usage);
        return 2;
    }

    // ---- chmod ----

    /// <summary>chmod [-fR] MODE file...: an octal mode, or symbolic clauses [ugoa]*[+-=][rwx]* joined by
    /// commas (s, t and X are refused, not ignored). Links are followed, as chmod(2) does.</summary>
    private static Task<int> Chmod(CommandContext ctx, string[] args)
    {
        const string usage = "usage:\tchmod [-fR] <absolute-mode> file ...\n\tchmod [-fR] <symbolic-mode-list> file ...";
        var g = Getopt.Parse(args, ":" + ChmodDescriptor.Options);
        if (g.Error != null || g.Operands.Count < 2) return Task.FromResult(Usage(ctx, g, "chmod", usage));
        string mode = g.Operands[0];
        if (!TryApplyMode(mode, 0, out _))
        {
            ctx.Err.WriteLine($"chmod: ERROR: invalid mode: {mode}");
            return Task.FromResult(2);
        }
        if (FileTree.Open(ctx, "chmod") is not { } tree) return Task.FromResult(1);
        int code = 0;
        foreach (string operand in g.Operands.Skip(1))
            if (!ChangeMode(tree, FileTree.Absolute(operand), operand, mode, g.Has("R"), g.Has("f"))) code = 1;
        return Task.FromResult(tree.Finish(code));
    }

    private static bool ChangeMode(FileTree tree, string path, string shown, string mode, bool recursive, bool quiet)
    {
        var status = tree.Stat(path, true, out var attributes, out var mount, out string inner, write: true);
        if (status == StorageStatus.NoSuchObject || status == StorageStatus.NotDirectory)
        {
            if (!quiet) tree.Context.Err.WriteLine($"chmod: WARNING: can't access {shown}");
            return false;
        }
        TryApplyMode(mode, attributes.Mode, out uint next);
        if (status == StorageStatus.Ok) status = mount.FileSystem.ChangeMode(inner, next).Status;
        if (status != StorageStatus.Ok)
        {
            if (!quiet) tree.Context.Err.WriteLine($"chmod: WARNING: can't change {shown}: {FileTree.Strerror(status)}");
            return false;
        }
        if (!recursive || attributes.Type != FileType.Directory) return true;
        var names = new List<DirectoryEntry>();
        mount.FileSystem.ReadDirectory(inner, names);
        bool ok = true;
        foreach (var d in names)
        {
            if (d.Name is "." or "..") continue;
            string child = FileTree.Join(path, d.Name);
            // -R changes what it walks into, not what a link under it names (chmod's nftw without FTW_PHYS off).
            if (tree.Stat(child, false, out var own) == StorageStatus.Ok && own.Type == FileType.Symlink) continue;
            ok &= ChangeMode(tree, child, shown.TrimEnd('/') + "/" + d.Name, mode, true, quiet);
        }
        return ok;
    }

    /// <summary>A mode applied to the current permission bits; false when it does not parse.</summary>
    internal static bool TryApplyMode(string mode, uint current, out uint next)
    {
        next = current & 0xFFF;
        if (mode.Length > 0 && mode.All(c => c is >= '0' and <= '7'))
        {
            if (mode.Length > 4) return false;
            next = Convert.ToUInt32(mode, 8);
            return true;
        }
        foreach (string clause in mode.Split(','))
        {
            int i = 0;
            uint who = 0;
            for (; i < clause.Length && clause[i] is 'u' or 'g' or 'o' or 'a'; i++)
                who |= clause[i] switch { 'u' => 0x1C0u, 'g' => 0x38u, 'o' => 0x7u, _ => 0x1FFu };
            // Without u, g, o or a the clause is for all, less the umask (022), as chmod(1) says.
            bool masked = who == 0;
            if (who == 0) who = 0x1FF;
            if (i == clause.Length) return false;
            while (i < clause.Length)
            {
                char op = clause[i++];
                if (op is not ('+' or '-' or '=')) return false;
                uint perms = 0;
                for (; i < clause.Length && clause[i] is 'r' or 'w' or 'x'; i++)
                    perms |= clause[i] switch { 'r' => 0x124u, 'w' => 0x92u, _ => 0x49u };
                if (i < clause.Length && clause[i] is not ('+' or '-' or '=')) return false;
                uint bits = perms & who & (masked ? ~0x12u : 0x1FFu);
                next = op switch
                {
                    '+' => next | bits,
                    '-' => next & ~bits,
                    _ => (next & ~who) | bits,
                };
            }
        }
        return true;
    }

    // ---- mkdir ----

    private static Task<int> Mkdir(CommandContext ctx, string[] args)
    {
        const string usage = "usage: mkdir [-m mode] [-p] dirname ...";
        var g = Getopt.Parse(args, ":" + MkdirDescriptor.Options);
        if (g.Error != null || g.Operands.Count == 0) return Task.FromResult(Usage(ctx, g, "mkdir", usage));
        uint mode = FileTree.DirectoryMode;
        if (g.Value("m") is string m)
        {
            if (m.Length == 0 || m.Length > 4 || !m.All(c => c is >= '0' and <= '7'))
            {
                ctx.Err.WriteLine($"mkdir: invalid mode: {m} (only octal modes are supported)");
                return Task.FromResult(2);
            }
            mode = Convert.ToUInt32(m, 8);
        }
        if (FileTree.Open(ctx, "mkdir") is not { } tree) return Task.FromResult(1);
        int code = 0;
        foreach (string operand in g.Operands)
        {
            if (!g.Has("p"))
            {
                var status = MakeOne(tree, FileTree.Absolute(operand), mode);
                if (status == StorageStatus.Ok) continue;
                ctx.Err.WriteLine($"mkdir: Failed to make directory \"{operand}\"; {FileTree.Strerror(status)}");
                code = 2;
                continue;
            }
            // -p: an existing directory is no error, an existing other file is (mkdir.c's MSGEXISTS).
            var existing = tree.Stat(operand, false, out var attributes);
            if (existing == StorageStatus.Ok && attributes.Type == FileType.Directory) continue;
            if (existing == StorageStatus.Ok)
            {
                ctx.Err.WriteLine($"mkdir: \"{operand}\": Exists but is not a directory");
                code = 2;
                continue;
            }
            var made = MakeParents(tree, FileTree.Absolute(operand), mode);
            if (made == StorageStatus.Ok) continue;
            ctx.Err.WriteLine($"mkdir: \"{operand}\": {FileTree.Strerror(made)}");
            code = 2;
        }
        return Task.FromResult(tree.Finish(code));
    }

    private static StorageStatus MakeOne(FileTree tree, string path, uint mode)
    {
        var status = tree.Locate(path, out var mount, out string inner, write: true);
        if (status != StorageStatus.Ok) return status;
        if (inner == "/") return StorageStatus.Exists;
        return mount.FileSystem.MakeDirectory(inner, mode, 0, 0, out _).Status;
    }

    private static StorageStatus MakeParents(FileTree tree, string path, uint mode)
    {
        string at = "";
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            at += "/" + part;
            var status = tree.Stat(at, true, out var attributes);
            if (status == StorageStatus.Ok)
            {
                if (attributes.Type != FileType.Directory) return StorageStatus.NotDirectory;
                continue;
            }
            if (status != StorageStatus.NoSuchObject) return status;
            // Parents get 0777 less umask, write and search for the owner (mkdir -p).
            status = MakeOne(tree, at, at.Length == path.Length ? mode : FileTree.DirectoryMode);
            if (status != StorageStatus.Ok) return status;
        }
        return StorageStatus.Ok;
    }

    // ---- rmdir ----

    private static Task<int> Rmdir(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, RmdirDescriptor.Options);
        if (g.Error != null || g.Operands.Count == 0)
        {
            ctx.Err.WriteLine("Usage: rmdir [-ps] dirname ...");
            return Task.FromResult(2);
        }
        if (FileTree.Open(ctx, "rmdir") is not { } tree) return Task.FromResult(1);
        int code = 0;
        foreach (string operand in g.Operands)
        {
            if (g.Has("p"))
            {
                // rmdirp: the directory, then each parent named in the operand, until one fails.
                string remain = operand.TrimEnd('/');
                var status = StorageStatus.Ok;
                while (remain.Length > 0)
                {
                    string last = FileTree.BaseName(remain);
                    if (last is "." or "..") { status = StorageStatus.InvalidArgument; break; }
                    status = RemoveDirectory(tree, FileTree.Absolute(remain));
                    if (status != StorageStatus.Ok) break;
                    int slash = remain.LastIndexOf('/');
                    remain = slash <= 0 ? "" : remain[..slash].TrimEnd('/');
                }
                if (status == StorageStatus.Ok) continue;
                code = 2;
                if (g.Has("s")) continue;
                string why = status switch
                {
                    StorageStatus.NotEmpty or StorageStatus.Exists => "Directory not empty",
                    StorageStatus.InvalidArgument => "Can not remove . or ..",
                    _ => FileTree.Strerror(status),
                };
                ctx.Err.WriteLine($"rmdir: directory \"{operand}\": {remain} not removed; {why}");
                continue;
            }
            var removed = RemoveDirectory(tree, FileTree.Absolute(operand));
            if (removed == StorageStatus.Ok) continue;
            string message = removed switch
            {
                StorageStatus.NoSuchObject => "Directory does not exist",
                StorageStatus.NotEmpty or StorageStatus.Exists => "Directory not empty",
                StorageStatus.NotDirectory => "Path component not a directory",
                StorageStatus.DatasetBusy => "Directory is a mount point or in use",
                StorageStatus.InvalidArgument => "Can't remove current directory or ..",
                StorageStatus.IoError or StorageStatus.ChecksumError => "I/O error accessing file system",
                _ => FileTree.Strerror(removed),
            };
            ctx.Err.WriteLine($"rmdir: directory \"{operand}\": {message}");
            code = 2;
        }
        return Task.FromResult(tree.Finish(code));
    }

    private static StorageStatus RemoveDirectory(FileTree tree, string path)
    {
        if (tree.IsMountPoint(path)) return StorageStatus.DatasetBusy;
        var status = tree.Locate(path, out var mount, out string inner, write: true);
        return status != StorageStatus.Ok ? status : mount.FileSystem.RemoveDirectory(inner).Status;
    }

    // ---- rm ----

    private static Task<int> Rm(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, ":" + RmDescriptor.Options);
        if (g.Error != null || (g.Operands.Count == 0 && !g.Has("f"))) return Task.FromResult(Usage(ctx, g, "rm", "usage: rm [-fiRr] file ..."));
        bool recursive = g.Has("r") || g.Has("R"), force = g.Has("f");
        if (FileTree.Open(ctx, "rm") is not { } tree) return Task.FromResult(1);
        int code = 0;
        foreach (string operand in g.Operands)
        {
            string path = FileTree.Absolute(operand);
            if (FileTree.BaseName(operand) is "." or "..")
            {
                ctx.Err.WriteLine($"rm of {operand} is not allowed");
                code = 2;
                continue;
            }
            var status = tree.Stat(path, false, out var attributes);
            if (status != StorageStatus.Ok)
            {
                // perror(path), as rm's lstat failure prints it; -f says nothing.
                if (!force) { ctx.Err.WriteLine($"{operand}: {FileTree.Strerror(status)}"); code = 2; }
                continue;
            }
            if (attributes.Type == FileType.Directory && !recursive)
            {
                ctx.Err.WriteLine($"rm: {operand} is a directory");
                code = 2;
                continue;
            }
            if (!Remove(tree, path, operand, attributes)) code = 2;
        }
        return Task.FromResult(tree.Finish(code));
    }

    /// <summary>Removes a name, and with it a directory's contents depth first; false after reporting a failure.</summary>
    private static bool Remove(FileTree tree, string path, string shown, FileAttributes attributes)
    {
        var ctx = tree.Context;
        if (attributes.Type != FileType.Directory)
        {
            var where = tree.Locate(path, out var mount, out string inner, write: true);
            var status = where != StorageStatus.Ok ? where : mount.FileSystem.Unlink(inner).Status;
            if (status == StorageStatus.Ok) return true;
            ctx.Err.WriteLine($"rm: {shown} not removed: {FileTree.Strerror(status)}");
            return false;
        }
        bool ok = true;
        if (tree.Locate(path, out var at, out string dirInner) == StorageStatus.Ok)
        {
            var names = new List<DirectoryEntry>();
            at.FileSystem.ReadDirectory(dirInner, names);
            foreach (var d in names)
            {
                if (d.Name is "." or "..") continue;
                string child = FileTree.Join(path, d.Name);
                if (tree.Stat(child, false, out var childAttributes) != StorageStatus.Ok) continue;
                ok &= Remove(tree, child, shown.TrimEnd('/') + "/" + d.Name, childAttributes);
            }
        }
        var removed = RemoveDirectory(tree, path);
        if (removed == StorageStatus.Ok) return ok;
        ctx.Err.WriteLine($"rm: Unable to remove directory {shown}: {FileTree.Strerror(removed)}");
        return false;
    }

    // ---- touch ----

    private static Task<int> Touch(CommandContext ctx, string[] args)
    {
        const string usage = "usage: touch [-acm] [-r ref_file | -t time] file...";
        var g = Getopt.Parse(args, ":" + TouchDescriptor.Options);
        if (g.Error != null || g.Operands.Count == 0) return Task.FromResult(Usage(ctx, g, "touch", usage));
        long now = ctx.Host.Clock.UnixNanoseconds;
        long when = now, whenM = now;
        if (FileTree.Open(ctx, "touch") is not { } tree) return Task.FromResult(1);
        if (g.Has("r") && g.Has("t")) return Task.FromResult(Usage(ctx, g, "touch", usage));
        if (g.Value("r") is string reference)
        {
            // -r: the reference file's access and modification times.
            var found = tree.Stat(reference, true, out var refAttributes);
            if (found != StorageStatus.Ok)
            {
                ctx.Err.WriteLine($"touch: {reference}: {FileTree.Strerror(found)}");
                return Task.FromResult(2);
            }
            (when, whenM) = (refAttributes.Atime, refAttributes.Mtime);
        }
        if (g.Value("t") is string t)
        {
            if (!ParseTouchTime(t, now, out when))
            {
                ctx.Err.WriteLine($"touch: bad time specification");
                return Task.FromResult(2);
            }
            whenM = when;
        }
        bool setA = g.Has("a") || !g.Has("m"), setM = g.Has("m") || !g.Has("a");
        int code = 0;
        foreach (string operand in g.Operands)
        {
            var status = tree.Stat(operand, true, out var attributes, out var mount, out string inner, write: true);
            if (status == StorageStatus.NoSuchObject && (status = tree.Locate(operand, true, true, out mount, out inner)) == StorageStatus.Ok)
            {
                if (g.Has("c")) continue;
                status = mount.FileSystem.CreateFile(inner, FileTree.FileMode, 0, 0, out _).Status;
                if (status == StorageStatus.Ok) status = mount.FileSystem.Stat(inner, out attributes).Status;
                if (status != StorageStatus.Ok)
                {
                    ctx.Err.WriteLine($"touch: cannot create {operand}: {FileTree.Strerror(status)}");
                    code = 2;
                    continue;
                }
            }
            if (status == StorageStatus.Ok)
                status = mount.FileSystem.SetTimes(inner, setA ? when : attributes.Atime, setM ? whenM : attributes.Mtime).Status;
            if (status == StorageStatus.Ok) continue;
            ctx.Err.WriteLine($"touch: {operand}: {FileTree.Strerror(status)}");
            code = 2;
        }
        return Task.FromResult(tree.Finish(code));
    }

    /// <summary>-t [[CC]YY]MMDDhhmm[.SS], in UTC (the host's time zone); the year defaults to now's.</summary>
    private static bool ParseTouchTime(string text, long now, out long nanoseconds)
    {
        nanoseconds = 0;
        string main = text, seconds = "00";
        int dot = text.IndexOf('.');
        if (dot >= 0) { main = text[..dot]; seconds = text[(dot + 1)..]; }
        if (seconds.Length != 2 || !(main.Length is 8 or 10 or 12) || !(main + seconds).All(char.IsAsciiDigit)) return false;
        int year = DateTime.UnixEpoch.AddTicks(now / 100).Year;
        if (main.Length == 12) { year = int.Parse(main[..4], CultureInfo.InvariantCulture); main = main[4..]; }
        else if (main.Length == 10)
        {
            int yy = int.Parse(main[..2], CultureInfo.InvariantCulture);
            year = yy < 69 ? 2000 + yy : 1900 + yy;
            main = main[2..];
        }
        int Part(int at) => int.Parse(main.AsSpan(at, 2), CultureInfo.InvariantCulture);
        try
        {
            var date = new DateTime(year, Part(0), Part(2), Part(4), Part(6), int.Parse(seconds, CultureInfo.InvariantCulture), DateTimeKind.Utc);
            nanoseconds = (date - DateTime.UnixEpoch).Ticks * 100;
            return true;
        }
        catch (ArgumentOutOfRangeException)
        {
            return false;
        }
    }

    // ---- ln ----

    private static Task<int> Ln(CommandContext ctx, string[] args)
    {
        const string usage = "Usage: ln [-f] [-s] f1\n       ln [-f] [-s] f1 f2\n       ln [-f] [-s] f1 ... fn d1";
        var g = Getopt.Parse(args, ":" + LnDescriptor.Options);
        if (g.Error == null && g.Operands.Count == 0) ctx.Err.WriteLine("ln: Insufficient arguments (0)");
        if (g.Error != null || g.Operands.Count == 0) return Task.FromResult(Usage(ctx, g, "ln", usage));
        if (FileTree.Open(ctx, "ln") is not { } tree) return Task.FromResult(1);
        var ops = g.Operands;
        string target = ops.Count == 1 ? "/" : ops[^1];
        var sources = ops.Count == 1 ? ops : ops.GetRange(0, ops.Count - 1);
        bool intoDir = tree.Stat(target, true, out var targetAttributes) == StorageStatus.Ok && targetAttributes.Type == FileType.Directory;
        if (sources.Count > 1 && tree.Stat(target, true, out _) != StorageStatus.Ok)
        {
            ctx.Err.WriteLine($"ln: {target} not found");
            return Task.FromResult(2);
        }
        if (sources.Count > 1 && !intoDir)
        {
            ctx.Err.WriteLine($"ln: Target {target} must be a directory");
            ctx.Err.WriteLine(usage);
            return Task.FromResult(2);
        }
        int code = 0;
        foreach (string source in sources)
        {
            string to = intoDir ? FileTree.Join(FileTree.Absolute(target), FileTree.BaseName(source)) : FileTree.Absolute(target);
            string shown = intoDir ? to : target;
            var status = Link(tree, source, to, g.Has("s"), g.Has("f"));
            if (status == StorageStatus.Ok) continue;
            ctx.Err.WriteLine(status switch
            {
                StorageStatus.NotSupported => $"ln: {shown} is on a different file system",
                StorageStatus.IsDirectory => $"ln: {source} is a directory",
                StorageStatus.DatasetExists => $"ln: cannot create link over directory {shown}",
                _ when g.Has("s") => $"ln: cannot create {shown}: {FileTree.Strerror(status)}",
                _ => $"ln: cannot create link {shown}: {FileTree.Strerror(status)}",
            });
            code = 2;
        }
        return Task.FromResult(tree.Finish(code));
    }

    private static StorageStatus Link(FileTree tree, string source, string to, bool symbolic, bool force)
    {
        var status = tree.Locate(to, out var mount, out string inner, write: true);
        if (status != StorageStatus.Ok) return status;
        if (!symbolic)
        {
            status = tree.Stat(source, false, out var sourceAttributes, out var from, out _);
            if (status != StorageStatus.Ok) return status;
            if (from != mount) return StorageStatus.NotSupported;
            if (sourceAttributes.Type == FileType.Directory) return StorageStatus.IsDirectory;
        }
        // -f removes what is there first, but never a directory (DatasetExists stands for "link over directory").
        if (force && mount.FileSystem.StatLink(inner, out var existing).IsOk)
        {
            if (existing.Type == FileType.Directory) return StorageStatus.DatasetExists;
            status = mount.FileSystem.Unlink(inner).Status;
            if (status != StorageStatus.Ok) return status;
        }
        if (!symbolic)
        {
            tree.Stat(source, false, out _, out _, out string fromInner);
            return mount.FileSystem.Link(fromInner, inner).Status;
        }
        return mount.FileSystem.CreateSymlink(source, inner, 0, 0, out _).Status;
    }

    // ---- mv ----

    private static Task<int> Mv(CommandContext ctx, string[] args)
    {
        const string usage = "Usage: mv [-f] [-i] f1 f2\n       mv [-f] [-i] f1 ... fn d1\n       mv [-f] [-i] d1 d2";
        var g = Getopt.Parse(args, ":" + MvDescriptor.Options);
        if (g.Error == null && g.Operands.Count < 2) ctx.Err.WriteLine($"mv: Insufficient arguments ({g.Operands.Count})");
        if (g.Error != null || g.Operands.Count < 2) return Task.FromResult(Usage(ctx, g, "mv", usage));
        if (FileTree.Open(ctx, "mv") is not { } tree) return Task.FromResult(1);
        var (sources, target, intoDir, refused) = Targets(tree, g.Operands, "mv", usage);
        if (refused) return Task.FromResult(2);
        int code = 0;
        foreach (string source in sources)
        {
            string to = intoDir ? FileTree.Join(FileTree.Absolute(target), FileTree.BaseName(source)) : FileTree.Absolute(target);
            if (!Move(tree, source, to, intoDir ? to : target)) code = 2;
        }
        return Task.FromResult(tree.Finish(code));
    }

    /// <summary>The sources and target of cp and mv: several sources need a directory target.</summary>
    private static (List<string> Sources, string Target, bool IntoDir, bool Refused) Targets(FileTree tree, List<string> ops, string command, string usage)
    {
        string target = ops[^1];
        var sources = ops.GetRange(0, ops.Count - 1);
        var found = tree.Stat(target, true, out var attributes);
        bool intoDir = found == StorageStatus.Ok && attributes.Type == FileType.Directory;
        if (sources.Count > 1 && found != StorageStatus.Ok)
        {
            tree.Context.Err.WriteLine($"{command}: {target} not found");
            return (sources, target, intoDir, true);
        }
        if (sources.Count > 1 && !intoDir)
        {
            tree.Context.Err.WriteLine($"{command}: Target {target} must be a directory");
            tree.Context.Err.WriteLine(usage);
            return (sources, target, intoDir, true);
        }
        return (sources, target, intoDir, false);
    }

    private static bool Move(FileTree tree, string source, string to, string shown)
    {
        var ctx = tree.Context;
        var status = tree.Stat(source, false, out var attributes, out var from, out string fromInner);
        if (status != StorageStatus.Ok)
        {
            ctx.Err.WriteLine($"mv: cannot access {source}");
            return false;
        }
        var writable = tree.Locate(source, out _, out _, write: true);
        status = tree.Locate(to, out var mount, out string inner, write: true);
        if (writable != StorageStatus.Ok) status = writable;
        if (status == StorageStatus.Ok && (tree.IsMountPoint(source) || tree.IsMountPoint(to)))
            status = StorageStatus.DatasetBusy;
        if (status == StorageStatus.Ok && mount == from) status = from.FileSystem.Rename(fromInner, inner).Status;
        else if (status == StorageStatus.Ok)
        {
            // Another file system: copy, then remove the source (EXDEV, as mv does).
            if (!Copy(tree, source, to, shown, recursive: true, preserve: true, "mv")) return false;
            return Remove(tree, FileTree.Absolute(source), source, attributes);
        }
        if (status == StorageStatus.Ok) return true;
        ctx.Err.WriteLine($"mv: cannot rename {source} to {shown}: {FileTree.Strerror(status)}");
        return false;
    }

    // ---- cp ----

    private static Task<int> Cp(CommandContext ctx, string[] args)
    {
        const string usage = "Usage: cp [-f] [-i] [-p] [-@] [-/] f1 f2\n       cp [-f] [-i] [-p] [-@] [-/] f1 ... fn d1\n       cp [-r|-R] [-H|-L|-P] [-f] [-i] [-p] [-@] [-/] d1 ... dn-1 dn";
        var g = Getopt.Parse(args, ":" + CpDescriptor.Options);
        if (g.Error == null && g.Operands.Count < 2) ctx.Err.WriteLine($"cp: Insufficient arguments ({g.Operands.Count})");
        if (g.Error != null || g.Operands.Count < 2) return Task.FromResult(Usage(ctx, g, "cp", usage));
        if (FileTree.Open(ctx, "cp") is not { } tree) return Task.FromResult(1);
        var (sources, target, intoDir, refused) = Targets(tree, g.Operands, "cp", usage);
        if (refused) return Task.FromResult(2);
        int code = 0;
        foreach (string source in sources)
        {
            string to = intoDir ? FileTree.Join(FileTree.Absolute(target), FileTree.BaseName(source)) : FileTree.Absolute(target);
            if (!Copy(tree, source, to, intoDir ? to : target, g.Has("r") || g.Has("R"), g.Has("p"), "cp")) code = 2;
        }
        return Task.FromResult(tree.Finish(code));
    }

    /// <summary>Copies one operand (a directory's tree with recursive); holes stay holes.</summary>
    private static bool Copy(FileTree tree, string source, string to, string shown, bool recursive, bool preserve, string command)
    {
        var ctx = tree.Context;
        var status = tree.Stat(source, true, out var attributes, out var from, out string fromInner);
        if (status != StorageStatus.Ok)
        {
            ctx.Err.WriteLine($"{command}: cannot access {source}");
            return false;
        }
        if (attributes.Type == FileType.Directory)
        {
            if (!recursive)
            {
                ctx.Err.WriteLine($"{command}: {source}: is a directory");
                return false;
            }
            string absolute = FileTree.Absolute(source);
            if (to == absolute || to.StartsWith(absolute + "/", StringComparison.Ordinal))
            {
                ctx.Err.WriteLine($"{command}: cannot copy {source} into itself");
                return false;
            }
            var made = tree.Stat(to, true, out var existing);
            if (made == StorageStatus.NoSuchObject) made = MakeOne(tree, to, attributes.Mode);
            else if (made == StorageStatus.Ok && existing.Type != FileType.Directory) made = StorageStatus.NotDirectory;
            if (made != StorageStatus.Ok)
            {
                ctx.Err.WriteLine($"{command}: cannot create directory {shown}: {FileTree.Strerror(made)}");
                return false;
            }
            var names = new List<DirectoryEntry>();
            from.FileSystem.ReadDirectory(fromInner, names);
            bool ok = true;
            foreach (var d in names)
                if (d.Name is not ("." or ".."))
                    ok &= Copy(tree, FileTree.Join(absolute, d.Name), FileTree.Join(to, d.Name), shown.TrimEnd('/') + "/" + d.Name, true, preserve, command);
            if (preserve) Preserve(tree, to, attributes);
            return ok;
        }
        status = tree.Locate(to, true, true, out var mount, out string inner);
        if (status == StorageStatus.Ok && mount == from && mount.FileSystem.Stat(inner, out var same).IsOk && same.Inode == attributes.Inode)
        {
            ctx.Err.WriteLine($"{command}: {source} and {shown} are identical");
            return false;
        }
        long target = 0;
        if (status == StorageStatus.Ok)
        {
            var found = mount.FileSystem.Lookup(inner, out target);
            if (found.Status == StorageStatus.NoSuchObject) status = mount.FileSystem.CreateFile(inner, attributes.Mode, 0, 0, out target).Status;
            else status = found.Status;
        }
        if (status == StorageStatus.Ok) status = FileTree.CopyData(from.FileSystem, attributes.Inode, mount.FileSystem, target, attributes.Size).Status;
        if (status != StorageStatus.Ok)
        {
            ctx.Err.WriteLine($"{command}: cannot create {shown}: {FileTree.Strerror(status)}");
            return false;
        }
        if (preserve) Preserve(tree, to, attributes);
        return true;
    }

    /// <summary>-p: mode, owner and times as the source's.</summary>
    private static void Preserve(FileTree tree, string path, FileAttributes a)
    {
        if (tree.Locate(path, true, true, out var mount, out string inner) != StorageStatus.Ok) return;
        mount.FileSystem.ChangeMode(inner, a.Mode);
        mount.FileSystem.ChangeOwner(inner, a.Uid, a.Gid);
        mount.FileSystem.SetTimes(inner, a.Atime, a.Mtime);
    }
}
