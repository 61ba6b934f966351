/*
 * A file view: the directory tree a command sees, the global zone's or a non-global zone's, mapped onto
 * the host's one tree of mounts (MountTable.cs). It is illumos's lookuppn with a root vnode (chroot,
 * a zone's zone_rootvp) and lofs mounts over it; every file command (tools/Commands/Files.cs) and the
 * netstack programs' file seam (ZoneFiles) resolve paths here, global zone and zones alike.
 *
 * Terms
 *   root         the host path that is "/" in the view: "/" for the global zone; a zone's zonepath +
 *                "/root" (its dataset zones/<uuid> is mounted at the zonepath; root/ is in it, as on
 *                SmartOS).
 *   lofs         a zonecfg `add fs` of type lofs (ZoneFs): the global path `special` is seen at `dir`
 *                in the zone while it is ready or running, read-only with options ro.
 *   view path    a path as the command in the view typed it; host path, where it lands on the host.
 *
 * Rules
 *   1. Resolution walks the view path one name at a time, as lookuppn does: "." is skipped, ".." goes
 *      to the parent of the directory reached so far and never above the view's root (a chroot's
 *      ".." at its root is the root), and each name is looked up with lstat in the mount its host
 *      path lands in. A symbolic link met on the way (and the last name, when the caller follows) is
 *      replaced by its target: an absolute target starts again from the view's root, a relative one
 *      from the link's directory. So no path, link or ".." reaches anything outside the root, and a
 *      link may cross mounts (a link in one dataset naming a file in another works, as on illumos).
 *      At most 40 links are followed (ELOOP, ZplFileSystem rule 6).
 *   2. A view path maps to a host path through the longest lofs dir that is the path or a prefix of
 *      it (special + the rest), else root + the path. The host path then lands in the mount with the
 *      longest mountpoint (MountTable rule "resolve"). A name that does not exist ends the walk: the
 *      rest is handed to the file system as is, which says ENOENT or ENOTDIR, and a create uses it.
 *   3. What a read-only lofs holds is read-only in the view: Resolve says so, and the file commands
 *      refuse every change under it with EROFS (the dataset below stays writable from the global zone
 *      and from other views, as with lofs).
 *   4. A zone has a view only when its zonepath is the mountpoint of a mounted dataset; a zone
 *      without one (no zones pool, or a zone made before the pool) has none, and its file commands
 *      say so (ForZone's problem).
 *
 * zoneadmd checks each special when the zone readies (ZoneTable.CheckFs) and keeps the mounts it made
 * (Zone.FsMounts): an fs committed while the zone runs applies at its next boot.
 *
 * An lx zone's Linux programs see the same root through FUSE (ZoneFiles.LinuxRoot): its root dataset
 * is shown to Linux at its first zlogin and the program is chrooted into root/ there, after its lofs
 * mounts are bind-mounted in the program's mount namespace (ZoneFiles.LinuxBinds, rules 2 and 3 as
 * Linux enforces them: the special's dataset shown through FUSE, read-only with ro: EROFS).
 *
 * Not done yet: the lofs dir is not created in the zone's root at boot (zoneadmd makes it): it is seen
 * in the view but not listed by ls of its parent until it is made (an lx zone's first zlogin makes
 * it); lofs options other than ro and rw; ".." in an operand is applied
 * lexically before the walk (FileTree.Absolute), so "link/.." is the directory holding the link.
 */
using SmartOS.Storage;

namespace SmartOS.Zones;

/// <summary>One lofs mount of a view (rule 2): seen at Dir in the view, held at Special on the host.</summary>
public readonly record struct LofsMount(string Dir, string Special, bool ReadOnly);

/// <summary>Where a view path landed: the mount, the path inside it, and whether it is read-only (rule 3).</summary>
public readonly record struct ViewLocation(Mount Mount, string Inner, bool ReadOnly, string HostPath);

/// <summary>The tree one command sees (see the theory statement above).</summary>
public sealed class FileView
{
    private readonly LofsMount[] _lofs;

    private FileView(MountTable mounts, string root, LofsMount[] lofs, string? dataset)
    {
        Mounts = mounts;
        Root = root;
        _lofs = lofs;
        Dataset = dataset;
    }

    public MountTable Mounts { get; }

    /// <summary>The host path that is "/" in the view.</summary>
    public string Root { get; }

    /// <summary>The zone's root dataset (zones/&lt;uuid&gt;), or null for the global zone's view.</summary>
    public string? Dataset { get; }

    public bool IsGlobal => Dataset is null;

    /// <summary>The lofs mounts of the view, in dir order.</summary>
    public IReadOnlyList<LofsMount> Lofs => _lofs;

    /// <summary>The global zone's view: the host's tree as it is.</summary>
    public static FileView Global(MountTable mounts) => new(mounts, "/", [], null);

