/*
 * Zones on datasets: a zone's root file system is a filesystem of the host's `zones` pool, as on
 * SmartOS, made when the zone is installed and destroyed when it is uninstalled.
 *
 * Terms
 *   zones pool    the host's pool named `zones` (PoolTable.EnsureZonesPool on a running host, `zpool
 *                 create zones DISK` in a scenario). A host without one keeps zones without datasets:
 *                 everything here is then a no-op and a vmadm quota is only recorded (Host.cs).
 *   zone dataset  the filesystem whose mountpoint is the zone's zonepath, named as zoneadm's path2name
 *                 names it: the dataset mounted at the zonepath's parent directory, then the zonepath's
 *                 last component (/zones/UUID -> zones/UUID). Its root/ is the zone's root directory.
 *   image         the filesystem zones/IMAGE_UUID with its snapshot @final (imgadm's; the image store
 *                 keeps the manifest). A zone installed from an image is a clone of IMAGE@final.
 *   delegated     zones/UUID/data, which vmadm create makes for delegate_dataset as VM.js does (a plain
 *                 `zfs create`); vmadm get lists it under datasets.
 *   vm snapshot   a snapshot named vmsnap-NAME of the zone dataset (and of a bhyve VM's disk volumes
 *                 zones/UUID-diskN): vmadm create-snapshot's; vmadm get lists only those, by NAME.
 *
 * Rules
 *   1. install (vmadm create, zoneadm install) clones IMAGE@final when given an image, else creates an
 *      empty filesystem and makes root/ (0755) in it; the quota (GiB, 0 = none) is set in the same
 *      create or clone; the dataset is mounted at the zonepath before the zone counts as installed. A
 *      step that fails undoes the steps before it, so a failed install leaves no dataset, no mountpoint
 *      directory and no zone (Host.cs rule 3).
 *   2. A zone's quota is its dataset's quota property: the storage layer refuses a write past it with
 *      EDQUOT (Dsl.cs rule 5); vmadm update sets it while the zone runs, and a quota below what the
 *      dataset uses is refused in zfs's words before the configuration changes.
 *   3. uninstall (vmadm delete, zoneadm uninstall) unmounts the zone dataset and destroys it with its
 *      children and snapshots, then its mountpoint directory. The image it was cloned from stays; a
 *      SUNWzoneN snapshot that zoneadm clone took for it goes once nothing else is cloned from it, as
 *      zoneadm's destroy_zfs does.
 *   4. zoneadm clone takes SOURCE@SUNWzoneN (N one more than the highest there, zfs.c's take_snapshot)
 *      or uses -s's snapshot, and clones it at the target's zonepath. The source must be installed and
 *      have nothing mounted beneath its zonepath (zonecfg_find_mounts).
 *   5. vm snapshots follow VM.js: a name of 1 to 64 characters of [A-Za-z0-9-_.:%]; none for kvm VMs or
 *      VMs with a delegated dataset; rollback stops a running VM, rolls back destroying later snapshots
 *      (zfs rollback -r) and starts the VM. A mounted dataset is unmounted around a rollback (the mount
 *      holds it, MountTable rule 2) and mounted again whatever the outcome.
 *   6. Every change commits its pool before the call returns (Dsl.cs rule 6, MountTable rule 5), so a
 *      host reboot finds the datasets, their quotas and snapshots as the commands left them.
 *
 *   7. zoneadm uninstall of a zone whose dataset other datasets are cloned from (zoneadm clone of it,
 *      a zfs clone of one of its snapshots) does what zoneadm's destroy_zfs does: the clone of the
 *      youngest such snapshot is promoted (promote_all_clones; the zone dataset's SUNWzoneN snapshots
 *      renamed past the clone's first, as promote_clone does), so it takes those snapshots and the
 *      zone dataset, now its clone, is destroyed as in rule 3, with the snapshot it was cloned from
 *      when that was a SUNWzoneN one. If zfs refuses the promote or the destroy (a child dataset's
 *      snapshot with clones elsewhere), the promote and the renames are undone and the zone stays
 *      installed and whole. vmadm delete does not promote: it refuses with zfs's words.
 *
 * Not done yet: zoneadm clone of a zone whose zonepath is not a dataset (zoneadm copies it);
 * zfs_io_priority is kept, not enforced (the pool has no I/O
 * scheduler per dataset).
 */
