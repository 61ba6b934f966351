using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

public class ZoneadmTests
{
    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A host with zone "web" configured over the global VNIC web0 (installed when asked).</summary>
    internal static CliHost WebZone(bool install = true, bool boot = false)
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 web0"));
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add net; set physical=web0; set allowed-address=10.0.0.2/24; set defrouter=10.0.0.1; end; add capped-memory; set physical=256m; end");
        if (install) h.Ok(A("zoneadm -z web install"));
        if (boot) h.Ok(A("zoneadm -z web boot"));
        return h;
    }

    private static ZoneState State(CliHost h, string zone = "web") => h.Host.Zones.Find(zone)!.State;

    [Test]
    public void An_lx_zone_does_not_boot_in_virtual_time_and_says_why()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 lx0"));
        h.Ok("zonecfg", "-z", "lx", "create; set zonepath=/zones/lx; set brand=lx; add net; set physical=lx0; set allowed-address=10.0.0.2/24; end");
        h.Ok(A("zoneadm -z lx install"));
        var r = h.Fails(A("zoneadm -z lx boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.Contain("brand lx needs a real-time host (smartos boot)"));
            Assert.That(h.Ok(A("zoneadm list -p")), Does.Not.Contain("lx"));
            Assert.That(h.Ok(A("dladm show-vnic -p -o link,zone lx0")), Is.EqualTo("lx0:--\n"));
        }
    }

    [Test]
    public void List_cv_shows_the_global_zone_and_every_configured_zone()
    {
        var h = WebZone(install: false);
        Assert.That(h.Ok(A("zoneadm list -cv")), Is.EqualTo(
            "  ID NAME             STATUS     PATH                           BRAND    IP\n" +
            "   0 global           running    /                              liveimg  shared\n" +
            "   - web              configured /zones/web                     joyent   excl\n"));
    }

    [Test]
    public void List_without_options_shows_running_zones_only()
    {
        var h = WebZone();
        Assert.That(h.Ok(A("zoneadm list")), Is.EqualTo("global\n"));
        h.Ok(A("zoneadm -z web boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zoneadm list")), Is.EqualTo("global\nweb\n"));
            Assert.That(h.Ok(A("zoneadm list -p")), Is.EqualTo("0:global:running:/::liveimg:shared\n1:web:running:/zones/web::joyent:excl\n"));
            Assert.That(h.Ok(A("zoneadm list -ip")), Does.Contain("1:web:running"));
            Assert.That(h.Ok(A("zoneadm -z web list -p")), Is.EqualTo("1:web:running:/zones/web::joyent:excl\n"));
        }
    }

    [Test]
    public void A_zone_walks_the_illumos_state_machine()
    {
        var h = WebZone(install: false);
        var states = new List<ZoneState> { State(h) };
        foreach (string verb in new[] { "verify", "install", "ready", "boot", "reboot", "halt", "boot", "shutdown", "uninstall" })
        {
            h.Ok("zoneadm", "-z", "web", verb);
            states.Add(State(h));
        }
        Assert.That(states, Is.EqualTo(new[]
        {
            ZoneState.Configured, ZoneState.Configured, ZoneState.Installed, ZoneState.Ready, ZoneState.Running, ZoneState.Running,
            ZoneState.Installed, ZoneState.Running, ZoneState.Installed, ZoneState.Configured,
        }));
    }

    [TestCase(false, false, "boot", "must be installed before boot.")]
    [TestCase(false, false, "ready", "must be installed before ready.")]
    [TestCase(false, false, "uninstall", "is already in state 'configured'.")]
    [TestCase(false, false, "reboot", "not running")]
    [TestCase(true, false, "install", "is already installed.")]
    [TestCase(true, false, "shutdown", "not running")]
    [TestCase(true, true, "install", "install operation is invalid for running zones.")]
    [TestCase(true, true, "uninstall", "uninstall operation is invalid for running zones.")]
    [TestCase(true, true, "boot", "zone is already booted")]
    [TestCase(true, true, "ready", "ready operation is invalid for running zones.")]
    public void Refusals_use_zoneadm_wording(bool installed, bool running, string verb, string message)
    {
        var h = WebZone(installed, running);
        var before = State(h);
        var r = h.Fails("zoneadm", "-z", "web", verb);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Is.EqualTo($"zoneadm: zone 'web': {message}\n"));
            Assert.That(State(h), Is.EqualTo(before));
        }
    }

    [Test]
    public void Bad_arguments_are_refused()
    {
        var h = WebZone();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run("zoneadm").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("zoneadm -z web frob")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("zoneadm boot")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("zoneadm -z web boot extra")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("zoneadm list -x")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Fails(A("zoneadm -z nope boot")).Stderr, Is.EqualTo("zoneadm: nope: No such zone configured\n"));
            Assert.That(h.Fails(A("zoneadm -z global halt")).Stderr, Does.Contain("halt operation is invalid for the global zone."));
        }
    }

    [Test]
    public void Booting_lends_the_link_to_the_zone_and_halting_gives_it_back()
    {
        var h = WebZone();
        var link = (PortLink)h.Host.Mac.Find("web0")!;
        h.Ok(A("zoneadm -z web boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(link.Zone, Is.EqualTo("web"));
            Assert.That(link.Client, Is.Not.Null);
            Assert.That(h.Ok(A("dladm show-vnic -p -o link,zone web0")), Is.EqualTo("web0:web\n"));
        }
        h.Ok(A("zoneadm -z web halt"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(link.Zone, Is.EqualTo("global"));
            Assert.That(link.Client, Is.Null);
        }
    }

    /// <summary>A VNIC the global zone already plumbed cannot be lent to a zone: boot says so in
    /// libdladm's words (DLADM_STATUS_LINKBUSY, "link busy"), and the zone stays installed.</summary>
    [Test]
    public void A_zone_whose_vnic_is_plumbed_in_the_global_zone_does_not_boot_and_says_link_busy()
    {
        var h = WebZone();
        h.Ok(A("ipadm create-if web0"));
        var r = h.Fails(A("zoneadm -z web boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.Contain("net web0: link busy"));
            Assert.That(r.Stderr, Does.Not.Contain("LinkBusy"));
            Assert.That(State(h), Is.EqualTo(ZoneState.Installed));
        }
    }

    [Test]
    public void A_link_in_use_by_a_running_zone_cannot_be_deleted_or_renamed()
    {
        var h = WebZone(boot: true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("dladm delete-vnic web0")).Stderr, Does.Contain("link busy"));
            Assert.That(h.Fails(A("dladm rename-link web0 www0")).Stderr, Does.Contain("link busy"));
        }
        h.Ok(A("zoneadm -z web halt"));
        h.Ok(A("dladm delete-vnic web0"));
    }

    [Test]
    public void A_zone_whose_link_is_missing_does_not_boot_and_stays_installed()
    {
        var h = WebZone();
        h.Ok(A("dladm delete-vnic web0"));
        var r = h.Fails(A("zoneadm -z web boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.Contain("net web0: physical 'web0' does not exist"));
            Assert.That(State(h), Is.EqualTo(ZoneState.Installed));
            Assert.That(h.Fails(A("zoneadm -z web verify")).Stderr, Does.Contain("physical 'web0' does not exist"));
        }
    }

    [Test]
    public void Two_zones_cannot_share_a_link()
    {
        var h = WebZone(boot: true);
        h.Ok("zonecfg", "-z", "db", "create; set zonepath=/zones/db; add net; set physical=web0; end");
        h.Ok(A("zoneadm -z db install"));
        Assert.That(h.Fails(A("zoneadm -z db boot")).Stderr, Does.Contain("link is in use by zone 'web'"));
    }

    [Test]
    public void Booting_hands_the_zone_network_its_interfaces()
    {
        var h = WebZone();
        var recorder = new Recorder();
        h.Host.Zones.Network = recorder;
        h.Ok(A("zoneadm -z web boot"));
        var plan = recorder.Plans.Single();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Zone, Is.EqualTo("web"));
            Assert.That(plan.Interfaces.Select(i => i.Name), Is.EqualTo(new[] { "net0" }));
            Assert.That(plan.Interfaces[0].Client.LinkName, Is.EqualTo("web0"));
            Assert.That(plan.Interfaces[0].Addresses, Is.EqualTo(new[] { "10.0.0.2/24" }));
            Assert.That(plan.Interfaces[0].Gateways, Is.EqualTo(new[] { "10.0.0.1" }));
            Assert.That(plan.Memory.Cap, Is.EqualTo(256L << 20));
        }
        h.Ok(A("zoneadm -z web halt"));
        Assert.That(recorder.Stopped, Is.EqualTo(1));
    }

    [Test]
    public void A_zone_network_that_refuses_leaves_the_zone_installed()
    {
        var h = WebZone();
        h.Host.Zones.Network = new Recorder { Refuse = "no stack today" };
        var r = h.Fails(A("zoneadm -z web boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.Contain("network start failed: no stack today"));
            Assert.That(State(h), Is.EqualTo(ZoneState.Installed));
            Assert.That(h.Host.Mac.Find("web0")!.Zone, Is.EqualTo("global"));
        }
    }

    [Test]
    public void Zoneadm_inside_a_zone_sees_only_that_zone_and_cannot_boot_others()
    {
        var h = WebZone(boot: true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zlogin web zoneadm list -cp")), Is.EqualTo("1:web:running:/zones/web::joyent:excl\n"));
            Assert.That(h.Fails(A("zlogin web zoneadm -z web halt")).Stderr, Does.Contain("must be in the global zone to halt a zone."));
        }
    }

    private sealed class Recorder : IZoneNetwork
    {
        public readonly List<ZoneNetworkPlan> Plans = [];
        public int Stopped;
        public string? Refuse;

        public bool TryStart(ZoneNetworkPlan plan, out IZoneStack? stack, out string? error)
        {
            stack = null;
            error = Refuse;
            if (Refuse != null) return false;
            Plans.Add(plan);
            stack = new Stack(this, plan);
            return true;
        }

        private sealed class Stack(Recorder owner, ZoneNetworkPlan plan) : IZoneStack
        {
            public ZoneNetworkPlan Plan { get; } = plan;
            public void Stop() => owner.Stopped++;
        }
    }
}

public class ZoneReadyTests
{
    [Test]
    public void A_commit_between_ready_and_boot_applies_at_the_next_boot()
    {
        var h = ZoneadmTests.WebZone();
        h.Ok(CliHost.Split("zoneadm -z web ready"));
        h.Ok("zonecfg", "-z", "web", "remove net physical=web0");
        h.Ok(CliHost.Split("zoneadm -z web boot"));
        Assert.That(h.Host.Zones.Find("web")!.Links.Select(l => l.Name), Is.EqualTo(new[] { "web0" }));
        h.Ok(CliHost.Split("zoneadm -z web reboot"));
        Assert.That(h.Host.Zones.Find("web")!.Links, Is.Empty);
    }
}
