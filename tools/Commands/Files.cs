using System.Globalization;
using SmartOS.Storage;
using FileAttributes = SmartOS.Storage.FileAttributes;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// What the file commands (ls, cat, cp, mkdir, rm, rmdir, mv, ln, chmod, touch, df, du, digest, mkfile, dd)
/// share: paths resolved in the view of the command's zone (zones/FileView.cs) over the host's mount
/// table (zones/MountTable.cs), errors worded as illumos's strerror words them, and the commit every
/// command ends with.
/// </summary>
/// <remarks>
/// Rules
///   1. A path is absolute, or relative to "/": the host has no per-command working directory in
///      its own tree (CommandContext.WorkingDirectory is a directory of the machine the front end
///      runs on). Paths resolve in the command's view, one resolution for the global zone and zones
///      (FileView rule 1): in a zone (zlogin ZONE cmd) "/" is the zone's root, zonepath/root, and no
///      "..", symbolic link or absolute link target reaches outside it, as under chroot.
///   2. Every command checks its options and operands before it changes anything, and commits the
///      pools it used before it returns (MountTable rule 5): what it did is durable when it reports.
///   3. A zone whose zonepath is on no mounted dataset (a host without a zones pool) has no files:
///      the commands refuse to run there, with one message (Open).
///   4. Files are created as root (uid 0, gid 0) with mode 0666 or 0777 less umask 022.
///   5. A change under a read-only lofs mount of the zone is EROFS (FileView rule 3): the commands
///      that change a path locate it with write set.
/// </remarks>
internal sealed class FileTree
{
    public const uint FileMode = 0x1A4;       // 0644
    public const uint DirectoryMode = 0x1ED;  // 0755

    private FileTree(CommandContext ctx, string command, FileView view)
    {
        Context = ctx;
        Command = command;
        View = view;
    }

    /// <summary>The command's tree in its zone's view, or null after printing rule 3's refusal.</summary>
    public static FileTree? Open(CommandContext ctx, string command)
    {
        if (ctx.Zone == "global") return new FileTree(ctx, command, FileView.Global(ctx.Host.Mounts));
        string problem = $"zone '{ctx.Zone}' is not configured";
        var view = ctx.RunningZone is { } zone ? FileView.ForZone(ctx.Host.Mounts, zone, out problem) : null;
        if (view is null)
        {
            ctx.Err.WriteLine($"{command}: {problem}");
            return null;
        }
        return new FileTree(ctx, command, view);
    }

    public CommandContext Context { get; }
    public string Command { get; }
    public FileView View { get; }
    public MountTable Mounts => View.Mounts;

    /// <summary>The absolute, cleaned form of an operand (rule 1), as the command's view names it.</summary>
    public static string Absolute(string operand) => MountTable.Clean(operand.StartsWith('/') ? operand : "/" + operand);

    /// <summary>
    /// Where a path is: its mount and the path inside it, its last name not followed; ENOENT outside
    /// every mount, EROFS for a write under a read-only lofs (rule 5).
    /// </summary>
    public StorageStatus Locate(string path, out Mount mount, out string inner, bool write = false)
        => Locate(path, false, write, out mount, out inner);

    /// <summary>Where a path is, its last name followed when follow (rule 1).</summary>
    public StorageStatus Locate(string path, bool follow, bool write, out Mount mount, out string inner)
    {
        var status = View.Resolve(path, follow, out var at);
        mount = at.Mount;
        inner = at.Inner;
        if (status != StorageStatus.Ok) { mount = null!; return status; }
        return write && at.ReadOnly ? StorageStatus.ReadOnly : StorageStatus.Ok;
    }

    /// <summary>
    /// stat(2) (follow) or lstat(2) of a path of the view; mount and inner are where it was found (the
    /// link's target when followed), so a change made through them acts on what was stat'ed.
    /// </summary>
    public StorageStatus Stat(string path, bool follow, out FileAttributes attributes, out Mount mount, out string inner, bool write = false)
    {
        attributes = default;
        var where = Locate(path, follow, false, out mount, out inner);
        if (where != StorageStatus.Ok) return where;
        var status = mount.FileSystem.StatLink(inner, out attributes).Status;
        if (status == StorageStatus.Ok && write) return Locate(path, follow, true, out _, out _);
        return status;
    }

