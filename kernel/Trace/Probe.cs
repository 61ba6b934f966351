/*
 * Probe sites: the kernel half of DTrace (issue 14).
 *
 * Terms
 *   probe      one named point in the code, provider:module:function:name (illumos's dtrace_probe_t),
 *              with an id unique in its registry. A layer creates its probes when the thing they
 *              watch appears (a datalink) and removes them when it goes.
 *   consumer   whatever enables a probe (dtrace/, the D consumer): an IProbeConsumer, told of each firing with
 *              the probe and its arguments.
 *   registry   a host's probes (ProbeRegistry): what `dtrace -l` lists and `dtrace -n` matches.
 *
 * Rules
 *   1. A disabled probe costs one predictable branch: the site reads `probe.Enabled` (a field) and
 *      calls Fire only when it is true. Arguments are ProbeArg structs (an integer or a string
 *      already held by the caller), so even an enabled site allocates nothing to fire.
 *   2. A probe's module and zone may change while it lives (a link renamed or given to a zone), so
 *      they are read through the owner when a consumer asks, never copied at creation.
 *   3. Consumers run on the kernel loop, inside the firing site: they must not throw, and they must
 *      not re-enter the datapath that fired them.
 *   4. Typed arguments: a provider describes what args[N] points to as a ProbeType (ProbeTypes.cs,
 *      illumos's translated stable structures such as ipinfo_t) and passes an object it owns and
 *      refills before each firing, so firing allocates nothing; a member is read only when a
 *      consumer's clause asks for it (a string member, an address, is formatted then).
 *   5. A shared probe (the ip, tcp and udp providers) is one probe for every zone's stack, as on
 *      illumos; each firing names its zone (ProbeArgs.Zone), and a zone's consumer hears only its own.
 *   6. Every firing happens in a process (TraceProcess.cs), what execname, pid, curpsinfo and the
 *      other process built-ins read: the one the site names (ProbeArgs.Process: proc and sched),
 *      else the program whose code is running (TraceProcess.Current, carried with its async flow),
 *      else the host's kernel, pid 0, "sched". A kernel firing for a zone's stack still names that
 *      zone in ProbeArgs.Zone (zonename), so a zone's consumer hears its stack.
 *   7. The loop is the host's one CPU; each event it runs is a turn of the kernel and a program's
 *      code running takes the CPU from it (SchedProbes.cs): sched:::on-cpu/off-cpu mark the turns.
 *
 * Providers: mac (vnic/LinkProbes.cs, with the shaper's mac_bw probes), ip/tcp/udp
 * (netstack/NetProbes.cs), proc (tools/ProcProbes.cs, the dispatcher's programs), sched
 * (SchedProbes.cs, hooked to the host's scheduler), io and zfs (storage/StorageProbes.cs, a pool's
 * vdev I/O, txgs and cache), vmm (virt/VmProbes.cs, a guest's exits, exceptions, interrupts and
 * stop), dtrace and profile (dtrace/Consumer.cs).
 */
namespace SmartOS.Kernel.Trace;

/// <summary>One argument of a firing: an integer, a string (the probe's link name, say), or an
/// object the provider fills before firing and its probe's ArgTypes describe (rule 4).</summary>
public readonly struct ProbeArg
{
    public readonly long Int;
    public readonly object? Obj;

    public ProbeArg(long value) { Int = value; Obj = null; }
    public ProbeArg(string value) { Int = 0; Obj = value; }
    private ProbeArg(object? o, long value) { Int = value; Obj = o; }

    public string? Str => Obj as string;

    /// <summary>A typed argument (a pointer in D): null is D's NULL, a fault when read.</summary>
    public static ProbeArg Of(object? o) => new(o, 0);

    public static implicit operator ProbeArg(long value) => new(value);
    public static implicit operator ProbeArg(string value) => new(value);
}

/// <summary>What enables probes (rule 3).</summary>
public interface IProbeConsumer
{
    void Fired(Probe probe, in ProbeArgs args);
}

/// <summary>The arguments of one firing, arg0..arg5 (unused ones are 0), with the zone and the
/// thread it happens for when the probe is shared by zones (rule 5).</summary>
public readonly struct ProbeArgs
{
    public readonly ProbeArg A0, A1, A2, A3, A4, A5;

    public ProbeArgs(ProbeArg a0 = default, ProbeArg a1 = default, ProbeArg a2 = default, ProbeArg a3 = default, ProbeArg a4 = default, ProbeArg a5 = default)
    {
        A0 = a0; A1 = a1; A2 = a2; A3 = a3; A4 = a4; A5 = a5;
    }

    public const int Count = 6;

    public ProbeArg this[int i] => i switch { 0 => A0, 1 => A1, 2 => A2, 3 => A3, 4 => A4, 5 => A5, _ => default };

    /// <summary>The zone the firing belongs to (a shared probe's); null: the probe's own zone.</summary>
    public string? Zone { get; init; }

    /// <summary>The process the firing happens in (execname, pid, curpsinfo ...), when the site
    /// knows it better than <see cref="TraceProcess.Current"/> does (rule 6).</summary>
    public TraceProcess? Process { get; init; }

    /// <summary>What D's self-> variables belong to: the connection or socket the probe fires for,
    /// else the zone's stack; null: no thread (the consumer's own, as for BEGIN and END).</summary>
    public object? Thread { get; init; }
}