using System.Globalization;
using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Zones;

/// <summary>A zone's dataset: its pool and name.</summary>
public readonly record struct ZoneDataset(Pool Pool, string Name);

/// <summary>Zones on datasets (see the theory statement above).</summary>
public static class VmDatasets
{
    public const string PoolName = "zones";
    /// <summary>VM.js's DEFAULT_QUOTA and DEFAULT_BHYVE_QUOTA, in GiB: what a VM made on a zones pool
    /// gets when its payload gives no quota.</summary>
    public const long DefaultQuotaGiB = 10, DefaultBhyveQuotaGiB = 1;
    public const string ImageSnapshot = "final";
    public const string SnapshotPrefix = "vmsnap-";
    /// <summary>VM.js's MAX_SNAPNAME_LENGTH.</summary>
    public const int MaxSnapshotName = 64;
    private const string CloneSnapshotPrefix = "SUNWzone";
    private const uint RootMode = 0x1ED; // 0755, as the joyent brand leaves root/

    public static Pool? ZonesPool(Host host) => host.Pools.Find(PoolName);

    // ---- naming ---------------------------------------------------------------------------------

    /// <summary>zoneadm's path2name: the dataset a zonepath names (the dataset mounted at its parent
    /// directory, then its last component), whether or not it exists; null with the brand's words when
    /// the parent directory is no dataset's mountpoint.</summary>
    public static ZoneDataset? Target(Host host, string zonepath, out string? why)
    {
        why = null;
        string clean = MountTable.Clean(zonepath);
        int slash = clean.LastIndexOf('/');
        string parentDir = slash == 0 ? "/" : clean[..slash];
        if (clean == "/" || host.Mounts.MountedAt(parentDir) is not Mount parent)
        {
            why = $"Brand error: missing parent ZFS dataset for {parentDir}";
            return null;
        }
        return new ZoneDataset(parent.Pool, parent.Dataset + "/" + clean[(slash + 1)..]);
    }

    /// <summary>The zone's dataset when the host has a zones pool and the dataset exists, else null.</summary>
    public static ZoneDataset? Of(Host host, ZoneConfig c)
    {
        if (ZonesPool(host) is null || c.ZonePath is null) return null;
        return Target(host, c.ZonePath, out _) is ZoneDataset ds && ds.Pool.Datasets.Exists(ds.Name) ? ds : null;
    }

    /// <summary>Whether a brand's root comes from image_uuid: joyent and lx zones; a bhyve or kvm
    /// VM's image_uuid is its disk's (engineer D's volumes), and its root dataset starts empty.</summary>
    private static bool RootFromImage(ZoneConfig c) => !HvmGuest.IsHvm(c.Brand) && c.Vm?.ImageUuid != null;

    /// <summary>Whether a VM has delegate_dataset: its configuration delegates DATASET/data (the zonecfg
    /// dataset resource vmadm create adds for it, ZoneDatasets.cs).</summary>
    private static bool Delegates(ZoneConfig c, ZoneDataset ds) => c.Vm != null && c.Datasets.Contains(ds.Name + "/data");

    // ---- vmadm create ---------------------------------------------------------------------------

