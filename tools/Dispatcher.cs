/*
 * SmartOS.Cli: the `smartos` executable and the one command dispatcher behind every front end.
 *
 * A command is a function of (context, argv) that writes to the context's stdout and stderr and
 * returns an exit status: 0 success, 1 failure, 2 usage, as illumos commands do. Commands run on the
 * kernel loop: synchronous ones finish at once; long-running ones (snoop, pktgen -r, ping) are async
 * and their awaits resume on the loop, so in virtual time they are as deterministic as the rest of
 * the world.
 *
 * Front ends
 *   tests             Dispatcher.Run(world, host, argv): starts the command and runs virtual time
 *                     until it completes.
 *   smartos run FILE  ScenarioRunner: one command per script line, plus directives.
 *   smartos CMD ...   through the daemon's socket when `smartos boot` runs on the root directory
 *                     (Daemon/DaemonServer.cs); otherwise a one-shot host booted from the root
 *                     directory in virtual time, which can change the persistent configuration but
 *                     has nothing running: runtime commands say so (rule 4).
 *   zlogin ZONE CMD   runs CMD through this dispatcher with CommandContext.Zone set to ZONE, so each
 *                     command shows and changes only what belongs to the zone (Host.cs rule 4).
 *
 * Rules
 *   1. A command either succeeds or leaves no trace (validation happens before any change).
 *   2. Error messages are illumos's wording, prefixed with the command name ("dladm: ...").
 *   3. No command reads the wall clock; time is the world's scheduler.
 *   4. Commands that need a running host (zoneadm boot, zlogin, snoop -d, pktgen, vmadm start ...)
 *      are refused on a one-shot host (CommandContext.HostRunning false) with a message saying how
 *      to boot it, before they run.
 *   5. Standard input, output and error are bytes end to end (CommandContext.StdinBytes,
 *      StdoutBytes, StderrBytes), so data passes unchanged: nc and zlogin of a Linux program copy
 *      bytes; text commands print through Out and Err, UTF-8 writers over the same streams that
 *      flush on every write, so text and bytes keep their order.
 *   6. A command that streams data writes with WriteAsync and reads with ReadAsync: the front end
 *      makes it wait while its reader is slow or its input has not come yet (the daemon's socket,
 *      a TCP window), so a stream of any length passes in bounded memory. A command never blocks
 *      the loop on input: a synchronous read of a daemon client's input is a programming error.
 *   7. What a command reads whole (a -f payload, JSON on stdin) is read through CommandInput: at
 *      most 1 MiB, and off the loop on a host in real time.
 */
using System.Text;
using SmartOS.Kernel;
using SmartOS.Netstack;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli;

/// <summary>What a running command sees: the world, its host, its zone, its standard streams, its
/// cancellation. Standard input, output and error are byte streams (rule 5); <see cref="Out"/> and
/// <see cref="Err"/> are UTF-8 text writers over them for the commands that print text.</summary>
public sealed class CommandContext
{
    public required World World { get; init; }
    public required Host Host { get; init; }
    /// <summary>Standard output as bytes. Data commands (nc, zlogin of a Linux program) write here with
    /// WriteAsync, which waits while a slow reader catches up (rule 6).</summary>
    public required Stream StdoutBytes { get; init; }
    /// <summary>Standard error as bytes; may be the same stream as <see cref="StdoutBytes"/>.</summary>
    public required Stream StderrBytes { get; init; }
    /// <summary>Standard input as bytes, when the front end has one; null otherwise. Read it with
    /// ReadAsync (a daemon client's input arrives over its socket) or through
    /// <see cref="CommandInput"/>, which bounds what a command holds.</summary>
    public Stream? StdinBytes { get; init; }
    public CancellationToken Cancel { get; init; }
    /// <summary>The zone the command runs in ("global" unless through zlogin).</summary>
    public string Zone { get; init; } = "global";
    /// <summary>Directory relative paths (pcap files, -f FILE) resolve against.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;

    /// <summary>False for the one-shot CLI (`smartos --root DIR CMD` with no daemon): the host was
    /// booted only to edit its configuration and nothing runs on it (rule 4).</summary>
    public bool HostRunning { get; init; } = true;

    private TextWriter? _out, _err;

    /// <summary>Standard output as UTF-8 text. It flushes on every write, so text and bytes written
    /// to <see cref="StdoutBytes"/> come out in the order they were written.</summary>
    public TextWriter Out => _out ??= TextOver(StdoutBytes);
    /// <summary>Standard error as UTF-8 text (flushed on every write, as <see cref="Out"/>).</summary>
    public TextWriter Err => _err ??= ReferenceEquals(StderrBytes, StdoutBytes) ? Out : TextOver(StderrBytes);

