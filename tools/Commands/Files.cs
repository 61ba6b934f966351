using System.Globalization;
using SmartOS.Storage;
using FileAttributes = SmartOS.Storage.FileAttributes;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// What the file commands (ls, cat, cp, mkdir, rm, rmdir, mv, ln, touch, df, du, digest, mkfile, dd)
/// share: paths of the host's one tree resolved through its mount table (zones/MountTable.cs), errors
/// worded as illumos's strerror words them, and the commit every command ends with.
/// </summary>
/// <remarks>
/// Rules
///   1. A path is absolute, or relative to "/": the host has no per-command working directory in
///      its own tree (CommandContext.WorkingDirectory is a directory of the machine the front end
///      runs on). ".." is applied lexically, and "/" itself is in no mount unless a dataset is mounted
///      there (MountTable.cs, not done yet).
///   2. Every command checks its options and operands before it changes anything, and commits the
///      pools it used before it returns (MountTable rule 5): what it did is durable when it reports.
///   3. Zones have no datasets yet (a later issue puts zones on the pool): the commands refuse to run
///      in a non-global zone, with one message (ZoneRefusal).
///   4. Files are created as root (uid 0, gid 0) with mode 0666 or 0777 less umask 022.
/// </remarks>
internal sealed class FileTree(CommandContext ctx, string command)
{
    public const uint FileMode = 0x1A4;       // 0644
    public const uint DirectoryMode = 0x1ED;  // 0755

    /// <summary>Rule 3's refusal, for every file command's descriptor.</summary>
    public static string ZoneRefusal(string command)
        => $"{command}: zones have no file systems yet: run it in the global zone";

    public CommandContext Context { get; } = ctx;
    public string Command { get; } = command;
    public MountTable Mounts { get; } = ctx.Host.Mounts;

    /// <summary>The absolute, cleaned form of an operand (rule 1).</summary>
    public static string Absolute(string operand) => MountTable.Clean(operand.StartsWith('/') ? operand : "/" + operand);

    /// <summary>Where a path is: its mount and the path inside it; ENOENT outside every mount.</summary>
    public StorageStatus Locate(string path, out Mount mount, out string inner)
    {
        if (Mounts.Resolve(Absolute(path), out var m, out inner)) { mount = m!; return StorageStatus.Ok; }
        mount = null!;
        return StorageStatus.NoSuchObject;
    }

    /// <summary>stat(2) (follow) or lstat(2) of a path of the host's tree.</summary>
    public StorageStatus Stat(string path, bool follow, out FileAttributes attributes, out Mount mount, out string inner)
    {
        attributes = default;
        var where = Locate(path, out mount, out inner);
        if (where != StorageStatus.Ok) return where;
        return (follow ? mount.FileSystem.Stat(inner, out attributes) : mount.FileSystem.StatLink(inner, out attributes)).Status;
    }

    public StorageStatus Stat(string path, bool follow, out FileAttributes attributes) => Stat(path, follow, out attributes, out _, out _);

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
