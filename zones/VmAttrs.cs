using System.Text;
using System.Text.Json.Nodes;
using SmartOS.Kernel;

namespace SmartOS.Zones;

/// <summary>
/// A VM's zonecfg attrs and the vmadm properties SmartOS keeps in them (VM.js writes them with
/// zonecfg's `add attr` and reads them back from the zone's XML; proptable.js, "zonexml"):
///   alias            base64 of the alias;
///   billing-id, owner-uuid, package-name, package-version   as they are;
///   create-timestamp when vmadm created the VM;
///   failed           set when a provision fails: vmadm shows the VM's state as "failed", and IP and
///                    MAC conflict checks pass over it unless it runs (VM.js's checkNicConflicts).
/// The first five are vmadm's: they live in the VM's VmInfo, so a zonecfg change to them is what
/// vmadm get shows, and the other way round. Every other attr, a plain zone's too, is kept in
/// ZoneConfig.Attrs as zonecfg set it.
/// </summary>
public static partial class VmModel
{
    /// <summary>zonecfg(8)'s attr types.</summary>
    public static readonly string[] AttrTypes = ["boolean", "int", "string", "uint"];

    private static readonly (string Attr, string Key)[] s_attrKeys =
        [("billing-id", "billing_id"), ("owner-uuid", "owner_uuid"), ("package-name", "package_name"), ("package-version", "package_version")];

    /// <summary>Whether vmadm owns the attr of that name on a VM (kept in its VmInfo).</summary>
    public static bool IsVmAttr(string name)
        => name is "alias" or "create-timestamp" || Array.Exists(s_attrKeys, k => k.Attr == name);

    /// <summary>The zone's attrs as zonecfg info shows them: vmadm's (from the VM) first, in VM.js's
    /// order, then the others in the order they were added. An empty value is no attr.</summary>
    public static IEnumerable<ZoneAttr> Attrs(ZoneConfig c)
    {
        if (c.Vm is VmInfo vm)
        {
            if (!string.IsNullOrEmpty(vm.Alias)) yield return Str("alias", Convert.ToBase64String(Encoding.UTF8.GetBytes(vm.Alias)));
            foreach (var (attr, key) in s_attrKeys)
                if (vm.Kept.TryGetValue(key, out string? json) && JsonNode.Parse(json) is JsonValue v && v.TryGetValue(out string? text) && text.Length > 0)
                    yield return Str(attr, text);
            if (vm.CreateTimestamp != null) yield return Str("create-timestamp", vm.CreateTimestamp);
        }
        foreach (var a in c.Attrs) yield return a;
    }

    private static ZoneAttr Str(string name, string value) => new() { Name = name, Type = "string", Value = value };

    /// <summary>Adds an attr (a checked one: zonecfg's end checks name, type and value and that no
    /// attr has the name). One of vmadm's on a VM sets the VM's property; null, or the problem.</summary>
    public static string? AddAttr(ZoneConfig c, ZoneAttr a)
    {
        if (c.Vm is not VmInfo vm || !IsVmAttr(a.Name))
        {
            c.Attrs.Add(a.Clone());
            return null;
        }
        // vmadm reads these as strings (proptable.js); another type would not round-trip.
        if (a.Type != "string") return $"attr {a.Name}: vmadm keeps it as type string";
        switch (a.Name)
        {
            case "alias":
                // VM.js stores the alias base64-encoded and decodes it when it loads the VM.
                Span<byte> bytes = new byte[a.Value.Length];
                if (!Convert.TryFromBase64String(a.Value, bytes, out int n)) return $"attr alias: '{ConfigText.Echo(a.Value)}' is not base64 (vmadm stores the alias base64-encoded)";
                vm.Alias = Encoding.UTF8.GetString(bytes[..n]);
                return null;
            case "create-timestamp":
                vm.CreateTimestamp = a.Value;
                return null;
            default:
                vm.Kept[Array.Find(s_attrKeys, k => k.Attr == a.Name).Key] = JsonValue.Create(a.Value).ToJsonString();
                return null;
        }
    }

    /// <summary>Removes the attr of that name; false when there is none.</summary>
    public static bool RemoveAttr(ZoneConfig c, string name)
    {
        if (c.Vm is VmInfo vm && IsVmAttr(name))
        {
            if (!Attrs(c).Any(a => a.Name == name)) return false;
            switch (name)
            {
                case "alias": vm.Alias = null; break;
                case "create-timestamp": vm.CreateTimestamp = null; break;
                default: vm.Kept.Remove(Array.Find(s_attrKeys, k => k.Attr == name).Key); break;
            }
            return true;
        }
        return c.Attrs.RemoveAll(a => a.Name == name) > 0;
    }

    /// <summary>Whether the VM is marked failed (the "failed" attr, as VM.js marks a failed provision).</summary>
    public static bool IsFailed(ZoneConfig c) => c.Attrs.Exists(a => a.Name == "failed");

    /// <summary>vmadm's state of a VM: "failed" when it has the failed attr, whatever its zone state
    /// (vmload: "it doesn't matter what other state it might be in"), else its zone state's name.</summary>
    public static string State(Zone z) => IsFailed(z.Config) ? "failed" : StateName(z.State);

    /// <summary>boot_timestamp: when the running zone booted, to the second (VM.js reads zoneinfo's
    /// boot_time, in seconds); null unless it runs, as the kernel has it only for a running zone.</summary>
    public static string? BootTimestamp(Zone z)
        => z.State == ZoneState.Running && z.BootedAt is long t ? WallClock.Iso8601(t, wholeSeconds: true) : null;

    /// <summary>A timestamp as VM.js's create writes it: now, with milliseconds.</summary>
    internal static string Now(Host host) => WallClock.Iso8601(host.Clock.UnixNanoseconds);
}
