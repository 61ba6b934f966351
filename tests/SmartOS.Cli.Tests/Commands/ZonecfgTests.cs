using SmartOS.Testing;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

public class ZonecfgTests
{
    private const string Web = "create; set zonepath=/zones/web; set autoboot=true; add net; set physical=web0; set allowed-address=10.0.0.2/24; set defrouter=10.0.0.1; end; add capped-memory; set physical=512m; end";

    private static CliHost WithVnic()
    {
        var h = new CliHost();
        h.Ok(CliHost.Split("dladm create-vnic -l e1000g0 web0"));
        return h;
    }

    [Test]
    public void Info_prints_what_was_committed()
    {
        var h = WithVnic();
        h.Ok("zonecfg", "-z", "web", Web);
        Assert.That(h.Ok("zonecfg", "-z", "web", "info"), Is.EqualTo("""
            zonename: web
            zonepath: /zones/web
            brand: joyent
            autoboot: true
            ip-type: exclusive
            net:
            	physical: web0
            	allowed-address: 10.0.0.2/24
            	defrouter: 10.0.0.1
            capped-memory:
            	physical: 512M

            """.Replace("\r\n", "\n")));
    }

    [Test]
    public void Commands_on_standard_input_configure_the_zone_as_from_a_file()
    {
        var h = WithVnic();
        var fromStdin = h.WithStdin(Web.Replace("; ", "\n", StringComparison.Ordinal) + "\n", "zonecfg", "-z", "web");
        var dash = h.WithStdin("set autoboot=false\n", "zonecfg", "-z", "web", "-f", "-");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fromStdin.ExitCode, Is.Zero, fromStdin.Stderr);
            Assert.That(dash.ExitCode, Is.Zero, dash.Stderr);
            Assert.That(h.Ok("zonecfg", "-z", "web", "info", "zonepath"), Is.EqualTo("zonepath: /zones/web\n"));
            Assert.That(h.Ok("zonecfg", "-z", "web", "info", "autoboot"), Is.EqualTo("autoboot: false\n"));
        }
    }

    [Test]
    public void Without_commands_or_standard_input_zonecfg_refuses_an_interactive_session()
    {
        var h = WithVnic();
        var bare = h.Fails("zonecfg", "-z", "web");
        var dash = h.Fails("zonecfg", "-z", "web", "-f", "-");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bare.ExitCode, Is.EqualTo(2));
            Assert.That(bare.Stderr, Does.StartWith("zonecfg: interactive mode is not supported; give commands, -f FILE, or commands on standard input\n"));
            Assert.That(dash.ExitCode, Is.EqualTo(1));
            Assert.That(dash.Stderr, Is.EqualTo("zonecfg: no standard input to read commands from\n"));
        }
    }

    [Test]
    public void Export_recreates_the_same_zone()
    {
        var h = WithVnic();
        h.Ok("zonecfg", "-z", "web", Web);
        string export = h.Ok("zonecfg", "-z", "web", "export");
        Assert.That(export, Does.StartWith("create -b\nset zonepath=/zones/web\n").And.Contain("add net\nset physical=web0\n"));
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, export);
            h.Ok("zonecfg", "-z", "copy", "-f", file);
            Assert.That(h.Ok("zonecfg", "-z", "copy", "export"), Is.EqualTo(export));
        }
        finally { File.Delete(file); }
    }

    // zonecfg.c: zone_perror(zone, Z_NO_ZONE, B_TRUE) prints "zone: " and zonecfg_strerror(Z_NO_ZONE),
    // then the hint; decided by the code, whichever command met the missing zone.
    [TestCase("info")]
    [TestCase("verify")]
    [TestCase("set autoboot=true")]
    [TestCase("delete -F")]
    public void A_zone_that_does_not_exist_says_use_create(string command)
    {
        var h = new CliHost();
        var r = h.Fails("zonecfg", "-z", "nope", command);
        Assert.That(r.Stderr, Is.EqualTo("nope: No such zone configured\nUse 'create' to begin configuring a new zone.\n"));
    }

    [Test]
    public void Nothing_applies_when_a_later_command_fails()
    {
        var h = WithVnic();
        var r = h.Fails("zonecfg", "-z", "web", "create; set zonepath=/zones/web; set autoboot=maybe");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.Contain("autoboot: invalid value 'maybe'"));
            Assert.That(h.Host.Zones.Find("web"), Is.Null);
        }
    }

    [Test]
    public void An_explicit_commit_keeps_what_came_before_an_error()
    {
        var h = WithVnic();
        h.Fails("zonecfg", "-z", "web", "create; set zonepath=/zones/web; commit; set brand=nope");
        Assert.That(h.Host.Zones.Find("web")!.Config.ZonePath, Is.EqualTo("/zones/web"));
    }

    private static IEnumerable<TestCaseData> BadInput() => DataFile.Cases("zonecfg-bad-input.txt", 2);

    [TestCaseSource(nameof(BadInput))]
    public void Bad_input_is_refused_naming_the_property(DataCase c)
    {
        var h = WithVnic();
        var r = h.Fails("zonecfg", "-z", "web", c[0]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.Contain(c[1]), c.Where);
            Assert.That(h.Host.Zones.Find("web"), Is.Null, c.Where);
        }
    }

    [Test]
    public void Bad_arguments_print_usage()
    {
        var h = new CliHost();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run("zonecfg").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run("zonecfg", "-z", "web").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run("zonecfg", "-q").ExitCode, Is.EqualTo(2));
            Assert.That(h.Fails("zonecfg", "-z", "global", "create").Stderr, Does.Contain("global zone cannot be configured"));
            Assert.That(h.Fails("zonecfg", "-z", "-bad!", "create").Stderr, Does.Contain("invalid zone name"));
            Assert.That(h.Fails("zonecfg", "-z", "web", "-f", "/nonexistent/file").Stderr, Does.Contain("could not open file"));
        }
    }

    [Test]
    public void Create_over_an_existing_zone_needs_force()
    {
        var h = WithVnic();
        h.Ok("zonecfg", "-z", "web", Web);
        Assert.That(h.Fails("zonecfg", "-z", "web", "create").Stderr, Does.Contain("Zone web already exists; create not allowed."));
        h.Ok("zonecfg", "-z", "web", "create -F; set zonepath=/zones/other");
        Assert.That(h.Host.Zones.Find("web")!.Config.Nets, Is.Empty);
    }

    [Test]
    public void Remove_takes_away_a_net_and_the_memory_cap()
    {
        var h = WithVnic();
        h.Ok("zonecfg", "-z", "web", Web);
        h.Ok("zonecfg", "-z", "web", "remove net physical=web0; remove capped-memory");
        var cfg = h.Host.Zones.Find("web")!.Config;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cfg.Nets, Is.Empty);
            Assert.That(cfg.CappedMemory, Is.Null);
            Assert.That(h.Fails("zonecfg", "-z", "web", "remove net physical=web0").Stderr, Does.Contain("no resource with physical=web0"));
        }
    }

    [Test]
    public void Zonepath_and_brand_are_fixed_once_installed()
    {
        var h = WithVnic();
        h.Ok("zonecfg", "-z", "web", Web);
        h.Ok(CliHost.Split("zoneadm -z web install"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails("zonecfg", "-z", "web", "set zonepath=/elsewhere").Stderr, Does.Contain("Zone web already installed; set zonepath not allowed."));
            Assert.That(h.Fails("zonecfg", "-z", "web", "set brand=joyent-minimal").Stderr, Does.Contain("Zone web already installed; set brand not allowed."));
        }
        h.Ok("zonecfg", "-z", "web", "set autoboot=false");
    }

    [Test]
    public void Delete_needs_force_and_a_zone_that_is_only_configured()
    {
        var h = WithVnic();
        h.Ok("zonecfg", "-z", "web", Web);
        h.Fails("zonecfg", "-z", "web", "delete");
        h.Ok(CliHost.Split("zoneadm -z web install"));
        Assert.That(h.Fails("zonecfg", "-z", "web", "delete -F").Stderr, Does.Contain("Zone web not in configured state; delete not allowed."));
        h.Ok(CliHost.Split("zoneadm -z web uninstall -F"));
        h.Ok("zonecfg", "-z", "web", "delete -F");
        Assert.That(h.Host.Zones.Find("web"), Is.Null);
    }

    [Test]
    public void Verify_reports_a_missing_zonepath_without_committing()
    {
        var h = new CliHost();
        var r = h.Fails("zonecfg", "-z", "web", "create; verify");
        Assert.That(r.Stderr, Does.Contain("zonepath not specified"));
    }

    [Test]
    public void Zonecfg_is_refused_inside_a_zone()
    {
        var h = WithVnic();
        h.Ok("zonecfg", "-z", "web", Web);
        h.Ok(CliHost.Split("zoneadm -z web install"));
        h.Ok(CliHost.Split("zoneadm -z web boot"));
        Assert.That(h.Fails(CliHost.Split("zlogin web zonecfg -z other create")).Stderr, Does.Contain("must be in the global zone"));
    }

    [TestCase("512m", 512L << 20)]
    [TestCase("2G", 2L << 30)]
    [TestCase("4096", 4096L)]
    [TestCase("1t", 1L << 40)]
    public void Sizes_parse_as_zonecfg_takes_them(string text, long bytes)
    {
        Assert.That(ZoneConfig.TryParseSize(text, out long got), Is.True);
        Assert.That(got, Is.EqualTo(bytes));
    }
}
