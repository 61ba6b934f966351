using System.Globalization;
using SmartOS.Zones;

namespace SmartOS.Integration.Tests;

/// <summary>
/// lx zones (zones/LxZoneNetwork.cs): real Linux programs in a namespace the host creates at boot and
/// removes at halt, their TAP devices carrying the zone's VNICs. Two zones, an lx one and a joyent
/// one, on an etherstub, addresses from 198.18.2.0/24. Run only as root with /dev/net/tun and ip(8).
/// </summary>
[NonParallelizable]
public class LxZoneTests
{
    private RealTimeHost? _rt;
    private string _lx = "";

    [SetUp]
    public void BootZones()
    {
        string? missing = LinuxNet.MissingPrerequisite("ping");
        if (missing != null) Assert.Ignore(missing);
        _lx = "lx" + LinuxNet.Suffix();
        _rt = new RealTimeHost(nics: 0);
        _rt.Ok("dladm", "create-etherstub", "-t", "stub0");
        _rt.Ok("dladm", "create-vnic", "-t", "-l", "stub0", "lx0");
        _rt.Ok("dladm", "create-vnic", "-t", "-l", "stub0", "web0");
        _rt.Ok("zonecfg", "-z", _lx, "create; set zonepath=/zones/lx; set brand=lx; add net; set physical=lx0; set allowed-address=198.18.2.2/24; set defrouter=198.18.2.1; end");
        _rt.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address=198.18.2.3/24; end");
        foreach (string z in (string[])[_lx, "web"])
        {
            _rt.Ok("zoneadm", "-z", z, "install");
            _rt.Ok("zoneadm", "-z", z, "boot");
        }
    }

    [TearDown]
    public void Teardown()
    {
        try
        {
            _rt?.Dispose();
        }
        finally
        {
            // Halting removes the namespace; this only matters when the test failed half-way.
            if (_lx.Length > 0) LinuxNet.DeleteNamespace(LxZoneNetwork.NamespaceOf(_lx));
        }
    }

    private static bool NamespaceExists(string zone) => File.Exists(Path.Combine("/run/netns", LxZoneNetwork.NamespaceOf(zone)));

