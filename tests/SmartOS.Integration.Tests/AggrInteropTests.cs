using System.Diagnostics;
using SmartOS.Vnic;

namespace SmartOS.Integration.Tests;

/// <summary>
/// Our aggregation against a real LACP peer (issue 16), and a TAP NIC's carrier following its Linux
/// end. The peer is Open vSwitch's userspace datapath (these kernels have no bonding driver): a
/// private ovsdb-server and ovs-vswitchd that the test starts inside a network namespace of its own,
/// with their database, sockets, pid files and logs in a temporary directory (never the system's
/// service), a bridge with datapath_type=netdev, and a bond with lacp=active and fast LACP timers
/// over the Linux ends of our two TAP NICs. The bridge's internal port br0 has 198.18.0.1/24; a zone
/// over a VNIC on our aggregation has 198.18.0.2/24. Run only as root with /dev/net/tun, ip(8), ping
/// and Open vSwitch's programs; otherwise ignored, with the reason. Every wait is bounded.
/// </summary>
[NonParallelizable]
public class AggrInteropTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);
    private const string Schema = "/usr/share/openvswitch/vswitch.ovsschema";
    private const string OvsAddress = "198.18.0.1", ZoneAddress = "198.18.0.2";

    private NetNs? _ns;
    private TapNic? _tap0, _tap1;
    private RealTimeHost? _rt;
    private string _t0 = "", _t1 = "";
    private DirectoryInfo? _dir;
    private readonly List<Process> _daemons = [];

    [TearDown]
    public void Teardown()
    {
        try
        {
            _rt?.Dispose();
            _tap0?.Dispose();
            _tap1?.Dispose();
            foreach (var p in _daemons) LinuxNet.Kill(p); // only the daemons this test started
            foreach (var p in _daemons) p.Dispose();
            _daemons.Clear();
        }
        finally
        {
            _ns?.Dispose();
            _dir?.Delete(recursive: true);
        }
    }

    /// <summary>Opens our TAP NICs and moves their Linux ends, up, into a new namespace.</summary>
    private void Taps(int count)
    {
        _ns = new NetNs();
        string suffix = LinuxNet.Suffix();
        _t0 = "sma0" + suffix;
        _t1 = "sma1" + suffix;
        // Created inside the namespace (nothing appears in the root one), where their state is followed.
        _tap0 = TapNic.TryOpenIn("/run/netns/" + _ns.Name, _t0, out string? e0);
        Assert.That(_tap0, Is.Not.Null, e0);
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", _t0, "up");
        if (count > 1)
        {
            _tap1 = TapNic.TryOpenIn("/run/netns/" + _ns.Name, _t1, out string? e1);
            Assert.That(_tap1, Is.Not.Null, e1);
            LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", _t1, "up");
        }
        _rt = new RealTimeHost(nics: count);
        var p0 = (PhysLink)_rt.Host.Mac.Find("e1000g0")!;
        var p1 = count > 1 ? (PhysLink)_rt.Host.Mac.Find("e1000g1")! : null;
        _rt.OnLoop(() =>
        {
            _tap0!.Start(p0, _rt.Driver);
            if (p1 != null) _tap1!.Start(p1, _rt.Driver);
            return 0;
        });
    }

    private string State(string link) => _rt!.Ok("dladm", "show-phys", "-p", "-o", "state", link).Trim();

    /// <summary>Polls <paramref name="done"/> every 200 ms until it holds, at most <see cref="s_wait"/>.</summary>
    private static void WaitFor(Func<bool> done, Func<string> what)
    {
        var deadline = DateTime.UtcNow + s_wait;
        while (DateTime.UtcNow < deadline)
        {
            if (done()) return;
            Thread.Sleep(200);
        }
        Assert.Fail($"not within {s_wait.TotalSeconds} s: {what()}");
    }

    [Test]
    public void A_tap_nic_goes_down_and_up_with_its_linux_end()
    {
        string? missing = LinuxNet.MissingPrerequisite();
        if (missing != null) Assert.Ignore(missing);
        Taps(1);
        var phys = (PhysLink)_rt!.Host.Mac.Find("e1000g0")!;
        int changes = 0;
        _rt.OnLoop(() => { phys.LinkStateChanged += _ => changes++; return 0; });
        Assert.That(State("e1000g0"), Is.EqualTo("up"));

        LinuxNet.Must("ip", "-n", _ns!.Name, "link", "set", _t0, "down");
        WaitFor(() => State("e1000g0") == "down", () => "e1000g0 still " + State("e1000g0"));
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", _t0, "up");
        WaitFor(() => State("e1000g0") == "up", () => "e1000g0 still " + State("e1000g0"));
        Assert.That(_rt.OnLoop(() => changes), Is.EqualTo(2), "LinkStateChanged once down, once up");
    }

    [Test]
    public void A_tap_nic_renamed_on_the_linux_side_is_still_followed()
    {
        string? missing = LinuxNet.MissingPrerequisite();
        if (missing != null) Assert.Ignore(missing);
        Taps(1);
        string renamed = "smr" + LinuxNet.Suffix();
        LinuxNet.Must("ip", "-n", _ns!.Name, "link", "set", _t0, "down");
        WaitFor(() => State("e1000g0") == "down", () => "e1000g0 still " + State("e1000g0"));
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", _t0, "name", renamed);
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", renamed, "up");
        WaitFor(() => State("e1000g0") == "up", () => "e1000g0 still " + State("e1000g0"));
    }

    [Test]
    public void A_tap_nic_goes_down_for_good_when_its_interface_is_deleted()
    {
        string? missing = LinuxNet.MissingPrerequisite();
        if (missing != null) Assert.Ignore(missing);
        Taps(1);
        var phys = (PhysLink)_rt!.Host.Mac.Find("e1000g0")!;
        LinuxNet.Must("ip", "-n", _ns!.Name, "link", "del", _t0);
        WaitFor(() => State("e1000g0") == "down", () => "e1000g0 still " + State("e1000g0"));
        Assert.That(_rt.OnLoop(() => phys.Stats.IErrors), Is.EqualTo(1), "the read error, reported once");
    }

    // ---- Open vSwitch as the LACP peer ----

    private string Db => "unix:" + Path.Combine(_dir!.FullName, "db.sock");
    private string Ctl => Path.Combine(_dir!.FullName, "vswitchd.ctl");

    private (int Code, string Out, string Err) Vsctl(params string[] args)
        => _ns!.Exec(["ovs-vsctl", "--db=" + Db, "--timeout=10", .. args]);

    private string Appctl(params string[] args)
    {
        var r = _ns!.Exec(["ovs-appctl", "-t", Ctl, .. args]);
        return r.Out + r.Err;
    }

    /// <summary>Starts one OVS daemon in the namespace, its files in the test's directory, killed at
    /// teardown (and by timeout(1) should the test process die first).</summary>
    private void Daemon(string program, params string[] args)
    {
        string d = _dir!.FullName;
        _daemons.Add(LinuxNet.Start("ip", ["netns", "exec", _ns!.Name, "env", "OVS_RUNDIR=" + d, "OVS_LOGDIR=" + d, "OVS_DBDIR=" + d,
            "OVS_SYSCONFDIR=" + d, "timeout", "-s", "KILL", "300", program, .. args, "-vconsole:off"]));
    }

    /// <summary>The peer: a private database and switch, a netdev bridge, an LACP bond over our TAPs.</summary>
    private void OpenVSwitch()
    {
        _dir = Directory.CreateTempSubdirectory("smartos-ovs-");
        string d = _dir.FullName;
        LinuxNet.Must("ovsdb-tool", "create", Path.Combine(d, "conf.db"), Schema);
        Daemon("ovsdb-server", Path.Combine(d, "conf.db"), "--remote=punix:" + Path.Combine(d, "db.sock"),
            "--pidfile=" + Path.Combine(d, "ovsdb-server.pid"), "--unixctl=" + Path.Combine(d, "ovsdb-server.ctl"),
            "--log-file=" + Path.Combine(d, "ovsdb-server.log"));
        WaitFor(() => File.Exists(Path.Combine(d, "db.sock")), () => "ovsdb-server made no socket");
        Assert.That(Vsctl("--no-wait", "init").Code, Is.Zero);
        Daemon("ovs-vswitchd", Db, "--pidfile=" + Path.Combine(d, "ovs-vswitchd.pid"), "--unixctl=" + Ctl,
            "--log-file=" + Path.Combine(d, "ovs-vswitchd.log"));
        WaitFor(() => File.Exists(Ctl), () => "ovs-vswitchd made no control socket");
        var br = Vsctl("add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev");
        Assert.That(br.Code, Is.Zero, br.Err);
        var bond = Vsctl("add-bond", "br0", "bond0", _t0, _t1, "lacp=active", "bond_mode=balance-slb", "--",
            "set", "port", "bond0", "other_config:lacp-time=fast");
        Assert.That(bond.Code, Is.Zero, bond.Err);
        LinuxNet.Must("ip", "-n", _ns!.Name, "addr", "add", OvsAddress + "/24", "dev", "br0");
        LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", "br0", "up");
    }

    private string OurLacp() => _rt!.Ok("dladm", "show-aggr", "-L", "-p", "-o", "port,sync,coll,dist");

    /// <summary>OVS's bond/show line for one member: "member NAME: enabled" or "...: disabled".</summary>
    private bool OvsMemberEnabled(string member) => Appctl("bond/show", "bond0").Contains($"member {member}: enabled", StringComparison.Ordinal);

    /// <summary>Waits until exactly <paramref name="ports"/> are in sync on both sides: ours collecting
    /// and distributing (and the others not), OVS's members for them enabled (and the others not).</summary>
    private void WaitInSync(params string[] ports)
    {
        string Line(string port) => port + (ports.Contains(port) ? ":yes:yes:yes" : ":no:no:no");
        string want = Line("e1000g0") + "\n" + Line("e1000g1") + "\n";
        WaitFor(() => OurLacp() == want
                && (ports.Contains("e1000g0") ? OvsMemberEnabled(_t0) : !OvsMemberEnabled(_t0))
                && (ports.Contains("e1000g1") ? OvsMemberEnabled(_t1) : !OvsMemberEnabled(_t1)),
            () => $"ours:\n{OurLacp()}OVS:\n{Appctl("bond/show", "bond0")}{Appctl("lacp/show", "bond0")}");
    }

    /// <summary>Pings from the namespace until three replies came, at most ten seconds.</summary>
    private void Pings()
    {
        var r = _ns!.Exec("ping", "-n", "-c", "3", "-i", "0.2", "-w", "10", ZoneAddress);
        Assert.That(r.Out, Does.Contain("3 received"), r.Err + r.Out);
    }

    [Test]
    public void Open_vswitch_negotiates_lacp_with_our_aggregation_carries_traffic_and_fails_over()
    {
        string? missing = LinuxNet.MissingPrerequisite("ping", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-appctl");
        if (missing != null) Assert.Ignore(missing);
        if (!File.Exists(Schema)) Assert.Ignore($"needs Open vSwitch's schema {Schema}");
        Taps(2);
        OpenVSwitch();
        _rt!.Ok("dladm", "create-aggr", "-t", "-L", "active", "-T", "short", "-l", "e1000g0", "-l", "e1000g1", "aggr0");
        _rt.Ok("dladm", "create-vnic", "-t", "-l", "aggr0", "web0");
        _rt.Ok("zonecfg", "-z", "web", $"create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address={ZoneAddress}/24; end");
        _rt.Ok("zoneadm", "-z", "web", "install");
        _rt.Ok("zoneadm", "-z", "web", "boot");

        // Both sides in sync on both ports: ours collecting and distributing, OVS's members enabled
        // with our aggregation's address as their partner.
        WaitInSync("e1000g0", "e1000g1");
        string ourSystem = _rt.Ok("dladm", "show-aggr", "-x", "-p", "-o", "address").Split('\n')[0].Trim();
        string lacp = Appctl("lacp/show", "bond0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lacp, Does.Contain("status: active negotiated"));
            Assert.That(lacp, Does.Contain($"member: {_t0}: current attached"));
            Assert.That(lacp, Does.Contain($"member: {_t1}: current attached"));
            Assert.That(lacp, Does.Contain("partner sys_id: " + NormalizeMac(ourSystem)));
            Assert.That(lacp, Does.Contain("partner state: activity timeout aggregation synchronized collecting distributing"));
        }

        Pings();
        var zone = _rt.Sh("zlogin", "web", "ping", "-s", "-I", "0.2", OvsAddress, "56", "3");
        Assert.That(zone.Out, Does.Contain($"from {OvsAddress}"), zone.Err + zone.Out);

        // Pull each member in turn (one of them carries the pings): the other carries on alone.
        foreach (var (tap, port, other) in new[] { (_t0, "e1000g0", "e1000g1"), (_t1, "e1000g1", "e1000g0") })
        {
            LinuxNet.Must("ip", "-n", _ns!.Name, "link", "set", tap, "down");
            WaitFor(() => State(port) == "down", () => $"{port} still {State(port)} after its TAP went down");
            WaitInSync(other);
            Pings();
            LinuxNet.Must("ip", "-n", _ns.Name, "link", "set", tap, "up");
            WaitInSync("e1000g0", "e1000g1");
        }
    }

    /// <summary>Our MAC form (2:8:20:a:b:c) as OVS prints it (02:08:20:0a:0b:0c).</summary>
    private static string NormalizeMac(string ours)
    {
        Assert.That(SmartOS.Kernel.Wire.MacAddress.TryParse(ours, out var mac), Is.True, ours);
        return string.Join(':', Enumerable.Range(0, 6).Select(i => ((mac.Value >> (40 - 8 * i)) & 0xFF).ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
    }
}
