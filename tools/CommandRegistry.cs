/*
 * The command registry: every command the dispatcher runs, each described once, by itself.
 *
 * A command's file holds, beside its RunAsync, a static CommandDescriptor: its name, its options as
 * a getopt string (the very string its parser, kernel/Commands/Getopt.cs, reads), one line of help, whether it reads standard input, whether it may run in a
 * non-global zone (and what it says when it may not), and which command lines need a running host.
 * Nothing outside the command's file knows these things; everyone who needs them asks the registry:
 *
 *   Dispatcher.StartAsync    refuses a command in a zone it may not run in, and a command line that
 *                            needs a running host on a one-shot host (Dispatcher.cs rules 4 and 8).
 *   Program (smartos CMD)    offers standard input only to a command that reads it; lists the
 *                            commands with their help in `smartos --help`.
 *   ScenarioRunner           refuses '<' and '<<' on a command that never reads standard input.
 *
 * The netstack's programs (netstack/Programs) describe themselves with a ProgramDescriptor, which
 * cannot name the CLI's types; the registry makes each a CommandDescriptor that runs the program on
 * the zone's IP stack.
 */
using SmartOS.Netstack;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli;

/// <summary>What a command says about itself, once, in its own file (see the theory statement of
/// CommandRegistry.cs).</summary>
/// <param name="Name">The command name, as typed.</param>
/// <param name="Summary">One line of help, as the NAME line of the command's manual page.</param>
/// <param name="RunAsync">The command.</param>
public sealed record CommandDescriptor(string Name, string Summary, CommandHandler RunAsync)
{
    /// <summary>The command's options as a getopt string; empty for a command whose options belong
    /// to its subcommands (dladm, vmadm ...).</summary>
    public string Options { get; init; } = "";

    /// <summary>The command's long options, as Getopt reads them ("port:=p": --port is -p); empty
    /// for a command that has none.</summary>
    public string[] LongOptions { get; init; } = [];

    /// <summary>Whether the command may read standard input; the front ends offer it only then.</summary>
    public bool ReadsStdin { get; init; }

    /// <summary>Whether a command line (its arguments, without the name) takes keys from a terminal
    /// (a guest's interactive console, tools/Commands/GuestConsole.cs): a front end whose standard
    /// input is a terminal offers it key by key. The default: never.</summary>
    public Func<string[], bool> TerminalInput { get; init; } = static _ => false;

    /// <summary>What the command says, in its own wording, when run in a non-global zone; null when
    /// it may run there (it then shows and changes only what belongs to the zone, Host.cs rule 4).</summary>
    public string? ZoneRefusal { get; init; }

    /// <summary>Whether the command may run in a non-global zone.</summary>
    public bool AllowedInZone => ZoneRefusal == null;

    /// <summary>Whether a command line (its arguments, without the name) needs a running host
    /// (Dispatcher.cs rule 4). The default: never.</summary>
    public Func<string[], bool> NeedsRunningHost { get; init; } = static _ => false;
}

/// <summary>Every command, by name: the CLI's own and the netstack's programs.</summary>
public static class CommandRegistry
{
    private static readonly CommandDescriptor[] s_cli =
    [
        Commands.Dladm.Descriptor,
        Commands.Dtrace.Descriptor,
        Commands.Flowadm.Descriptor,
        Commands.Flowstat.Descriptor,
        Commands.Imgadm.Descriptor,
        Commands.KstatCommand.Descriptor,
        Commands.Nictagadm.Descriptor,
        Commands.Pktgen.Descriptor,
        Commands.Snoop.Descriptor,
        Commands.Vmadm.Descriptor,
        Commands.Zfs.Descriptor,
        Commands.Zlogin.Descriptor,
        Commands.Zlogin.ZonenameDescriptor,
        Commands.Zoneadm.Descriptor,
        Commands.Zonecfg.Descriptor,
        Commands.Zonememstat.Descriptor,
        Commands.Zpool.Descriptor,
        Commands.Ls.Descriptor,
        Commands.FileData.CatDescriptor,
        Commands.FileData.DdDescriptor,
        Commands.FileData.DigestDescriptor,
        Commands.FileData.MkfileDescriptor,
        Commands.FileOps.ChmodDescriptor,
        Commands.FileOps.CpDescriptor,
        Commands.FileOps.LnDescriptor,
        Commands.FileOps.MkdirDescriptor,
        Commands.FileOps.MvDescriptor,
        Commands.FileOps.RmDescriptor,
        Commands.FileOps.RmdirDescriptor,
        Commands.FileOps.TouchDescriptor,
        Commands.Df.DfDescriptor,
        Commands.Df.DuDescriptor,
    ];

    /// <summary>Every command's descriptor, in name order.</summary>
    public static readonly IReadOnlyList<CommandDescriptor> All =
        [.. s_cli.Concat(Programs.All.Select(FromProgram)).OrderBy(d => d.Name, StringComparer.Ordinal)];

    private static readonly Dictionary<string, CommandDescriptor> s_byName = All.ToDictionary(d => d.Name, StringComparer.Ordinal);

    public static bool TryGet(string name, out CommandDescriptor descriptor)
        => s_byName.TryGetValue(name, out descriptor!);

    /// <summary>A netstack program as a command: it acts on a live IP stack, so it needs a running
    /// host, and it runs in any zone, on that zone's stack.</summary>
    private static CommandDescriptor FromProgram(ProgramDescriptor program)
        => new(program.Name, program.Summary, (ctx, args) => RunProgram(program, ctx, args))
        {
            Options = program.Options,
            LongOptions = program.LongOptions,
            ReadsStdin = program.ReadsStdin,
            NeedsRunningHost = static _ => true,
        };

    /// <summary>The IP stack a command in <paramref name="ctx"/>'s zone runs on.</summary>
    private static IpStack? StackOf(CommandContext ctx)
        => ctx.Zone == "global" ? ctx.Host.Stack : (ctx.RunningZone?.Stack as IZoneIpStack)?.Ip;

    /// <summary>Runs a netstack program in the command's zone: it sees that zone's stack and may
    /// open only that zone's own datalinks (the global zone's stack too: not a zone's).</summary>
    private static Task<int> RunProgram(ProgramDescriptor program, CommandContext ctx, string[] args)
    {
        var stack = StackOf(ctx);
        if (stack == null)
        {
            ctx.Err.WriteLine($"{program.Name}: zone {ctx.Zone} has no running IP stack");
            return Task.FromResult(1);
        }
        var pctx = new ProgramContext
        {
            Out = ctx.Out,
            Err = ctx.Err,
            StdoutBytes = ctx.StdoutBytes,
            StdinBytes = ctx.StdinBytes,
            Cancel = ctx.Cancel,
            Stack = stack,
            WorkingDirectory = ctx.WorkingDirectory,
            Persistent = new IpadmConfig(ctx.Host.Store, ctx.Zone),
            Files = ctx.RunningZone is { } zone ? ZoneFiles.For(ctx.Host.Mounts, zone) : null,
            OpenLink = name =>
            {
                var link = ctx.Host.Mac.Find(name);
                if (link is not PortLink port || link.Zone != ctx.Zone) return null;
                return port.OpenClient("ip:" + ctx.Zone);
            },
        };
        return program.RunAsync(pctx, args);
    }
}
