using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zlogin(1): `zlogin ZONE COMMAND [ARGS]` runs COMMAND through the dispatcher inside ZONE
/// (CommandContext.Zone = ZONE) and exits with its status. Interactive logins are not supported.
/// `zlogin -C ZONE` prints a bhyve/kvm zone's guest console so far (as vmadm console) and returns.
/// Also zonename(1), which prints the zone a command runs in.
/// </summary>
public static class Zlogin
{
    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        int i = 0;
        bool console = false;
        while (i < args.Length && args[i].StartsWith('-'))
        {
            if (args[i] == "-S" || args[i] == "-Q") { i++; continue; }
            if (args[i] == "-C") { console = true; i++; continue; }
            if (args[i] == "-l" && i + 1 < args.Length) { i += 2; continue; } // One user here: root.
            ctx.Err.WriteLine($"zlogin: illegal option -- {args[i].TrimStart('-')}");
            ctx.Err.WriteLine("usage: zlogin [-l user] [-S] [-C] zonename [command [args ...]]");
            return 2;
        }
        if (i >= args.Length)
        {
            ctx.Err.WriteLine("usage: zlogin [-l user] [-S] [-C] zonename [command [args ...]]");
            return 2;
        }
        if (ctx.Zone != "global")
        {
            ctx.Err.WriteLine("zlogin: must be run from the global zone");
            return 1;
        }
        string name = args[i];
        string[] command = args[(i + 1)..];
        if (name == "global")
        {
            if (command.Length == 0) return NoInteractive(ctx);
            return await Dispatcher.StartAsync(ctx, command);
        }
        var zone = ctx.Host.Zones.Find(name);
        if (zone == null)
        {
            // A convenience beyond SmartOS (whose zone names are VM UUIDs): a vmadm alias that names
            // exactly one VM logs in to it, so scenarios need not hard-code generated UUIDs.
            var byAlias = ctx.Host.Zones.Zones.Where(z => z.Config.Vm?.Alias == name).ToList();
            if (byAlias.Count > 1)
            {
                ctx.Err.WriteLine($"zlogin: alias '{name}' names {byAlias.Count} VMs; use the UUID");
                return 1;
            }
            zone = byAlias.FirstOrDefault();
        }
        if (zone == null)
        {
            ctx.Err.WriteLine($"zlogin: zone '{name}' unknown");
            return 1;
        }
        name = zone.Name;
        if (console)
        {
            if (command.Length > 0)
            {
                ctx.Err.WriteLine("zlogin: -C takes no command");
                return 2;
            }
            return Vmadm.PrintConsole(ctx, zone, "zlogin: ");
        }
        if (zone.State != ZoneState.Running)
        {
            ctx.Err.WriteLine($"zlogin: login allowed only to running zones ({name} is '{Zone.StateName(zone.State)}').");
            return 1;
        }
        if (command.Length == 0) return NoInteractive(ctx);
        return await Dispatcher.StartAsync(ctx.InZone(name), command);
    }

    private static int NoInteractive(CommandContext ctx)
    {
        ctx.Err.WriteLine("zlogin: interactive login is not supported; give a command to run");
        return 2;
    }

    public static Task<int> ZonenameAsync(CommandContext ctx, string[] args)
    {
        if (args.Length > 0)
        {
            ctx.Err.WriteLine("usage: zonename");
            return Task.FromResult(2);
        }
        ctx.Out.WriteLine(ctx.Zone);
        return Task.FromResult(0);
    }
}
