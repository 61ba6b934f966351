using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zfs in a non-global zone (rule 4 of Zfs.cs; zones/ZoneDatasets.cs holds the rules): the zone sees
/// the datasets delegated to it, below them and, read-only, their ancestors; changes are allowed at
/// or below a delegated dataset only, and refused elsewhere as libzfs words EPERM.
/// </summary>
public static partial class Zfs
{
    /// <summary>The configuration of the zone the command runs in; null in the global zone (a zone
    /// that has gone is one with nothing delegated).</summary>
    private static ZoneConfig? ZoneOf(CommandContext ctx)
        => ctx.Zone == "global" ? null : ctx.Host.Zones.Find(ctx.Zone)?.Config ?? new ZoneConfig { Name = ctx.Zone };

    /// <summary>Whether the caller's zone sees a dataset at all.</summary>
    private static bool Sees(CommandContext ctx, string name)
        => ZoneDatasets.Visibility(ZoneOf(ctx), name) != DatasetVisibility.Hidden;

    /// <summary>True, after "cannot VERB 'NAME': permission denied", when the caller's zone may not
    /// change the dataset (it is not at or below one delegated to the zone).</summary>
    private static bool Denied(CommandContext ctx, string name, string verb)
    {
        if (ZoneDatasets.Visibility(ZoneOf(ctx), name) == DatasetVisibility.Delegated) return false;
        ctx.Err.WriteLine($"cannot {verb} '{name}': permission denied");
        return true;
    }

    /// <summary>True, after zfs's refusal, when the zone may not set or inherit this property here.</summary>
    private static bool PropertyDenied(CommandContext ctx, string name, string property, string verb)
    {
        if (ZoneDatasets.PropertyRefusal(ZoneOf(ctx), name, property) is not string why) return false;
        ctx.Err.WriteLine($"cannot {verb} '{name}': {why}");
        return true;
    }

    /// <summary>Mounting happens in the global zone's tree here: a zone may not mount or unmount.</summary>
    private static bool MountDenied(CommandContext ctx, string name, string verb)
    {
        if (ctx.Zone == "global") return false;
        ctx.Err.WriteLine($"cannot {verb} '{name}': permission denied");
        return true;
    }
}
