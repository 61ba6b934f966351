using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Zones;

/// <summary>
/// One disk of a bhyve or kvm VM, as zones.conf keeps it (SmartOS keeps it as a zonecfg device with
/// net-attrs): which volume it is and what vmadm shows of it that zfs does not hold. The volume's
/// size, block size, compression and refreservation are zfs's, read from the pool when shown.
/// </summary>
public sealed class VmDisk
{
    /// <summary>N of the volume zones/&lt;uuid&gt;-diskN; unique in the VM, never reused while the VM has the disk.</summary>
    public int Index { get; set; }
    public bool Boot { get; set; }
    public string Model { get; set; } = "virtio";
    public string Media { get; set; } = "disk";
    public string? ImageUuid { get; set; }
    /// <summary>MiB: the image's volsize when the disk was cloned from it.</summary>
    public long? ImageSize { get; set; }

    /// <summary>What a create or update asks zfs for (MiB for sizes; bytes for the block size); not kept.</summary>
    [JsonIgnore] public long? Size { get; set; }
    [JsonIgnore] public long? BlockSize { get; set; }
    [JsonIgnore] public string? Compression { get; set; }
    [JsonIgnore] public long? Refreservation { get; set; }
    /// <summary>The volume is to be made by this create or update (VmModel.ApplyDisks).</summary>
    [JsonIgnore] public bool New { get; set; }

    public VmDisk Clone() => new()
    {
        Index = Index, Boot = Boot, Model = Model, Media = Media, ImageUuid = ImageUuid, ImageSize = ImageSize,
        Size = Size, BlockSize = BlockSize, Compression = Compression, Refreservation = Refreservation, New = New,
    };
}

/// <summary>
/// vmadm's "disks" of bhyve and kvm VMs, each a volume of the host's `zones` pool (HvmGuest.cs: the
/// VMM attaches them as virtio-blk disks, in payload order).
/// </summary>
/// <remarks>
/// Rules
///   1. Disk N of VM U is the volume zones/U-diskN (SmartOS's kvm naming; its bhyve puts them at
///      zones/U/diskN: here both brands use the first, the team's one contract), its path
///      /dev/zvol/rdsk/zones/U-diskN. N is the lowest number no disk of the VM has, as VM.js picks it.
///   2. A disk is made from "size" (MiB; a new volume, refreservation = volsize unless given, as
///      VM.js's "auto") or from "image_uuid" (a clone of zones/IMAGE@final, which must be a volume;
///      "size" is then not taken, and "image_size", if given, must be the image's size).
///   3. Payloads are checked whole first (VmPayload.cs); then the volumes are made one by one, and a
///      volume zfs refuses (out of space, a bad property) undoes the ones made before it: the VM is
///      not created or not changed, and the message is zfs's ("cannot create 'zones/U-disk0': out of
///      space").
///   4. What is taken and not acted on is refused, never kept silently: models other than virtio
///      (the VMM has no other), media other than disk, "path"/"nocreate" (a disk is always a volume
///      of this VM), zpools other than zones, bhyve's pci_slot/notrim/guest_block_size/uuid.
///   5. vmadm update, as VM.js allows: add_disks and remove_disks only while the VM is stopped;
///      update_disks (by path) changes boot and model while stopped, compression and refreservation
///      at any time, and on bhyve size (grow; shrink only with dangerous_allow_shrink) while stopped.
///      Removed volumes are destroyed after the new configuration is written.
///   6. vmadm delete destroys the volumes with their snapshots. A host without a `zones` pool refuses
///      disks (create and add_disks) and says why.
/// </remarks>
public static partial class VmModel
{
    public const string DiskPool = "zones";
    public const int MaxDisks = SmartOS.Virt.Vm.MaxDisks;

    private static readonly string[] s_diskAddProps = ["size", "image_uuid", "image_size", "boot", "model", "block_size", "compression", "refreservation", "media", "zpool"];
    private static readonly string[] s_diskUpdateProps = ["path", "boot", "model", "size", "compression", "refreservation", "dangerous_allow_shrink"];
    private static readonly string[] s_diskUnsupported = ["path", "nocreate", "pci_slot", "notrim", "guest_block_size", "uuid", "zfs_filesystem"];
    /// <summary>update_disks keys VM.js allows while the VM runs.</summary>
    private static readonly string[] s_diskLive = ["path", "compression", "refreservation"];
    /// <summary>The update properties of bhyve and kvm VMs about disks (proptable.js).</summary>
    private static readonly string[] s_hvmDiskUpdateProps = ["add_disks", "update_disks", "remove_disks"];

