/*
 * Datasets delegated to a zone (zonecfg's dataset resource; vmadm's delegate_dataset): which
 * datasets a zone sees and which it may manage, as illumos's zone_dataset_visible decides it.
 *
 * Rules
 *   1. A delegated dataset and everything below it (filesystems, volumes, snapshots) are the zone's:
 *      zfs run in the zone (zlogin) lists, reads and changes them. Their ancestors are visible
 *      read-only, so that `zfs list` shows the path down to them (illumos shows them so); a change to
 *      one is "permission denied". Every other dataset is invisible: "dataset does not exist".
 *   2. A pool is visible to a zone when one of its datasets is delegated to it (zpool list and status
 *      show it); nothing of a pool can be changed from a zone.
 *   3. When the zone readies, each delegated dataset must exist and be a filesystem (zoneadm's
 *      verify: "could not verify zfs dataset NAME: dataset does not exist"), and gets zoned=on, as
 *      zoneadmd sets it; the zone itself may not change zoned, nor the quota or reservations of the
 *      delegated dataset itself (illumos's zfs_secpolicy_setprop: they are the global zone's limits).
 *   4. A zone without delegated datasets sees no dataset and no pool, as before delegation existed.
 */
using SmartOS.Storage;

namespace SmartOS.Zones;

/// <summary>How a zone sees a dataset (rule 1).</summary>
public enum DatasetVisibility { Hidden, ReadOnlyParent, Delegated }

/// <summary>The delegated-dataset rules (see the theory statement above).</summary>
public static class ZoneDatasets
{
    /// <summary>The properties a zone may not change on the dataset delegated to it (rule 3).</summary>
    private static readonly string[] s_globalLimits = ["quota", "reservation", "refquota", "refreservation"];

    /// <summary>How the zone sees a dataset, snapshot or pool name (rule 1); null zone is the global zone.</summary>
    public static DatasetVisibility Visibility(ZoneConfig? zone, string name)
    {
        if (zone == null) return DatasetVisibility.Delegated;
        int at = name.IndexOf('@');
        string head = at < 0 ? name : name[..at];
        var seen = DatasetVisibility.Hidden;
        foreach (string d in zone.Datasets)
        {
            if (head == d || head.StartsWith(d + "/", StringComparison.Ordinal)) return DatasetVisibility.Delegated;
            if (at < 0 && d.StartsWith(head + "/", StringComparison.Ordinal)) seen = DatasetVisibility.ReadOnlyParent;
        }
        return seen;
    }

    /// <summary>Whether a zone sees a pool (rule 2).</summary>
    public static bool SeesPool(ZoneConfig? zone, string pool)
        => zone == null || zone.Datasets.Exists(d => d == pool || d.StartsWith(pool + "/", StringComparison.Ordinal));

    /// <summary>Why the zone may not set or inherit a property of a dataset it manages (rule 3), or null.</summary>
    public static string? PropertyRefusal(ZoneConfig? zone, string dataset, string property)
    {
        if (zone == null) return null;
        if (property == "zoned") return "permission denied";
        if (Array.IndexOf(s_globalLimits, property) >= 0 && zone.Datasets.Contains(dataset)) return "permission denied";
        return null;
    }

    /// <summary>Rule 3 at ready: each delegated dataset exists as a filesystem and gets zoned=on.</summary>
    public static ZoneStatus Prepare(Host host, ZoneConfig zone)
    {
        foreach (string d in zone.Datasets)
        {
            int slash = d.IndexOf('/');
            var pool = host.Pools.Find(slash < 0 ? d : d[..slash]);
            if (pool == null || !pool.Datasets.Exists(d))
                return ZoneStatus.Problem(ZoneError.InvalidProperty, $"could not verify zfs dataset {d}: dataset does not exist");
            if (!pool.Datasets.Get(d, "type", out var type).IsOk || type.Value != "filesystem")
                return ZoneStatus.Problem(ZoneError.InvalidProperty, $"cannot verify zfs dataset {d}: volumes cannot be specified as a zone dataset resource");
            if (pool.Datasets.Get(d, "zoned", out var zoned).IsOk && zoned.Value == "on" && zoned.Source == PropertySource.Local) continue;
            if (pool.Datasets.Set(d, "zoned", "on") is { IsOk: false } set) return ZoneStatus.Problem(ZoneError.System, set.Message);
        }
        return ZoneStatus.Ok;
    }
}
