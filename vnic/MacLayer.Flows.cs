using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>One persistent flow, as written to the host's flowadm.conf.</summary>
public sealed class FlowRecord
{
    public string Name { get; set; } = "";
    public string Link { get; set; } = "";
    /// <summary>The attributes in flowadm's form (FlowSpec.ToString).</summary>
    public string Attrs { get; set; } = "";
    public Dictionary<string, string>? Props { get; set; }
}

/// <summary>flowadm's flows (ResourceControl.cs): creation, properties, persistence and replay.</summary>
public sealed partial class MacLayer
{
    public const string FlowConfigName = "flowadm.conf";
    /// <summary>illumos's MAXFLOWNAMELEN is 128 including the terminating NUL.</summary>
    public const int MaxFlowNameLength = 127;
    public static readonly string[] FlowPropertyNames = ["maxbw", "priority"];

    private readonly Dictionary<string, Flow> _flows = new(StringComparer.Ordinal);
    private readonly List<FlowRecord> _persistentFlows = [];
    private int _nextFlowId = 1;

    /// <summary>Live flows in creation order.</summary>
    public IEnumerable<Flow> Flows
    {
        get
        {
            var list = new List<Flow>(_flows.Values);
            list.Sort((a, b) => a.Id.CompareTo(b.Id));
            return list;
        }
    }

    public IReadOnlyList<FlowRecord> PersistentFlows => _persistentFlows;

    public Flow? FindFlow(string name) => _flows.TryGetValue(name, out var f) ? f : null;

