using System.Globalization;

namespace SmartOS.Vnic;

/// <summary>
/// One dladm link property (set-linkprop/show-linkprop): how to read, validate, apply and reset it.
/// Properties are a table so the MAC layer's resource controls add rows, not code paths.
/// </summary>
public sealed class LinkProperty
{
    public required string Name { get; init; }
    /// <summary>"rw" or "r-", as show-linkprop's PERM column prints.</summary>
    public string Perm { get; init; } = "rw";
    public required Func<Datalink, bool> AppliesTo { get; init; }
    public required Func<Datalink, string> Get { get; init; }
    public required Func<Datalink, string> Default { get; init; }
    public required Func<Datalink, string> Possible { get; init; }
    /// <summary>Checks a value without changing anything; returns DladmStatus.Ok or why not.</summary>
    public required Func<Datalink, string, DladmStatus> Validate { get; init; }
    /// <summary>Applies a value already validated.</summary>
    public required Action<Datalink, string> Apply { get; init; }
}

public sealed partial class MacLayer
{
    private readonly List<LinkProperty> _props = [];

    public IReadOnlyList<LinkProperty> Properties => _props;

    public LinkProperty? FindProperty(string name) => _props.Find(p => p.Name == name);

    /// <summary>Adds a property to the table (the resource-control code registers its own).</summary>
    public void RegisterProperty(LinkProperty p)
    {
        if (FindProperty(p.Name) != null) throw new InvalidOperationException($"property {p.Name} registered twice");
        _props.Add(p);
    }

    private void RegisterBuiltinProperties()
    {
        RegisterProperty(new LinkProperty
        {
            Name = "mtu",
            AppliesTo = l => l is not Etherstub,
            Get = l => l.Mtu.ToString(CultureInfo.InvariantCulture),
            Default = l => l is OverlayLink ? "1400" : "1500",
            Possible = l => l.Over is Datalink lower ? $"576-{lower.Mtu}" : "576-9000",
            Validate = ValidateMtu,
            Apply = (l, v) => l.Mtu = int.Parse(v, CultureInfo.InvariantCulture),
        });
    }

    private DladmStatus ValidateMtu(Datalink link, string value)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int mtu)) return DladmStatus.BadVal;
        int max = link.Over?.Mtu ?? 9000;
        if (mtu < 576 || mtu > max) return DladmStatus.BadVal;
        if (link is OverlayLink o && CheckOverlayMtu(o, mtu) is var fit && fit != DladmStatus.Ok) return fit; // Overlay.cs rule 4
        if (link is PortLink pl && pl.Client != null) return DladmStatus.LinkBusy;
        foreach (var l in _links.Values)
            if (l.Over == link && l.Mtu > mtu) return DladmStatus.LinkBusy; // A NIC's MTU bounds the links over it.
        return DladmStatus.Ok;
    }

    /// <summary>Validates and applies one property; persists it unless temporary.</summary>
    public DlStatus SetLinkProp(Datalink link, string name, string value, bool temporary)
    {
        var s = CheckLinkProp(link, name, value);
        if (!s.IsOk) return s;
        var prop = FindProperty(name)!;
        if (!temporary) PersistProp(link, r => (r.Props ??= new())[name] = value);
        prop.Apply(link, value);
        return DlStatus.Ok;
    }

    /// <summary>Checks a property change without applying it.</summary>
    public DlStatus CheckLinkProp(Datalink link, string name, string value)
    {
        var prop = FindProperty(name);
        if (prop == null || !prop.AppliesTo(link)) return NotApplicable(link, name, prop);
        if (prop.Perm != "rw") return DladmStatus.PropRdOnly;
        return prop.Validate(link, value);
    }

    /// <summary>Why a property cannot be changed on this link: unknown ("object not found"), one illumos
    /// has for this class but this layer implements only for others ("operation not supported"), or one
    /// of another class (i_dladm_set_single_prop's class test: "invalid argument").</summary>
    private static DlStatus NotApplicable(Datalink link, string name, LinkProperty? prop)
    {
        if (prop == null) return DladmStatus.NotFound;
        return IllumosHas(link, name) ? DladmStatus.NotSup : DladmStatus.BadArg;
    }

    /// <summary>Returns a property to its default; persists the reset unless temporary.</summary>
    public DlStatus ResetLinkProp(Datalink link, string name, bool temporary)
    {
        var prop = FindProperty(name);
        if (prop == null || !prop.AppliesTo(link)) return NotApplicable(link, name, prop);
        if (prop.Perm != "rw") return DladmStatus.PropRdOnly;
        string def = prop.Default(link);
        if (name == "mtu" && link.Over is Datalink lower) def = Math.Min(lower.Mtu, 1500).ToString(CultureInfo.InvariantCulture);
        var err = prop.Validate(link, def);
        if (err != DladmStatus.Ok) return err;
        if (!temporary) PersistProp(link, r => r.Props?.Remove(name));
        prop.Apply(link, def);
        return DlStatus.Ok;
    }
}