    public StorageStatus Stat(string path, bool follow, out FileAttributes attributes) => Stat(path, follow, out attributes, out _, out _);

    /// <summary>Whether a path of the view is a mountpoint (a dataset's, or a lofs dir of the zone):
    /// rmdir and rename of it are EBUSY.</summary>
    public bool IsMountPoint(string path)
    {
        if (View.Walk(path, false, out string viewPath) != StorageStatus.Ok) return false;
        foreach (var lofs in View.Lofs) if (lofs.Dir == viewPath) return true;
        return Mounts.MountedAt(View.HostPath(viewPath, out _)) != null;
    }

    /// <summary>Ends the command (rule 2): commits, and turns a failed commit into a failure.</summary>
    public int Finish(int code)
    {
        var committed = Mounts.Commit();
        if (committed.IsOk) return code;
        Context.Err.WriteLine($"{Command}: {committed.Message}");
        return code == 0 ? 1 : code;
    }

    /// <summary>illumos's strerror wording for a status.</summary>
    public static string Strerror(StorageStatus status) => status switch
    {
        StorageStatus.NoSuchObject or StorageStatus.NoSuchDataset => "No such file or directory",
        StorageStatus.Exists or StorageStatus.DatasetExists or StorageStatus.NotEmpty => "File exists",
        StorageStatus.NotDirectory => "Not a directory",
        StorageStatus.IsDirectory => "Is a directory",
        StorageStatus.NameTooLong => "File name too long",
        StorageStatus.SymlinkLoop => "Number of symbolic links encountered during path name traversal exceeds MAXSYMLINKS",
        StorageStatus.NotPermitted => "Not owner",
        StorageStatus.FileTooBig => "File too large",
        StorageStatus.NoSpace => "No space left on device",
        StorageStatus.QuotaExceeded => "Disc quota exceeded",
        StorageStatus.ReadOnly => "Read-only file system",
        StorageStatus.IoError or StorageStatus.ChecksumError => "I/O error",
        StorageStatus.InvalidArgument => "Invalid argument",
        StorageStatus.DatasetBusy => "Device busy",
        _ => StorageStatusText.Of(status),
    };

    /// <summary>The parent directory of an absolute path and its last name.</summary>
    public static (string Parent, string Name) Split(string absolute)
    {
        int slash = absolute.LastIndexOf('/');
        return (slash <= 0 ? "/" : absolute[..slash], absolute[(slash + 1)..]);
    }

    public static string Join(string directory, string name) => directory == "/" ? "/" + name : directory + "/" + name;

    /// <summary>The last component of an operand as typed (cp and mv into a directory).</summary>
    public static string BaseName(string operand)
    {
        string trimmed = operand.TrimEnd('/');
        int slash = trimmed.LastIndexOf('/');
        return slash < 0 ? trimmed : trimmed[(slash + 1)..];
    }

    /// <summary>The user (or group) name ls and du print for an id: root for 0, else the number.</summary>
    public static string Owner(uint id) => id == 0 ? "root" : id.ToString(CultureInfo.InvariantCulture);

    /// <summary>Copies a regular file's bytes, holes kept as holes (cp, mv across file systems).</summary>
    public static StorageResult CopyData(ZplFileSystem from, long source, ZplFileSystem to, long target, long length)
    {
        var extents = new List<DataExtent>();
        var result = from.GetExtents(source, extents);
        if (!result.IsOk) return result;
        result = to.Truncate(target, 0);
        if (!result.IsOk) return result;
        var buffer = new byte[Pool.MaxBlockSize];
        foreach (var extent in extents)
        {
            for (long at = extent.Offset; at < extent.Offset + extent.Length;)
            {
                int want = (int)Math.Min(buffer.Length, extent.Offset + extent.Length - at);
                result = from.Read(source, at, buffer.AsSpan(0, want), out int read);
                if (!result.IsOk) return result;
                if (read == 0) break;
                result = to.Write(target, at, buffer.AsSpan(0, read));
                if (!result.IsOk) return result;
                at += read;
            }
        }
        return to.Truncate(target, length);
    }
}