    /// <summary>flowadm's rule: a letter first, then letters, digits, '_', '.' or '-'.</summary>
    public static bool IsValidFlowName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxFlowNameLength || !char.IsAsciiLetter(name[0])) return false;
        foreach (char c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '.' or '-')) return false;
        return true;
    }

    /// <summary>Checks one flow property value without applying it.</summary>
    public static DlStatus CheckFlowProp(string prop, string value)
    {
        switch (prop)
        {
            case "maxbw":
                return LinkControl.TryParseMaxBw(value, out _);
            case "priority":
                return LinkControl.TryParsePriority(value, out _) ? DladmStatus.Ok : DladmStatus.BadVal;
            default:
                return DladmStatus.BadProp;
        }
    }

    /// <summary>A flow property's value as show-flowprop prints it ("" when unset).</summary>
    public static string GetFlowProp(Flow f, string prop) => prop switch
    {
        "maxbw" => f.MaxBw is long bps ? LinkControl.FormatMaxBw(bps) : "",
        "priority" => LinkControl.FormatPriority(f.Priority),
        _ => "",
    };

    public static string FlowPropDefault(string prop) => prop == "priority" ? "medium" : "";
    public static string FlowPropPossible(string prop) => prop == "priority" ? "low,medium,high" : "";

    /// <summary>flowadm add-flow: validates everything, persists unless temporary, then creates the flow.</summary>
    public DlStatus AddFlow(string name, string linkName, string attrs, IReadOnlyList<(string Prop, string Value)> props, bool temporary)
    {
        if (!IsValidFlowName(name)) return DladmStatus.BadArg;
        if (_flows.ContainsKey(name) || _persistentFlows.Exists(r => r.Name == name)) return DladmStatus.Exist;
        var s = CheckNewFlow(linkName, attrs, props, out var link, out var spec);
        if (!s.IsOk) return s;
        if (!temporary)
        {
            var rec = new FlowRecord { Name = name, Link = linkName, Attrs = spec.ToString() };
            if (props.Count > 0) rec.Props = props.ToDictionary(p => p.Prop, p => p.Value, StringComparer.Ordinal);
            PersistFlows(l => l.Add(rec));
        }
        AddFlowLive(name, link!, spec, props);
        return DlStatus.Ok;
    }

    private DlStatus CheckNewFlow(string linkName, string attrs, IReadOnlyList<(string Prop, string Value)> props, out PortLink? link, out FlowSpec spec)
    {
        spec = default;
        link = null;
        var l = Find(linkName);
        if (l == null) return DladmStatus.NotFound;
        if (l is not PortLink port) return DladmStatus.NotSup;
        var err = FlowSpec.TryParse(attrs, out spec);
        if (err != DladmStatus.Ok) return err;
        foreach (var (prop, value) in props)
        {
            var ps = CheckFlowProp(prop, value);
            if (!ps.IsOk) return ps;
        }
        var table = port.Control?.Flows;
        if (table != null && table.Count > 0)
        {
            // One flow type per link (illumos: a link's flow table has one mask).
            if (table.Type != spec.Type) return DladmStatus.FlowIncompatible;
            if (table.Contains(spec)) return DladmStatus.FlowIdentical;
        }
        link = port;
        return DlStatus.Ok;
    }

    private void AddFlowLive(string name, PortLink link, FlowSpec spec, IReadOnlyList<(string Prop, string Value)> props)
    {
        var f = new Flow(name, link, spec, _nextFlowId++);
        foreach (var (prop, value) in props) ApplyFlowProp(f, prop, value);
        var c = link.EnsureControl();
        if (c.Flows == null || c.Flows.Count == 0) c.Flows = new FlowTable(spec.Type);
        c.Flows.Add(f);
        _flows.Add(name, f);
        f.Kstat = Kstats.Add("flow", 0, name, "flow", f.Stats);
    }

    private void ApplyFlowProp(Flow f, string prop, string value)
    {
        if (prop == "priority")
        {
            LinkControl.TryParsePriority(value, out var p);
            f.Priority = p;
            return;
        }
        if (value.Length == 0)
        {
            f.MaxBw = null;
            var tx = f.Tx; var rx = f.Rx;
            f.Tx = null; f.Rx = null;
            tx?.ReleaseAll();
            rx?.ReleaseAll();
            return;
        }
        LinkControl.TryParseMaxBw(value, out long bps);
        f.MaxBw = bps;
        if (f.Tx == null) f.Tx = new Shaper(Scheduler, f, Flow.StageTx, bps, LinkControl.ShaperQueueFrames, f.Link, f.Name);
        else f.Stats.ODrops += f.Tx.SetRate(bps);
        if (f.Rx == null) f.Rx = new Shaper(Scheduler, f, Flow.StageRx, bps, LinkControl.ShaperQueueFrames, f.Link, f.Name);
        else f.Stats.IDrops += f.Rx.SetRate(bps);
    }

    /// <summary>flowadm remove-flow NAME. With -t only the live flow goes; the next boot recreates it.</summary>
    public DlStatus RemoveFlow(string name, bool temporary)
    {
        var f = FindFlow(name);
        int rec = _persistentFlows.FindIndex(r => r.Name == name);
        if (f == null && (temporary || rec < 0)) return DladmStatus.NotFound;
        if (!temporary && rec >= 0) PersistFlows(l => l.RemoveAt(rec));
        if (f != null) RemoveFlowLive(f);
        return DlStatus.Ok;
    }

    /// <summary>flowadm remove-flow -l LINK: every flow on the link.</summary>
    public DlStatus RemoveFlowsOnLink(string linkName, bool temporary)
    {
        var link = Find(linkName);
        if (link == null) return DladmStatus.NotFound;
        if (!temporary) PersistFlows(l => l.RemoveAll(r => r.Link == linkName));
        foreach (var f in Flows)
            if (f.Link == link) RemoveFlowLive(f);
        return DlStatus.Ok;
    }

    private void RemoveFlowLive(Flow f)
    {
        var c = f.Link.Control!;
        c.Flows!.Remove(f);
        _flows.Remove(f.Name);
        if (f.Kstat != null) Kstats.Remove(f.Kstat);
        // Frames waiting in the flow's shapers continue on the link's default flow.
        var tx = f.Tx; var rx = f.Rx;
        f.Tx = null; f.Rx = null;
        tx?.ReleaseAll();
        rx?.ReleaseAll();
    }

    /// <summary>Whether a link (live, or by name in flowadm.conf) still has flows: it cannot be deleted then.</summary>
    public bool HasFlows(string linkName)
    {
        var link = Find(linkName);
        if (link is PortLink p && p.Control?.Flows is { Count: > 0 }) return true;
        return _persistentFlows.Exists(r => r.Link == linkName);
    }

    /// <summary>flowadm set-flowprop: validates every value before applying any.</summary>
    public DlStatus SetFlowProps(Flow f, IReadOnlyList<(string Prop, string Value)> props, bool temporary)
    {
        foreach (var (prop, value) in props)
        {
            var s = CheckFlowProp(prop, value);
            if (!s.IsOk) return s;
        }
        int rec = _persistentFlows.FindIndex(r => r.Name == f.Name);
        if (!temporary && rec >= 0)
            PersistFlows(l => { foreach (var (prop, value) in props) (l[rec].Props ??= new())[prop] = value; });
        foreach (var (prop, value) in props) ApplyFlowProp(f, prop, value);
        return DlStatus.Ok;
    }

    /// <summary>flowadm reset-flowprop: back to defaults (all properties when none are named).</summary>
    public DlStatus ResetFlowProps(Flow f, IReadOnlyList<string> names, bool temporary)
    {
        foreach (string n in names)
            if (Array.IndexOf(FlowPropertyNames, n) < 0) return DladmStatus.BadProp;
        var list = names.Count > 0 ? names : FlowPropertyNames;
        int rec = _persistentFlows.FindIndex(r => r.Name == f.Name);
        if (!temporary && rec >= 0)
            PersistFlows(l => { foreach (string n in list) l[rec].Props?.Remove(n); });
        foreach (string n in list) ApplyFlowProp(f, n, FlowPropDefault(n));
        return DlStatus.Ok;
    }

    private void PersistFlows(Action<List<FlowRecord>> change)
    {
        var snapshot = _persistentFlows.Select(r => new FlowRecord
        {
            Name = r.Name, Link = r.Link, Attrs = r.Attrs,
            Props = r.Props == null ? null : new Dictionary<string, string>(r.Props),
        }).ToList();
        change(_persistentFlows);
        try
        {
            if (_store != null) _flowFile.Save(_store, _persistentFlows);
        }
        catch
        {
            _persistentFlows.Clear();
            _persistentFlows.AddRange(snapshot);
            throw;
        }
    }

    /// <summary>Renames the link in persistent flow records (rename-link).</summary>
    private void RenameFlowLink(string oldName, string newName)
    {
        if (_persistentFlows.Exists(r => r.Link == oldName))
            PersistFlows(l => { foreach (var r in l) if (r.Link == oldName) r.Link = newName; });
    }

    private readonly ConfigFile<FlowRecord> _flowFile = new(FlowConfigName, FlowJson.Default.FlowRecord);

    /// <summary>Replays flowadm.conf at boot (after the links exist), record by record (ConfigFile.cs).
    /// A flow that cannot be recreated is reported and stays in the file, so fixing its link brings
    /// it back next boot.</summary>
    private void BootFlows(IConfigStore store, List<string> problems)
    {
        foreach (var rec in _flowFile.Load(store, problems))
        {
            var r = rec.Value;
            _persistentFlows.Add(r);
            DlStatus s;
            List<(string, string)> props = [];
            if (!IsValidFlowName(r.Name)) s = DladmStatus.BadArg;
            else if (_flows.ContainsKey(r.Name)) s = DladmStatus.Exist;
            else if (r.Props != null && r.Props.ContainsValue(null!)) s = DladmStatus.BadVal;
            else
            {
                if (r.Props != null) foreach (var (k, v) in r.Props) props.Add((k, v));
                s = CheckNewFlow(r.Link, r.Attrs, props, out var link, out var spec);
                if (s.IsOk) AddFlowLive(r.Name, link!, spec, props);
            }
            if (!s.IsOk) problems.Add($"{FlowConfigName}: record {rec.Index} (line {rec.Line}): {ConfigText.Echo(r.Name)}: {s.Message}");
        }
    }

    /// <summary>Formats a flow's IPADDR column as flowadm show-flow does ("LCL:10.0.0.1/32").</summary>
    public static string FlowAddressColumn(FlowSpec s) => s.Type switch
    {
        FlowType.LocalIp => $"LCL:{s.Address}/{s.Prefix}",
        FlowType.RemoteIp => $"RMT:{s.Address}/{s.Prefix}",
        _ => "--",
    };

    public static string FlowDsColumn(FlowSpec s)
        => s.Type == FlowType.DsField ? string.Create(CultureInfo.InvariantCulture, $"0x{s.DsField:x}:0x{s.DsMask:x}") : "--";
}

[JsonSourceGenerationOptions(WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, RespectNullableAnnotations = true)]
[JsonSerializable(typeof(FlowRecord))]
internal partial class FlowJson : JsonSerializerContext { }