    public static string DiskVolume(string uuid, int index) => $"{DiskPool}/{uuid}-disk{index.ToString(CultureInfo.InvariantCulture)}";
    public static string DiskPath(string uuid, int index) => "/dev/zvol/rdsk/" + DiskVolume(uuid, index);

    // ---- payloads -------------------------------------------------------------------------------

    /// <summary>The "disks" of a bhyve or kvm create payload into cfg (rules 2, 4); throws PayloadError.</summary>
    private static void ParseCreateDisks(Host host, JsonObject payload, ZoneConfig cfg, Dropped dropped)
    {
        if (payload["disks"] is not JsonNode node) return;
        var pool = RequireDiskPool(host, "disks");
        if (node is not JsonArray arr || arr.Any(e => e is not JsonObject)) throw new PayloadError("Invalid value(s) for: disks");
        if (arr.Count > MaxDisks) throw new PayloadError($"Invalid value(s) for: disks ({arr.Count} disks: the VMM has {MaxDisks} virtio-blk slots)");
        for (int i = 0; i < arr.Count; i++)
            cfg.Vm!.Disks.Add(ParseNewDisk(host, pool, (JsonObject)arr[i]!, $"disks.{i}", cfg.Brand, i, dropped));
    }

    private static Pool RequireDiskPool(Host host, string property)
        => host.Pools.Find(DiskPool) ?? throw new PayloadError(
            $"Invalid value(s) for: {property} (this host has no '{DiskPool}' pool to keep VM disks on; create it first: zpool create {DiskPool} DEVICE)");

    /// <summary>One disk of "disks" or "add_disks": checked against the pool (the image's snapshot), not made.</summary>
    private static VmDisk ParseNewDisk(Host host, Pool pool, JsonObject o, string path, string brand, int index, Dropped dropped)
    {
        CheckDiskNames(o, s_diskAddProps, path, "add", dropped);
        var d = new VmDisk { Index = index, New = true };
        if (o["boot"] is JsonNode b) d.Boot = Bool(b) ?? throw Bad(path + ".boot");
        if (o["model"] is JsonNode m) d.Model = CheckModel(m, brand);
        if (o["media"] is JsonNode me && Str(me) != "disk")
            throw new PayloadError($"Unsupported property(s): {path}.media={ConfigText.Echo(Str(me) ?? me.ToJsonString())} (this VMM has disks only, no cdrom)");
        if (o["zpool"] is JsonNode zp && Str(zp) != DiskPool)
            throw new PayloadError($"Invalid value(s) for: {path}.zpool ({ConfigText.Echo(Str(zp) ?? zp.ToJsonString())}: this host keeps VM disks on the '{DiskPool}' pool)");
        if (o["compression"] is JsonNode c) d.Compression = CheckCompression(c);
        if (o["refreservation"] is JsonNode r) d.Refreservation = Int(r) is >= 0 and < MaxDiskMiB ? Int(r) : throw Bad(path + ".refreservation");
        if (o["image_uuid"] is JsonNode img)
        {
            // With an image: size and block_size are the image's (VM.js warns and drops them).
            foreach (string k in (string[])["size", "block_size"])
                if (o.Remove(k)) dropped.Drop($"{path}.{k}");
            d.ImageUuid = Str(img) is string u && IsUuid(u) ? u : throw Bad(path + ".image_uuid");
            long imageMiB = ImageVolumeMiB(host, pool, d.ImageUuid, path, brand);
            if (o["image_size"] is JsonNode isz && Int(isz) != imageMiB)
                throw new PayloadError($"incorrect image_size value for image {d.ImageUuid} passed: {ConfigText.Echo(isz.ToJsonString())} should be: {imageMiB}");
            d.ImageSize = imageMiB;
            return d;
        }
        if (o.Remove("image_size")) dropped.Drop(path + ".image_size");
        if (o["size"] is not JsonNode size) throw new PayloadError($"Missing required properties: {path}.size");
        d.Size = Int(size) is >= 1 and <= MaxDiskMiB ? Int(size) : throw Bad($"{path}.size ({ConfigText.Echo(size.ToJsonString())}: MiB from 1 to {MaxDiskMiB})");
        if (o["block_size"] is JsonNode bs)
        {
            if (Int(bs) is not long bytes || bytes < 512 || bytes > Pool.MaxBlockSize || (bytes & (bytes - 1)) != 0)
                throw new PayloadError($"invalid .block_size({ConfigText.Echo(bs.ToJsonString())}), must be 512-{Pool.MaxBlockSize} and a power of 2");
            d.BlockSize = bytes;
        }
        return d;
    }

