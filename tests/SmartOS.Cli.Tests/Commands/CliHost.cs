using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>A world with one host for command tests, plus helpers to run commands on it.</summary>
internal sealed class CliHost
{
    /// <param name="epoch">The Unix time, in nanoseconds, the host's clock starts at (kernel/WallClock.cs).</param>
    public CliHost(int nics = 2, IConfigStore? store = null, ulong seed = 1, long epoch = 0)
    {
        World = new World(seed);
        Host = World.AddHost("h1", nics, store, epoch: epoch);
    }

    /// <summary>A host with etherstub stub0 and two VNICs on it: a0 (2:0:0:0:0:1) and b0 (2:0:0:0:0:2).</summary>
    public static CliHost TwoVnicsOnAStub()
    {
        var h = new CliHost();
        h.Ok(Split("dladm create-etherstub stub0"));
        h.Ok(Split("dladm create-vnic -l stub0 -m 2:0:0:0:0:1 a0"));
        h.Ok(Split("dladm create-vnic -l stub0 -m 2:0:0:0:0:2 b0"));
        return h;
    }

    public World World { get; }
    public Host Host { get; }

    public CommandResult Run(params string[] argv) => Dispatcher.Run(World, Host, argv);

    /// <summary>Runs a command that must succeed and returns its stdout.</summary>
    public string Ok(params string[] argv)
    {
        var r = Run(argv);
        Assert.That(r.ExitCode, Is.Zero, $"{string.Join(' ', argv)} failed: {r.Stderr}");
        return r.Stdout;
    }

    /// <summary>Runs a command line split at spaces.</summary>
    public CommandResult Line(string line) => Run(Split(line));

    /// <summary>Runs a command that must fail and returns its result.</summary>
    public CommandResult Fails(params string[] argv)
    {
        var r = Run(argv);
        Assert.That(r.ExitCode, Is.Not.Zero, $"{string.Join(' ', argv)} should have failed: {r.Stdout}");
        return r;
    }

    /// <summary>Runs a command with standard input.</summary>
    public CommandResult WithStdin(string stdin, params string[] argv) => Dispatcher.Run(World, Host, argv, stdin);

    public static string[] Split(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