    /// <summary>
    /// What vmadm create checks and fills in for a VM's datasets before anything is made (VmModel.BuildCreate):
    /// on a zones pool, the default quota and that the image is installed ("Invalid value(s) for:
    /// image_uuid", VM.js's words for an unknown image); without one, delegate_dataset is refused.
    /// </summary>
    public static void CheckCreate(Host host, ZoneConfig cfg)
    {
        var vm = cfg.Vm!;
        var pool = ZonesPool(host);
        if (pool is null)
        {
            if (cfg.Datasets.Count > 0)
                throw new VmModel.PayloadError("Unsupported property(s): delegate_dataset (the host has no zones pool to make zones/UUID/data on)");
            return;
        }
        vm.Quota ??= cfg.Brand == "bhyve" ? DefaultBhyveQuotaGiB : DefaultQuotaGiB;
        if (RootFromImage(cfg) && host.Images.CheckForBrand(vm.ImageUuid!, cfg.Brand) is not null)
            throw new VmModel.PayloadError("Invalid value(s) for: image_uuid");
    }

    // ---- install and uninstall (ZoneTable) ------------------------------------------------------

    /// <summary>What zoneadm install's -t and -q (Given), or a VM's image_uuid and quota, ask of the
    /// install. Existing: the dataset at the zonepath is already there (a received VM, zoneadm -x
    /// nodataset's case) and is used as it is, mounted if it is not.</summary>
    public sealed record InstallOptions(string? Image, long? QuotaGiB, bool Given = true, bool Existing = false);

    /// <summary>The install options of a VM: its image (for a joyent or lx root) and quota, which without
    /// a zones pool are only recorded (Host.cs).</summary>
    internal static InstallOptions ForVm(ZoneConfig c) => new(RootFromImage(c) ? c.Vm!.ImageUuid : null, c.Vm!.Quota, Given: false);

    /// <summary>Makes the zone's dataset (rule 1); Ok without a zones pool.</summary>
    internal static ZoneStatus Install(Host host, ZoneConfig c, InstallOptions options)
    {
        var pool = ZonesPool(host);
        if (pool is null)
        {
            return options.Given && (options.Image != null || options.QuotaGiB != null)
                ? ZoneStatus.Problem(ZoneError.BrandError, "Brand error: an image or a quota needs the zones pool (zpool create zones DISK)")
                : ZoneStatus.Ok;
        }
        if (Target(host, c.ZonePath!, out string? why) is not ZoneDataset ds) return ZoneStatus.Problem(ZoneError.BrandError, why!);
        if (options.Existing) return Adopt(host, ds);
        if (options.Image != null && host.Images.CheckForBrand(options.Image, c.Brand) is string bad)
            return ZoneStatus.Problem(ZoneError.BrandError, "Brand error: " + bad);
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        if (options.QuotaGiB is long q && q > 0) props["quota"] = q.ToString(CultureInfo.InvariantCulture) + "G";
        var made = options.Image is string image
            ? ds.Pool.Datasets.Clone($"{pool.Name}/{image}@{ImageSnapshot}", ds.Name, props)
            : ds.Pool.Datasets.Create(ds.Name, DatasetType.Filesystem, props);
        if (!made.IsOk) return Failed(made);
        var finished = Populate(host, ds, Delegates(c, ds));
        if (!finished.IsOk)
        {
            Destroy(host, ds, c.ZonePath!);
            return Failed(finished);
        }
        return ZoneStatus.Ok;
    }

    /// <summary>Installs a zone on a dataset that is already there: mounted, it is the zone's root.</summary>
    private static ZoneStatus Adopt(Host host, ZoneDataset ds)
    {
        if (!ds.Pool.Datasets.Exists(ds.Name))
            return ZoneStatus.Problem(ZoneError.BrandError, $"Brand error: cannot open '{ds.Name}': dataset does not exist");
        if (host.Mounts.Find(ds.Name) != null) return ZoneStatus.Ok;
        var mounted = host.Mounts.Mount(ds.Name);
        return mounted.IsOk ? ZoneStatus.Ok : Failed(mounted);
    }