    private static StreamWriter TextOver(Stream bytes)
        => new(bytes, new System.Text.UTF8Encoding(false), 4096, leaveOpen: true) { AutoFlush = true, NewLine = "\n" };

    /// <summary>The zone the command runs in, or null in the global zone. Programs of the per-zone IP
    /// stack (ping, ipadm ...) find their stack through its Stack (zones/ZoneNetwork.cs).</summary>
    public SmartOS.Zones.Zone? RunningZone => Zone == "global" ? null : Host.Zones.Find(Zone);

    /// <summary>A context for the same host and streams, running in another zone (zlogin).</summary>
    public CommandContext InZone(string zone) => new()
    {
        World = World, Host = Host, StdoutBytes = StdoutBytes, StderrBytes = StderrBytes, StdinBytes = StdinBytes,
        Cancel = Cancel, Zone = zone, WorkingDirectory = WorkingDirectory, HostRunning = HostRunning,
        _out = Out, _err = Err,
    };

    public string ResolvePath(string path) => Path.IsPathRooted(path) ? path : Path.Combine(WorkingDirectory, path);
}

public delegate Task<int> CommandHandler(CommandContext ctx, string[] args);

/// <summary>The result of a command run to completion: its output as bytes, and as UTF-8 text.</summary>
public sealed record CommandResult(int ExitCode, byte[] StdoutBytes, byte[] StderrBytes)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);
    public string Stderr => Encoding.UTF8.GetString(StderrBytes);
}

public static class Dispatcher
{
    private static readonly Dictionary<string, CommandHandler> s_commands = new(StringComparer.Ordinal)
    {
        ["dladm"] = Commands.Dladm.RunAsync,
        ["flowadm"] = Commands.Flowadm.RunAsync,
        ["flowstat"] = Commands.Flowstat.RunAsync,
        ["kstat"] = Commands.KstatCommand.RunAsync,
        ["nictagadm"] = Commands.Nictagadm.RunAsync,
        ["pktgen"] = Commands.Pktgen.RunAsync,
        ["snoop"] = Commands.Snoop.RunAsync,
        ["vmadm"] = Commands.Vmadm.RunAsync,
        ["zlogin"] = Commands.Zlogin.RunAsync,
        ["zoneadm"] = Commands.Zoneadm.RunAsync,
        ["zonecfg"] = Commands.Zonecfg.RunAsync,
        ["zonememstat"] = Commands.Zonememstat.RunAsync,
        ["zonename"] = Commands.Zlogin.ZonenameAsync,
    };

    /// <summary>Whether a command line needs a running host (rule 4).</summary>
    public static bool NeedsRunningHost(string[] argv)
    {
        if (argv.Length == 0) return false;
        string? sub(int i) => i < argv.Length ? argv[i] : null;
        switch (argv[0])
        {
            case "zlogin":
            case "pktgen":
                return true;
            case "snoop":
                return Array.IndexOf(argv, "-i") < 0;
            case "kstat":
                return Commands.KstatCommand.Repeats(argv[1..]);
            case "flowstat":
                // Every interval until ^C: a running host's clock must move.
                return Getopt.Parse(argv[1..], Commands.Flowstat.Options).Has("i");
            case "dladm":
                return sub(1) == "show-link" && Getopt.Parse(argv[2..], Commands.Dladm.ShowLinkOptions).Has("i");
            case "vmadm":
                return sub(1) is "start" or "stop" or "reboot";
            case "zoneadm":
                {
                    int at = Array.IndexOf(argv, "-z");
                    string? verb = at >= 0 ? sub(at + 2) : sub(1);
                    return verb is "boot" or "ready" or "halt" or "reboot" or "shutdown";
                }
            default:
                // The zone programs (ping, nc, ipadm, ...) act on a live IP stack.
                return Programs.TryGet(argv[0], out _);
        }
    }

    /// <summary>What a runtime command says on a one-shot host.</summary>
    public static string NotBootedMessage(string command)
        => $"{command}: the host is not booted: start it with 'smartos boot [--root DIR]' in another shell, then run this command again";

    public static IEnumerable<string> CommandNames => s_commands.Keys.Concat(Programs.Names).Order(StringComparer.Ordinal);

