using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SmartOS.Testing;

/// <summary>
/// Real Linux processes and network namespaces for the integration tests and the TAP benchmark
/// (this file is compiled into both). Safety (issue 6): every
/// process has a time limit and is killed when it overruns; every namespace is the test's own
/// (smartos-test-RANDOM) and is deleted at teardown; nothing is configured in the root namespace.
/// </summary>
internal static partial class LinuxNet
{
    public static readonly TimeSpan ProcessLimit = TimeSpan.FromSeconds(20);

    /// <summary>Why these tests cannot run here, or null when they can.</summary>
    public static string? MissingPrerequisite(params string[] tools)
    {
        if (!OperatingSystem.IsLinux()) return "needs Linux";
        if (GetEuid() != 0) return "needs root (TAP devices and network namespaces)";
        if (!File.Exists("/dev/net/tun")) return "needs /dev/net/tun";
        foreach (string t in (string[])["ip", "timeout", .. tools])
        {
            if (Which(t) == null) return $"needs '{t}' on PATH";
        }
        return null;
    }

    public static string? Which(string tool)
    {
        // PATH, then the system directories a non-login root shell may leave out of it.
        foreach (string dir in ((Environment.GetEnvironmentVariable("PATH") ?? "") + ":/usr/sbin:/usr/bin:/sbin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string p = Path.Combine(dir, tool);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Runs a program to completion within <see cref="ProcessLimit"/>; kills it (and its
    /// children) when it overruns.</summary>
    public static (int Code, string Out, string Err) Run(string file, params string[] args)
    {
        using var p = Start(file, args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(ProcessLimit))
        {
            Kill(p);
            return (-1, stdout.Wait(1000) ? stdout.Result : "", $"{file} {string.Join(' ', args)}: killed after {ProcessLimit.TotalSeconds}s");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    public static Process Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    public static void Kill(Process p)
    {
        int pid;
        try { pid = p.Id; }
        catch (InvalidOperationException) { return; } // Never started.
        try
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // The Process object lost track of it: kill by the id it had, if it still runs.
            try
            {
                using var again = Process.GetProcessById(pid);
                again.Kill(entireProcessTree: true);
                again.WaitForExit(5000);
            }
            catch (ArgumentException) { }
            catch (InvalidOperationException) { }
        }
    }

    /// <summary>Runs a program and throws, with its output, when it exits non-zero (a test that
    /// calls it fails with that message).</summary>
    public static string Must(string file, params string[] args)
    {
        var r = Run(file, args);
        if (r.Code != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit {r.Code}: {r.Err}{r.Out}");
        return r.Out;
    }

    /// <summary>A short random suffix for namespace and device names (at most 15 characters in all).</summary>
    /// <summary>Deletes a network namespace a test left behind (a test that failed half-way); nothing
    /// when it is gone already.</summary>
    public static void DeleteNamespace(string name)
    {
        if (File.Exists(Path.Combine("/run/netns", name))) Run("ip", "netns", "del", name);
    }

    public static string Suffix() => Convert.ToHexString(Guid.NewGuid().ToByteArray().AsSpan(0, 4)).ToLowerInvariant();

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();
}

/// <summary>A network namespace owned by one test: created on construction, deleted on Dispose.</summary>
internal sealed class NetNs : IDisposable
{
    public NetNs()
    {
        Name = "smartos-test-" + LinuxNet.Suffix();
        LinuxNet.Must("ip", "netns", "add", Name);
        LinuxNet.Must("ip", "-n", Name, "link", "set", "lo", "up");
    }

    public string Name { get; }

    /// <summary>Runs a program inside the namespace, bounded by timeout(1) as well as by the test.</summary>
    public (int Code, string Out, string Err) Exec(params string[] argv)
        => LinuxNet.Run("ip", ["netns", "exec", Name, "timeout", "-s", "KILL", ((int)LinuxNet.ProcessLimit.TotalSeconds - 2).ToString(System.Globalization.CultureInfo.InvariantCulture), .. argv]);

    public System.Diagnostics.Process StartIn(params string[] argv)
        => LinuxNet.Start("ip", ["netns", "exec", Name, "timeout", "-s", "KILL", ((int)LinuxNet.ProcessLimit.TotalSeconds - 2).ToString(System.Globalization.CultureInfo.InvariantCulture), .. argv]);

    public void Dispose() => LinuxNet.Run("ip", "netns", "del", Name);
}
