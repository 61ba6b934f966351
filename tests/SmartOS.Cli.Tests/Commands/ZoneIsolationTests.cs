using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

public class ZoneIsolationTests
{
    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>Two running zones, web (web0) and db (db0), and a global-only VNIC spare0.</summary>
    private static CliHost TwoZones()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 web0"));
        h.Ok(A("dladm create-vnic -l e1000g0 db0"));
        h.Ok(A("dladm create-vnic -l e1000g1 spare0"));
        foreach (var (zone, link) in new[] { ("web", "web0"), ("db", "db0") })
        {
            h.Ok("zonecfg", "-z", zone, $"create; set zonepath=/zones/{zone}; add net; set physical={link}; end");
            h.Ok("zoneadm", "-z", zone, "install");
            h.Ok("zoneadm", "-z", zone, "boot");
        }
        return h;
    }

    [Test]
    public void Dladm_in_a_zone_shows_only_its_links()
    {
        var h = TwoZones();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zlogin web dladm show-link -p -o link")), Is.EqualTo("web0\n"));
            Assert.That(h.Ok(A("zlogin db dladm show-vnic -p -o link")), Is.EqualTo("db0\n"));
            Assert.That(h.Ok(A("dladm show-link -p -o link")), Is.EqualTo("e1000g0\ne1000g1\nweb0\ndb0\nspare0\n"));
            Assert.That(h.Ok(A("dladm show-vnic -p -o link,zone")), Is.EqualTo("web0:web\ndb0:db\nspare0:--\n"));
        }
    }

    [Test]
    public void A_zone_cannot_touch_another_zones_link()
    {
        var h = TwoZones();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zlogin web dladm delete-vnic db0")).ExitCode, Is.EqualTo(1));
            Assert.That(h.Fails(A("zlogin web dladm show-link db0")).Stderr, Does.Contain("link db0 is not valid"));
            Assert.That(h.Fails(A("zlogin web dladm set-linkprop -p mtu=1400 db0")).ExitCode, Is.EqualTo(1));
            Assert.That(h.Fails(A("zlogin web snoop -d db0 -c 1")).Stderr, Does.Contain("db0: no such device"));
            Assert.That(h.Fails(A("zlogin web dladm create-vnic -l e1000g0 evil0")).Stderr, Does.Contain("insufficient privileges"));
            Assert.That(h.Host.Mac.Find("db0"), Is.Not.Null);
        }
    }

    [Test]
    public void Kstat_in_a_zone_shows_only_its_links()
    {
        var h = TwoZones();
        string stats = h.Ok(A("zlogin web kstat -p link:0::opackets"));
        Assert.That(stats, Is.EqualTo("link:0:web0:opackets\t0\n"));
    }

    [Test]
    public void Zlogin_returns_the_exit_status_of_the_program()
    {
        var h = TwoZones();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zlogin web zonename")), Is.EqualTo("web\n"));
            Assert.That(h.Ok("zonename"), Is.EqualTo("global\n"));
            Assert.That(h.Run(A("zlogin web dladm show-link nosuch0")).ExitCode, Is.EqualTo(1));
            Assert.That(h.Run(A("zlogin web dladm")).ExitCode, Is.EqualTo(1)); // dladm's usage() exits 1
            Assert.That(h.Run(A("zlogin web nosuchcommand")).ExitCode, Is.EqualTo(127));
        }
    }

    [Test]
    public void Zlogin_refuses_unknown_and_stopped_zones_and_interactive_logins()
    {
        var h = TwoZones();
        h.Ok(A("zoneadm -z db halt"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zlogin nope zonename")).Stderr, Is.EqualTo("zlogin: zone 'nope' unknown\n"));
            Assert.That(h.Fails(A("zlogin db zonename")).Stderr, Is.EqualTo("zlogin: login allowed only to running zones (db is 'installed').\n"));
            Assert.That(h.Run(A("zlogin web")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Run("zlogin").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("zlogin -x web zonename")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Fails(A("zlogin web zlogin web zonename")).Stderr, Does.Contain("must be run from the global zone"));
        }
    }

    [Test]
    public void Global_only_tools_refuse_to_run_in_a_zone()
    {
        var h = TwoZones();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zlogin web vmadm list")).Stderr, Does.Contain("must be run from the global zone"));
            Assert.That(h.Fails(A("zlogin web nictagadm list")).Stderr, Is.EqualTo("Error: This program can only be run in the global zone.\n"));
        }
    }
}

