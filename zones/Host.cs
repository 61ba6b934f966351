/*
 * SmartOS.Zones: hosts, the world they share, zones, brands, vmadm's model and nic tags.
 *
 * A World is one timeline (kernel/Timeline.cs): its own scheduler (domain 0) and one per Host, so a
 * wire between two hosts delivers frames in virtual time as deterministically as a wire inside
 * one, and the hosts of a world may run on several threads (World.Threads) with the same bytes out
 * as on one. Hosts share no mutable state: what one host does reaches another only by a wire, and
 * each host's async programs resume on its own scheduler (Host.Sync). A Host is one
 * machine: its physical NICs, its MAC layer (vnic/), its kstats, its packet pool, its seeded random
 * source, its persistent configuration store, its nic tags and its zones. The host itself is the
 * global zone.
 *
 * Glossary
 *   zone         a non-global zone (zones(7)): a name, a committed configuration (ZoneConfig, what
 *                zonecfg commits) and a state. Every zone has its own IP stack (ip-type exclusive).
 *   state        configured -> (install) installed -> (ready) ready -> (boot) running
 *                -> (shutdown) shutting_down -> down -> installed; halt goes straight back to
 *                installed. incomplete is a failed install and needs uninstall. Only configured and
 *                installed persist; ready, running, shutting_down and down are live only.
 *   brand        joyent and joyent-minimal run on the project's IP stack; lx runs real Linux programs
 *                in a Linux network namespace whose TAP devices are MAC clients of the zone's VNICs
 *                (LxZoneNetwork.cs; real time and root only); bhyve and kvm run one guest on the VMM
 *                (virt/), attached to the zone's VNICs (HvmGuest.cs).
 *   net          a zone's datalink. With a nic tag (global-nic, what vmadm writes) the VNIC named
 *                by physical is created over the tag's NIC or etherstub when the zone readies and
 *                deleted when it halts, as SmartOS does; without one, physical names an existing
 *                global VNIC or VLAN that is lent to the zone while it runs.
 *   VM           a zone created by vmadm: zone name = UUID, zonepath /zones/UUID, VmInfo for the
 *                alias, quota and resolvers. On a host with a `zones` pool its root is the dataset
 *                zones/UUID mounted at the zonepath (VmDatasets.cs), made at install, destroyed at
 *                uninstall. Its VNICs are named z{Index}_net{N} in the global zone
 *                (N counts the VM's nics from 0, so they read as net0, net1 ... as inside SmartOS).
 *   nic tag      a name for a physical NIC (by MAC address) or, with -l, an etherstub (NicTagTable).
 *   memory       a zone's MemoryAccount: capped-memory physical / max_physical_memory. Layers that
 *                hold memory for a zone charge it (IMemoryAccount.TryCharge) and fail when over.
 *
 * Rules
 *   1. Every host's random source is derived from the world seed and the host's name, so adding a
 *      host never changes what another host draws. VM UUIDs and random VNIC addresses come from the
 *      host's identity source (kernel/IdentitySource.cs): the same random source in a scenario or a
 *      test, so runs stay byte-identical; for a host on a root directory the front end seeds it with
 *      the root and a boot counter kept in the root (a one-shot command), or gives it the system's
 *      random source (smartos boot), so two hosts, or two boots of one, never draw the same
 *      identities. A drawn UUID or MAC address that is already in use is drawn again.
 *   2. A host boots by replaying its configuration store (datalink.conf, flowadm.conf,
 *      nictags.conf, zones.conf, the global zone's ipadm.conf) record by record through one reader
 *      (kernel/ConfigFile.cs): a record that is bad or fails to replay is reported with its file and
 *      position, never half-applied, and kept in the file on later writes; a file that could not be
 *      read whole is never rewritten. Boot time is linear in the number of records. Booting the
 *      host does not boot zones: the daemon (smartos boot) boots the autoboot zones afterwards.
 *   3. A zone operation changes live state only after its persistent change is written, and undoes
 *      what it did when a later step fails: a zone that fails to boot is left installed, with its
 *      links given back.
 *   4. A datalink lent to or created for a zone has Datalink.Zone set to the zone's name while the
 *      zone is ready or running: the MAC layer then refuses to delete or rename it, and commands run
 *      in the zone (zlogin) see only such links.
 *   5. Booting a zone opens one MAC client per link and hands them to IZoneNetwork, the seam to the
 *      per-zone IP stack; halting stops the stack first and then closes the clients.
 *   6. A property the project does not enforce is refused with a message, never silently accepted.
 *   7. Dates (a VM's create_timestamp, last_modified, boot_timestamp) come from the host's WallClock:
 *      the scheduler's time plus an epoch the front end gives, 0 in virtual time (so a scenario's
 *      dates start at 1970-01-01T00:00:00Z and replay byte for byte), the system clock's reading for
 *      smartos boot and for a one-shot command on a root (so dates kept in the root are real ones).
 *
 * The zone network is IpZoneNetwork: each running zone has its own IpStack on its MAC clients
 * (ZoneTable.Network).
 *
 * Not done yet: a nic tag's MTU is recorded but does not change the NIC.
 * On a host without a `zones` pool zones have no datasets: a vmadm quota is recorded, not enforced,
 * and vmadm says so when it is set. With one, the quota is the zone dataset's ZFS quota, enforced on
 * every write by the storage layer (VmDatasets.cs rule 2).
 */
