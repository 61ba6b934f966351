using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SmartOS.Zones;

/// <summary>
/// How vmadm update moves a joyent or lx VM's memory limits together, as VM.js's fixPayloadMemory
/// does (smartos-live test-update.js "update ram", "update max_swap", "update max_physical_memory",
/// "update max_locked_memory"): ram is max_physical_memory; a new max_physical_memory carries
/// max_locked_memory and max_swap along at the distance they had from it (max_swap back to it when
/// it had only been raised to the 256 MiB floor, never below that floor) and tmpfs at the ratio it
/// had; then max_locked_memory is clamped down to max_physical_memory and max_swap raised up to it.
/// max_physical_memory is enforced (the zone's memory cap); the others are kept and shown, as
/// README's "vmadm and SmartOS's test suite" lists.
/// </summary>
public static partial class VmModel
{
    private static readonly string[] s_memoryKeys = ["ram", "max_physical_memory", "max_locked_memory", "max_swap", "tmpfs"];

    /// <summary>Rewrites an update payload's memory properties as VM.js settles them against the VM
    /// as vmadm get shows it (<paramref name="vmobj"/>); returns the kept limits it derived that the
    /// payload did not give (stored without the not-enforced warning, which names only what was given).</summary>
    private static Dictionary<string, long> FixPayloadMemory(JsonObject payload, JsonObject vmobj)
    {
        var derived = new Dictionary<string, long>(StringComparer.Ordinal);
        // VM.js takes these as numbers or strings of digits ("256").
        foreach (string key in s_memoryKeys)
            if (payload[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String
                && long.TryParse((string)v!, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
                payload[key] = n;
        if (payload["ram"] is JsonNode ram)
        {
            payload.Remove("ram");
            if (!payload.ContainsKey("max_physical_memory")) payload["max_physical_memory"] = ram;
        }
        long? Have(string key) => vmobj[key] is JsonValue v && v.TryGetValue(out long l) ? l : null;
        long? Given(string key) => payload[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out long l) ? l : null;
        long? oldPhys = Have("max_physical_memory");
        if (Given("max_physical_memory") is long phys)
        {
            if (!payload.ContainsKey("max_locked_memory"))
                derived["max_locked_memory"] = Have("max_locked_memory") is long locked && oldPhys is long op1 ? phys - (op1 - locked) : phys;
            if (!payload.ContainsKey("max_swap"))
            {
                long swap = phys;
                if (Have("max_swap") is long oldSwap && oldPhys is long op2)
                    swap = oldSwap == MinSwapMiB && phys >= MinSwapMiB ? phys : phys + (oldSwap - op2);
                derived["max_swap"] = Math.Max(swap, MinSwapMiB);
            }
            if (!payload.ContainsKey("tmpfs") && vmobj.ContainsKey("tmpfs"))
                derived["tmpfs"] = Have("tmpfs") is long tmpfs && oldPhys is long op3 && op3 > 0
                    ? (long)Math.Round((double)tmpfs / op3 * phys, MidpointRounding.AwayFromZero) : phys;
        }
        long cap = Given("max_physical_memory") ?? oldPhys ?? 0;
        if (Given("tmpfs") is long t && t > cap) payload["tmpfs"] = cap;
        if (Given("max_locked_memory") is long l && l > cap) payload["max_locked_memory"] = cap;
        if (derived.TryGetValue("max_locked_memory", out long dl) && dl > cap) derived["max_locked_memory"] = cap;
        if (Given("max_swap") is long s && s < cap) payload["max_swap"] = cap;
        if (derived.TryGetValue("max_swap", out long ds) && ds < cap) derived["max_swap"] = cap;
        return derived;
    }

    /// <summary>A bhyve or kvm VM's kept memory limits against its max_physical_memory (ram plus the
    /// VMM's overhead), as VM.js's fixPayloadMemory settles them: max_swap raised to it, and
    /// max_locked_memory clamped down to it (smartos-live test-create-kvm-mem-override.js: a
    /// max_swap of 512 beside ram 256 shows max_physical_memory's 1280).</summary>
    private static void SettleHvmMemory(ZoneConfig cfg)
    {
        long phys = MaxPhysicalMemoryMiB(cfg);
        var kept = cfg.Vm!.Kept;
        if (kept.TryGetValue("max_swap", out string? swap) && long.TryParse(swap, NumberStyles.None, CultureInfo.InvariantCulture, out long s) && s < phys)
            kept["max_swap"] = phys.ToString(CultureInfo.InvariantCulture);
        if (kept.TryGetValue("max_locked_memory", out string? locked) && long.TryParse(locked, NumberStyles.None, CultureInfo.InvariantCulture, out long l) && l > phys)
            kept["max_locked_memory"] = phys.ToString(CultureInfo.InvariantCulture);
    }
}
