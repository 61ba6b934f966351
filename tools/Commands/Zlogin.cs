using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// zlogin(1): `zlogin ZONE COMMAND [ARGS]` runs COMMAND through the dispatcher inside ZONE
/// (CommandContext.Zone = ZONE) and exits with its status. In an lx zone COMMAND is a real Linux
/// program run with `ip netns exec` in the zone's network namespace (zones/LxZoneNetwork.cs), and, for
/// a zone on a dataset, chrooted into the zone's root as FUSE shows it to Linux (zones/ZoneFiles.cs
/// LinuxRoot), so its writes land in the pool, with its lofs mounts (zonecfg add fs) bind-mounted
/// there first (ZoneFiles.LinuxBinds, BindThenChroot); its
/// standard input, output and error are bytes copied as they come, at the pace of the slower side
/// (Dispatcher.cs rules 5 and 6), and ^C (the command's cancellation) kills it. Interactive logins
/// are not supported. `zlogin -C ZONE` prints a bhyve/kvm zone's guest console so far (as vmadm
/// console), or attaches to it when given standard input (`~.` detaches); `zlogin -C -d` follows it
/// and disconnects when the guest stops (GuestConsole.cs). Also zonename(1), which prints the zone a command runs in.
/// </summary>
public static class Zlogin
{
    public static readonly CommandDescriptor Descriptor = new("zlogin", "enter a zone", RunAsync)
    {
        Options = "CdQSl:",
        ReadsStdin = true,
        TerminalInput = static a => GuestConsole.IsConsoleLine(a, zlogin: true),
        ZoneRefusal = "zlogin: must be run from the global zone",
        NeedsRunningHost = static _ => true,
    };

    public static readonly CommandDescriptor ZonenameDescriptor = new("zonename", "print name of current zone", ZonenameAsync);

