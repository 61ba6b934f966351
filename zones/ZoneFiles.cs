using SmartOS.Netstack;
using SmartOS.Storage;
using FileAttributes = SmartOS.Storage.FileAttributes;

namespace SmartOS.Zones;

/// <summary>One lofs mount of an lx zone as Linux makes it (ZoneFiles.LinuxBinds): Source, a path Linux
/// sees, bind-mounted at Target, under the zone's root as Linux sees it; read-only when ReadOnly.</summary>
public readonly record struct LinuxBind(string Source, string Target, bool ReadOnly);

/// <summary>
/// The netstack programs' file seam (netstack/Programs/ProgramContext.cs, IProgramFiles) over a zone's
/// view (FileView.cs): httpd in a zone serves the zone's own files, resolved in its root as the file
/// commands resolve them, links and ".." included. Reads run on the loop thread, as every program does;
/// an access time a read changes is committed with the pool's next commit.
/// </summary>
public sealed class ZoneFiles : IProgramFiles
{
    private readonly FileView _view;

    private ZoneFiles(FileView view) => _view = view;

    /// <summary>The files of a zone, or null when it has no dataset (FileView rule 4).</summary>
    public static ZoneFiles? For(MountTable mounts, Zone zone)
        => FileView.ForZone(mounts, zone, out _) is { } view ? new ZoneFiles(view) : null;

    /// <summary>
    /// An lx zone's root as Linux sees it (real time): the zone's root dataset shown to Linux through
    /// FUSE (MountTable rule 7; at the host's root directory's mnt/ plus its mountpoint, as `zfs mount`
    /// shows it), and root/ in it, where the zone's Linux programs are chrooted (zlogin). Null without
    /// a problem for a zone without a dataset (its programs run on the machine's root, as before);
    /// null with the problem when the dataset cannot be shown to Linux.
    /// </summary>
    public static string? LinuxRoot(Host host, Zone zone, out string? problem)
    {
        problem = null;
        if (FileView.ForZone(host.Mounts, zone, out _) is not { } view) return null;
        string? shown = ShowToLinux(host, zone, view.Dataset!, "its root dataset", out problem);
        return shown is null ? null : shown + "/root";
    }

    /// <summary>Where Linux sees a dataset: its FUSE mount, made at the host's root directory's mnt/
    /// plus its mountpoint when it has none yet (MountTable rule 7). Null with the problem when it
    /// cannot be shown.</summary>
    private static string? ShowToLinux(Host host, Zone zone, string dataset, string what, out string? problem)
    {
        problem = null;
        if (host.Mounts.ExposedAt(dataset) is string shown) return shown;
        string? root = host.Pools.Root;
        string? why = host.World.Driver is null ? "the host does not run in real time"
            : root is null ? "the host has no root directory" : FuseMount.Unavailable();
        if (why is not null)
        {
            problem = $"zone '{zone.Name}': {what} {dataset} cannot be shown to Linux: {why}";
            return null;
        }
        string path = Path.Join(root, "mnt", host.Mounts.Find(dataset)!.MountPoint);
        var exposed = host.Mounts.Expose(dataset, host.Scheduler, host.World.Driver!, path);
        if (!exposed.IsOk)
        {
            problem = $"zone '{zone.Name}': cannot mount '{path}': {exposed.Reason ?? StorageStatusText.Of(exposed.Status)}";
            return null;
        }
        return path;
    }