    /// <summary>A zone's view (rule 4): null, with the reason, when the zone's files are on no dataset.
    /// Its lofs mounts apply while the zone is ready or running.</summary>
    public static FileView? ForZone(MountTable mounts, Zone zone, out string problem)
    {
        problem = "";
        string? zonepath = zone.Config.ZonePath;
        var mount = zonepath is null ? null : mounts.MountedAt(zonepath);
        if (mount is null)
        {
            problem = $"zone '{zone.Name}' has no dataset: its zonepath {zonepath ?? "(none)"} is on no mounted file system";
            return null;
        }
        var lofs = new List<LofsMount>();
        if (zone.State is ZoneState.Ready or ZoneState.Running)
            foreach (var fs in zone.FsMounts) lofs.Add(new LofsMount(MountTable.Clean(fs.Dir), MountTable.Clean(fs.Special), fs.ReadOnly));
        lofs.Sort((a, b) => string.CompareOrdinal(a.Dir, b.Dir));
        return new FileView(mounts, MountTable.Clean(zonepath!) + "/root", [.. lofs], mount.Dataset);
    }

    /// <summary>The same view with only its first count lofs mounts (in dir order, so a mount's parents
    /// come before it): where an lx zone's bind mount lands before it is made (ZoneFiles.LinuxBinds).</summary>
    public FileView WithLofs(int count) => new(Mounts, Root, _lofs[..count], Dataset);

    /// <summary>The host path of a cleaned view path, and whether a read-only lofs holds it (rule 2).</summary>
    public string HostPath(string viewPath, out bool readOnly)
    {
        readOnly = false;
        int best = -1;
        for (int i = 0; i < _lofs.Length; i++)
            if (Under(viewPath, _lofs[i].Dir) && (best < 0 || _lofs[i].Dir.Length > _lofs[best].Dir.Length)) best = i;
        if (best >= 0)
        {
            readOnly = _lofs[best].ReadOnly;
            return Join(_lofs[best].Special, viewPath[_lofs[best].Dir.Length..]);
        }
        return Join(Root, viewPath);
    }

    /// <summary>The view path a host path is seen at through the root, or null when it is outside it
    /// (df of a zone lists the mounts inside its root).</summary>
    public string? ViewPathOf(string hostPath)
    {
        if (!Under(hostPath, Root)) return null;
        return Root == "/" ? hostPath : hostPath.Length == Root.Length ? "/" : hostPath[Root.Length..];
    }

    /// <summary>
    /// Resolves a view path (absolute, or relative to the view's "/") to where it lands (rule 1):
    /// symbolic links on the way, and the last name's when follow, are replaced by their targets
    /// inside the view. ENOENT when it lands in no mount, ELOOP past 40 links.
    /// </summary>
    public StorageStatus Resolve(string path, bool follow, out ViewLocation location)
    {
        location = default;
        var status = Walk(path, follow, out string viewPath);
        if (status != StorageStatus.Ok) return status;
        string host = HostPath(viewPath, out bool readOnly);
        if (!Mounts.ResolveClean(host, out var mount, out string inner)) return StorageStatus.NoSuchObject;
        location = new ViewLocation(mount!, inner, readOnly, host);
        return StorageStatus.Ok;
    }

    /// <summary>The view path with every link replaced (rule 1), cleaned; the last name's link too when follow.</summary>
    public StorageStatus Walk(string path, bool follow, out string resolved)
    {
        Mounts.Refresh();
        var pending = new Stack<string>();
        Push(pending, path);
        var done = new List<string>();
        int links = 0;
        while (pending.Count > 0)
        {
            string name = pending.Pop();
            if (name == ".") continue;
            if (name == "..")
            {
                if (done.Count > 0) done.RemoveAt(done.Count - 1);
                continue;
            }
            done.Add(name);
            if (pending.Count == 0 && !follow) break;
            string host = HostPath(Compose(done), out _);
            if (!Mounts.ResolveClean(host, out var mount, out string inner) || !mount!.FileSystem.StatLink(inner, out var attributes).IsOk)
            {
                // Rule 2: the rest goes to the file system as typed (it says what is missing), its
                // "." and ".." applied here so that it stays under the root.
                while (pending.Count > 0)
                {
                    string rest = pending.Pop();
                    if (rest == "..") { if (done.Count > 0) done.RemoveAt(done.Count - 1); }
                    else if (rest != ".") done.Add(rest);
                }
                break;
            }
            if (attributes.Type != FileType.Symlink) continue;
            if (++links > ZplFileSystem.MaxSymlinks) { resolved = ""; return StorageStatus.SymlinkLoop; }
            if (!mount.FileSystem.ReadLink(inner, out string target).IsOk) continue;
            done.RemoveAt(done.Count - 1);
            if (target.StartsWith('/')) done.Clear();
            Push(pending, target);
        }
        resolved = Compose(done);
        return StorageStatus.Ok;
    }

    /// <summary>Pushes a path's names so that the first name is popped first.</summary>
    private static void Push(Stack<string> pending, string path)
    {
        string[] names = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = names.Length - 1; i >= 0; i--) pending.Push(names[i]);
    }

    private static string Compose(List<string> names) => "/" + string.Join('/', names);

    private static string Join(string root, string rest)
        => root == "/" ? (rest.Length == 0 ? "/" : rest) : rest is "" or "/" ? root : root + rest;

    private static bool Under(string path, string dir)
        => dir == "/" || path == dir || (path.StartsWith(dir, StringComparison.Ordinal) && path.Length > dir.Length && path[dir.Length] == '/');
}
