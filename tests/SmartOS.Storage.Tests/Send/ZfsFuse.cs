using System.Diagnostics;
using System.Runtime.InteropServices;

namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// A private zfs-fuse daemon for one test fixture. zfs-fuse's tools find the daemon through a fixed
/// socket, /var/run/zfs/zfs_socket, and it keeps /var/lock/zfs, /etc/zfs and /var/lib/zfs/zpool.cache;
/// so the daemon runs in a mount namespace of its own (unshare --mount, private propagation) where
/// /run is an empty tmpfs and /etc/zfs and /var/lib/zfs are bound to this fixture's temp directory.
/// Nothing of it is visible outside: the machine's /run, /etc/zfs and any zfs-fuse already running
/// are untouched. zpool and zfs run inside that namespace (nsenter), its FUSE mounts live there and
/// are read from outside through /proc/PID/root. Dispose destroys the pool, stops the daemon this
/// fixture started (by its process id) and deletes the temp directory; with the daemon gone the
/// namespace and its mounts go too, so a failed test leaves nothing behind.
/// </summary>
internal sealed class ZfsFuse : IDisposable
{
    private readonly Process _daemon;
    public string Directory { get; }
    public string Pool { get; }
    public string MountRoot => Path.Combine(Directory, "mnt");

    private ZfsFuse(Process daemon, string directory, string pool)
    {
        _daemon = daemon;
        Directory = directory;
        Pool = pool;
    }

    /// <summary>Why zfs-fuse cannot run here, or null.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux()) return "zfs-fuse runs on Linux only";
        if (geteuid() != 0) return "zfs-fuse needs root";
        if (!File.Exists("/dev/fuse")) return "no /dev/fuse";
        if (Which("zfs-fuse") is null) return "zfs-fuse is not installed (Debian package zfs-fuse)";
        if (Which("unshare") is null || Which("nsenter") is null) return "unshare/nsenter (util-linux) missing";
        return null;
    }

    public static ZfsFuse Start()
    {
        string dir = Path.Combine(Path.GetTempPath(), "smartos-zfsfuse-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "etc"));
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "lib"));
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "mnt"));
        string script = $"mount -t tmpfs none /run && mkdir -p /run/zfs /run/lock && mount --bind '{dir}/etc' /etc/zfs && "
                      + $"[ -d /var/lib/zfs ] && mount --bind '{dir}/lib' /var/lib/zfs && exec zfs-fuse --no-daemon --no-kstat-mount";
        var psi = new ProcessStartInfo("unshare", ["--mount", "--propagation", "private", "sh", "-c", script])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        Process daemon = Process.Start(psi)!;
        var fuse = new ZfsFuse(daemon, dir, "smartos" + Environment.ProcessId % 100000);
        // The socket appears inside the namespace once the daemon listens; bounded wait.
        string socket = $"/proc/{daemon.Id}/root/run/zfs/zfs_socket";
        for (int i = 0; i < 200 && !File.Exists(socket); i++)
        {
            if (daemon.HasExited) break;
            Thread.Sleep(50);
        }
        if (!File.Exists(socket))
        {
            string err = daemon.HasExited ? daemon.StandardError.ReadToEnd() : "";
            fuse.Dispose();
            Assert.Fail($"zfs-fuse did not start: {err}");
        }
        try
        {
            string vdev = Path.Combine(dir, "vdev0");
            using (var f = File.Create(vdev)) f.SetLength(128L * 1024 * 1024);
            fuse.Run($"zpool create -m '{fuse.MountRoot}/{fuse.Pool}' {fuse.Pool} '{vdev}'");
            return fuse;
        }
        catch
        {
            fuse.Dispose(); // the caller never gets it: stop the daemon here
            throw;
        }
    }

    public (int Status, string Output, string Error) RunAllowingFailure(string command)
    {
        var psi = new ProcessStartInfo("nsenter", ["-t", _daemon.Id.ToString(), "-m", "--", "sh", "-c", command])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        using Process p = Process.Start(psi)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync(), error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new AssertionException($"'{command}' did not finish"); }
        return (p.ExitCode, output.Result, error.Result);
    }

    /// <summary>Runs a shell command line inside the daemon's namespace; fails the test on a non-zero exit.</summary>
    public string Run(string command)
    {
        var (status, output, error) = RunAllowingFailure(command);
        if (status != 0) throw new AssertionException($"'{command}' exited {status}: {error}");
        return output;
    }

    /// <summary>A path inside the daemon's namespace (a FUSE mount there) as seen from here.</summary>
    public string Outside(string path) => $"/proc/{_daemon.Id}/root{path}";

    public string MountOf(string dataset) => $"{MountRoot}/{dataset}";

    public void Dispose()
    {
        if (!_daemon.HasExited)
        {
            RunAllowingFailure($"zpool destroy -f {Pool}");
            kill(_daemon.Id, 15); // SIGTERM to the daemon this fixture started: zfs-fuse syncs and exits
            if (!_daemon.WaitForExit(10_000)) _daemon.Kill();
            _daemon.WaitForExit();
        }
        _daemon.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
    }

    private static string? Which(string name)
    {
        foreach (string d in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Concat(["/sbin", "/usr/sbin"]))
            if (d.Length > 0 && File.Exists(Path.Combine(d, name))) return Path.Combine(d, name);
        return null;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern uint geteuid();

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