    /// <summary>
    /// The lofs mounts (zonecfg `add fs`) of a running lx zone on a dataset as Linux makes them: each
    /// special, shown through FUSE (its dataset's mount), is bind-mounted at root + dir in the mount
    /// namespace of the zone's program (zlogin), read-only with ro. Both paths are resolved here, in
    /// the global zone's view and in the zone's, so they hold no symbolic link for Linux to follow out
    /// of the zone's root; a dir that does not exist yet is made in the zone (0755, as zoneadmd makes
    /// mount points). Null with the problem when one cannot be made; empty for a zone without lofs.
    /// </summary>
    public static List<LinuxBind>? LinuxBinds(Host host, Zone zone, string root, out string? problem)
    {
        problem = null;
        var binds = new List<LinuxBind>();
        if (FileView.ForZone(host.Mounts, zone, out _) is not { } view) return binds;
        var global = FileView.Global(host.Mounts);
        for (int i = 0; i < view.Lofs.Count; i++)
        {
            var fs = view.Lofs[i];
            if (global.Resolve(fs.Special, true, out var at) != StorageStatus.Ok)
            {
                problem = $"zone '{zone.Name}': could not verify fs {fs.Dir}: could not access {fs.Special}: No such file or directory";
                return null;
            }
            if (ShowToLinux(host, zone, at.Mount.Dataset, $"the dataset of fs {fs.Dir},", out problem) is not string shown) return null;
            // The dir as the zone sees it before this mount: under the lofs mounts of its parents only.
            var below = view.WithLofs(i);
            var status = below.Walk(fs.Dir, true, out string dir);
            if (status == StorageStatus.Ok) status = MakeDirectories(below, dir);
            if (status != StorageStatus.Ok)
            {
                problem = $"zone '{zone.Name}': cannot mount fs {fs.Dir}: {StorageStatusText.Of(status)}";
                return null;
            }
            binds.Add(new LinuxBind(at.Inner == "/" ? shown : shown + at.Inner, root + dir, fs.ReadOnly));
        }
        return binds;
    }

    /// <summary>mkdir -p of a view path whose links are already replaced (FileView.Walk).</summary>
    private static StorageStatus MakeDirectories(FileView view, string path)
    {
        string prefix = "";
        foreach (string name in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            prefix += "/" + name;
            var status = view.Resolve(prefix, false, out var at);
            if (status != StorageStatus.Ok) return status;
            var fs = at.Mount.FileSystem;
            var found = fs.StatLink(at.Inner, out var attributes);
            if (found.Status == StorageStatus.NoSuchObject)
            {
                if (at.ReadOnly) return StorageStatus.ReadOnly;
                var made = fs.MakeDirectory(at.Inner, 0x1ED, 0, 0, out _);   // 0755
                if (!made.IsOk) return made.Status;
                // As every file command (MountTable rule 5): what was made is on disk before the mount.
                var committed = at.Mount.Pool.Commit();
                if (!committed.IsOk) return committed.Status;
            }
            else if (!found.IsOk) return found.Status;
            else if (attributes.Type != FileType.Directory) return StorageStatus.NotDirectory;
        }
        return StorageStatus.Ok;
    }

    public ProgramFileStatus Probe(string path)
    {
        var status = Find(path, out _, out var attributes);
        if (status != ProgramFileStatus.Ok) return status;
        return attributes.Type == FileType.Directory ? ProgramFileStatus.IsDirectory : ProgramFileStatus.Ok;
    }

    public ProgramFileStatus ReadAll(string path, int maxBytes, out byte[] contents)
    {
        contents = [];
        var status = Find(path, out var fs, out var attributes);
        if (status != ProgramFileStatus.Ok) return status;
        if (attributes.Type == FileType.Directory) return ProgramFileStatus.IsDirectory;
        if (attributes.Size > maxBytes) return ProgramFileStatus.TooLarge;
        var data = new byte[attributes.Size];
        for (int at = 0; at < data.Length;)
        {
            if (!fs!.Read(attributes.Inode, at, data.AsSpan(at), out int read).IsOk) return ProgramFileStatus.IoError;
            if (read == 0) break;
            at += read;
        }
        contents = data;
        return ProgramFileStatus.Ok;
    }

    private ProgramFileStatus Find(string path, out ZplFileSystem? fs, out FileAttributes attributes)
    {
        fs = null;
        attributes = default;
        var status = _view.Resolve(path, follow: true, out var at);
        if (status == StorageStatus.Ok) status = at.Mount.FileSystem.Stat(at.Inner, out attributes).Status;
        if (status == StorageStatus.Ok) fs = at.Mount.FileSystem;
        return status switch
        {
            StorageStatus.Ok => ProgramFileStatus.Ok,
            StorageStatus.NotDirectory => ProgramFileStatus.NotDirectory,
            StorageStatus.NoSuchObject or StorageStatus.SymlinkLoop or StorageStatus.NameTooLong => ProgramFileStatus.NotFound,
            _ => ProgramFileStatus.IoError,
        };
    }
}
