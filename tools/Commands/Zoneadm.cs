using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zoneadm(8): `zoneadm list [-cipv]` and `zoneadm -z NAME verify|install|clone|ready|boot|halt|
/// reboot|shutdown|uninstall [-F]`, with the state machine and refusals of ZoneTable (Host.cs).
/// Messages are zoneadm's: "zoneadm: zone 'NAME': ...". On a host with a zones pool, install makes
/// the zone's dataset (the joyent brand's -t IMAGE and -q QUOTA), clone makes it a ZFS clone of
/// another zone's, and uninstall destroys it (zones/VmDatasets.cs).
/// </summary>
public static class Zoneadm
{
    public static readonly CommandDescriptor Descriptor = new("zoneadm", "administer zones", RunAsync)
    {
        Options = GlobalOptions,
        // list runs anywhere; the verbs that change a zone's state act on running zones.
        NeedsRunningHost = static a => Getopt.Parse(a, GlobalOptions).Operands is [string verb, ..]
            && verb is "boot" or "ready" or "halt" or "reboot" or "shutdown",
    };

    /// <summary>zoneadm.c's getopt string before the subcommand: -z zone, -u uuid-match, -R root
    /// (its '?' is only the usage, as any other unknown option is).</summary>
    private const string GlobalOptions = "u:z:R:";

    private static int Usage(CommandContext ctx)
    {
        ctx.Err.WriteLine("""
            usage:  zoneadm [-z <zone>] list [-cipv]
                    zoneadm -z <zone> verify
                    zoneadm -z <zone> install [-t <image uuid>] [-q <quota GiB>]
                    zoneadm -z <zone> clone [-s <ZFS snapshot>] <source zone>
                    zoneadm -z <zone> ready
                    zoneadm -z <zone> boot
                    zoneadm -z <zone> halt
                    zoneadm -z <zone> reboot
                    zoneadm -z <zone> shutdown [-r]
                    zoneadm -z <zone> uninstall [-F]
            """);
        return 2;
    }

