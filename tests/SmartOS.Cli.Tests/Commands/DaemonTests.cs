using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>`smartos boot` as a child process, driven through its socket by `smartos` clients.
/// Every wait is bounded.</summary>
[NonParallelizable]
public class DaemonTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private string _root = "";
    private readonly List<Process> _processes = [];

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-daemon-").FullName;

    [TearDown]
    public void Cleanup()
    {
        foreach (var p in _processes)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
            p.Dispose();
        }
        Directory.Delete(_root, recursive: true);
    }

    private static string SmartosDll => Path.Combine(AppContext.BaseDirectory, "smartos.dll");

    private Process Start(bool redirectStdin, params string[] args)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = redirectStdin, UseShellExecute = false,
        };
        psi.ArgumentList.Add(SmartosDll);
        foreach (string a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        _processes.Add(p);
        return p;
    }

    /// <summary>Starts the daemon and waits (bounded) until it says it is listening.</summary>
    private Process BootDaemon()
    {
        var p = Start(false, "boot", "--root", _root);
        var line = p.StandardOutput.ReadLineAsync();
        Assert.That(line.Wait(s_wait), Is.True, "the daemon did not come up");
        Assert.That(line.Result, Does.Contain("listening on"), () => p.HasExited ? p.StandardError.ReadToEnd() : "no listening line");
        return p;
    }

    private (int Code, string Out, string Err) Client(string? stdin, params string[] argv)
    {
        var p = Start(stdin != null, ["--root", _root, .. argv]);
        if (stdin != null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(s_wait), Is.True, $"smartos {string.Join(' ', argv)} did not finish");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Whether SIGINT (2) is in this process's ignored set (SigIgn in /proc/self/status).</summary>
    private static bool SigintIgnored()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("SigIgn:", StringComparison.Ordinal))
                return (ulong.Parse(line[7..].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture) & (1UL << 1)) != 0;
        return false;
    }

    private static void Signal(Process p, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        Assert.That(kill.WaitForExit(s_wait), Is.True);
    }

    /// <summary>Configures an autoboot zone in the root with the in-process one-shot host.</summary>
    private void ConfigureWeb()
    {
        var h = new CliHost(store: new FileConfigStore(_root));
        h.Ok(CliHost.Split("nictagadm add -l stub0"));
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; set autoboot=true; add net; set physical=web0; set global-nic=stub0; end");
        h.Ok(CliHost.Split("zoneadm -z web install"));
    }

    [Test]
    public void The_daemon_serves_commands_and_restores_committed_state_after_kill_9()
    {
        ConfigureWeb();
        var daemon = BootDaemon();
        using (Assert.EnterMultipleScope())
        {
            if (!OperatingSystem.IsWindows())
                Assert.That(File.GetUnixFileMode(Path.Combine(_root, "smartos.sock")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
            var list = Client(null, "zoneadm", "list", "-cv");
            Assert.That(list.Code, Is.Zero, list.Err);
            Assert.That(list.Out, Does.Contain("   1 web              running    /zones/web"));
            var inside = Client(null, "zlogin", "web", "dladm", "show-link", "-p", "-o", "link");
            Assert.That(inside.Out, Is.EqualTo("web0\n"));
            var created = Client("""{ "alias": "db", "autoboot": true }""", "vmadm", "create");
            Assert.That(created.Err, Does.StartWith("Successfully created VM "));
        }
        daemon.Kill(entireProcessTree: true);
        Assert.That(daemon.WaitForExit(s_wait), Is.True);

        BootDaemon();
        var after = Client(null, "zoneadm", "list", "-p");
        var vms = Client(null, "vmadm", "list", "-p", "-o", "alias,state");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(after.Out, Does.Contain(":web:running:/zones/web::joyent:excl"));
            Assert.That(vms.Out, Is.EqualTo("db:running\n"));
        }
    }

    [Test]
    public void Boot_creates_the_zones_pool_on_a_sparse_file_and_the_next_boot_imports_it()
    {
        var daemon = BootDaemon();
        Assert.That(Client(null, "zpool", "list", "-H", "-o", "name,health"), Is.EqualTo((0, "zones\tONLINE\n", "")));
        string guid = Client(null, "zpool", "get", "-H", "-o", "value", "guid", "zones").Out;
        Signal(daemon, "TERM");
        Assert.That(daemon.WaitForExit(s_wait), Is.True);
        Assert.That(new FileInfo(Path.Combine(_root, "dsk", "zones0")).Length, Is.EqualTo(4L << 30));
        // A one-shot command imports it from the cache, the next boot too: the same pool, by its guid.
        Assert.That(Client(null, "zpool", "get", "-H", "-o", "value", "guid", "zones").Out, Is.EqualTo(guid));
        BootDaemon();
        Assert.That(Client(null, "zpool", "get", "-H", "-o", "value", "guid", "zones").Out, Is.EqualTo(guid));
    }

    [Test]
    public void Sigterm_shuts_zones_down_and_removes_the_socket()
    {
        ConfigureWeb();
        var daemon = BootDaemon();
        Signal(daemon, "TERM");
        var rest = daemon.StandardOutput.ReadToEndAsync();
        Assert.That(daemon.WaitForExit(s_wait), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(daemon.ExitCode, Is.Zero);
            Assert.That(rest.Result, Does.Contain("shutting down zones").And.Contain("host halted"));
            Assert.That(File.Exists(Path.Combine(_root, "smartos.sock")), Is.False);
        }
        var oneShot = Client(null, "zoneadm", "-z", "web", "boot");
        Assert.That(oneShot.Err, Does.Contain("the host is not booted"));
    }

    [Test]
    public void A_long_running_command_streams_and_stops_on_ctrl_c()
    {
        // A process started in the background by a non-interactive shell (`cmd &`) ignores SIGINT, and
        // its children inherit that: the client could never see ^C, whatever it does.
        if (SigintIgnored()) Assert.Ignore("SIGINT is ignored in this process (started in the background by a shell), so its children cannot receive ^C");
        BootDaemon();
        var snoop = Start(false, "--root", _root, "snoop", "-d", "e1000g0");
        var first = snoop.StandardError.ReadLineAsync();
        Assert.That(first.Wait(s_wait), Is.True, "snoop did not start");
        Assert.That(first.Result, Is.EqualTo("Using device e1000g0 (promiscuous mode)"));
        Assert.That(snoop.HasExited, Is.False);
        Signal(snoop, "INT");
        Assert.That(snoop.WaitForExit(s_wait), Is.True, "snoop did not stop on Ctrl-C");
        var again = Client(null, "zonename");
        Assert.That(again.Out, Is.EqualTo("global\n"));
    }

    /// <summary>Without a running host, `smartos zonecfg -z NAME < FILE` edits the root's configuration
    /// from the commands on standard input.</summary>
    [Test]
    public void One_shot_zonecfg_reads_its_commands_from_standard_input()
    {
        var r = Client("create\nset zonepath=/zones/web\nset autoboot=true\n", "zonecfg", "-z", "web");
        var info = Client(null, "zonecfg", "-z", "web", "info", "autoboot");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.Zero, r.Err);
            Assert.That(info.Out, Is.EqualTo("autoboot: true\n"));
        }
    }

    [Test]
    public void A_second_daemon_on_the_same_root_is_refused()
    {
        BootDaemon();
        var second = Start(false, "boot", "--root", _root);
        var stderr = second.StandardError.ReadToEndAsync();
        Assert.That(second.WaitForExit(s_wait), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.ExitCode, Is.EqualTo(1));
            Assert.That(stderr.Result, Does.Contain("a host is already running"));
        }
    }
}
