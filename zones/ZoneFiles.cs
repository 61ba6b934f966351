using SmartOS.Netstack;
using SmartOS.Storage;
using FileAttributes = SmartOS.Storage.FileAttributes;

namespace SmartOS.Zones;

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
        string dataset = view.Dataset!;
        string? shown = host.Mounts.ExposedAt(dataset);
        if (shown is null)
        {
            string? root = host.Pools.Root;
            string? why = host.World.Driver is null ? "the host does not run in real time"
                : root is null ? "the host has no root directory" : FuseMount.Unavailable();
            if (why is not null)
            {
                problem = $"zone '{zone.Name}': its root dataset {dataset} cannot be shown to Linux: {why}";
                return null;
            }
            string path = Path.Join(root, "mnt", host.Mounts.Find(dataset)!.MountPoint);
            var exposed = host.Mounts.Expose(dataset, host.Scheduler, host.World.Driver!, path);
            if (!exposed.IsOk)
            {
                problem = $"zone '{zone.Name}': cannot mount '{path}': {exposed.Reason ?? StorageStatusText.Of(exposed.Status)}";
                return null;
            }
            shown = path;
        }
        return shown + "/root";
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