    public static Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var global = Getopt.Parse(args, Descriptor.Options);
        if (global.ReportError(ctx.Err, "zoneadm")) return Task.FromResult(Usage(ctx));
        // -R (an alternate root) is not done here: refused by name rather than ignored.
        if (global.Has("R"))
        {
            ctx.Err.WriteLine("zoneadm: option -R is not supported by this zoneadm");
            return Task.FromResult(1);
        }
        string? zone = global.Value("z");
        // zoneadm.c: -u names the zone by its UUID; one that names no zone leaves -z's.
        if (global.Value("u") is { Length: > 0 } uuid)
        {
            if (!Guid.TryParseExact(uuid, "D", out var wanted))
            {
                ctx.Err.WriteLine("zoneadm: " + (zone != null ? $"zone '{zone}': " : "") + "illegal UUID value specified");
                return Task.FromResult(1);
            }
            var byUuid = ctx.Host.Zones.Zones.FirstOrDefault(z => Guid.TryParse(z.Config.Uuid, out var u) && u == wanted);
            if (byUuid != null) zone = byUuid.Name;
        }
        if (global.Operands.Count == 0) return Task.FromResult(Usage(ctx));
        string verb = global.Operands[0];
        string[] rest = [.. global.Operands.Skip(1)];
        if (verb == "list") return Task.FromResult(List(ctx, zone, rest));
        if (verb is not ("verify" or "install" or "clone" or "ready" or "boot" or "halt" or "reboot" or "shutdown" or "uninstall"))
        {
            ctx.Err.WriteLine($"zoneadm: {verb}: unknown subcommand");
            return Task.FromResult(Usage(ctx));
        }
        if (ctx.Zone != "global")
        {
            ctx.Err.WriteLine($"zoneadm: must be in the global zone to {verb} a zone.");
            return Task.FromResult(1);
        }
        if (zone == null)
        {
            ctx.Err.WriteLine("zoneadm: no zone specified");
            return Task.FromResult(Usage(ctx));
        }
        var g = Getopt.Parse(rest, verb switch { "uninstall" => "F", "shutdown" => "r", "install" => "t:q:", "clone" => "s:m:", _ => "" });
        if (g.Error == null && verb == "clone") return Task.FromResult(Clone(ctx, zone, g));
        if (g.Error != null || g.Operands.Count > 0)
        {
            ctx.Err.WriteLine("zoneadm: " + (g.Error ?? $"{verb}: too many arguments"));
            return Task.FromResult(Usage(ctx));
        }
        if (zone == "global")
        {
            ctx.Err.WriteLine($"zoneadm: {verb} operation is invalid for the global zone.");
            return Task.FromResult(1);
        }
        var zones = ctx.Host.Zones;
        var status = verb switch
        {
            "verify" => zones.Verify(zone),
            "install" => Install(ctx, zone, g),
            "ready" => zones.Ready(zone),
            "boot" => zones.Boot(zone),
            "halt" => zones.Halt(zone),
            "reboot" => zones.Reboot(zone),
            "shutdown" => g.Has("r") ? zones.Reboot(zone) : zones.Shutdown(zone),
            _ => zones.Uninstall(zone, promoteClones: true),
        };
        if (status.IsOk)
        {
            if (verb is "boot" or "reboot" || verb == "shutdown" && g.Has("r"))
                foreach (string w in zones.Find(zone)!.BootWarnings) ctx.Err.WriteLine($"zoneadm: zone '{zone}': {w}");
            return Task.FromResult(0);
        }
        // zoneadm names a zone it cannot find without "zone" (zone_perror's "%s: %s"), and a zone it
        // refuses an operation on as "zone 'NAME': " (zerror).
        ctx.Err.WriteLine(status.Code == ZoneError.NoZone ? $"zoneadm: {zone}: {status.Message}" : $"zoneadm: zone '{zone}': {status.Message}");
        return Task.FromResult(1);
    }

    /// <summary>install [-t IMAGE] [-q QUOTA]: the joyent brand's options (jinstall), for the dataset a
    /// zones pool gives the zone; a quota that is not a number is the brand's "Brand error".</summary>
    private static ZoneStatus Install(CommandContext ctx, string zone, Getopt g)
    {
        long? quota = null;
        if (g.Value("q") is string q)
        {
            if (q.Length == 0 || !q.All(char.IsAsciiDigit) || !long.TryParse(q, NumberStyles.None, CultureInfo.InvariantCulture, out long gib) || gib > VmModel.MaxQuotaGiB)
                return ZoneStatus.Problem(ZoneError.BrandError, $"Brand error: The quota {q} is not a number");
            quota = gib;
        }
        string? image = g.Value("t");
        if (image != null && !VmModel.IsUuid(image)) return ZoneStatus.Problem(ZoneError.BrandError, $"Brand error: image '{image}' is not a UUID");
        return ctx.Host.Zones.Install(zone, image == null && quota == null ? null : new VmDatasets.InstallOptions(image, quota));
    }

    /// <summary>
    /// clone [-m copy] [-s SNAPSHOT] SOURCE (zoneadm.c clone_func): the source is checked first in
    /// zoneadm's words (the global zone, a zone it cannot find, one not installed), then the target's
    /// state; the dataset work is VmDatasets.Clone's, whose messages go to standard output as zoneadm's do.
    /// </summary>
    private static int Clone(CommandContext ctx, string zone, Getopt g)
    {
        if (g.Operands.Count != 1 || (g.Value("m") is string m && m != "copy"))
        {
            ctx.Err.WriteLine("zoneadm: clone: " + (g.Operands.Count != 1 ? "a source zone is required" : $"method '{g.Value("m")}' is not supported: use copy"));
            return Usage(ctx);
        }
        if (zone == "global")
        {
            ctx.Err.WriteLine("zoneadm: clone operation is invalid for the global zone.");
            return 1;
        }
        string source = g.Operands[0];
        var zones = ctx.Host.Zones;
        if (source == "global")
        {
            ctx.Err.WriteLine($"zoneadm: zone '{zone}': clone operation is invalid for the global zone.");
            return 1;
        }
        if (zones.Find(source) is not Zone src)
        {
            ctx.Err.WriteLine($"zoneadm: {source}: could not get state: {ZoneStatusText.Of(ZoneError.NoZone)}");
            return 1;
        }
        if (src.State == ZoneState.Configured || src.State == ZoneState.Incomplete)
        {
            ctx.Err.WriteLine($"zoneadm: zone {source} is {Zone.StateName(src.State)}; installed is required.");
            return 1;
        }
        var output = new List<string>();
        var status = zones.Clone(zone, source, g.Value("s"), output);
        foreach (string line in output) ctx.Out.WriteLine(line);
        if (status.IsOk) return 0;
        ctx.Err.WriteLine(status.Code == ZoneError.NoZone ? $"zoneadm: {zone}: {status.Message}" : $"zoneadm: zone '{zone}': {status.Message}");
        return 1;
    }

    private sealed record Row(string Id, string Name, string State, string Path, string Uuid, string Brand, string Ip);

    private static int List(CommandContext ctx, string? zone, string[] args)
    {
        var g = Getopt.Parse(args, "cipv");
        if (g.Error != null || g.Operands.Count > 0)
        {
            ctx.Err.WriteLine("zoneadm: " + (g.Error ?? "list: too many arguments"));
            return Usage(ctx);
        }
        var rows = new List<Row> { new("0", "global", "running", "/", "", "liveimg", "shared") };
        // Running zones first in zone-ID order, then the others in configuration order (a stable sort),
        // as zoneadm lists them.
        var zones = ctx.Host.Zones.Zones.OrderBy(z => z.Id ?? int.MaxValue).ToList();
        foreach (var z in zones)
        {
            rows.Add(new(z.Id is int id ? id.ToString(CultureInfo.InvariantCulture) : "-", z.Name, Zone.StateName(z.State),
                z.Config.ZonePath ?? "", z.Config.Uuid ?? "", z.Config.Brand, "excl"));
        }
        if (ctx.Zone != "global")
        {
            // Inside a zone, zoneadm sees only that zone.
            rows = rows.FindAll(r => r.Name == ctx.Zone);
        }
        if (zone != null)
        {
            if (zone != "global" && ctx.Host.Zones.Find(zone) == null)
            {
                ctx.Err.WriteLine($"zoneadm: {zone}: No such zone configured");
                return 1;
            }
            rows = rows.FindAll(r => r.Name == zone);
        }
        else if (g.Has("c")) { }
        else if (g.Has("i")) rows = rows.FindAll(r => r.State != "configured" && r.State != "incomplete");
        else rows = rows.FindAll(r => r.State is "running" or "ready" or "shutting_down" or "down");
        var sb = new StringBuilder();
        if (g.Has("p"))
        {
            foreach (var r in rows) sb.Append($"{r.Id}:{r.Name}:{r.State}:{r.Path}:{r.Uuid}:{r.Brand}:{(r.Ip == "excl" ? "excl" : "shared")}\n");
        }
        else if (g.Has("v"))
        {
            sb.Append(Line("ID", "NAME", "STATUS", "PATH", "BRAND", "IP"));
            foreach (var r in rows) sb.Append(Line(r.Id, r.Name, r.State, r.Path, r.Brand, r.Ip));
        }
        else
        {
            foreach (var r in rows) sb.Append(r.Name).Append('\n');
        }
        ctx.Out.Write(sb.ToString());
        return 0;
    }

    /// <summary>zoneadm's "%*s %-16s %-10s %-30s %-8s %-6s" with a 4-wide ID (trailing spaces trimmed).
    /// zoneadm.c's zone_print prints list -v with printf, not libofmt, so this table keeps that layout
    /// rather than going through OutputTable: a name wider than 16 pushes the rest of its line right.</summary>
    private static string Line(string id, string name, string state, string path, string brand, string ip)
        => string.Create(CultureInfo.InvariantCulture, $"{id,4} {name,-16} {state,-10} {path,-30} {brand,-8} {ip}").TrimEnd() + "\n";
}
