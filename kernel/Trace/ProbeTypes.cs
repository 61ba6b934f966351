namespace SmartOS.Kernel.Trace;

/// <summary>
/// What a typed probe argument points to (Probe.cs rule 4): a D structure type such as ipinfo_t,
/// its members in declaration order, each read from the provider's object by a getter. This is
/// the role illumos's translators play (ip.d, tcp.d, udp.d turn kernel structures into stable
/// ones): the provider owns the object and says how each member is computed from it.
/// </summary>
public sealed class ProbeType
{
    private readonly Dictionary<string, ProbeMember> _byName;

    public ProbeType(string name, params ProbeMember[] members)
    {
        Name = name;
        Members = members;
        _byName = new(StringComparer.Ordinal);
        for (int i = 0; i < members.Length; i++)
        {
            members[i].Offset = i * 8;
            _byName.Add(members[i].Name, members[i]);
        }
    }

    /// <summary>The D type name, ipinfo_t.</summary>
    public string Name { get; }
    public IReadOnlyList<ProbeMember> Members { get; }

    public ProbeMember? Member(string name) => _byName.GetValueOrDefault(name);
}

/// <summary>One member: an integer (of CType, e.g. uint16_t) or a string; Address marks a
/// string that is an IP address (ip_saddr), which inet_ntoa/inet_ntop of its address accept.</summary>
public sealed class ProbeMember
{
    private ProbeMember(string name, string cType, Func<object, long>? integer, Func<object, string>? text, bool address)
    {
        Name = name;
        CType = cType;
        Int = integer;
        Str = text;
        Address = address;
    }

    public static ProbeMember Integer(string name, string cType, Func<object, long> get) => new(name, cType, get, null, false);
    public static ProbeMember Text(string name, Func<object, string> get) => new(name, "string", null, get, false);
    public static ProbeMember IpAddress(string name, Func<object, string> get) => new(name, "string", null, get, true);

    public string Name { get; }
    public string CType { get; }
    public Func<object, long>? Int { get; }
    public Func<object, string>? Str { get; }
    public bool Address { get; }

    /// <summary>The member's notional offset in its structure (8 bytes a member): what a read
    /// through a NULL pointer reports as the bad address, as dtrace reports NULL plus the offset.</summary>
    public int Offset { get; internal set; }
}
