/*
 * SmartOS.Cli: the `smartos` executable and the one command dispatcher behind every front end.
 *
 * A command is a function of (context, argv) that writes to the context's stdout and stderr and
 * returns an exit status: 0 success, 1 failure, 2 usage, as illumos commands do. Commands run on the
 * kernel loop: synchronous ones finish at once; long-running ones (snoop, pktgen -r, ping) are async
 * and their awaits resume on the loop, so in virtual time they are as deterministic as the rest of
 * the world.
 *
 * Each command describes itself once, in its own file, with a CommandDescriptor (name, options,
 * one line of help, reads standard input, may run in a zone, which command lines need a running
 * host); the dispatcher, the front ends and `smartos --help` read those descriptors through the
 * CommandRegistry (CommandRegistry.cs) and know nothing else about any command.
 *
 * Front ends
 *   tests             Dispatcher.Run(world, host, argv): starts the command and runs virtual time
 *                     until it completes.
 *   smartos run FILE  ScenarioRunner: one command per script line, plus directives; '<' and '<<' are
 *                     refused on a command whose descriptor says it never reads standard input.
 *   smartos CMD ...   through the daemon's socket when `smartos boot` runs on the root directory
 *                     (Daemon/DaemonServer.cs); otherwise a one-shot host booted from the root
 *                     directory in virtual time, which can change the persistent configuration but
 *                     has nothing running: runtime commands say so (rule 4). Standard input, when
 *                     it is not a terminal, is offered to a command whose descriptor reads it.
 *   zlogin ZONE CMD   runs CMD through this dispatcher with CommandContext.Zone set to ZONE, so each
 *                     command shows and changes only what belongs to the zone (Host.cs rule 4,
 *                     CommandContext.Sees), or is refused there (rule 8).
 *
 * Rules
 *   1. A command either succeeds or leaves no trace (validation happens before any change).
 *   2. Error messages are illumos's wording, prefixed with the command name ("dladm: ...").
 *   3. No command reads the wall clock; time is the world's scheduler.
 *   4. Commands that need a running host (zoneadm boot, zlogin, snoop -d, pktgen, vmadm start ...)
 *      are refused on a one-shot host (CommandContext.HostRunning false) with a message saying how
 *      to boot it, before they run. The command's descriptor says which command lines these are
 *      (CommandDescriptor.NeedsRunningHost, written in the command's own file).
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
 *   8. A command whose descriptor refuses non-global zones (vmadm, zonecfg, zlogin, nictagadm,
 *      pktgen) is refused by the dispatcher before it runs, with the one message its descriptor
 *      gives in the command's own wording; commands that run in a zone do not test for it.
 */
using System.Text;
using SmartOS.Kernel;
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

    /// <summary>Told the full path of each file a command creates for data it records (snoop -o's
    /// capture file), so a front end can list what a run wrote (smartos run --report links every
    /// capture); null when no one asks.</summary>
    public Action<string>? WroteFile { get; init; }

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
        Cancel = Cancel, Zone = zone, WorkingDirectory = WorkingDirectory, HostRunning = HostRunning, WroteFile = WroteFile,
        _out = Out, _err = Err,
    };

    /// <summary>Whether the command's zone sees <paramref name="link"/>: the global zone sees every
    /// link, a zone only its own (Host.cs rule 4).</summary>
    public bool Sees(Datalink link) => Zone == "global" || link.Zone == Zone;

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
    /// <summary>Whether a command line needs a running host (rule 4): its descriptor answers.</summary>
    public static bool NeedsRunningHost(string[] argv)
        => argv.Length > 0 && CommandRegistry.TryGet(argv[0], out var command) && command.NeedsRunningHost(argv[1..]);

    /// <summary>What a runtime command says on a one-shot host.</summary>
    public static string NotBootedMessage(string command)
        => $"{command}: the host is not booted: start it with 'smartos boot [--root DIR]' in another shell, then run this command again";

    /// <summary>Starts a command on the loop. The returned task completes when the command does.</summary>
    public static Task<int> StartAsync(CommandContext ctx, string[] argv)
    {
        if (argv.Length == 0) return Task.FromResult(0);
        // The proc provider (ProcProbes.cs): a program is created by the one that starts it, starts,
        // execs its command, and exits; while its code runs it is the current process (execname,
        // pid, curpsinfo: kernel/Trace/TraceProcess.cs).
        var registry = ctx.Host.Mac.Probes;
        var proc = ProcProbes.For(registry);
        string zone = ctx.Zone;
        var parent = SmartOS.Kernel.Trace.TraceProcess.Current;
        var program = new SmartOS.Kernel.Trace.TraceProcess(registry.AllocatePid(), parent?.Pid ?? 0, zone,
            zone == "global" ? 0 : ctx.RunningZone?.Id ?? 0, Path.GetFileName(argv[0]), argv, registry);
        ProcProbes.Fire(proc.Create, parent?.Zone ?? "global", parent ?? (object)registry.Kernel, parent, SmartOS.Kernel.Trace.ProbeArg.Of(program));
        return ctx.Host.Sync.Start(async () =>
        {
            // An async method's change of its flow stays inside it: the caller's process is unchanged.
            program.Enter();
            ProcProbes.Fire(proc.Start, zone, program, program);
            ProcProbes.Fire(proc.Exec, zone, program, program, argv[0]);
            if (!CommandRegistry.TryGet(argv[0], out var command))
            {
                ctx.Err.WriteLine($"smartos: {argv[0]}: command not found");
                return ExecFailed(proc, zone, program, ProcProbes.Enoent, 127);
            }
            if (ctx.Zone != "global" && command.ZoneRefusal is string refusal)
            {
                ctx.Err.WriteLine(refusal);
                return ExecFailed(proc, zone, program, ProcProbes.Eperm, 1);
            }
            ProcProbes.Fire(proc.ExecSuccess, zone, program, program);
            int status = 1;
            try
            {
                if (!ctx.HostRunning && command.NeedsRunningHost(argv[1..]))
                {
                    ctx.Err.WriteLine(NotBootedMessage(argv[0]));
                    return status = 1;
                }
                return status = await command.RunAsync(ctx, argv[1..]);
            }
            catch (OperationCanceledException)
            {
                return status = 130;
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
            finally
            {
                ProcProbes.Fire(proc.Exit, zone, program, program, status == 130 ? ProcProbes.CldKilled : ProcProbes.CldExited, status);
            }
        });
    }

    private static int ExecFailed(ProcProbes proc, string zone, SmartOS.Kernel.Trace.TraceProcess program, int errno, int status)
    {
        ProcProbes.Fire(proc.ExecFailure, zone, program, program, errno);
        ProcProbes.Fire(proc.Exit, zone, program, program, ProcProbes.CldExited, status);
        return status;
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