    /// <summary>Mounts a new zone dataset, makes root/ if it has none and the delegated dataset if asked, and commits.</summary>
    private static StorageResult Populate(Host host, ZoneDataset ds, bool delegated)
    {
        var mounted = host.Mounts.Mount(ds.Name);
        if (!mounted.IsOk) return mounted;
        var fs = host.Mounts.Find(ds.Name)!.FileSystem;
        // A clone of an image already holds root/: leaving it untouched keeps the clone free (a clone
        // shares every block of its origin, Dsl.cs).
        if (!fs.Stat("/root", out _).IsOk)
        {
            var root = fs.MakeDirectory("/root", RootMode, 0, 0, out _);
            if (!root.IsOk) return root;
        }
        if (delegated)
        {
            string data = ds.Name + "/data";
            var created = ds.Pool.Datasets.Create(data, DatasetType.Filesystem);
            if (!created.IsOk) return created;
            var dataMounted = host.Mounts.Mount(data);
            if (!dataMounted.IsOk) return dataMounted;
        }
        return ds.Pool.Commit();
    }

    /// <summary>Destroys the zone's dataset if it has one (rule 3), first handing its snapshots that
    /// other datasets are cloned from to the youngest such clone when promoteClones (rule 7); Ok
    /// without one.</summary>
    internal static ZoneStatus Uninstall(Host host, ZoneConfig c, bool promoteClones)
    {
        if (Of(host, c) is not ZoneDataset ds) return ZoneStatus.Ok;
        var undo = new List<(string From, string To)>();
        string? promoted = null;
        if (promoteClones)
        {
            var handed = PromoteYoungestClone(ds, undo, out promoted);
            if (!handed.IsOk) return Failed(handed);
        }
        var destroyed = Destroy(host, ds, c.ZonePath!);
        if (destroyed.IsOk) return ZoneStatus.Ok;
        if (promoted is not null) UndoPromote(ds, undo);
        return Failed(destroyed);
    }

    /// <summary>
    /// zoneadm's promote_all_clones (rule 7): the youngest snapshot of the zone dataset that a
    /// filesystem or volume outside its tree is cloned from; its first such clone is promoted, so it
    /// takes that snapshot and every older one, and the zone dataset becomes a clone of it. The zone
    /// dataset's SUNWzoneN snapshots are renamed first, numbered on from the highest N of both, so
    /// that they cannot collide with the clone's own. Null promoted when nothing is cloned from it.
    /// A promote zfs refuses renames them back: nothing changed.
    /// </summary>
    private static StorageResult PromoteYoungestClone(ZoneDataset ds, List<(string From, string To)> renamed, out string? promoted)
    {
        promoted = null;
        var tree = ds.Pool.Datasets;
        if (!tree.List(ds.Name, 1, DatasetKinds.Snapshot, out var listed).IsOk || !tree.List(null, -1, DatasetKinds.Filesystem | DatasetKinds.Volume, out var heads).IsOk)
            return StorageResult.Success;
        var snapshots = new List<string>();
        foreach (string n in listed) if (n.StartsWith(ds.Name + "@", StringComparison.Ordinal)) snapshots.Add(n);
        var firstClone = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string head in heads)
        {
            if (head == ds.Name || head.StartsWith(ds.Name + "/", StringComparison.Ordinal)) continue;
            if (tree.Get(head, "origin", out var o).IsOk && o.Value != "-") firstClone.TryAdd(o.Value, head);
        }
        string? clone = null;
        for (int i = snapshots.Count - 1; i >= 0 && clone is null; i--) firstClone.TryGetValue(snapshots[i], out clone);
        if (clone is null) return StorageResult.Success;