    /// <summary>The largest disk in MiB: 2^43 MiB is the largest byte count a signed 64-bit value holds.</summary>
    public const long MaxDiskMiB = 1L << 43;

    private static PayloadError Bad(string what) => new("Invalid value(s) for: " + what);

    /// <summary>Unknown disk properties are warned about and dropped (VM.js), the ones rule 4 names refused.</summary>
    private static void CheckDiskNames(JsonObject o, string[] allowed, string path, string action, Dropped dropped)
    {
        var unsup = new List<string>();
        foreach (var (key, _) in o.ToList())
        {
            if (Array.IndexOf(allowed, key) >= 0) continue;
            if (Array.IndexOf(s_diskUnsupported, key) >= 0) unsup.Add("disks.*." + key);
            else if (key == "block_size" && action == "update") throw new PayloadError("cannot change .block_size for a disk after creation");
            else
            {
                dropped.Drop($"{path}.{key}");
                o.Remove(key);
            }
        }
        if (unsup.Count > 0) throw new PayloadError("Unsupported property(s): " + string.Join(',', unsup) + " (not enforced by this SmartOS yet)");
    }

    private static string CheckModel(JsonNode m, string brand)
    {
        string? model = Str(m);
        if (model == "virtio") return model;
        string valid = brand == "bhyve" ? "virtio,ahci,nvme" : "virtio,scsi,ide";
        throw new PayloadError($"\"{ConfigText.Echo(model ?? m.ToJsonString())}\" is not a valid disk model for {brand} brand. Valid are: {valid}"
            + " (this VMM has virtio only)");
    }

    private static string CheckCompression(JsonNode c)
    {
        var choices = DatasetTree.Describe("compression")!.Choices!;
        if (Str(c) is string s && choices.Contains(s)) return s;
        throw new PayloadError("invalid compression type for disk, must be one of: " + string.Join(", ", choices));
    }

    /// <summary>The image's volsize in MiB; refused unless zones/IMAGE@final is a volume's snapshot (rule 2).</summary>
    private static long ImageVolumeMiB(Host host, Pool pool, string image, string path, string brand)
    {
        // The image store decides whether the image is installed and of a type the brand's disks take
        // (zvol); VM.js words both as an invalid image_uuid, with the image store's detail.
        if (host.Images.CheckForBrand(image, brand) is string problem)
            throw new PayloadError($"Invalid value(s) for: {path}.image_uuid ({problem})");
        long bytes = pool.Datasets.VolumeSize($"{DiskPool}/{image}");
        if (bytes < 0) throw new PayloadError($"Invalid value(s) for: {path}.image_uuid (image {image} is not a volume)");
        return (bytes + (1L << 20) - 1) >> 20;
    }