using SmartOS.Kernel;
using SmartOS.Kernel.Trace;
using SmartOS.Netstack;
using SmartOS.Vnic;

namespace SmartOS.Zones;

/// <summary>One timeline shared by a set of hosts and the wires between them.</summary>
public sealed class World
{
    private readonly Dictionary<string, Host> _hosts = new(StringComparer.Ordinal);
    private readonly List<Wire> _wires = [];

    public World(ulong seed = 1)
    {
        Seed = seed;
        Scheduler = new Scheduler();
        Timeline = new Timeline(Scheduler);
        Sync = new LoopSynchronizationContext(Scheduler);
    }

    public ulong Seed { get; }

    /// <summary>The world's own scheduler (the timeline's domain 0). Its Run methods run every host.</summary>
    public Scheduler Scheduler { get; }

    /// <summary>The domains of the world's hosts and the loop that runs them (kernel/Timeline.cs).</summary>
    public Timeline Timeline { get; }

    /// <summary>Threads a run in virtual time may use (kernel/Timeline.cs rule 3): the output is the
    /// same for any number; 1 runs every host on the caller's thread.</summary>
    public int Threads
    {
        get => Timeline.Threads;
        set => Timeline.Threads = value;
    }
    public LoopSynchronizationContext Sync { get; internal set; }
    public IReadOnlyCollection<Host> Hosts => _hosts.Values;

    /// <summary>The real-time driver when the world follows the wall clock (smartos boot), else null.</summary>
    public RealTimeDriver? Driver { get; private set; }

    /// <summary>Switches the world to real time (Kernel.cs rule 2): from now on one loop thread runs the
    /// scheduler, async continuations come back to it, and other threads hand it work with
    /// <see cref="RealTimeDriver.Invoke"/>.</summary>
    public RealTimeDriver StartRealTime()
    {
        if (Driver != null) throw new InvalidOperationException("the world already runs in real time");
        var driver = new RealTimeDriver(Scheduler);
        Sync = new LoopSynchronizationContext(Scheduler, driver);
        Driver = driver;
        driver.Start();
        return driver;
    }
    public IReadOnlyList<Wire> Wires => _wires;

    public Host? FindHost(string name) => _hosts.TryGetValue(name, out var h) ? h : null;

    /// <summary>Creates a host with <paramref name="nics"/> physical NICs (e1000g0, e1000g1, ...) and
    /// boots it from <paramref name="store"/> (an in-memory store when null).</summary>
    /// <param name="identities">Where VM UUIDs and random MAC addresses come from (rule 1); the host's
    /// seeded Random when null.</param>
    /// <param name="epoch">The Unix time, in nanoseconds, at the scheduler's time 0: the date the
    /// host's clock tells (kernel/WallClock.cs, rule 7); 0 in virtual time.</param>
    public Host AddHost(string name, int nics = 2, IConfigStore? store = null, IIdentitySource? identities = null, long epoch = 0)
    {
        if (_hosts.ContainsKey(name)) throw new ArgumentException($"host '{name}' already exists", nameof(name));
        var host = new Host(this, name, nics, store ?? new MemoryConfigStore(), identities, epoch);
        _hosts.Add(name, host);
        return host;
    }

