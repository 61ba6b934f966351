using System.Globalization;
using System.Runtime.InteropServices;
using SmartOS.Cli.Daemon;
using SmartOS.Cli.Observe;
using SmartOS.Cli.Report;
using SmartOS.Cli.Dashboard;
using SmartOS.Cli.Scenario;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli;

/// <summary>The `smartos` executable (see Dispatcher.cs for the front ends).</summary>
internal static class Program
{
    private const string UsageText = """
        usage: smartos run [--seed N] [--outdir DIR] [--threads N] [--report DIR] [--plot DIR] [--sample DURATION] FILE
               smartos boot [--root DIR] [--nics N] [--seed N] [--zones-size SIZE] [--nic NIC=tap:NAME|pcap:IFACE ...] [--http [ADDR:]PORT]
               smartos [--root DIR] [--nics N] COMMAND [ARGS ...]
        commands:
        """;

    /// <summary>The usage message: the front ends, then every command in the registry with its
    /// one line of help.</summary>
    internal static string Usage()
    {
        var text = new System.Text.StringBuilder(UsageText).Append('\n');
        int width = CommandRegistry.All.Max(c => c.Name.Length) + 2;
        foreach (var c in CommandRegistry.All) text.Append("  ").Append(c.Name.PadRight(width)).Append(c.Summary).Append('\n');
        return text.ToString();
    }