    /// <summary>add_disks, update_disks and remove_disks of an update into cfg (rule 5); throws PayloadError.</summary>
    private static void ParseDiskUpdate(Host host, Zone vm, JsonObject payload, ZoneConfig cfg, Dropped dropped)
    {
        string uuid = vm.Config.Uuid ?? vm.Name;
        var disks = cfg.Vm!.Disks;
        bool stopped = vm.State < ZoneState.Ready;
        string state = $"currently: {StateName(vm.State)} ({Zone.StateName(vm.State)})";
        if ((payload.ContainsKey("add_disks") || payload.ContainsKey("remove_disks")) && !stopped)
            throw new PayloadError($"updates to disks are only allowed when state is \"stopped\", {state}");
        if (payload["remove_disks"] is JsonNode rm)
        {
            var paths = StrList(rm) ?? throw Bad("remove_disks");
            foreach (string p in paths)
            {
                int at = disks.FindIndex(d => DiskPath(uuid, d.Index) == p);
                if (at < 0) throw Bad($"remove_disks (no disk with path {ConfigText.Echo(p)})");
                disks.RemoveAt(at);
            }
        }
        if (payload["update_disks"] is JsonNode up)
        {
            if (up is not JsonArray arr || arr.Any(e => e is not JsonObject)) throw Bad("update_disks");
            for (int i = 0; i < arr.Count; i++)
            {
                var o = (JsonObject)arr[i]!;
                string path = $"update_disks.{i}";
                // On kvm a disk's size is fixed once made (proptable.js: size is bhyve's only on update).
                if (vm.Config.Brand != "bhyve")
                    foreach (string k in (string[])["size", "dangerous_allow_shrink"])
                        if (o.Remove(k)) dropped.Drop($"{path}.{k}");
                CheckDiskNames(o, s_diskUpdateProps, path, "update", dropped);
                if (!stopped && o.Any(p => Array.IndexOf(s_diskLive, p.Key) < 0))
                    throw new PayloadError($"at least one specified update to disks is only allowed when state is \"stopped\", {state}");
                string? p = Str(o["path"]);
                var d = disks.Find(x => DiskPath(uuid, x.Index) == p) ?? throw Bad($"{path}.path (no disk with path {ConfigText.Echo(p ?? o["path"]?.ToJsonString() ?? "")})");
                if (o["boot"] is JsonNode b) d.Boot = Bool(b) ?? throw Bad(path + ".boot");
                if (o["model"] is JsonNode m) d.Model = CheckModel(m, vm.Config.Brand);
                if (o["compression"] is JsonNode c) d.Compression = CheckCompression(c);
                if (o["refreservation"] is JsonNode r) d.Refreservation = Int(r) is >= 0 and < MaxDiskMiB ? Int(r) : throw Bad(path + ".refreservation");
                if (o["size"] is JsonNode size)
                {
                    long mib = Int(size) is >= 1 and <= MaxDiskMiB ? Int(size)!.Value : throw Bad(path + ".size");
                    long current = DiskMiB(host, uuid, d);
                    bool shrink = o["dangerous_allow_shrink"] is JsonNode ds && Bool(ds) == true;
                    if (current > mib && !shrink)
                        throw new PayloadError($"cannot resize disk: new size must be greater than current size. ({current} > {mib})");
                    if (current != mib) d.Size = mib;
                }
            }
        }
        if (payload["add_disks"] is JsonNode add)
        {
            var pool = RequireDiskPool(host, "add_disks");
            if (add is not JsonArray arr || arr.Any(e => e is not JsonObject)) throw Bad("add_disks");
            // Indexes: the lowest no disk of the VM had before this update (rule 1), so a removed
            // disk's volume is never the name of one made in the same update.
            var used = new HashSet<int>(vm.Config.Vm!.Disks.Select(d => d.Index));
            for (int i = 0; i < arr.Count; i++)
            {
                int index = 0;
                while (used.Contains(index)) index++;
                used.Add(index);
                disks.Add(ParseNewDisk(host, pool, (JsonObject)arr[i]!, $"add_disks.{i}", vm.Config.Brand, index, dropped));
            }
            if (disks.Count > MaxDisks) throw Bad($"add_disks ({disks.Count} disks: the VMM has {MaxDisks} virtio-blk slots)");
        }
    }

    /// <summary>A disk's volsize in MiB now (0 if its volume is gone).</summary>
    private static long DiskMiB(Host host, string uuid, VmDisk d)
        => host.Pools.Find(DiskPool) is Pool pool ? Math.Max(0, pool.Datasets.VolumeSize(DiskVolume(uuid, d.Index))) >> 20 : 0;

