/*
 * The bhyve and kvm brands: a zone whose work is one guest run by the VMM (virt/Vmm.cs).
 *
 * Both brands run the same VMM; the brand is the name vmadm shows (TYPE BHYV or KVM). The vCPU
 * backend is chosen as Vm's Backend Auto chooses it: the interpreter in virtual time (deterministic,
 * Vmm.cs rule 3), KVM only when the host runs in real time and /dev/kvm is usable.
 *
 * The vmadm payload (zones/VmPayload.cs) adds to the joyent properties:
 *   "ram"     MiB of guest RAM (default 256, 8 to 16384); it is also the zone's memory cap.
 *   "vcpus"   1 (the VMM runs one vCPU; more is refused).
 *   "image"   what the guest boots, one of:
 *               {"guest": "netecho"}      virt/guests/netecho.c, built with gcc and objcopy when the
 *                                         VM starts (cached per process, per program and defines);
 *               {"path": "dir/flat.bin"}  a flat image as Vmm.cs's boot protocol loads it; a relative
 *                                         path is resolved where vmadm create runs and stored absolute.
 *               {"kernel": "vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0 ..."}
 *                                         Linux, by its boot protocol (virt/LinuxBoot.cs): a bzImage,
 *                                         an optional initrd and command line (virt/guests/linux/
 *                                         build.sh makes both files). Paths as for "path"; create
 *                                         checks that the kernel is a bzImage this VMM boots and that
 *                                         "ram" is at most 3072 MiB (RAM ends below the PCI hole); the
 *                                         guest's NICs and disks are then virtio-pci functions.
 *             Anything else is refused at create.
 *   nics.*.model  "virtio" (the default; the VMM has no other NIC model).
 *   nics.*.ips    informational, as for SmartOS HVM guests: the guest configures its own address. A
 *                 guest built from virt/guests is given the first IPv4 address of nic 0 as
 *                 -DGUEST_IP=0x........ (netecho answers on it); a flat image is given nothing.
 * The guest's MAC address is the nic's "mac": the VNIC has it and virtio-net reports it.
 *   "disks"   volumes zones/<uuid>-diskN of the host's zones pool (VmDisks.cs: made by vmadm create
 *             and update, destroyed by delete), each attached as a virtio-blk disk (virt/Devices/
 *             VirtioBlk.cs) in the payload's order, its serial "diskN". They are data disks: the
 *             guest still boots from "image" ("boot" is kept and shown, not booted from).
 *
 * Rules
 *   1. Starting the zone readies it as any zone (VNICs created over the nic tags), opens one MAC
 *      client per VNIC and attaches each as a virtio-net NIC, in nic order; it has no IP stack.
 *   2. A guest that stops by itself (halt, power off, fault, ...) halts its zone: the VM shows
 *      stopped, its VNICs are deleted, and the VMM's reason and detail stay for vmadm get until the
 *      next start. Nothing a guest does stops another zone (Vmm.cs rule 1).
 *   3. vmadm stop stops the guest first and then releases the links (the VMM lets go of the MAC
 *      clients before the zone closes them: Vmm.cs rule 6).
 *   4. The console (COM1) is kept from start to the next start; `vmadm console` and `zlogin -C`
 *      print it so far, `vmadm console -f` and `zlogin -C -d` follow it until the guest stops
 *      (tools/Commands/GuestConsole.cs). There is no interactive console.
 *   5. Starting opens every disk's volume (VolumeDevice: held, so `zfs destroy` and `zfs rollback`
 *      of a running VM's disk say "dataset is busy"); a volume that is not there refuses the start
 *      and names it. When the guest stops, by itself or by vmadm stop, its volumes are closed and
 *      the pool commits, so whatever the guest wrote (flushed or not) survives a host restart.
 *
 * Not done yet: booting from a disk, more than one vCPU, an interactive console, and building
 * guests in real time without blocking the loop (gcc runs on the loop thread, once per program).
 */
