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
 *   smartos CMD ...   a one-shot host in virtual time today; the boot daemon comes with issue 5.
 *
 * Rules
 *   1. A command either succeeds or leaves no trace (validation happens before any change).
 *   2. Error messages are illumos's wording, prefixed with the command name ("dladm: ...").
 *   3. No command reads the wall clock; time is the world's scheduler.
 */
using SmartOS.Kernel;
using SmartOS.Netstack;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli;

/// <summary>What a running command sees: the world, its host, its zone, its output, its cancellation.</summary>
public sealed class CommandContext
{
    public required World World { get; init; }
    public required Host Host { get; init; }
    public required TextWriter Out { get; init; }
    public required TextWriter Err { get; init; }
    public CancellationToken Cancel { get; init; }
    /// <summary>The zone the command runs in ("global" unless through zlogin).</summary>
    public string Zone { get; init; } = "global";
    /// <summary>Directory relative paths (pcap files, -f FILE) resolve against.</summary>
    public string WorkingDirectory { get; init; } = Environment.CurrentDirectory;

    public string ResolvePath(string path) => Path.IsPathRooted(path) ? path : Path.Combine(WorkingDirectory, path);
}

public delegate Task<int> CommandHandler(CommandContext ctx, string[] args);

/// <summary>The result of a command run to completion.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr);

public static class Dispatcher
{
    private static readonly Dictionary<string, CommandHandler> s_commands = new(StringComparer.Ordinal)
    {
        ["dladm"] = Commands.Dladm.RunAsync,
        ["flowadm"] = Commands.Flowadm.RunAsync,
        ["flowstat"] = Commands.Flowstat.RunAsync,
        ["kstat"] = Commands.KstatCommand.RunAsync,
        ["pktgen"] = Commands.Pktgen.RunAsync,
        ["snoop"] = Commands.Snoop.RunAsync,
    };

    public static IEnumerable<string> CommandNames => s_commands.Keys.Concat(Programs.Names).Order(StringComparer.Ordinal);

    public static bool IsCommand(string name) => s_commands.ContainsKey(name) || Programs.TryGet(name, out _);

    /// <summary>The IP stack a command in <paramref name="ctx"/>'s zone runs on.</summary>
    private static IpStack StackOf(CommandContext ctx) => ctx.Host.Stack;

    /// <summary>Runs a netstack program (ping, ipadm, ...) in the command's zone: it sees that zone's
    /// stack and may open only that zone's datalinks.</summary>
    private static Task<int> RunProgram(Func<ProgramContext, string[], Task<int>> program, CommandContext ctx, string[] args)
    {
        var pctx = new ProgramContext
        {
            Out = ctx.Out,
            Err = ctx.Err,
            Cancel = ctx.Cancel,
            Stack = StackOf(ctx),
            WorkingDirectory = ctx.WorkingDirectory,
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
            handler = (c, a) => RunProgram(program, c, a);
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
    public static CommandResult Run(World world, Host host, params string[] argv)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        using var cts = new CancellationTokenSource();
        var ctx = new CommandContext { World = world, Host = host, Out = stdout, Err = stderr, Cancel = cts.Token };
        var task = StartAsync(ctx, argv);
        if (!world.Scheduler.RunUntil(() => task.IsCompleted))
        {
            cts.Cancel();
            world.Scheduler.RunUntil(() => task.IsCompleted);
        }
        int code = task.IsCompleted ? task.Result : 130;
        return new CommandResult(code, stdout.ToString(), stderr.ToString());
    }
}
