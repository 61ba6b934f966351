using System.Diagnostics;
using System.Globalization;

namespace SmartOS.Cli.Tests.Roots;

/// <summary>The built `smartos` executable run as child processes on one root directory, each wait
/// bounded; whatever is still running at the end is killed (only processes started here).</summary>
internal sealed class SmartosProcesses : IDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly List<Process> _processes = [];

    public SmartosProcesses(string root) => Root = root;

    public string Root { get; }

    private static string SmartosDll => Path.Combine(AppContext.BaseDirectory, "smartos.dll");

    /// <summary>Starts `smartos ARGS`, optionally under another uid through setpriv(1) and with extra
    /// environment variables.</summary>
    public Process Start(string? stdin, IEnumerable<string> args, int? uid = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var psi = new ProcessStartInfo(uid == null ? dotnet : "setpriv")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin != null, UseShellExecute = false,
        };
        if (uid != null)
        {
            string id = uid.Value.ToString(CultureInfo.InvariantCulture);
            foreach (string a in (string[])[$"--reuid={id}", $"--regid={id}", "--clear-groups", dotnet]) psi.ArgumentList.Add(a);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        psi.ArgumentList.Add(SmartosDll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        _processes.Add(p);
        if (stdin != null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        return p;
    }

    /// <summary>Starts `smartos --root ROOT ARGV` (a one-shot, or a client of a running daemon).</summary>
    public Process Command(string? stdin, params string[] argv) => Start(stdin, ["--root", Root, .. argv]);

    /// <summary>Waits for a process and returns what it said.</summary>
    public static (int Code, string Out, string Err) Finish(Process p)
    {
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(Wait), Is.True, "a smartos process did not finish");
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public (int Code, string Out, string Err) Run(string? stdin, params string[] argv) => Finish(Command(stdin, argv));

    /// <summary>Starts `smartos boot --root ROOT` without waiting for it.</summary>
    public Process StartDaemon() => Start(null, ["boot", "--root", Root]);

    /// <summary>Waits (bounded) until a daemon says it is listening.</summary>
    public static void WaitListening(Process daemon)
    {
        var line = daemon.StandardOutput.ReadLineAsync();
        Assert.That(line.Wait(Wait), Is.True, "the daemon did not come up");
        Assert.That(line.Result, Does.Contain("listening on"), () => daemon.HasExited ? daemon.StandardError.ReadToEnd() : "no listening line");
    }

    /// <summary>Stops a daemon with SIGTERM and waits for it.</summary>
    public static void Stop(Process daemon)
    {
        using (var kill = Process.Start("kill", ["-TERM", daemon.Id.ToString(CultureInfo.InvariantCulture)])!)
            Assert.That(kill.WaitForExit(Wait), Is.True);
        Assert.That(daemon.WaitForExit(Wait), Is.True, "the daemon did not stop");
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
            p.Dispose();
        }
    }
}
