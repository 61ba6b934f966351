/*
 * SmartOS.Zones: hosts, the world they share, and (later) zones, brands, vmadm and nic tags.
 *
 * A World is one timeline: a Scheduler shared by every Host in it, so a wire between two hosts
 * delivers frames in virtual time as deterministically as a wire inside one. A Host is one
 * machine: its physical NICs, its MAC layer (vnic/), its kstats, its packet pool, its seeded random
 * source and its persistent configuration store.
 *
 * Rules
 *   1. Every host's random source is derived from the world seed and the host's name, so adding a
 *      host never changes what another host draws.
 *   2. A host boots by replaying its configuration store; what fails to replay is reported, never
 *      half-applied (MacLayer.Boot).
 *
 * Not done yet: zones, brands, vmadm, nictagadm (issue 5).
 */
using SmartOS.Kernel;
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
        Sync = new LoopSynchronizationContext(Scheduler);
    }

    public ulong Seed { get; }
    public Scheduler Scheduler { get; }
    public LoopSynchronizationContext Sync { get; internal set; }
    public IReadOnlyCollection<Host> Hosts => _hosts.Values;
    public IReadOnlyList<Wire> Wires => _wires;

    public Host? FindHost(string name) => _hosts.TryGetValue(name, out var h) ? h : null;

    /// <summary>Creates a host with <paramref name="nics"/> physical NICs (e1000g0, e1000g1, ...) and
    /// boots it from <paramref name="store"/> (an in-memory store when null).</summary>
    public Host AddHost(string name, int nics = 2, IConfigStore? store = null)
    {
        if (_hosts.ContainsKey(name)) throw new ArgumentException($"host '{name}' already exists", nameof(name));
        var host = new Host(this, name, nics, store ?? new MemoryConfigStore());
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
    internal Host(World world, string name, int nics, IConfigStore store)
    {
        if (nics < 0 || nics > 64) throw new ArgumentOutOfRangeException(nameof(nics), "a host has 0 to 64 NICs");
        World = world;
        Name = name;
        Random = new HostRandom(HostRandom.Derive(world.Seed, "host:" + name));
        Pool = new PacketPool();
        Kstats = new KstatRegistry();
        Mac = new MacLayer(name, world.Scheduler, Pool, Kstats, Random);
        for (int i = 0; i < nics; i++) Mac.AddPhys($"e1000g{i}");
        Store = store;
        BootProblems = Mac.Boot(store);
        Stack = new IpStack("global", world.Scheduler, Pool, Random, Kstats);
    }

    /// <summary>The global zone's IP stack (ipadm, ping, ... run on it from the global zone).</summary>
    public IpStack Stack { get; }

    public World World { get; }
    public string Name { get; }
    public Scheduler Scheduler => World.Scheduler;
    public HostRandom Random { get; }
    public PacketPool Pool { get; }
    public KstatRegistry Kstats { get; }
    public MacLayer Mac { get; }
    public IConfigStore Store { get; }

    /// <summary>Configuration that could not be replayed at boot.</summary>
    public IReadOnlyList<string> BootProblems { get; }
}
