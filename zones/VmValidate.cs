using System.Text.Json;
using System.Text.Json.Nodes;

namespace SmartOS.Zones;

/// <summary>
/// vmadm validate create|update: a payload's shape checked without a host, as VM.js's validate does:
/// each property is one the action takes for the brand (else it is in bad_properties), of the type
/// proptable.js gives it (else bad_values); a nic's properties are named nics.*.X. What is found is
/// reported as VM.js's error object; an empty one means the payload is valid. Whether nic tags exist,
/// addresses conflict or values are in range is create's and update's business, not validate's.
/// </summary>
public static partial class VmModel
{
    /// <summary>The types of the properties this vmadm acts on (the kept ones are in s_kept).</summary>
    private static readonly Dictionary<string, KeptType> s_types = new(StringComparer.Ordinal)
    {
        ["uuid"] = KeptType.String, ["alias"] = KeptType.String, ["brand"] = KeptType.String, ["autoboot"] = KeptType.Boolean,
        ["max_physical_memory"] = KeptType.Integer, ["quota"] = KeptType.Integer, ["resolvers"] = KeptType.List,
        ["image_uuid"] = KeptType.String, ["nowait"] = KeptType.Boolean, ["delegate_dataset"] = KeptType.Boolean, ["ram"] = KeptType.Integer, ["vcpus"] = KeptType.Integer,
        ["image"] = KeptType.Object, ["remove_nics"] = KeptType.List, ["remove_disks"] = KeptType.List,
        ["nic_tag"] = KeptType.String, ["ips"] = KeptType.List, ["gateways"] = KeptType.List, ["vlan_id"] = KeptType.Integer,
        ["mac"] = KeptType.String, ["primary"] = KeptType.Boolean, ["mtu"] = KeptType.Integer,
        ["allow_ip_spoofing"] = KeptType.Boolean, ["allow_mac_spoofing"] = KeptType.Boolean, ["allow_dhcp_spoofing"] = KeptType.Boolean,
        ["allow_restricted_traffic"] = KeptType.Boolean, ["allowed_ips"] = KeptType.List, ["blocked_outgoing_ports"] = KeptType.List,
        ["allowed_dhcp_cids"] = KeptType.List, ["ip"] = KeptType.String, ["netmask"] = KeptType.String, ["gateway"] = KeptType.String,
        ["model"] = KeptType.String,
    };

    /// <summary>Whether vmadm validate knows the brand (VM.js: {"bad_brand": ...} otherwise).</summary>
    public static bool IsBrand(string brand) => Array.IndexOf(ZoneTable.RunnableBrands, brand) >= 0;

    /// <summary>Checks a payload's shape for an action ("create" or "update") of a brand; returns
    /// VM.js's error object (bad_values, bad_properties, missing_properties), or null when valid.</summary>
    public static JsonObject? Validate(string brand, string action, JsonObject payload)
    {
        bool update = action == "update";
        bool hvm = HvmGuest.IsHvm(brand);
        var badValues = new List<string>();
        var badProps = new List<string>();
        string[] top = update ? (hvm ? [.. s_updateProps, .. s_hvmDiskUpdateProps] : s_updateProps) : hvm ? s_hvmCreateProps : s_createProps;
        foreach (var (key, value) in payload)
        {
            if (key is "disks" or "add_disks" or "update_disks" && Array.IndexOf(top, key) >= 0)
            {
                ValidateDisks(key, value, badValues, badProps);
                continue;
            }
            if (key is "nics" or "add_nics" or "update_nics" && Array.IndexOf(top, key) >= 0)
            {
                if (value is not JsonArray arr || arr.Any(e => e is not JsonObject)) { badValues.Add(key); continue; }
                foreach (var nic in arr)
                    foreach (var (sub, sv) in nic!.AsObject())
                        Check("nics.*." + sub, NicTypeHere(sub, brand), sv);
                continue;
            }
            KeptType? type = null;
            if (Array.IndexOf(top, key) >= 0 && !(key == "nowait" && hvm)) type = s_types.GetValueOrDefault(key, KeptType.String);
            else if (s_kept.TryGetValue(key, out var k) && KeptHere(k, brand, update))
            {
                if (!AtLeast(value, k.Min)) { badValues.Add(key); continue; }
                type = k.Type;
            }
            else if (key == "ram" && !hvm && !update) type = KeptType.Integer;
            else if (update && (key.StartsWith("set_", StringComparison.Ordinal) || key.StartsWith("remove_", StringComparison.Ordinal))
                && Array.IndexOf(s_keptObjects, key[(key.IndexOf('_') + 1)..]) >= 0)
                type = key.StartsWith("set_", StringComparison.Ordinal) ? KeptType.Object : KeptType.List;
            Check(key, type, value);
        }
        if (badValues.Count == 0 && badProps.Count == 0) return null;
        return new JsonObject
        {
            ["bad_values"] = new JsonArray([.. badValues.Select(v => (JsonNode)v)]),
            ["bad_properties"] = new JsonArray([.. badProps.Select(v => (JsonNode)v)]),
            ["missing_properties"] = new JsonArray(),
        };

        void Check(string name, KeptType? type, JsonNode? value)
        {
            if (type is not KeptType t) { if (!badProps.Contains(name)) badProps.Add(name); }
            else if (!KeptValueOk(t, value) && !badValues.Contains(name)) badValues.Add(name);
        }
    }

    /// <summary>A nic property's type for the brand; null when the brand's nics do not take it.</summary>
    private static KeptType? NicTypeHere(string sub, string brand)
    {
        bool hvm = HvmGuest.IsHvm(brand);
        if (s_keptNic.TryGetValue(sub, out var k)) return KeptHere(k, brand, update: false) ? k.Type : null;
        if (sub == "model") return hvm ? KeptType.String : null;
        if (sub == "allowed_dhcp_cids" && brand == "bhyve") return null;
        return Array.IndexOf(s_nicProps, sub) >= 0 ? s_types[sub] : null;
    }

    /// <summary>VM.js's error object as vmadm validate prints it (JSON.stringify with 2 spaces).</summary>
    public static string FormatValidation(JsonObject errors) => errors.ToJsonString(Pretty);
}