    private static int Main(string[] args)
    {
        var stdout = Console.Out;
        var stderr = Console.Error;
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            stderr.Write(Usage());
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] == "run") return Run(args[1..], stdout, stderr);
        if (args[0] == "boot") return Boot(args[1..], stdout, stderr);

        // The front end's own options come before the command; the command's options are its own.
        var g = Getopt.Parse(args, "", ["root:", "nics:"]);
        int nics = 2;
        if (g.Error != null
            || (g.Value("nics") is { } n && (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out nics) || nics > 64)))
        {
            stderr.WriteLine(g.Error != null ? "smartos: " + g.Error : "smartos: bad option '--nics'");
            stderr.Write(Usage());
            return 2;
        }
        string? root = g.Value("root");
        if (g.Operands.Count == 0) { stderr.WriteLine("smartos: a command is required"); return 2; }
        string[] argv = [.. g.Operands];
        // Standard input is offered when it is not a terminal, to a command whose descriptor reads it.
        Stream? stdin = Console.IsInputRedirected && ReadsStdin(argv[0]) ? Console.OpenStandardInput() : null;

        // A root that is not ours is refused, not read (RootAccess.cs); a running host (smartos boot) on
        // this root takes the command.
        if (root != null && RootAccess.Refusal(root) is string refusal)
        {
            stderr.WriteLine("smartos: " + refusal);
            return 1;
        }
        string socketPath = Path.Combine(root ?? DefaultRoot(), Protocol.SocketName);
        var socket = DaemonClient.TryConnect(socketPath);
        // One-shot: a host booted from its root directory (persistent configuration), in virtual time,
        // with nothing running on it (Dispatcher.cs rule 4), holding the root's lock from before it
        // reads the configuration until after it writes (kernel/RootLock.cs rule 1).
        RootLock? held = null;
        if (socket == null && root != null)
        {
            if (!RootAccess.TryGetLockWait(out var wait, out string? badWait))
            {
                stderr.WriteLine("smartos: " + badWait);
                return 2;
            }
            try { held = RootAccess.WaitForLock(root, wait, () => (socket = DaemonClient.TryConnect(socketPath)) != null); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"smartos: {root}: {e.Message}");
                return 1;
            }
            if (held == null && socket == null)
            {
                stderr.WriteLine("smartos: " + RootAccess.Busy(root, wait));
                return 1;
            }
        }
        if (socket != null)
        {
            stdout.Flush();
            // A guest's console takes keys from a terminal, one by one (CommandDescriptor.TerminalInput).
            if (stdin == null && !Console.IsInputRedirected && TakesKeys(argv))
            {
                using var keys = new TerminalKeyStream();
                return DaemonClient.Run(socket, argv, keys, Console.OpenStandardOutput(), Console.OpenStandardError());
            }
            return DaemonClient.Run(socket, argv, stdin, Console.OpenStandardOutput(), Console.OpenStandardError());
        }

        using var rootLock = held;
        var world = new World();
        IConfigStore store = new MemoryConfigStore();
        IIdentitySource? identities = null;
        long epoch = 0;
        if (root != null)
        {
            try
            {
                RootFiles.MakePrivate(root);
                store = new FileConfigStore(root);
                identities = RootAccess.OneShotIdentities(store, world.Seed, "global", root);
                epoch = RootAccess.SystemEpoch(world.Scheduler);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"smartos: {root}: {e.Message}");
                return 1;
            }
        }
        var host = world.AddHost("global", nics, store, identities, epoch);
        foreach (var p in host.BootProblems) stderr.WriteLine("smartos: boot: " + p);
        stdout.Flush();
        stderr.Flush();
        using var bytesOut = new SynchronousStream(Console.OpenStandardOutput());
        using var bytesErr = new SynchronousStream(Console.OpenStandardError());
        return Dispatcher.Run(world, host, argv, stdin == null ? null : new SynchronousStream(stdin), bytesOut, bytesErr, hostRunning: false);
    }

    /// <summary>Whether a command reads standard input, as its descriptor says; an unknown command
    /// reads none (the dispatcher says it is not found).</summary>
    internal static bool ReadsStdin(string command)
        => CommandRegistry.TryGet(command, out var descriptor) && descriptor.ReadsStdin;

    private static bool TakesKeys(string[] argv)
        => CommandRegistry.TryGet(argv[0], out var descriptor) && descriptor.TerminalInput(argv[1..]);

    /// <summary>The root directory of `smartos boot` without --root: $SMARTOS_ROOT, else ~/.smartos.</summary>
    private static string DefaultRoot()
        => Environment.GetEnvironmentVariable("SMARTOS_ROOT") is { Length: > 0 } r
            ? r
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".smartos");

    /// <summary>`smartos boot`: the host in real time, in the foreground, until SIGTERM or SIGINT.</summary>
    private static int Boot(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var g = Getopt.Parse(args, "", ["root:", "nics:", "seed:", "nic:", "zones-size:", "http:"]);
        int nics = 2;
        ulong seed = 1;
        long zonesSize = PoolTable.DefaultZonesSize;
        if (g.Error != null || g.Operands.Count > 0
            || (g.Has("nics") && (!int.TryParse(g.Value("nics"), NumberStyles.None, CultureInfo.InvariantCulture, out nics) || nics > 64))
            || (g.Has("seed") && !ulong.TryParse(g.Value("seed"), NumberStyles.None, CultureInfo.InvariantCulture, out seed))
            || (g.Has("zones-size") && !SizeArgument.TryParse(g.Value("zones-size")!, out zonesSize)))
        {
            if (g.Error != null) stderr.WriteLine("smartos boot: " + g.Error);
            stderr.WriteLine("usage: smartos boot [--root DIR] [--nics N] [--seed N] [--zones-size SIZE] [--nic NIC=tap:NAME|pcap:IFACE ...] [--http [ADDR:]PORT]");
            return 2;
        }
        var bindings = new List<NicBinding>();
        foreach (string spec in g.Values("nic"))
        {
            if (!NicBinding.TryParse(spec, out var b, out string? why))
            {
                stderr.WriteLine($"smartos boot: --nic {spec}: {why}");
                stderr.WriteLine("usage: smartos boot [--root DIR] [--nics N] [--seed N] [--zones-size SIZE] [--nic NIC=tap:NAME|pcap:IFACE ...] [--http [ADDR:]PORT]");
                return 2;
            }
            bindings.Add(b!);
        }
        // The dashboard is off unless asked for, and on loopback unless an address is given.
        System.Net.IPEndPoint? http = null;
        if (g.Value("http") is { } httpSpec)
        {
            if (!DashboardServer.TryParseEndpoint(httpSpec, out var endpoint, out string httpError))
            {
                stderr.WriteLine($"smartos boot: --http {httpSpec}: {httpError}");
                stderr.WriteLine("usage: smartos boot [--root DIR] [--nics N] [--seed N] [--zones-size SIZE] [--nic NIC=tap:NAME|pcap:IFACE ...] [--http [ADDR:]PORT]");
                return 2;
            }
            http = endpoint;
        }
        string root = Path.GetFullPath(g.Value("root") ?? DefaultRoot());
        if (RootAccess.Refusal(root) is string refusal)
        {
            stderr.WriteLine("smartos boot: " + refusal);
            return 1;
        }
        string socketPath = Path.Combine(root, Protocol.SocketName);
        // The daemon holds the root's lock for its whole life, taken before it reads the configuration
        // (kernel/RootLock.cs rule 1): one-shot commands then wait for its socket instead of writing
        // behind its back.
        if (!RootAccess.TryGetLockWait(out var wait, out string? badWait))
        {
            stderr.WriteLine("smartos boot: " + badWait);
            return 2;
        }
        RootLock? held = null;
        try
        {
            held = DaemonServer.CanConnect(socketPath)
                ? null
                : RootAccess.WaitForLock(root, wait, () => DaemonServer.CanConnect(socketPath));
            if (held != null) RootFiles.MakePrivate(root);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            held?.Dispose();
            stderr.WriteLine($"smartos boot: {root}: {e.Message}");
            return 1;
        }
        using var rootLock = held;
        if (rootLock == null)
        {
            stderr.WriteLine("smartos boot: " + (DaemonServer.CanConnect(socketPath) ? $"a host is already running on {root}" : RootAccess.Busy(root, wait)));
            return 1;
        }

        var world = new World(seed);
        var host = world.AddHost("global", nics, new FileConfigStore(root), new RootAccess.SystemIdentities(), RootAccess.SystemEpoch(world.Scheduler));
        foreach (var p in host.BootProblems) stderr.WriteLine("smartos boot: " + p);
        // SmartOS's first boot makes the zones pool; later boots import it (PoolTable.EnsureZonesPool).
        if (host.Pools.EnsureZonesPool(zonesSize) is string zonesProblem)
        {
            stderr.WriteLine("smartos boot: " + zonesProblem);
            return 1;
        }
        // Every NIC backend is opened before the host starts, so a missing device or privilege stops
        // the boot with nothing running (issue 6: nothing half-starts).
        var backends = NicBinding.OpenAll(host, bindings, out string? nicError);
        if (backends == null)
        {
            stderr.WriteLine("smartos boot: " + nicError);
            return 1;
        }
        var driver = world.StartRealTime();
        driver.InvokeAsync(() => { foreach (var b in backends) b.Start(driver); return 0; }).Wait(TimeSpan.FromSeconds(10));
        // Overlays whose listen_ip is an address of this machine go over a real UDP socket.
        var underlays = driver.InvokeAsync(() => new RealTimeUnderlays(host, driver).Install());
        if (underlays.Wait(TimeSpan.FromSeconds(10)))
            foreach (var p in underlays.Result) stderr.WriteLine("smartos boot: " + p);
        var booted = driver.InvokeAsync(() => (Problems: host.Zones.BootAutoboot(), Running: host.Zones.Zones.Count(z => z.State == ZoneState.Running)));
        if (!booted.Wait(TimeSpan.FromSeconds(30)))
        {
            stderr.WriteLine("smartos boot: zones did not boot within 30s");
            foreach (var b in backends) b.Backend.Dispose();
            return 1;
        }
        foreach (var p in booted.Result.Problems) stderr.WriteLine("smartos boot: " + p);

        DaemonServer server;
        try { server = new DaemonServer(world, host, socketPath); }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            stderr.WriteLine($"smartos boot: {socketPath}: {e.Message}");
            driver.Dispose();
            foreach (var b in backends) b.Backend.Dispose();
            return 1;
        }
        // The handlers go in before the listening line: whoever waits for that line may signal at once,
        // and a SIGTERM before them would end the process without shutting the zones down.
        using var stop = new ManualResetEventSlim();
        void Stop(PosixSignalContext c)
        {
            c.Cancel = true;
            stop.Set();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        server.Start();
        // The dashboard starts after the daemon and before the listening line, so the line can say
        // where it is; a port that cannot be bound stops the boot, as a missing NIC does.
        DashboardServer? dashboard = null;
        string? dashboardLine = null;
        if (http != null)
        {
            string token = DashboardServer.NewToken();
            dashboard = new DashboardServer(world, host, new DashboardOptions { Endpoint = http, Token = token });
            try
            {
                string tokenPath = DashboardServer.WriteTokenFile(root, token);
                dashboard.StartAsync().GetAwaiter().GetResult();
                dashboardLine = $"smartos: dashboard on {dashboard.Address}?token={token} (token in {tokenPath})";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine("smartos boot: --http: " + e.Message);
                File.Delete(Path.Combine(root, DashboardServer.TokenFileName));
                server.Dispose();
                driver.InvokeAsync(() => { host.Zones.ShutdownAll(); return 0; }).Wait(TimeSpan.FromSeconds(10));
                driver.Dispose();
                foreach (var b in backends) b.Backend.Dispose();
                return 1;
            }
        }
        if (dashboardLine != null) stdout.WriteLine(dashboardLine);
        stdout.WriteLine($"smartos: host booted from {root}: {booted.Result.Running} zone(s) running; listening on {socketPath}");
        stdout.Flush();

        stop.Wait();

        stdout.WriteLine("smartos: shutting down zones");
        if (dashboard != null)
        {
            dashboard.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(10));
            File.Delete(Path.Combine(root, DashboardServer.TokenFileName)); // The token died with the server.
        }
        server.Dispose();
        var down = driver.InvokeAsync(() => { host.Zones.ShutdownAll(); return 0; });
        down.Wait(TimeSpan.FromSeconds(10));
        driver.Dispose();
        foreach (var b in backends) b.Backend.Dispose();
        stdout.WriteLine("smartos: host halted");
        return 0;
    }

    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var g = Getopt.Parse(args, "", ["seed:", "outdir:", "threads:", "report:", "plot:", "sample:"], permute: true);
        if (g.Error != null || g.Operands.Count != 1)
        {
            stderr.WriteLine("usage: smartos run [--seed N] [--outdir DIR] [--threads N] [--report DIR] [--plot DIR] [--sample DURATION] FILE");
            return 2;
        }
        ulong seed = 1;
        if (g.Has("seed") && !ulong.TryParse(g.Value("seed"), NumberStyles.None, CultureInfo.InvariantCulture, out seed))
        {
            stderr.WriteLine($"smartos run: bad seed '{g.Value("seed")}'");
            return 2;
        }
        // The output is the same for any thread count (kernel/Timeline.cs): the default uses every core.
        int threads = Environment.ProcessorCount;
        if (g.Has("threads") && (!int.TryParse(g.Value("threads"), NumberStyles.None, CultureInfo.InvariantCulture, out threads) || threads < 1 || threads > 1024))
        {
            stderr.WriteLine($"smartos run: bad thread count '{g.Value("threads")}' (1 to 1024)");
            return 2;
        }
        string file = g.Operands[0];
        string script;
        try { script = File.ReadAllText(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"smartos run: {file}: {e.Message}");
            return 1;
        }
        // The report's sampling interval: finer than the dashboard's second, as a scenario's traffic
        // often lasts a few seconds of virtual time.
        long interval = 100 * Time.Millisecond;
        if (g.Has("sample") && (!Time.TryParseDuration(g.Value("sample")!, out interval) || interval < Time.Millisecond))
        {
            stderr.WriteLine($"smartos run: bad sample interval '{g.Value("sample")}' (1ms or more, as 100ms or 1s)");
            return 2;
        }
        if (g.Has("sample") && !g.Has("report") && !g.Has("plot"))
        {
            stderr.WriteLine("smartos run: --sample says how often --report or --plot samples the links: give one of them");
            return 2;
        }
        // ReportWriter.cs rule 1: the directories are checked before the scenario runs.
        foreach (string? dir in new[] { g.Value("report"), g.Value("plot") })
        {
            if (dir != null && ReportWriter.Check(dir) is string refusal)
            {
                stderr.WriteLine("smartos run: " + refusal);
                return 2;
            }
        }
        string outdir = g.Value("outdir") ?? Environment.CurrentDirectory;
        Directory.CreateDirectory(outdir);
        bool observe = g.Has("report") || g.Has("plot");
        var transcript = observe ? new StringWriter { NewLine = "\n" } : null;
        var runner = new ScenarioRunner(transcript == null ? stdout : new TeeWriter(stdout, transcript), stderr, Path.GetFullPath(outdir), seed, threads);
        // An hour of samples at the interval; a link's ring grows only as far as the run needs.
        if (observe) runner.ObserveLinks(interval, (int)Math.Clamp(3600 * Time.Second / interval, 2, 1 << 22));
        int code = runner.Run(script, file);
        if (!observe) return code;
        var input = new ReportInput(file, seed, code, runner.Failures, transcript!.ToString(), Topology.Of(runner.World), runner.Series,
            runner.WrittenFiles, runner.World.Scheduler.Now);
        foreach (var (dir, chartsOnly) in new[] { (g.Value("report"), false), (g.Value("plot"), true) })
        {
            if (dir == null) continue;
            if (ReportWriter.Write(dir, ReportWriter.Build(dir, input, chartsOnly)) is string failed)
            {
                stderr.WriteLine("smartos run: cannot write the " + (chartsOnly ? "charts" : "report") + ": " + failed);
                return code == 0 ? 1 : code;
            }
        }
        return code;
    }

    /// <summary>Writes to two writers: the console, and the transcript a report keeps.</summary>
    private sealed class TeeWriter(TextWriter a, TextWriter b) : TextWriter
    {
        public override System.Text.Encoding Encoding => a.Encoding;
        public override void Write(char value) { a.Write(value); b.Write(value); }
        public override void Write(string? value) { a.Write(value); b.Write(value); }
        public override void Write(char[] buffer, int index, int count) { a.Write(buffer, index, count); b.Write(buffer, index, count); }
        public override void WriteLine(string? value) { a.Write(value + "\n"); b.Write(value + "\n"); }
        public override void Flush() { a.Flush(); b.Flush(); }
    }
}