    public static async Task<int> RunAsync(CommandContext ctx, string[] args)
    {
        var g = Getopt.Parse(args, Descriptor.Options);
        if (g.ReportError(ctx.Err, "zlogin") || g.Operands.Count == 0)
        {
            // zlogin.c usage(): exit(2).
            ctx.Err.WriteLine("usage: zlogin [-l user] [-S] [-C] zonename [command [args ...]]");
            return 2;
        }
        // -S (failsafe) and -Q (quiet) change nothing here: there is no login banner and no
        // login program to skip; -l names a user, and there is one (root).
        bool console = g.Has("C");
        if (g.Has("d") && !console)
        {
            ctx.Err.WriteLine("zlogin: -d may only be used with -C");
            return 2;
        }
        string name = g.Operands[0];
        string[] command = [.. g.Operands.Skip(1)];
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
                ctx.Err.WriteLine($"zlogin: alias '{ConfigText.Echo(name)}' names {byAlias.Count} VMs; use the UUID");
                return 1;
            }
            zone = byAlias.FirstOrDefault();
        }
        if (zone == null)
        {
            ctx.Err.WriteLine($"zlogin: zone '{ConfigText.Echo(name)}' unknown");
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
            return await GuestConsole.RunAsync(ctx, zone, "zlogin: ", follow: g.Has("d"));
        }
        if (zone.State != ZoneState.Running)
        {
            ctx.Err.WriteLine($"zlogin: login allowed only to running zones ({name} is '{Zone.StateName(zone.State)}').");
            return 1;
        }
        if (command.Length == 0) return NoInteractive(ctx);
        if (zone.Stack is LxZoneStack lx)
        {
            // A zone on a dataset runs chrooted into its root, shown to Linux through FUSE.
            string? root = ZoneFiles.LinuxRoot(ctx.Host, zone, out string? problem);
            var binds = root is null ? [] : ZoneFiles.LinuxBinds(ctx.Host, zone, root, out problem);
            if (problem != null || binds is null)
            {
                ctx.Err.WriteLine($"zlogin: {problem}");
                return 1;
            }
            return await RunLinuxAsync(ctx, lx.Namespace, root, binds, command);
        }
        return await Dispatcher.StartAsync(ctx.InZone(name), command);
    }

    /// <summary>Runs a Linux program in an lx zone's namespace. Its stdin, stdout and stderr are
    /// copied as bytes: each pipe read or write completes off the loop and the await brings the copy
    /// back to the loop, where the context's streams live; a copy waits for the slower side, so the
    /// program blocks on a full pipe rather than filling memory. ^C kills the process tree and exits 130.</summary>
    private static async Task<int> RunLinuxAsync(CommandContext ctx, string ns, string? root, List<LinuxBind> binds, string[] command)
    {
        var psi = new ProcessStartInfo(LxZoneNetwork.FindIp() ?? "ip")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        string[] chroot = root is null ? [] : binds.Count == 0 ? ["chroot", root] : BindThenChroot(root, binds);
        foreach (string a in (string[])["netns", "exec", ns, .. chroot, .. command]) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            ctx.Err.WriteLine($"zlogin: {command[0]}: {e.Message}");
            return 127;
        }
        using (p)
        using (var exited = CancellationTokenSource.CreateLinkedTokenSource(ctx.Cancel))
        {
            var stdin = ctx.StdinBytes is { } input ? FeedAsync(input, p.StandardInput.BaseStream, exited.Token) : CloseAsync(p.StandardInput.BaseStream);
            var stdout = CopyAsync(p.StandardOutput.BaseStream, ctx.StdoutBytes, ctx.Cancel);
            var stderr = CopyAsync(p.StandardError.BaseStream, ctx.StderrBytes, ctx.Cancel);
            int code;
            try
            {
                await p.WaitForExitAsync(ctx.Cancel).ConfigureAwait(true);
                code = p.ExitCode;
            }
            catch (OperationCanceledException)
            {
                p.Kill(entireProcessTree: true);
                code = 130;
            }
            await stdout.ConfigureAwait(true);
            await stderr.ConfigureAwait(true);
            // A program that exits before reading all its input (head -c) ends the feeding.
            exited.Cancel();
            await stdin.ConfigureAwait(true);
            return code;
        }
    }

    /// <summary>
    /// The zone's lofs mounts, then the chroot: `ip netns exec` gives the program a mount namespace of
    /// its own (a copy of the loop's, where the FUSE mounts are), so a bind mount made there is the
    /// zone's program's and its children's alone and goes with them. The paths go as arguments, never
    /// into the script's text; a mount that fails ends it with 126 before the program runs.
    /// </summary>
    private static string[] BindThenChroot(string root, List<LinuxBind> binds)
    {
        const string Script =
            "r=$1; shift; " +
            "while [ \"$1\" != -- ]; do " +
            "mount -n --bind \"$1\" \"$2\" || exit 126; " +
            "if [ \"$3\" = ro ]; then mount -n -o remount,bind,ro \"$2\" || exit 126; fi; " +
            "shift 3; done; shift; exec chroot \"$r\" \"$@\"";
        var argv = new List<string> { "sh", "-c", Script, "sh", root };
        foreach (var b in binds) argv.AddRange([b.Source, b.Target, b.ReadOnly ? "ro" : "rw"]);
        argv.Add("--");
        return [.. argv];
    }

    /// <summary>Copies bytes from a process pipe to a command stream until end of file or ^C.</summary>
    private static async Task CopyAsync(Stream from, Stream to, CancellationToken cancel)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer.AsMemory(), CancellationToken.None).ConfigureAwait(true)) > 0)
                await to.WriteAsync(buffer.AsMemory(0, n), cancel).ConfigureAwait(true);
        }
        catch (OperationCanceledException) { } // ^C: the process is killed; what it still writes is dropped.
    }

    /// <summary>Copies the command's standard input to the process until either ends, then closes the
    /// process's end so it sees end of file.</summary>
    private static async Task FeedAsync(Stream from, Stream to, CancellationToken stop)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer.AsMemory(), stop).ConfigureAwait(true)) > 0)
                await to.WriteAsync(buffer.AsMemory(0, n), stop).ConfigureAwait(true);
        }
        catch (OperationCanceledException) { }
        catch (IOException) { } // The program closed its input (EPIPE).
        await CloseAsync(to).ConfigureAwait(true);
    }

    private static async Task CloseAsync(Stream s)
    {
        try { await s.DisposeAsync().ConfigureAwait(true); }
        catch (IOException) { }
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