    /// <summary>The IP stack a command in <paramref name="ctx"/>'s zone runs on.</summary>
    private static IpStack? StackOf(CommandContext ctx)
        => ctx.Zone == "global" ? ctx.Host.Stack : (ctx.RunningZone?.Stack as IZoneIpStack)?.Ip;

    /// <summary>Runs a netstack program (ping, ipadm, ...) in the command's zone: it sees that zone's
    /// stack and may open only that zone's datalinks.</summary>
    private static Task<int> RunProgram(string name, Func<ProgramContext, string[], Task<int>> program, CommandContext ctx, string[] args)
    {
        var stack = StackOf(ctx);
        if (stack == null)
        {
            ctx.Err.WriteLine($"{name}: zone {ctx.Zone} has no running IP stack");
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
            OpenLink = name =>
            {
                var link = ctx.Host.Mac.Find(name);
                if (link is not PortLink port || link.Zone != ctx.Zone) return null;
                return port.OpenClient("ip:" + ctx.Zone);
            },
        };
        return program(pctx, args);
    }

    /// <summary>Starts a command on the loop. The returned task completes when the command does.</summary>
    public static Task<int> StartAsync(CommandContext ctx, string[] argv)
    {
        if (argv.Length == 0) return Task.FromResult(0);
        if (!s_commands.TryGetValue(argv[0], out var handler))
        {
            if (!Programs.TryGet(argv[0], out var program))
            {
                ctx.Err.WriteLine($"smartos: {argv[0]}: command not found");
                return Task.FromResult(127);
            }
            string programName = argv[0];
            handler = (c, a) => RunProgram(programName, program, c, a);
        }
        if (!ctx.HostRunning && NeedsRunningHost(argv))
        {
            ctx.Err.WriteLine(NotBootedMessage(argv[0]));
            return Task.FromResult(1);
        }
        string[] args = argv[1..];
        return ctx.World.Sync.Start(async () =>
        {
            try
            {
                return await handler(ctx, args);
            }
            catch (OperationCanceledException)
            {
                return 130;
            }
            catch (IOException e)
            {
                ctx.Err.WriteLine($"{argv[0]}: {e.Message}");
                return 1;
            }
            catch (UnauthorizedAccessException e)
            {
                ctx.Err.WriteLine($"{argv[0]}: {e.Message}");
                return 1;
            }
        });
    }

    /// <summary>Runs a command to completion in virtual time (tests). A command that still waits when
    /// no event is left is cancelled, as Ctrl-C would.</summary>
    public static CommandResult Run(World world, Host host, params string[] argv) => Run(world, host, argv, (Stream?)null);

    /// <summary>Runs a command to completion in virtual time with text as standard input.</summary>
    public static CommandResult Run(World world, Host host, string[] argv, string? stdin, bool hostRunning = true, string? workingDirectory = null)
        => Run(world, host, argv, stdin == null ? null : new MemoryStream(Encoding.UTF8.GetBytes(stdin)), hostRunning, workingDirectory);

    /// <summary>Runs a command to completion in virtual time with <paramref name="stdinBytes"/> as its
    /// standard input (read in place: give a <see cref="SynchronousStream"/> over a file or console),
    /// and, for the one-shot CLI, <paramref name="hostRunning"/> false.</summary>
    public static CommandResult Run(World world, Host host, string[] argv, Stream? stdinBytes, bool hostRunning = true, string? workingDirectory = null)
    {
        var stdout = new OutputCapture();
        var stderr = new OutputCapture();
        int code = Run(world, host, argv, stdinBytes, stdout, stderr, hostRunning, workingDirectory);
        return new CommandResult(code, stdout.ToArray(), stderr.ToArray());
    }

    /// <summary>Runs a command to completion in virtual time, its output going to the given streams
    /// as it is written.</summary>
    public static int Run(World world, Host host, string[] argv, Stream? stdin, Stream stdout, Stream stderr, bool hostRunning = true, string? workingDirectory = null)
    {
        using var cts = new CancellationTokenSource();
        var ctx = new CommandContext
        {
            World = world, Host = host, StdoutBytes = stdout, StderrBytes = stderr, StdinBytes = stdin, Cancel = cts.Token,
            HostRunning = hostRunning, WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        var task = StartAsync(ctx, argv);
        if (!world.Scheduler.RunUntil(() => task.IsCompleted))
        {
            cts.Cancel();
            world.Scheduler.RunUntil(() => task.IsCompleted);
        }
        return task.IsCompleted ? task.Result : 130;
    }
}