/// <summary>One probe site (rules 1, 2).</summary>
public sealed class Probe
{
    private readonly Func<string> _module;
    private readonly Func<string> _zone;
    private IProbeConsumer[] _consumers = [];

    /// <summary>Whether a consumer is attached: the one branch a site pays when it is not (rule 1).</summary>
    public bool Enabled;

    internal Probe(int id, string provider, Func<string> module, string function, string name, Func<string> zone, ProbeType?[]? argTypes, bool shared)
    {
        Id = id;
        Provider = provider;
        _module = module;
        Function = function;
        Name = name;
        _zone = zone;
        ArgTypes = argTypes ?? [];
        Shared = shared;
    }

    /// <summary>What args[N] points to for each N (rule 4); null or past the end: an untyped argN.</summary>
    public IReadOnlyList<ProbeType?> ArgTypes { get; }

    /// <summary>Whether every zone's stack fires this probe, each firing naming its zone (rule 5).</summary>
    public bool Shared { get; }

    public int Id { get; }
    public string Provider { get; }
    public string Module => _module();
    public string Function { get; }
    public string Name { get; }

    /// <summary>The zone the probe's data belongs to: a zone's dtrace sees only its own probes.</summary>
    public string Zone => _zone();

    public string FullName => $"{Provider}:{Module}:{Function}:{Name}";

    /// <summary>Tells every consumer; call only when Enabled (rule 1).</summary>
    public void Fire(in ProbeArgs args)
    {
        var consumers = _consumers;
        for (int i = 0; i < consumers.Length; i++) consumers[i].Fired(this, args);
    }

    public void Attach(IProbeConsumer consumer)
    {
        var c = new IProbeConsumer[_consumers.Length + 1];
        _consumers.CopyTo(c, 0);
        c[^1] = consumer;
        _consumers = c;
        Enabled = true;
    }

    public void Detach(IProbeConsumer consumer)
    {
        int at = Array.IndexOf(_consumers, consumer);
        if (at < 0) return;
        var c = new IProbeConsumer[_consumers.Length - 1];
        for (int i = 0, j = 0; i < _consumers.Length; i++)
            if (i != at) c[j++] = _consumers[i];
        _consumers = c;
        Enabled = c.Length != 0;
    }
}

/// <summary>A host's probes, by id (what `dtrace -l` lists).</summary>
public sealed class ProbeRegistry
{
    private readonly List<Probe> _probes = [];
    private int _nextId = 1;

    /// <summary>The dtrace provider's probes, ids 1 to 3 as on illumos; the consumer fires them itself.</summary>
    public ProbeRegistry()
    {
        Begin = Add("dtrace", static () => "", "", "BEGIN", static () => "global");
        End = Add("dtrace", static () => "", "", "END", static () => "global");
        Error = Add("dtrace", static () => "", "", "ERROR", static () => "global");
        Kernel = new TraceProcess(0, 0, "global", 0, "sched", ["sched"], this);
    }

    /// <summary>The host's kernel as a process: pid 0, sched, in the global zone (TraceProcess.cs).</summary>
    public TraceProcess Kernel { get; }

    /// <summary>The host's sched probes, once its scheduler is hooked (SchedProbes.Attach).</summary>
    public SchedProbes? Sched { get; internal set; }

    /// <summary>The first pid a program gets; lower ones are the system's on illumos (sched 0, init
    /// 1, pageout 2, fsflush 3 ...).</summary>
    public const int FirstPid = 100;
    private int _nextPid = FirstPid;

    /// <summary>A pid for a new program of this host.</summary>
    public int AllocatePid() => _nextPid++;

    public Probe Begin { get; }
    public Probe End { get; }
    public Probe Error { get; }

    public IReadOnlyList<Probe> All => _probes;

    public Probe Add(string provider, Func<string> module, string function, string name, Func<string> zone, params ProbeType?[] argTypes)
    {
        var p = new Probe(_nextId++, provider, module, function, name, zone, argTypes, shared: false);
        _probes.Add(p);
        return p;
    }

    /// <summary>Adds a probe every zone's stack fires (rule 5), with typed arguments (rule 4).</summary>
    public Probe AddShared(string provider, string module, string function, string name, params ProbeType?[] argTypes)
    {
        var p = new Probe(_nextId++, provider, () => module, function, name, static () => "global", argTypes, shared: true);
        _probes.Add(p);
        return p;
    }

    /// <summary>Removes a probe; its consumers stop hearing from it.</summary>
    public void Remove(Probe probe) => _probes.Remove(probe);
}