using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Storage;
using SmartOS.Virt;

namespace SmartOS.Zones;

/// <summary>Builds and starts the guest of a bhyve or kvm zone (see the theory statement above).</summary>
public static class HvmGuest
{
    public static readonly string[] Brands = ["bhyve", "kvm"];

    public const long DefaultRamMiB = 256;
    public const long MinRamMiB = 8;
    public const long MaxRamMiB = 16384;

    private static readonly ConcurrentDictionary<string, Lazy<(bool Ok, byte[] Image, string Error)>> s_built = new();

    public static bool IsHvm(string brand) => Array.IndexOf(Brands, brand) >= 0;

    /// <summary>The C guests shipped next to the program (virt/guests, copied at build).</summary>
    public static string GuestsDirectory => Path.Combine(AppContext.BaseDirectory, "guests");

    /// <summary>The guest programs that can be named in "image": {"guest": NAME}.</summary>
    public static List<string> GuestNames()
    {
        var names = new List<string>();
        if (!Directory.Exists(GuestsDirectory)) return names;
        foreach (string f in Directory.GetFiles(GuestsDirectory, "*.c"))
        {
            string n = Path.GetFileNameWithoutExtension(f);
            if (n != "host_shim") names.Add(n); // host_shim builds selftest for the host, not a guest.
        }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>The -D defines a guest program is built with: GUEST_IP from nic 0's first IPv4 address.</summary>
    public static List<string> Defines(ZoneConfig c)
    {
        var defines = new List<string>();
        if (c.Nets.Count == 0) return defines;
        foreach (string ip in c.Nets[0].Ips)
        {
            if (!ZoneAddresses.TryParseCidr(ip, out var a, out _) || !a.IsV4) continue;
            defines.Add("GUEST_IP=0x" + a.V4Raw.ToString("X8", CultureInfo.InvariantCulture));
            break;
        }
        return defines;
    }

    /// <summary>Why a bhyve or kvm VM created without an "image" does not start: this host boots a
    /// guest program or a flat image, not disks (which arrive with the storage issues).</summary>
    public static string NoImage(string brand)
        => $"{brand} VM has no image to boot: this host boots a guest from vmadm's \"image\" ({{\"guest\": NAME}}, {{\"path\": FILE}} or {{\"kernel\": FILE}}), not from disks";

    /// <summary>The VMM configuration of the zone's guest: its image (a guest program, a flat image
    /// or a kernel) and memory; null with the reason when the image cannot be had.</summary>
    /// <param name="randomSeed">the guest's rdrand/rdseed seed (the host's, derived per VM by name)</param>
    /// <param name="clockEpoch">Unix time in ns at scheduler time 0: what a PC guest's CMOS clock reads</param>
    public static VmConfig? TryVmConfig(ZoneConfig c, string name, VmBackend backend, bool realTime, ulong randomSeed, long clockEpoch, out string error)
    {
        ulong memory = (ulong)(c.CappedMemory ?? DefaultRamMiB << 20);
        if (c.Vm?.Kernel is string kernelPath)
        {
            if (!TryReadFile(kernelPath, "kernel", out var kernel, out error)) return null;
            byte[]? initrd = null;
            if (c.Vm.Initrd is string initrdPath && !TryReadFile(initrdPath, "initrd", out initrd, out error)) return null;
            return new VmConfig
            {
                Name = name, Kernel = kernel, Initrd = initrd, Cmdline = c.Vm.Cmdline ?? "", MemorySize = memory,
                Backend = backend, RealTime = realTime, RandomSeed = randomSeed, ClockEpoch = clockEpoch,
            };
        }
        if (!TryImage(c, out var image, out error)) return null;
        return new VmConfig { Name = name, Image = image, MemorySize = memory, Backend = backend, RealTime = realTime, RandomSeed = randomSeed, ClockEpoch = clockEpoch };
    }

    /// <summary>Reads a regular file of 1 byte to MaxRamMiB on the loop (see TryImage for why).</summary>
    private static bool TryReadFile(string path, string what, out byte[] bytes, out string error)
    {
        bytes = [];
        try
        {
            long length = new FileInfo(path).Length;
            if (length == 0 || length > (long)MaxRamMiB << 20)
            {
                error = $"cannot read {what} {path}: not a regular file of 1 byte to {MaxRamMiB} MiB";
                return false;
            }
            bytes = File.ReadAllBytes(path);
            error = "";
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"cannot read {what} {path}: {e.Message}";
            return false;
        }
    }

    /// <summary>The payload's {"kernel": ..., "initrd": ..., "cmdline": ...} checked and kept in
    /// <paramref name="vm"/> (paths made absolute); throws PayloadError in vmadm's wording.</summary>
    public static void ApplyKernelImage(JsonObject image, VmInfo vm, long ramBytes, string workingDirectory)
    {
        foreach (var (key, _) in image)
            if (key is not ("kernel" or "initrd" or "cmdline"))
                throw new VmModel.PayloadError($"Invalid value(s) for: image.{key} (a Linux image takes kernel, initrd and cmdline)");
        string kernel = ExistingFile(image, "kernel", workingDirectory)!;
        string? initrd = image.ContainsKey("initrd") ? ExistingFile(image, "initrd", workingDirectory) : null;
        string? cmdline = null;
        if (image["cmdline"] is JsonNode cn)
        {
            if (cn is not JsonValue cv || !cv.TryGetValue(out cmdline))
                throw new VmModel.PayloadError($"Invalid value(s) for: image.cmdline ({ConfigText.Echo(cn.ToJsonString())}: a string)");
        }
        if (!TryReadFile(kernel, "kernel", out var bytes, out string why))
            throw new VmModel.PayloadError($"Invalid value(s) for: image.kernel ({why})");
        var k = BzImage.Parse(bytes, out why);
        if (k == null) throw new VmModel.PayloadError($"Invalid value(s) for: image.kernel ({ConfigText.Echo(kernel)}: {why})");
        if (cmdline != null && (ulong)System.Text.Encoding.UTF8.GetByteCount(cmdline) > k.CmdlineSize)
            throw new VmModel.PayloadError($"Invalid value(s) for: image.cmdline (longer than the kernel's {k.CmdlineSize} bytes)");
        if (ramBytes > PciBus.PciMemoryBase)
            throw new VmModel.PayloadError($"Invalid value(s) for: ram ({ramBytes >> 20}: a Linux guest has at most {PciBus.PciMemoryBase >> 20} MiB, below the PCI hole)");
        vm.Kernel = kernel;
        vm.Initrd = initrd;
        vm.Cmdline = cmdline;
    }

    private static string? ExistingFile(JsonObject image, string key, string workingDirectory)
    {
        if (image[key] is not JsonValue v || !v.TryGetValue(out string? path) || path.Length == 0)
            throw new VmModel.PayloadError($"Invalid value(s) for: image.{key} ({ConfigText.Echo(image[key]?.ToJsonString() ?? "null")}: a file name)");
        string full = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(workingDirectory, path));
        if (!File.Exists(full)) throw new VmModel.PayloadError($"Invalid value(s) for: image.{key} (no such file: {ConfigText.Echo(full)})");
        return full;
    }

