using System.Diagnostics;

namespace SmartOS.Integration.Tests;

/// <summary>`smartos boot --nic NIC=tap:NAME` as a child process. Every process is bounded in time and
/// killed at teardown; the TAP it creates is moved at once into the test's own namespace.</summary>
[NonParallelizable]
public class BootNicTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private string _root = "";
    private NetNs? _ns;
    private readonly List<Process> _processes = [];

    [SetUp]
    public void MakeRoot()
    {
        _root = Directory.CreateTempSubdirectory("smartos-nic-").FullName;
    }

    [TearDown]
    public void Cleanup()
    {
        try
        {
            foreach (var p in _processes)
            {
                LinuxNet.Kill(p);
                p.Dispose();
            }
            Directory.Delete(_root, recursive: true);
        }
        finally
        {
            _ns?.Dispose();
        }
    }

    private static string SmartosDll => Path.Combine(AppContext.BaseDirectory, "smartos.dll");
    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";

    private Process Start(string file, params string[] args)
    {
        var p = LinuxNet.Start(file, args);
        _processes.Add(p);
        return p;
    }

    private (int Code, string Out, string Err) Finish(Process p)
    {
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.That(p.WaitForExit(s_wait), Is.True, "smartos did not finish");
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private (int Code, string Out, string Err) Smartos(params string[] args) => Finish(Start(Dotnet, [SmartosDll, .. args]));

    [Test]
    public void Boot_refuses_a_nic_the_host_does_not_have_and_starts_nothing()
    {
        var r = Smartos("boot", "--root", _root, "--nic", "e1000g7=tap:smtx");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.EqualTo(1));
            Assert.That(r.Err, Does.Contain("--nic e1000g7: no such physical NIC"));
            Assert.That(File.Exists(Path.Combine(_root, "smartos.sock")), Is.False);
        }
    }

    [TestCase("e1000g0", "expected NIC=tap:NAME or NIC=pcap:IFACE")]
    [TestCase("e1000g0=pcap:", "expected NIC=tap:NAME or NIC=pcap:IFACE")]
    [TestCase("e1000g0=vde:sw", "unknown NIC backend 'vde'")]
    public void Boot_rejects_a_malformed_nic_binding_with_usage(string spec, string message)
    {
        var r = Smartos("boot", "--root", _root, "--nic", spec);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.EqualTo(2));
            Assert.That(r.Err, Does.Contain(message));
        }
    }

    [Test]
    public void Boot_on_a_missing_pcap_interface_says_so_and_starts_nothing()
    {
        var r = Smartos("boot", "--root", _root, "--nic", "e1000g0=pcap:nosuch" + LinuxNet.Suffix());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.EqualTo(1));
            Assert.That(r.Err, Does.Contain("no such interface").Or.Contain("cannot use libpcap"));
            Assert.That(File.Exists(Path.Combine(_root, "smartos.sock")), Is.False);
        }
    }

    /// <summary>A pcap NIC is the one thing that loads libpcap (as SharpPcap names it on Linux).</summary>
    private static string? MissingLibpcap()
        => ((string[])["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"]).Any(n => System.Runtime.InteropServices.NativeLibrary.TryLoad(n, out _))
            ? null : "needs libpcap for a pcap NIC (apt-get install libpcap0.8)";

    /// <summary>The daemon runs inside the test namespace (ip netns exec), so its pcap NIC binds one
    /// end of a veth pair there; Linux pings from the other end.</summary>
    [Test]
    public void Boot_with_a_pcap_nic_on_a_veth_answers_linux_ping()
    {
        string? missing = LinuxNet.MissingPrerequisite("ping") ?? MissingLibpcap();
        if (missing != null) Assert.Ignore(missing);
        _ns = new NetNs();
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "add", "va", "type", "veth", "peer", "name", "vb");
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", "va", "up");
        LinuxNet.Must("ip", "-n", _ns.Name, "addr", "add", "198.18.3.1/24", "dev", "vb");
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", "vb", "up");

        var daemon = Start("ip", "netns", "exec", _ns.Name, "timeout", "-s", "KILL", "120", Dotnet, SmartosDll, "boot", "--root", _root, "--nics", "1", "--nic", "e1000g0=pcap:va");
        var line = daemon.StandardOutput.ReadLineAsync();
        Assert.That(line.Wait(s_wait), Is.True, "the daemon did not come up");
        Assert.That(line.Result, Does.Contain("listening on"), () => daemon.HasExited ? daemon.StandardError.ReadToEnd() : "no listening line");

        Assert.That(Smartos("--root", _root, "ipadm", "create-if", "-t", "e1000g0").Code, Is.Zero);
        Assert.That(Smartos("--root", _root, "ipadm", "create-addr", "-t", "-T", "static", "-a", "198.18.3.2/24", "e1000g0/v4").Code, Is.Zero);
        bool answered = false;
        for (int i = 0; i < 5 && !answered; i++) answered = _ns.Exec("ping", "-n", "-c", "1", "-W", "1", "198.18.3.2").Code == 0;
        var ping = _ns.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "198.18.3.2");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(answered, Is.True, "198.18.3.2 never answered");
            Assert.That(ping.Out, Does.Contain("3 received"), ping.Err + ping.Out);
        }
    }

    [Test]
    public void Boot_without_the_tap_privilege_says_what_is_missing_and_starts_nothing()
    {
        string? missing = LinuxNet.MissingPrerequisite("setpriv");
        if (missing != null) Assert.Ignore(missing);
        // The unprivileged child needs to read the build output and write its root directory.
        if (!CanRunAsNobody()) Assert.Ignore("the build output is not readable by nobody");
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(_root, (UnixFileMode)0x1FF);
        string root = Path.Combine(_root, "h");
        var r = Finish(Start("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=" + _root, "DOTNET_CLI_HOME=" + _root,
            Dotnet, SmartosDll, "boot", "--root", root, "--nic", "e1000g0=tap:smt" + LinuxNet.Suffix()));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.EqualTo(1), r.Out);
            // Where /dev/net/tun is mode 0600 the open fails; where it is 0666 (udev's default on
            // Debian) the open succeeds and TUNSETIFF is what is refused: either way the reason is named.
            Assert.That(r.Err, Does.Contain("cannot open /dev/net/tun").Or.Contain("cannot create TAP device"));
            Assert.That(r.Err, Does.Contain("TAP devices need root or CAP_NET_ADMIN"));
            Assert.That(File.Exists(Path.Combine(root, "smartos.sock")), Is.False);
        }
    }

    private static bool CanRunAsNobody()
    {
        var r = LinuxNet.Run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r", SmartosDll);
        return r.Code == 0;
    }

    [Test]
    public void Boot_with_a_tap_nic_answers_linux_ping_on_the_global_stack()
    {
        string? missing = LinuxNet.MissingPrerequisite("ping");
        if (missing != null) Assert.Ignore(missing);
        _ns = new NetNs();
        string tap = "smt" + LinuxNet.Suffix();

        var daemon = Start(Dotnet, SmartosDll, "boot", "--root", _root, "--nics", "1", "--nic", "e1000g0=tap:" + tap);
        var line = daemon.StandardOutput.ReadLineAsync();
        Assert.That(line.Wait(s_wait), Is.True, "the daemon did not come up");
        Assert.That(line.Result, Does.Contain("listening on"), () => daemon.HasExited ? daemon.StandardError.ReadToEnd() : "no listening line");
        LinuxNet.Must("ip", "link", "set", tap, "netns", _ns.Name);
        LinuxNet.Must("ip", "-n", _ns.Name, "addr", "add", "198.18.1.1/24", "dev", tap);
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", tap, "up");

        Assert.That(Smartos("--root", _root, "ipadm", "create-if", "-t", "e1000g0").Code, Is.Zero);
        Assert.That(Smartos("--root", _root, "ipadm", "create-addr", "-t", "-T", "static", "-a", "198.18.1.2/24", "e1000g0/v4").Code, Is.Zero);
        bool answered = false;
        for (int i = 0; i < 5 && !answered; i++) answered = _ns.Exec("ping", "-n", "-c", "1", "-W", "1", "198.18.1.2").Code == 0;
        var show = Smartos("--root", _root, "dladm", "show-phys", "-p", "-o", "link,state");
        var stats = Smartos("--root", _root, "kstat", "-p", "link:0:e1000g0:ipackets");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(answered, Is.True, "198.18.1.2 never answered");
            Assert.That(show.Out, Is.EqualTo("e1000g0:up\n"));
            Assert.That(stats.Out, Does.Match(@"link:0:e1000g0:ipackets\t[1-9]"));
        }
    }
}
