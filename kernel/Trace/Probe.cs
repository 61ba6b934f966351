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
 *
 * Not done yet: probes of the IP stacks, zones and the VMM; argument types (args[] translators).
 */
namespace SmartOS.Kernel.Trace;

/// <summary>One argument of a firing: an integer, or a string (the probe's link name, say).</summary>
public readonly struct ProbeArg
{
    public readonly long Int;
    public readonly string? Str;

    public ProbeArg(long value) { Int = value; Str = null; }
    public ProbeArg(string value) { Int = 0; Str = value; }

    public static implicit operator ProbeArg(long value) => new(value);
    public static implicit operator ProbeArg(string value) => new(value);
}

/// <summary>What enables probes (rule 3).</summary>
public interface IProbeConsumer
{
    void Fired(Probe probe, in ProbeArgs args);
}

/// <summary>The arguments of one firing, arg0..arg4 (unused ones are 0).</summary>
public readonly struct ProbeArgs
{
    public readonly ProbeArg A0, A1, A2, A3, A4;

    public ProbeArgs(ProbeArg a0 = default, ProbeArg a1 = default, ProbeArg a2 = default, ProbeArg a3 = default, ProbeArg a4 = default)
    {
        A0 = a0; A1 = a1; A2 = a2; A3 = a3; A4 = a4;
    }

    public const int Count = 5;

    public ProbeArg this[int i] => i switch { 0 => A0, 1 => A1, 2 => A2, 3 => A3, 4 => A4, _ => default };
}

/// <summary>One probe site (rules 1, 2).</summary>
public sealed class Probe
{
    private readonly Func<string> _module;
    private readonly Func<string> _zone;
    private IProbeConsumer[] _consumers = [];

    /// <summary>Whether a consumer is attached: the one branch a site pays when it is not (rule 1).</summary>
    public bool Enabled;

    internal Probe(int id, string provider, Func<string> module, string function, string name, Func<string> zone)
    {
        Id = id;
        Provider = provider;
        _module = module;
        Function = function;
        Name = name;
        _zone = zone;
    }

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
    }

    public Probe Begin { get; }
    public Probe End { get; }
    public Probe Error { get; }

    public IReadOnlyList<Probe> All => _probes;

    public Probe Add(string provider, Func<string> module, string function, string name, Func<string> zone)
    {
        var p = new Probe(_nextId++, provider, module, function, name, zone);
        _probes.Add(p);
        return p;
    }

    /// <summary>Removes a probe; its consumers stop hearing from it.</summary>
    public void Remove(Probe probe) => _probes.Remove(probe);
}
