using SmartOS.Cli;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Testing;

/// <summary>A host in real time, in-process (as `smartos boot` runs it), with commands run through
/// the dispatcher on its loop. Every wait is bounded and an overrun throws (a test that meets one
/// fails with its message); Dispose shuts the zones down first. Shared by the integration tests and
/// the TAP benchmark.</summary>
internal sealed class RealTimeHost : IDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    /// <param name="root">The host's root directory (its configuration, pools and mounts), or none.</param>
    public RealTimeHost(int nics = 1, string? root = null)
    {
        World = new World();
        Host = World.AddHost("global", nics, root == null ? null : new FileConfigStore(root));
        Driver = World.StartRealTime();
    }

    public World World { get; }
    public Host Host { get; }
    public RealTimeDriver Driver { get; }

    /// <summary>Runs <paramref name="func"/> on the loop and waits (bounded) for its result.</summary>
    public T OnLoop<T>(Func<T> func)
    {
        var t = Driver.InvokeAsync(func);
        if (!t.Wait(Wait)) throw new TimeoutException("the loop did not answer");
        return t.Result;
    }

    /// <summary>Runs a command to completion, bounded in time (^C, then a failure).</summary>
    public (int Code, string Out, string Err) Sh(params string[] argv) => ShIn(null, argv);

    /// <summary>As <see cref="Sh"/>, with <paramref name="stdin"/> as the command's standard input.</summary>
    public (int Code, string Out, string Err) ShIn(string? stdin, params string[] argv)
    {
        var (task, cts, stdout, stderr) = Begin(stdin == null ? null : new MemoryStream(System.Text.Encoding.UTF8.GetBytes(stdin)), argv);
        if (!task.Wait(Wait))
        {
            Driver.Invoke(cts.Cancel);
            if (!task.Wait(Wait)) throw new TimeoutException($"{string.Join(' ', argv)} did not stop after ^C");
        }
        return (task.Result, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs a command to completion with <paramref name="stdin"/> as its standard input bytes;
    /// returns its standard output as bytes.</summary>
    public (int Code, byte[] Out, string Err) ShBytes(byte[]? stdin, params string[] argv)
    {
        var (task, cts, stdout, stderr) = Begin(stdin == null ? null : new MemoryStream(stdin), argv);
        if (!task.Wait(Wait))
        {
            Driver.Invoke(cts.Cancel);
            if (!task.Wait(Wait)) throw new TimeoutException($"{string.Join(' ', argv)} did not stop after ^C");
        }
        return (task.Result, stdout.ToArray(), stderr.ToString());
    }

    /// <summary>Starts a command on the loop; its output is complete once the task is.</summary>
    public (Task<int> Task, CancellationTokenSource Cts, OutputCapture Out, OutputCapture Err) Begin(params string[] argv) => Begin(null, argv);

    public (Task<int> Task, CancellationTokenSource Cts, OutputCapture Out, OutputCapture Err) Begin(Stream? stdin, string[] argv)
    {
        var stdout = new OutputCapture();
        var stderr = new OutputCapture();
        var cts = new CancellationTokenSource();
        var ctx = new CommandContext
        {
            World = World, Host = Host, StdoutBytes = stdout, StderrBytes = stderr, Cancel = cts.Token,
            StdinBytes = stdin,
        };
        var task = Driver.InvokeAsync(() => Dispatcher.StartAsync(ctx, argv)).Unwrap();
        return (task, cts, stdout, stderr);
    }

    public string Ok(params string[] argv)
    {
        var r = Sh(argv);
        if (r.Code != 0) throw new InvalidOperationException($"{string.Join(' ', argv)}: exit {r.Code}: {r.Err}{r.Out}");
        return r.Out;
    }

    public void Dispose()
    {
        Driver.InvokeAsync(() => { Host.Zones.ShutdownAll(); return 0; }).Wait(Wait);
        Driver.Dispose();
    }
}