public class ZoneMemoryTests
{
    private static string[] A(string line) => CliHost.Split(line);

    [Test]
    public void A_charge_over_the_cap_fails_and_is_counted()
    {
        var m = new MemoryAccount(1000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.TryCharge(600), Is.True);
            Assert.That(m.TryCharge(600), Is.False);
            Assert.That(m.Usage, Is.EqualTo(600));
            Assert.That(m.Overs, Is.EqualTo(1));
        }
        m.Release(600);
        Assert.That(m.TryCharge(1000), Is.True);
    }

    [Test]
    public void An_uncapped_account_takes_anything()
    {
        var m = new MemoryAccount(null);
        Assert.That(m.TryCharge(1L << 50), Is.True);
        Assert.That(m.IsCapped, Is.False);
    }

    [Test]
    public void Releasing_more_than_was_charged_is_a_programming_error()
    {
        var m = new MemoryAccount(10);
        Assert.That(() => m.Release(1), Throws.TypeOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void Going_over_in_one_zone_leaves_the_other_alone()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 a0"));
        h.Ok(A("dladm create-vnic -l e1000g0 b0"));
        foreach (string z in new[] { "a", "b" })
        {
            h.Ok("zonecfg", "-z", z, $"create; set zonepath=/zones/{z}; add net; set physical={z}0; end; add capped-memory; set physical=1m; end");
            h.Ok("zoneadm", "-z", z, "install");
            h.Ok("zoneadm", "-z", z, "boot");
        }
        var a = h.Host.Zones.Find("a")!.Memory!;
        var b = h.Host.Zones.Find("b")!.Memory!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(a.TryCharge(700_000), Is.True);
            Assert.That(a.TryCharge(700_000), Is.False);
            Assert.That(b.TryCharge(700_000), Is.True);
        }
        Assert.That(h.Ok("zonememstat"), Is.EqualTo(
            "                                ZONE  RSS(MB)  CAP(MB)  NOVER\n" +
            "                              global        0        -      -\n" +
            "                                   a        1        1      1\n" +
            "                                   b        1        1      0\n"));
        Assert.That(h.Ok(A("zlogin b zonememstat -H")), Is.EqualTo("                                   b        1        1      0\n"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("kstat -p memory_cap:1:a:nover")), Is.EqualTo("memory_cap:1:a:nover\t1\n"));
            Assert.That(h.Ok(A("zlogin b kstat -p memory_cap:::rss")), Is.EqualTo("memory_cap:2:b:rss\t700000\n"));
        }
        h.Ok(A("zoneadm -z a halt"));
        Assert.That(h.Run(A("kstat -p memory_cap:::rss")).Stdout, Is.EqualTo("memory_cap:2:b:rss\t700000\n"));
    }

    [Test]
    public void Zonememstat_refuses_bad_input()
    {
        var h = new CliHost();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run(A("zonememstat -x")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Fails(A("zonememstat -z nope")).Stderr, Does.Contain("zone 'nope' is not running"));
        }
    }

    [Test]
    public void The_cap_follows_a_committed_change_while_running()
    {
        var h = ZoneadmTests.WebZone(boot: true);
        h.Ok("zonecfg", "-z", "web", "remove capped-memory; add capped-memory; set physical=1g; end");
        Assert.That(h.Host.Zones.Find("web")!.Memory!.Cap, Is.EqualTo(1L << 30));
    }
}

public class ShowLinkZoneColumnTests
{
    [Test]
    public void Show_link_Z_shows_which_zone_holds_each_link()
    {
        var h = ZoneadmTests.WebZone(boot: true);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(CliHost.Split("dladm show-link -Z -p -o link,zone")), Is.EqualTo("e1000g0:global\ne1000g1:global\nweb0:web\n"));
            Assert.That(h.Ok(CliHost.Split("dladm show-link -Z")).Split('\n')[0], Is.EqualTo("LINK        ZONE        CLASS     MTU    STATE    BRIDGE     OVER"));
            Assert.That(h.Ok(CliHost.Split("dladm show-link")).Split('\n')[0], Is.EqualTo("LINK        CLASS     MTU    STATE    BRIDGE     OVER"));
        }
    }
}