    /// <summary>What vmadm get shows for a Linux image.</summary>
    public static JsonObject KernelImageJson(VmInfo vm)
    {
        var j = new JsonObject();
        if (vm.Cmdline != null) j["cmdline"] = vm.Cmdline;
        if (vm.Initrd != null) j["initrd"] = vm.Initrd;
        j["kernel"] = vm.Kernel;
        return j;
    }

    /// <summary>The flat image the zone boots, or false with the reason.</summary>
    public static bool TryImage(ZoneConfig c, out byte[] image, out string error)
    {
        var vm = c.Vm!;
        if (vm.ImagePath is string path)
        {
            try
            {
                // Read on the loop at boot, so only a regular file that fits in the largest guest: a
                // FIFO would stop the host while it waits and /dev/zero would never end (both have
                // length 0 here).
                long length = new FileInfo(path).Length;
                if (length == 0 || length > (long)MaxRamMiB << 20)
                {
                    image = [];
                    error = $"cannot read image {path}: not a regular file of 1 byte to {MaxRamMiB} MiB";
                    return false;
                }
                image = File.ReadAllBytes(path);
                error = "";
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                image = [];
                error = $"cannot read image {path}: {e.Message}";
                return false;
            }
        }
        if (vm.Guest is not string guest)
        {
            image = [];
            error = NoImage(c.Brand);
            return false;
        }
        var defines = Defines(c);
        string key = guest + "|" + string.Join(',', defines);
        var built = s_built.GetOrAdd(key, _ => new Lazy<(bool, byte[], string)>(() =>
        {
            bool ok = GuestCompiler.TryBuild(GuestsDirectory, guest + ".c", 2, defines, out var img, out string err);
            return (ok, img, err);
        })).Value;
        if (!built.Ok) s_built.TryRemove(key, out _); // gcc may be installed later: do not cache a failure.
        image = built.Image;
        error = built.Ok ? "" : $"cannot build guest '{guest}': {built.Error.Trim()}";
        return built.Ok;
    }