    /// <summary>vmadm validate's view of disks, add_disks or update_disks (VmValidate.cs): an array of
    /// objects whose properties are the action's (disks.*.X in bad_properties otherwise) and typed.</summary>
    private static void ValidateDisks(string key, JsonNode? value, List<string> badValues, List<string> badProps)
    {
        if (value is not JsonArray arr || arr.Any(e => e is not JsonObject)) { badValues.Add(key); return; }
        string[] allowed = key == "update_disks" ? s_diskUpdateProps : s_diskAddProps;
        foreach (var disk in arr)
            foreach (var (sub, sv) in disk!.AsObject())
            {
                string name = "disks.*." + sub;
                if (Array.IndexOf(allowed, sub) < 0) { if (!badProps.Contains(name)) badProps.Add(name); continue; }
                KeptType type = sub switch
                {
                    "size" or "image_size" or "block_size" or "refreservation" => KeptType.Integer,
                    "boot" or "dangerous_allow_shrink" => KeptType.Boolean,
                    _ => KeptType.String,
                };
                if (!KeptValueOk(type, sv) && !badValues.Contains(name)) badValues.Add(name);
            }
    }

    // ---- the volumes ----------------------------------------------------------------------------

    /// <summary>
    /// Makes and changes the volumes <paramref name="next"/> asks for (a create's or an update's
    /// configuration): new disks made, sizes and properties set.
    /// Null on success with <paramref name="undo"/> to take it all back (if the configuration then
    /// cannot be written); else zfs's message, with everything already undone (rule 3). Removed
    /// disks are left for <see cref="DestroyRemovedDisks"/>.
    /// </summary>
    public static string? ApplyDisks(Host host, ZoneConfig next, out Action undo)
    {
        var undos = new List<Action>();
        undo = () => { for (int i = undos.Count - 1; i >= 0; i--) undos[i](); };
        var disks = next.Vm?.Disks;
        if (disks is null || disks.Count == 0) return null;
        bool work = disks.Exists(d => d.New || d.Size != null || d.Compression != null || d.Refreservation != null);
        if (!work) return null;
        if (host.Pools.Find(DiskPool) is not Pool pool) return $"this host has no '{DiskPool}' pool to keep VM disks on";
        var tree = pool.Datasets;
        string uuid = next.Uuid ?? next.Name;
        foreach (var d in disks)
        {
            string name = DiskVolume(uuid, d.Index);
            StorageResult r;
            if (d.New)
            {
                r = d.ImageUuid is string image ? CloneDisk(tree, image, name, d) : CreateDisk(tree, name, d);
                if (r.IsOk) undos.Add(() => tree.Destroy(name, DestroyFlags.Recursive));
            }
            else r = ChangeDisk(tree, name, d, undos);
            if (!r.IsOk)
            {
                undo();
                return r.Message;
            }
        }
        foreach (var d in disks) d.New = false;
        return null;
    }