    [Test]
    public void An_lx_zone_runs_linux_ping_to_a_joyent_zone_across_an_etherstub_and_back()
    {
        var fromLx = _rt!.Sh("zlogin", _lx, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "198.18.2.3");
        var fromWeb = _rt.Sh("zlogin", "web", "ping", "-s", "-I", "0.2", "198.18.2.2", "56", "3");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fromLx.Code, Is.Zero, fromLx.Err + fromLx.Out);
            Assert.That(fromLx.Out, Does.Contain("3 received"));
            Assert.That(fromWeb.Code, Is.Zero, fromWeb.Err + fromWeb.Out);
            Assert.That(fromWeb.Out, Does.Contain("from 198.18.2.2"));
        }
    }

    [Test]
    public void An_lx_zone_interface_has_its_vnic_mac_address_and_route_from_the_config()
    {
        string mac = _rt!.Ok("dladm", "show-vnic", "-p", "-o", "macaddress", "lx0").Trim();
        string link = _rt.Ok("zlogin", _lx, "ip", "-o", "link", "show", "net0");
        string addr = _rt.Ok("zlogin", _lx, "ip", "-o", "-4", "addr", "show", "net0");
        string route = _rt.Ok("zlogin", _lx, "ip", "route", "show", "default");
        string expectedMac = string.Join(':', mac.Split(':').Select(o => o.PadLeft(2, '0')));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(link, Does.Contain("link/ether " + expectedMac));
            Assert.That(addr, Does.Contain("inet 198.18.2.2/24"));
            Assert.That(route, Does.Contain("default via 198.18.2.1 dev net0"));
        }
    }

    [Test]
    public void Zlogin_returns_the_linux_program_exit_status()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_rt!.Sh("zlogin", _lx, "true").Code, Is.Zero);
            Assert.That(_rt.Sh("zlogin", _lx, "sh", "-c", "exit 7").Code, Is.EqualTo(7));
        }
    }

    /// <summary>A long-running Linux program's output reaches zlogin's caller while it runs, and ^C
    /// ends it with status 130 before it writes the rest.</summary>
    [Test]
    public void Zlogin_streams_linux_output_while_the_program_runs_and_cancel_kills_it()
    {
        var run = _rt!.Begin("zlogin", _lx, "sh", "-c", "echo first; sleep 15; echo second");
        bool streamed = false;
        for (int i = 0; i < 100 && !streamed && !run.Task.IsCompleted; i++)
        {
            Thread.Sleep(50);
            streamed = _rt.OnLoop(() => run.Out.ToString()) == "first\n";
        }
        bool runningWhenSeen = !run.Task.IsCompleted;
        _rt.Driver.Invoke(run.Cts.Cancel);
        Assert.That(run.Task.Wait(RealTimeHost.Wait), Is.True, "zlogin did not stop after ^C");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(streamed, Is.True, "the first line never arrived while the program ran");
            Assert.That(runningWhenSeen, Is.True);
            Assert.That(run.Task.Result, Is.EqualTo(130));
            Assert.That(run.Out.ToString(), Does.Not.Contain("second"));
        }
    }

    [Test]
    public void Halting_an_lx_zone_removes_its_namespace()
    {
        Assert.That(NamespaceExists(_lx), Is.True);
        _rt!.Ok("zoneadm", "-z", _lx, "halt");
        Assert.That(NamespaceExists(_lx), Is.False);
        _rt.Ok("zoneadm", "-z", _lx, "boot");
        Assert.That(NamespaceExists(_lx), Is.True);
    }

    [Test]
    public void A_vmadm_lx_vm_gets_its_address_route_and_resolvers_in_its_namespace()
    {
        _rt!.Ok("nictagadm", "add", "-l", "stub1");
        var created = _rt.ShIn("""
            { "brand": "lx", "alias": "lxvm", "autoboot": false, "resolvers": ["198.18.2.53"],
              "nics": [ { "nic_tag": "stub1", "ips": ["198.18.5.2/24"], "gateways": ["198.18.5.1"] } ] }
            """, "vmadm", "create");
        Assert.That(created.Code, Is.Zero, created.Err);
        string uuid = _rt.Ok("vmadm", "list", "-p", "-o", "uuid", "alias=lxvm").Trim();
        try
        {
            _rt.Ok("vmadm", "start", uuid);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(_rt.Ok("zlogin", uuid, "cat", "/etc/resolv.conf"), Is.EqualTo("nameserver 198.18.2.53\n"));
                Assert.That(_rt.Ok("zlogin", uuid, "ip", "-o", "-4", "addr", "show", "net0"), Does.Contain("inet 198.18.5.2/24"));
                Assert.That(_rt.Ok("zlogin", uuid, "ip", "route", "show", "default"), Does.Contain("default via 198.18.5.1 dev net0"));
            }
        }
        finally
        {
            _rt.Sh("vmadm", "delete", uuid);
        }
        Assert.That(NamespaceExists(uuid), Is.False);
    }

    /// <summary>An lx VM whose nic has ips ["dhcp"] runs udhcpc in its namespace and takes its address,
    /// default route and name server from dhcpd in the global zone, through its protected VNIC
    /// (ip-nospoof learns the leased address from the ACK). Halting ends udhcpc and removes its script.</summary>
    [Test]
    public void A_vmadm_lx_vm_with_dhcp_gets_its_lease_from_dhcpd_through_udhcpc()
    {
        string? missing = LinuxNet.MissingPrerequisite("udhcpc");
        if (missing != null) Assert.Ignore(missing);
        _rt!.Ok("nictagadm", "add", "-l", "stub1");
        _rt.Ok("dladm", "create-vnic", "-t", "-l", "stub1", "gz1");
        _rt.Ok("ipadm", "create-if", "-t", "gz1");
        _rt.Ok("ipadm", "create-addr", "-t", "-T", "static", "-a", "198.18.5.1/24", "gz1/v4");
        var dhcpd = _rt.Begin("dhcpd", "-i", "gz1", "-r", "198.18.5.50-198.18.5.59", "-g", "198.18.5.1", "-d", "198.18.5.53");
        var created = _rt.ShIn("""
            { "brand": "lx", "alias": "lxdhcp", "autoboot": false, "nics": [ { "nic_tag": "stub1", "ips": ["dhcp"] } ] }
            """, "vmadm", "create");
        Assert.That(created.Code, Is.Zero, created.Err);
        string uuid = _rt.Ok("vmadm", "list", "-p", "-o", "uuid", "alias=lxdhcp").Trim();
        string script = Path.Combine("/run/smartos-lx", LxZoneNetwork.NamespaceOf(uuid), "net0.udhcpc");
        try
        {
            _rt.Ok("vmadm", "start", uuid);
            string addr = "";
            for (int i = 0; i < 40 && !addr.Contains("inet 198.18.5.50/24", StringComparison.Ordinal); i++)
            {
                Thread.Sleep(250);
                addr = _rt.Ok("zlogin", uuid, "ip", "-o", "-4", "addr", "show", "net0");
            }
            using (Assert.EnterMultipleScope())
            {
                Assert.That(addr, Does.Contain("inet 198.18.5.50/24"));
                Assert.That(File.Exists(script), Is.True);
                Assert.That(_rt.Ok("zlogin", uuid, "ip", "route", "show", "default"), Does.Contain("default via 198.18.5.1 dev net0"));
                Assert.That(_rt.Ok("zlogin", uuid, "cat", "/etc/resolv.conf"), Is.EqualTo("nameserver 198.18.5.53\n"));
                var ping = _rt.Sh("zlogin", uuid, "ping", "-n", "-c", "1", "-W", "2", "198.18.5.1");
                Assert.That(ping.Code, Is.Zero, ping.Err + ping.Out);
            }
        }
        finally
        {
            _rt.Sh("vmadm", "delete", uuid);
            _rt.Driver.Invoke(dhcpd.Cts.Cancel);
            dhcpd.Task.Wait(RealTimeHost.Wait);
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(NamespaceExists(uuid), Is.False);
            Assert.That(File.Exists(script), Is.False);
            Assert.That(Directory.Exists(Path.Combine("/etc/netns", LxZoneNetwork.NamespaceOf(uuid))), Is.False);
            Assert.That(dhcpd.Out.ToString(), Does.Contain("dhcpd: lease 198.18.5.50 to "));
        }
    }

    /// <summary>A namespace left by a killed host (with a process still in it) is replaced at boot,
    /// and what ran in it is ended.</summary>
    [Test]
    public void Booting_replaces_a_leftover_namespace_and_ends_what_ran_in_it()
    {
        string zone = "lx" + LinuxNet.Suffix();
        string ns = LxZoneNetwork.NamespaceOf(zone);
        LinuxNet.Must("ip", "netns", "add", ns);
        using var leftover = LinuxNet.Start("ip", "netns", "exec", ns, "sleep", "30");
        try
        {
            // `ip netns exec` enters the namespace and then execs sleep under the same pid: wait until
            // the namespace lists it, or a boot under load could look before it arrived (bounded: 10 s).
            for (int i = 0; i < 100 && !LinuxNet.Run("ip", "netns", "pids", ns).Out.Split('\n').Contains(leftover.Id.ToString(CultureInfo.InvariantCulture)); i++)
                Thread.Sleep(100);
            _rt!.Ok("dladm", "create-vnic", "-t", "-l", "stub0", "lx9");
            _rt.Ok("zonecfg", "-z", zone, "create; set zonepath=/zones/lx9; set brand=lx; add net; set physical=lx9; set allowed-address=198.18.2.9/24; end");
            _rt.Ok("zoneadm", "-z", zone, "install");
            _rt.Ok("zoneadm", "-z", zone, "boot");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(leftover.WaitForExit(5000), Is.True, "the leftover process still runs");
                Assert.That(_rt.Ok("zlogin", zone, "ip", "-o", "-4", "addr", "show", "net0"), Does.Contain("inet 198.18.2.9/24"));
            }
            _rt.Ok("zoneadm", "-z", zone, "halt");
            Assert.That(NamespaceExists(zone), Is.False);
        }
        finally
        {
            LinuxNet.Kill(leftover);
            if (NamespaceExists(zone)) LinuxNet.Run("ip", "netns", "del", ns);
        }
    }

    /// <summary>Link protection is enforced in the MAC layer, below anything the lx zone's root controls.</summary>
    [Test]
    public void Mac_nospoof_stops_an_lx_zone_that_changes_its_mac_address()
    {
        _rt!.Ok("dladm", "set-linkprop", "-t", "-p", "protection=mac-nospoof", "lx0");
        Assert.That(_rt.Sh("zlogin", _lx, "ping", "-n", "-c", "1", "-W", "2", "198.18.2.3").Code, Is.Zero);
        _rt.Ok("zlogin", _lx, "ip", "link", "set", "net0", "address", "02:00:00:00:00:99");
        var spoofed = _rt.Sh("zlogin", _lx, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "198.18.2.3");
        string counted = _rt.Ok("kstat", "-p", "link:0:lx0:macspoofed");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(spoofed.Code, Is.Not.Zero, spoofed.Out);
            Assert.That(counted, Does.Match(@"link:0:lx0:macspoofed\t[1-9]"));
        }
    }
}
