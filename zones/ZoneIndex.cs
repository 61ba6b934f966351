/*
 * ZoneIndex: what the zone table is asked by name, VM number, address and MAC, answered in O(1).
 *
 * A host may hold 10,000 zones (issue 17). Every vmadm create used to look a zone up by a linear
 * search, find the next VM number by a pass over every zone, and collect every zone's IP addresses
 * and MAC addresses into fresh dictionaries to check the new nics for conflicts: O(N) per create,
 * O(N^2) for N zones (tests/SmartOS.Benchmarks zones).
 *
 * Rules
 *   1. The index changes only with the table (ZoneTable.Commit, Delete, Boot): Add when a zone
 *      enters, Replace when its committed configuration is replaced, Remove when it leaves. It
 *      indexes committed configurations, never the zone's live state.
 *   2. A conflict lookup returns every zone that holds the key, and the caller applies what may
 *      change without a commit (a failed VM that is not running does not count, VmAttrs.cs) and
 *      picks the first in configuration order, as the pass over the zones did: the same message.
 *   3. The next VM number is one more than the largest of the zones present (VmInfo.Index), as the
 *      pass computed it; the largest is kept, and found again by a pass only when the zone holding
 *      it leaves (a delete, not a create).
 */
using System.Globalization;

namespace SmartOS.Zones;

/// <summary>The zone table's lookups by name, VM number, IP and MAC (see the theory statement above).</summary>
internal sealed class ZoneIndex
{
    private readonly Dictionary<string, Zone> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Zone>> _ips = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Zone>> _macs = new(StringComparer.Ordinal);
    private int _maxVmIndex;
    private bool _maxStale;

    public Zone? Find(string name) => _byName.GetValueOrDefault(name);

    public void Add(Zone z)
    {
        _byName[z.Name] = z;
        AddKeys(z, z.Config);
    }

    /// <summary>The zone's configuration is about to be replaced by <paramref name="next"/>.</summary>
    public void Replace(Zone z, ZoneConfig next)
    {
        RemoveKeys(z, z.Config);
        AddKeys(z, next);
    }

    public void Remove(Zone z)
    {
        _byName.Remove(z.Name);
        RemoveKeys(z, z.Config);
    }

    /// <summary>The number the next VM gets (rule 3): z1_net0 is VM 1's first nic.</summary>
    public int NextVmIndex(IReadOnlyList<Zone> zones)
    {
        if (_maxStale)
        {
            _maxVmIndex = 0;
            foreach (var z in zones) if (z.Config.Vm is VmInfo vi) _maxVmIndex = Math.Max(_maxVmIndex, vi.Index);
            _maxStale = false;
        }
        return Math.Max(1, _maxVmIndex + 1);
    }

    /// <summary>The zones whose committed nics hold the address on the tag and VLAN (rule 2).</summary>
    public IReadOnlyList<Zone> HoldingIp(string key) => _ips.TryGetValue(key, out var l) ? l : [];

    /// <summary>The zones whose committed nics have the MAC address (rule 2).</summary>
    public IReadOnlyList<Zone> HoldingMac(string mac) => _macs.TryGetValue(mac, out var l) ? l : [];

    /// <summary>What an IP address conflicts within: SmartOS checks addresses per nic tag and VLAN
    /// (smartos-live test-net-conflicts.js: the same IP on another nic tag is no conflict).</summary>
    public static string IpKey(ZoneNet n, string ip)
    {
        int slash = ip.IndexOf('/');
        return $"{n.GlobalNic}/{n.VlanId.ToString(CultureInfo.InvariantCulture)}/{(slash < 0 ? ip : ip[..slash])}";
    }

    /// <summary>Whether an address of a nic takes part in conflict checks (dhcp and addrconf do not).</summary>
    public static bool IsFixedIp(string ip) => ip is not ("dhcp" or "addrconf");

    private void AddKeys(Zone z, ZoneConfig c)
    {
        if (c.Vm is VmInfo vi && vi.Index > _maxVmIndex) _maxVmIndex = vi.Index;
        foreach (var n in c.Nets)
        {
            foreach (string ip in n.Ips) if (IsFixedIp(ip)) Add(_ips, IpKey(n, ip), z);
            if (n.MacAddr != null) Add(_macs, n.MacAddr, z);
        }
    }

    private void RemoveKeys(Zone z, ZoneConfig c)
    {
        if (c.Vm is VmInfo vi && vi.Index >= _maxVmIndex) _maxStale = true;
        foreach (var n in c.Nets)
        {
            foreach (string ip in n.Ips) if (IsFixedIp(ip)) Remove(_ips, IpKey(n, ip), z);
            if (n.MacAddr != null) Remove(_macs, n.MacAddr, z);
        }
    }

    private static void Add(Dictionary<string, List<Zone>> map, string key, Zone z)
    {
        if (!map.TryGetValue(key, out var list)) map[key] = list = new List<Zone>(1);
        list.Add(z);
    }

    private static void Remove(Dictionary<string, List<Zone>> map, string key, Zone z)
    {
        if (!map.TryGetValue(key, out var list)) return;
        list.Remove(z);
        if (list.Count == 0) map.Remove(key);
    }
}