    private static StorageResult CreateDisk(DatasetTree tree, string name, VmDisk d)
    {
        var props = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["volsize"] = (d.Size!.Value << 20).ToString(CultureInfo.InvariantCulture),
        };
        if (d.BlockSize is long bs) props["volblocksize"] = bs.ToString(CultureInfo.InvariantCulture);
        if (d.Compression is string c) props["compression"] = c;
        if (d.Refreservation is long rr) props["refreservation"] = (rr << 20).ToString(CultureInfo.InvariantCulture);
        return tree.Create(name, DatasetType.Volume, props);
    }

    /// <summary>A clone of the image's @final, reserving its whole size as a new disk does (VM.js "auto").</summary>
    private static StorageResult CloneDisk(DatasetTree tree, string image, string name, VmDisk d)
    {
        var props = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["refreservation"] = ((d.Refreservation ?? d.ImageSize!.Value) << 20).ToString(CultureInfo.InvariantCulture),
        };
        if (d.Compression is string c) props["compression"] = c;
        return tree.Clone($"{DiskPool}/{image}@final", name, props);
    }

    /// <summary>update_disks' size, compression and refreservation on an existing volume, each undoable.</summary>
    private static StorageResult ChangeDisk(DatasetTree tree, string name, VmDisk d, List<Action> undos)
    {
        (string Property, string? Value)[] changes =
        [
            ("volsize", d.Size is long s ? (s << 20).ToString(CultureInfo.InvariantCulture) : null),
            ("compression", d.Compression),
            ("refreservation", d.Refreservation is long r ? (r << 20).ToString(CultureInfo.InvariantCulture) : null),
        ];
        foreach (var (property, value) in changes)
        {
            if (value is null) continue;
            if (!tree.Get(name, property, out var old).IsOk) return new StorageResult(StorageStatus.NoSuchDataset, $"cannot open '{name}'");
            // The refreservation that follows volsize (Dsl.Properties.cs) goes back with it.
            string? oldRefres = property == "volsize" && tree.Get(name, "refreservation", out var rv).IsOk ? rv.Value : null;
            var set = tree.Set(name, property, value);
            if (!set.IsOk) return set;
            undos.Add(() =>
            {
                tree.Set(name, property, old.Value);
                if (oldRefres != null) tree.Set(name, "refreservation", oldRefres);
            });
        }
        d.Size = null;
        d.Compression = null;
        d.Refreservation = null;
        return StorageResult.Success;
    }

    /// <summary>Destroys the volumes of the disks <paramref name="before"/> had and <paramref name="next"/>
    /// has not (remove_disks), or all of them when next is null (vmadm delete). Null, or zfs's message.</summary>
    public static string? DestroyRemovedDisks(Host host, ZoneConfig before, ZoneConfig? next)
    {
        var old = before.Vm?.Disks;
        if (old is null || old.Count == 0 || host.Pools.Find(DiskPool) is not Pool pool) return null;
        string uuid = before.Uuid ?? before.Name;
        foreach (var d in old)
        {
            if (next?.Vm?.Disks.Exists(x => x.Index == d.Index) == true) continue;
            string name = DiskVolume(uuid, d.Index);
            if (!pool.Datasets.Exists(name)) continue;
            var r = pool.Datasets.Destroy(name, DestroyFlags.Recursive);
            if (!r.IsOk) return r.Message;
        }
        return null;
    }

    // ---- vmadm get ------------------------------------------------------------------------------

    /// <summary>The disks as vmadm get shows them, from the configuration: what zonecfg holds.</summary>
    private static JsonArray DisksJson(ZoneConfig c)
    {
        var arr = new JsonArray();
        string uuid = c.Uuid ?? c.Name;
        foreach (var d in c.Vm!.Disks)
        {
            var o = new JsonObject
            {
                ["boot"] = d.Boot,
                ["media"] = d.Media,
                ["model"] = d.Model,
                ["path"] = DiskPath(uuid, d.Index),
                ["zfs_filesystem"] = DiskVolume(uuid, d.Index),
                ["zpool"] = DiskPool,
            };
            if (d.ImageUuid != null) o["image_uuid"] = d.ImageUuid;
            if (d.ImageSize is long isz) o["image_size"] = isz;
            arr.Add(Sorted(o));
        }
        return arr;
    }

    /// <summary>Adds to vmadm get's disks what zfs holds (size, block_size, compression, refreservation,
    /// as VM.js reads them from the volumes); a disk whose volume is not there shows none of them.</summary>
    private static void AddDiskProperties(Host host, JsonObject vmJson)
    {
        if (vmJson["disks"] is not JsonArray arr || arr.Count == 0 || host.Pools.Find(DiskPool) is not Pool pool) return;
        foreach (var node in arr)
        {
            if (node is not JsonObject o || Str(o["zfs_filesystem"]) is not string name) continue;
            if (pool.Datasets.VolumeSize(name) < 0) continue;
            if (pool.Datasets.Get(name, "volsize", out var size).IsOk) o["size"] = size.Number!.Value >> 20;
            if (pool.Datasets.Get(name, "volblocksize", out var bs).IsOk && bs.Number is long b) o["block_size"] = b;
            if (pool.Datasets.Get(name, "compression", out var c).IsOk) o["compression"] = c.Value;
            if (pool.Datasets.Get(name, "refreservation", out var r).IsOk) o["refreservation"] = (r.Number ?? 0) >> 20;
            var sorted = Sorted(o.DeepClone().AsObject());
            o.Clear();
            foreach (var (k, v) in sorted) o[k] = v?.DeepClone();
        }
    }
}