    /// <summary>Joins two physical NICs with a wire. Fails if either NIC is already wired.</summary>
    public Wire Connect(PhysLink a, PhysLink b, long speedBps = 1_000_000_000, long delayNs = 0, double loss = 0, int mtu = 9000,
        double duplicate = 0, double reorder = 0)
    {
        if (a == b) throw new ArgumentException("a wire needs two different NICs");
        if (a.Backend != null) throw new InvalidOperationException($"{a.Mac.HostName}/{a.Name} is already connected");
        if (b.Backend != null) throw new InvalidOperationException($"{b.Mac.HostName}/{b.Name} is already connected");
        string name = $"{a.Mac.HostName}/{a.Device}-{b.Mac.HostName}/{b.Device}";
        var random = new HostRandom(HostRandom.Derive(Seed, "wire:" + name));
        var wire = new Wire(Scheduler, random, a, b, speedBps, delayNs, loss, mtu) { Duplicate = duplicate, Reorder = reorder };
        _wires.Add(wire);
        return wire;
    }
}

/// <summary>One simulated SmartOS machine (see the theory statement above).</summary>
public sealed class Host
{
    internal Host(World world, string name, int nics, IConfigStore store, IIdentitySource? identities, long epoch)
    {
        if (nics < 0 || nics > 64) throw new ArgumentOutOfRangeException(nameof(nics), "a host has 0 to 64 NICs");
        World = world;
        Name = name;
        Random = new HostRandom(HostRandom.Derive(world.Seed, "host:" + name));
        Identities = identities ?? Random;
        Scheduler = world.Timeline.AddDomain();
        Sync = new LoopSynchronizationContext(Scheduler);
        Clock = new WallClock(Scheduler, epoch);
        Pool = new PacketPool();
        var scheduler = Scheduler;
        Kstats = new KstatRegistry(() => scheduler.Now);
        Mac = new MacLayer(name, Scheduler, Pool, Kstats, Random, Identities);
        for (int i = 0; i < nics; i++) Mac.AddPhys($"e1000g{i}");
        Store = store;
        NicTags = new NicTagTable(Mac);
        Stack = new IpStack("global", Scheduler, Pool, Random, Kstats) { Probes = NetProbes.For(Mac.Probes) };
        SchedProbes.Attach(Mac.Probes, Scheduler); // sched:::on-cpu/off-cpu: the turns of this host's loop
        Zones = new ZoneTable(this);
        Pools = new PoolTable(store, (store as FileConfigStore)?.Root, () => scheduler.Now, Identities, Mac.Probes);
        SmartOS.Virt.VmProbes.Register(Mac.Probes);   // listed by dtrace -l before any guest runs
        Mounts = new MountTable(Pools, () => Clock.UnixNanoseconds);
        Images = new Images.ImageStore(this);
        Underlays = new GlobalZoneUnderlays(Stack);
        Mac.SetUnderlayProvider(Underlays.Open); // overlays' underlay: the global zone's IP stack
        var problems = Mac.Boot(store);
        problems.AddRange(NicTags.Boot(store));
        problems.AddRange(Zones.Boot(store));
        problems.AddRange(IpadmConfig.Replay(this, "global", Stack).Select(p => "global zone: " + p));
        BootProblems = problems;
    }

    /// <summary>The global zone's IP stack (ipadm, ping, ... run on it from the global zone).</summary>
    public IpStack Stack { get; }

    /// <summary>The underlay of the host's overlays over <see cref="Stack"/> (GlobalZoneUnderlay.cs);
    /// a front end may install another through Mac.SetUnderlayProvider.</summary>
    public GlobalZoneUnderlays Underlays { get; }

    public World World { get; }
    public string Name { get; }
    /// <summary>This host's domain of the world's timeline: its timers, its clock, its event order.</summary>
    public Scheduler Scheduler { get; }

    /// <summary>Where this host's async programs (commands, zones' daemons) resume: its own scheduler.</summary>
    public LoopSynchronizationContext Sync { get; }
    public HostRandom Random { get; }

    /// <summary>Where VM UUIDs and random MAC addresses come from (rule 1).</summary>
    public IIdentitySource Identities { get; }

    /// <summary>The date this host tells (rule 7): vmadm's timestamps.</summary>
    public WallClock Clock { get; }
    public PacketPool Pool { get; }
    public KstatRegistry Kstats { get; }
    public MacLayer Mac { get; }
    public IConfigStore Store { get; }
    public NicTagTable NicTags { get; }
    public ZoneTable Zones { get; }

    /// <summary>The storage pools the host has imported (PoolTable.cs).</summary>
    public PoolTable Pools { get; }

    /// <summary>The file systems mounted from those pools, and path resolution across them (MountTable.cs).</summary>
    public MountTable Mounts { get; }

    /// <summary>The images imgadm installed on the zones pool, and its image sources (Images/ImageStore.cs).</summary>
    public Images.ImageStore Images { get; }

    /// <summary>Configuration that could not be replayed at boot.</summary>
    public IReadOnlyList<string> BootProblems { get; }
}