        int next = Math.Max(NextCloneSnapshot(tree, clone), NextCloneSnapshot(tree, ds.Name));
        foreach (string snap in snapshots)
        {
            if (CloneSnapshotNumber(snap) < 0) continue;
            string to = $"{ds.Name}@{CloneSnapshotPrefix}{next++}";
            var r = tree.Rename(snap, to);
            if (!r.IsOk)
            {
                UndoPromote(ds, renamed, promoted: false);
                return r;
            }
            renamed.Add((snap, to));
        }
        var made = tree.Promote(clone);
        if (!made.IsOk)
        {
            UndoPromote(ds, renamed, promoted: false);
            return new StorageResult(made.Status, $"failed to promote {clone}", made.Reason ?? StorageStatusText.Of(made.Status));
        }
        promoted = clone;
        return StorageResult.Success;
    }

    /// <summary>Takes back a promotion whose destroy zfs refused: the zone dataset is promoted again (its
    /// snapshots come back) and the renamed SUNWzoneN snapshots get their names back.</summary>
    private static void UndoPromote(ZoneDataset ds, List<(string From, string To)> renamed, bool promoted = true)
    {
        var tree = ds.Pool.Datasets;
        if (promoted) tree.Promote(ds.Name);
        for (int i = renamed.Count - 1; i >= 0; i--) tree.Rename(renamed[i].To, renamed[i].From);
        renamed.Clear();
    }

    /// <summary>The N of NAME@SUNWzoneN, or -1 for any other snapshot name.</summary>
    private static int CloneSnapshotNumber(string snapshot)
    {
        string snap = snapshot[(snapshot.IndexOf('@') + 1)..];
        if (!snap.StartsWith(CloneSnapshotPrefix, StringComparison.Ordinal)) return -1;
        return int.TryParse(snap.AsSpan(CloneSnapshotPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : -1;
    }

    /// <summary>Unmounts and destroys a zone dataset with what is below it, removes its mountpoint
    /// directory and a zoneadm clone snapshot it came from (rule 3). A refused destroy mounts it again.</summary>
    private static StorageResult Destroy(Host host, ZoneDataset ds, string zonepath)
    {
        var tree = ds.Pool.Datasets;
        string? origin = tree.Get(ds.Name, "origin", out var o).IsOk && o.Value != "-" ? o.Value : null;
        var below = tree.List(ds.Name, -1, DatasetKinds.Filesystem, out var names).IsOk ? names : [ds.Name];
        for (int i = below.Count - 1; i >= 0; i--)
            if (host.Mounts.Find(below[i]) != null) host.Mounts.Unmount(below[i], force: true);
        var destroyed = tree.Destroy(ds.Name, DestroyFlags.Recursive);
        if (!destroyed.IsOk)
        {
            foreach (string name in below) host.Mounts.Mount(name);
            return destroyed;
        }
        // zoneadm's destroy_zfs removes the clone's origin when nothing else depends on it; a refused
        // destroy (another clone still uses it) leaves it, as zoneadm does.
        if (origin != null && origin[(origin.IndexOf('@') + 1)..].StartsWith(CloneSnapshotPrefix, StringComparison.Ordinal))
            tree.Destroy(origin);
        if (host.Mounts.Resolve(zonepath, out var parent, out string inner) && inner != "/")
            parent!.FileSystem.RemoveDirectory(inner);
        return ds.Pool.Commit();
    }

    /// <summary>A storage failure as the zone table reports it (zfs's own words).</summary>
    private static ZoneStatus Failed(StorageResult r) => ZoneStatus.Problem(ZoneError.System, r.Message);

    // ---- zoneadm clone --------------------------------------------------------------------------

    /// <summary>
    /// zoneadm clone's dataset work (rule 4): snapshots the source's dataset (or takes -s's snapshot,
    /// a full name or one of the source dataset's), clones it at the target's zonepath and mounts it.
    /// <paramref name="output"/> gets what zoneadm prints. Changes nothing on failure.
    /// </summary>
    internal static ZoneStatus Clone(Host host, ZoneConfig target, ZoneConfig source, string? snapshot, List<string> output)
    {
        if (ZonesPool(host) is null)
            return ZoneStatus.Problem(ZoneError.System, "clone needs the zones pool: without one a zone has no dataset to clone, and copying a zonepath is not supported here");
        if (Of(host, source) is not ZoneDataset src)
            return ZoneStatus.Problem(ZoneError.System, $"{source.ZonePath} is not a ZFS dataset: copying a zonepath is not supported here");
        string srcPath = MountTable.Clean(source.ZonePath!);
        var beneath = new List<string>();
        foreach (var m in host.Mounts.List)
            if (m.MountPoint.StartsWith(srcPath + "/", StringComparison.Ordinal)) beneath.Add("  " + m.MountPoint);
        if (beneath.Count > 0)
            return ZoneStatus.Problem(ZoneError.System, $"These file-systems are mounted on subdirectories of {srcPath}.\n" + string.Join('\n', beneath));
        if (Target(host, target.ZonePath!, out string? why) is not ZoneDataset dst) return ZoneStatus.Problem(ZoneError.BrandError, why!);
        var tree = src.Pool.Datasets;
        string snap;
        bool taken = snapshot is null;
        if (snapshot is null)
        {
            snap = $"{src.Name}@{CloneSnapshotPrefix}{NextCloneSnapshot(tree, src.Name).ToString(CultureInfo.InvariantCulture)}";
            var made = tree.Snapshot(snap);
            if (!made.IsOk) return Failed(made);
        }
        else
        {
            snap = snapshot.Contains('@') ? snapshot : src.Name + "@" + snapshot;
            if (!tree.Exists(snap)) return Failed(new StorageResult(StorageStatus.NoSuchDataset, $"cannot open '{snap}'"));
        }
        output.Add($"Cloning snapshot {snap}");
        var cloned = dst.Pool.Datasets.Clone(snap, dst.Name);
        var mounted = cloned.IsOk ? host.Mounts.Mount(dst.Name) : cloned;
        if (!mounted.IsOk)
        {
            if (cloned.IsOk) Destroy(host, dst, target.ZonePath!);
            if (taken) tree.Destroy(snap);
            src.Pool.Commit();
            return Failed(mounted);
        }
        if (taken) output.Add("Instead of copying, a ZFS clone has been created for this zone.");
        var committed = dst.Pool.Commit();
        return committed.IsOk ? ZoneStatus.Ok : Failed(committed);
    }

    /// <summary>One more than the highest N of the dataset's SUNWzoneN snapshots (zfs.c get_snap_max).</summary>
    private static int NextCloneSnapshot(DatasetTree tree, string dataset)
    {
        int max = 0;
        string prefix = dataset + "@" + CloneSnapshotPrefix;
        if (tree.List(dataset, 1, DatasetKinds.Snapshot, out var snaps).IsOk)
            foreach (string s in snaps)
                if (s.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(s.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                    max = Math.Max(max, n);
        return max + 1;
    }

    // ---- quota (rule 2) -------------------------------------------------------------------------

    /// <summary>Sets the VM's dataset quota to its configuration's (VM.js setQuota: "none" for 0);
    /// null when done or when there is no dataset, else zfs's refusal.</summary>
    public static string? ApplyQuota(Host host, Zone z, long? quotaGiB)
    {
        if (Of(host, z.Config) is not ZoneDataset ds) return null;
        string value = quotaGiB is long q && q > 0 ? q.ToString(CultureInfo.InvariantCulture) + "G" : "none";
        var set = ds.Pool.Datasets.Set(ds.Name, "quota", value);
        if (!set.IsOk) return set.Message;
        var committed = ds.Pool.Commit();
        return committed.IsOk ? null : committed.Message;
    }

    // ---- vmadm get ------------------------------------------------------------------------------

    /// <summary>What vmadm get shows of a VM's datasets (vmload's addRootDatasetProperties and
    /// addSnapshots): zfs_filesystem, zpool and snapshots (datasets, the delegated ones, are the
    /// configuration's: VmFields).</summary>
    public static void AddToJson(Host host, Zone z, JsonObject j)
    {
        if (Of(host, z.Config) is not ZoneDataset ds) return;
        j["zfs_filesystem"] = ds.Name;
        j["zpool"] = ds.Pool.Name;
        // VM.js's vmload: without the create-timestamp attr (a VM older than it, or one removed with
        // zonecfg), create_timestamp is the zone dataset's creation (test-defaults.js).
        if (!j.ContainsKey("create_timestamp") && ds.Pool.Datasets.Get(ds.Name, "creation", out var created).IsOk && created.Number is long seconds)
            j["create_timestamp"] = WallClock.Iso8601(seconds * 1_000_000_000);
        var list = new JsonArray();
        foreach (var s in Snapshots(ds))
        {
            var o = new JsonObject { ["name"] = s.Name, ["size"] = s.Written / 1024.0 / 1024.0 };
            o["created_at"] = WallClock.Iso8601(s.Creation * 1_000_000_000);
            list.Add(o);
        }
        j["snapshots"] = list;
    }

    /// <summary>A vm snapshot: its NAME (without vmsnap-), creation (Unix seconds) and written bytes.</summary>
    public readonly record struct VmSnapshot(string Name, long Creation, long Written);

    /// <summary>The zone dataset's vmsnap- snapshots, newest first (VM.js sorts by created_at; snapshots
    /// of the same second keep the order they were taken in).</summary>
    public static List<VmSnapshot> Snapshots(ZoneDataset ds)
    {
        var list = new List<VmSnapshot>();
        var tree = ds.Pool.Datasets;
        if (!tree.List(ds.Name, 1, DatasetKinds.Snapshot, out var names).IsOk) return list;
        string prefix = ds.Name + "@" + SnapshotPrefix;
        foreach (string s in names)
        {
            if (!s.StartsWith(prefix, StringComparison.Ordinal) || s.Length == prefix.Length) continue;
            long creation = tree.Get(s, "creation", out var c).IsOk ? c.Number ?? 0 : 0;
            long written = tree.Get(s, "written", out var w).IsOk ? w.Number ?? 0 : 0;
            list.Add(new VmSnapshot(s[prefix.Length..], creation, written));
        }
        return [.. list.OrderByDescending(s => s.Creation)]; // a stable sort: ties keep their order
    }

    // ---- vm snapshots (rule 5) ------------------------------------------------------------------

    /// <summary>VM.js's validSnapshotName.</summary>
    public static bool IsValidSnapshotName(string name)
    {
        if (name.Length is < 1 or > MaxSnapshotName) return false;
        foreach (char ch in name)
            if (!char.IsAsciiLetterOrDigit(ch) && ch is not ('-' or '_' or '.' or ':' or '%')) return false;
        return true;
    }

    /// <summary>The datasets a vm snapshot covers: the zone dataset and a bhyve VM's disk volumes
    /// POOL/UUID-diskN (HvmGuest's disks; VM.js snapshots a bhyve VM's tree with -r).</summary>
    private static List<string> Covered(ZoneDataset ds, ZoneConfig c)
    {
        var names = new List<string> { ds.Name };
        if (c.Brand != "bhyve" || !ds.Pool.Datasets.List(ds.Pool.Name, 1, DatasetKinds.Volume, out var volumes).IsOk) return names;
        string prefix = ds.Name + "-disk";
        foreach (string v in volumes)
            if (v.StartsWith(prefix, StringComparison.Ordinal) && v.Length > prefix.Length && v.AsSpan(prefix.Length).IndexOfAnyExceptInRange('0', '9') < 0)
                names.Add(v);
        return names;
    }

    /// <summary>The checks VM.js makes before any snapshot operation; the zone dataset, or null with the error.</summary>
    private static ZoneDataset? SnapshotTarget(Host host, Zone z, string name, out string? error)
    {
        error = null;
        if (!IsValidSnapshotName(name)) { error = "Invalid snapshot name"; return null; }
        if (z.Config.Brand == "kvm") { error = $"snapshots for {z.Config.Brand} VMs currently unsupported"; return null; }
        if (Of(host, z.Config) is not ZoneDataset ds) { error = "vmobj missing zfs_filesystem, cannot create snapshot"; return null; }
        return ds;
    }

    private static bool HasSnapshot(ZoneDataset ds, string name)
        => ds.Pool.Datasets.Exists($"{ds.Name}@{SnapshotPrefix}{name}");

    /// <summary>vmadm create-snapshot: null, or VM.js's error.</summary>
    public static string? CreateSnapshot(Host host, Zone z, string name)
    {
        if (SnapshotTarget(host, z, name, out string? error) is not ZoneDataset ds) return error;
        if (Delegates(z.Config, ds) && ds.Pool.Datasets.Exists(ds.Name + "/data"))
            return "Cannot currently snapshot zones that have datasets";
        if (HasSnapshot(ds, name)) return $"snapshot with name \"{name}\" already exists.";
        var tree = ds.Pool.Datasets;
        var done = new List<string>();
        foreach (string dataset in Covered(ds, z.Config))
        {
            string snap = $"{dataset}@{SnapshotPrefix}{name}";
            var made = tree.Snapshot(snap);
            if (!made.IsOk)
            {
                // zfs snapshot of several names is one operation: undo the ones already taken.
                foreach (string d in done) tree.Destroy(d);
                ds.Pool.Commit();
                return made.Message;
            }
            done.Add(snap);
        }
        return Committed(ds);
    }

    /// <summary>vmadm delete-snapshot: null, or VM.js's error.</summary>
    public static string? DeleteSnapshot(Host host, Zone z, string name)
    {
        if (SnapshotTarget(host, z, name, out string? error) is not ZoneDataset ds) return error;
        if (!HasSnapshot(ds, name)) return $"No snapshot named \"{name}\" for {z.Name}";
        var tree = ds.Pool.Datasets;
        foreach (string dataset in Covered(ds, z.Config))
        {
            string snap = $"{dataset}@{SnapshotPrefix}{name}";
            if (!tree.Exists(snap)) continue;
            var destroyed = tree.Destroy(snap);
            if (!destroyed.IsOk) return destroyed.Message;
        }
        return Committed(ds);
    }

    /// <summary>
    /// vmadm rollback-snapshot (rule 5): a running VM is stopped first; the datasets go back to the
    /// snapshot, later ones destroyed; then the VM is started, as VM.js does, when the host runs
    /// (<paramref name="start"/>). Null, or the error.
    /// </summary>
    public static string? RollbackSnapshot(Host host, Zone z, string name, bool start)
    {
        if (SnapshotTarget(host, z, name, out string? error) is not ZoneDataset ds) return error;
        if (!HasSnapshot(ds, name)) return $"No snapshot named \"{name}\" for {z.Name}";
        if (z.State >= ZoneState.Ready && host.Zones.Halt(z.Name) is { IsOk: false } halted) return halted.Message;
        var tree = ds.Pool.Datasets;
        var mounted = new List<string>();
        if (tree.List(ds.Name, -1, DatasetKinds.Filesystem, out var below).IsOk)
            for (int i = below.Count - 1; i >= 0; i--)
                if (host.Mounts.Find(below[i]) != null && host.Mounts.Unmount(below[i], force: true).IsOk) mounted.Insert(0, below[i]);
        string? failure = null;
        foreach (string dataset in Covered(ds, z.Config))
        {
            string snap = $"{dataset}@{SnapshotPrefix}{name}";
            if (!tree.Exists(snap)) continue;
            var rolled = tree.Rollback(snap, DestroyFlags.Recursive);
            if (!rolled.IsOk) { failure = rolled.Message; break; }
        }
        foreach (string m in mounted) host.Mounts.Mount(m);
        failure ??= Committed(ds);
        if (failure != null || !start) return failure;
        var booted = host.Zones.Boot(z.Name);
        return booted.IsOk ? null : booted.Message;
    }

    private static string? Committed(ZoneDataset ds)
    {
        var committed = ds.Pool.Commit();
        return committed.IsOk ? null : committed.Message;
    }
}