    /// <summary>Opens the VM's disk volumes and attaches them to the guest, in order (rule 5); false
    /// with the reason, every volume opened so far closed again.</summary>
    public static bool TryAttachDisks(Host host, ZoneConfig c, Vm vm, out string error)
    {
        error = "";
        var disks = c.Vm?.Disks;
        if (disks is null || disks.Count == 0) return true;
        if (disks.Count > Vm.MaxDisks)
        {
            error = $"{disks.Count} disks: the VMM has {Vm.MaxDisks} virtio-blk slots";
            return false;
        }
        var pool = host.Pools.Find(VmModel.DiskPool);
        var opened = new List<VolumeDevice>();
        foreach (var d in disks)
        {
            string name = VmModel.DiskVolume(c.Uuid ?? c.Name, d.Index);
            VolumeDevice? device = null;
            var r = pool is null ? new StorageResult(StorageStatus.NoSuchPool, $"cannot open '{name}'") : VolumeDevice.Open(pool, name, out device);
            if (!r.IsOk)
            {
                foreach (var o in opened) o.Close();
                error = $"disk {d.Index.ToString(CultureInfo.InvariantCulture)}: {r.Message}";
                return false;
            }
            opened.Add(device!);
        }
        for (int i = 0; i < opened.Count; i++) vm.AttachDisk(opened[i], "disk" + disks[i].Index.ToString(CultureInfo.InvariantCulture));
        return true;
    }

    /// <summary>Closes a stopped guest's volumes: released and committed (rule 5).</summary>
    public static void CloseDisks(Vm vm)
    {
        foreach (var disk in vm.Disks)
            if (disk.Device is VolumeDevice v) v.Close();
    }

    /// <summary>vmadm's name for why a guest stopped.</summary>
    public static string ReasonName(VmStopReason r) => r switch
    {
        VmStopReason.Halted => "halted",
        VmStopReason.PoweredOff => "powered_off",
        VmStopReason.Fault => "fault",
        VmStopReason.TripleFault => "triple_fault",
        VmStopReason.OutOfTime => "out_of_time",
        VmStopReason.OutOfInstructions => "out_of_instructions",
        VmStopReason.Unimplemented => "unimplemented_instruction",
        VmStopReason.StoppedByHost => "stopped_by_host",
        VmStopReason.BackendError => "backend_error",
        _ => "none",
    };
}
