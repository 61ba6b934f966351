using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.ResourceControl;

/// <summary>dladm set-linkprop/show-linkprop/reset-linkprop for maxbw, priority, protection, allowed-ips
/// and allowed-dhcp-cids: illumos output, illumos errors, nothing changed on a bad value.</summary>
public class LinkpropTests
{
    private World _world = null!;
    private Host _host = null!;

    [SetUp]
    public void Build()
    {
        _world = new World();
        _host = _world.AddHost("h1", 2);
        Ok("dladm", "create-vnic", "-l", "e1000g0", "vnic0");
    }

    private CommandResult Run(params string[] argv) => Dispatcher.Run(_world, _host, argv);

    private string Ok(params string[] argv)
    {
        var r = Run(argv);
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stdout;
    }

    private string Value(string prop) => Ok("dladm", "show-linkprop", "-c", "-o", "value", "-p", prop, "vnic0").TrimEnd('\n');

    // libdladm's prop_table (usr/src/lib/libdladm/common/linkprop.c) in its order: every property of
    // the VNIC class, the ones this layer does not implement read-only with "--". libofmt prints the
    // header again after a screenful (24 lines when standard output is not a terminal).
    [Test]
    public void Show_linkprop_lists_every_property_illumos_has_for_a_vnic()
    {
        string o = Ok("dladm", "show-linkprop", "vnic0");
        Assert.That(o, Is.EqualTo("""
            LINK         PROPERTY        PERM VALUE          DEFAULT        POSSIBLE
            vnic0        autopush        r-   --             --             --
            vnic0        zone            r-   --             --             --
            vnic0        state           r-   down           up             up,down
            vnic0        mtu             rw   1500           1500           576-1500
            vnic0        secondary-macs  r-   --             --             --
            vnic0        maxbw           rw   --             --             --
            vnic0        cpus            r-   --             --             --
            vnic0        cpus-effective  r-   --             --             --
            vnic0        pool            r-   --             --             --
            vnic0        pool-effective  r-   --             --             --
            vnic0        priority        rw   high           high           low,medium,high
            vnic0        tagmode         r-   --             --             --
            vnic0        protection      rw   --             --             mac-nospoof,restricted,ip-nospoof,dhcp-nospoof
            vnic0        promisc-filtered r-  --             --             --
            vnic0        allowed-ips     rw   --             --             --
            vnic0        allowed-dhcp-cids rw --             --             --
            vnic0        allow-all-dhcp-cids rw false        false          true,false
            vnic0        dynamic-methods rw   --             --             slaac,dhcpv4,dhcpv6,addrconf
            vnic0        rxrings         r-   --             --             --
            vnic0        rxrings-effective r- --             --             --
            vnic0        txrings         r-   --             --             --
            vnic0        txrings-effective r- --             --             --
            vnic0        txrings-available r- --             --             --
            LINK         PROPERTY        PERM VALUE          DEFAULT        POSSIBLE
            vnic0        rxrings-available r- --             --             --
            vnic0        rxhwclnt-available r- --            --             --
            vnic0        txhwclnt-available r- --            --             --

            """.Replace("\r", "")));
    }

    [Test]
    public void Show_linkprop_of_a_nic_reports_its_speed_duplex_and_state_read_only()
    {
        _world.Connect((PhysLink)_host.Mac.Find("e1000g0")!, (PhysLink)_host.Mac.Find("e1000g1")!, speedBps: 1_000_000_000);
        string o = Ok("dladm", "show-linkprop", "-c", "-o", "property,perm,value,possible", "-p", "speed,duplex,state,stp_edge,en_1000fdx_cap", "e1000g0");
        Assert.That(o, Is.EqualTo("speed:r-:1000:--\nduplex:r-:full:half,full\nstate:r-:up:up,down\nstp_edge:r-:--:--\nen_1000fdx_cap:r-:--:--\n"));
    }

    // An etherstub has maxbw in illumos's prop_table (DATALINK_CLASS_ALL); this layer shapes only
    // VNICs, VLANs and NICs, so it shows it read-only and refuses to set it, rather than accept it.
    [Test]
    public void A_property_implemented_only_for_other_classes_is_shown_read_only_and_refused()
    {
        Ok("dladm", "create-etherstub", "stub0");
        var r = Run("dladm", "set-linkprop", "-p", "maxbw=10M", "stub0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Ok("dladm", "show-linkprop", "-c", "-o", "perm,value", "-p", "maxbw", "stub0"), Is.EqualTo("r-:--\n"));
            Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "dladm: warning: cannot set link property 'maxbw' on 'stub0': operation not supported\n")));
        }
    }

    // print_linkprop: a property the link lacks is warned about ("cannot get link property '%s' for %s")
    // and do_show_linkprop exits EXIT_FAILURE; libofmt prints "?" for the fields it could not get.
    [Test]
    public void Show_linkprop_of_an_unknown_property_warns_and_fails()
    {
        var r = Run("dladm", "show-linkprop", "-p", "colour", "vnic0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Is.EqualTo("dladm: warning: cannot get link property 'colour' for vnic0: object not found\n"));
            Assert.That(r.Stdout, Does.Contain("vnic0        colour          ?    ?"));
        }
    }

    // set_linkprop: if (proplist == NULL && !reset) die("link property must be specified");
    // a list dladm_parse_link_props cannot read: die("invalid link properties specified").
    [TestCase(new[] { "dladm", "set-linkprop", "vnic0" }, "dladm: link property must be specified\n")]
    [TestCase(new[] { "dladm", "set-linkprop", "-p", "=5", "vnic0" }, "dladm: invalid link properties specified\n")]
    [TestCase(new[] { "dladm", "set-linkprop", "-p", "mtu=1400,,", "vnic0" }, "dladm: invalid link properties specified\n")]
    public void Set_linkprop_without_a_usable_property_list_dies_as_dladm_does(string[] argv, string message)
    {
        var r = Run(argv);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, message)));
    }

    [TestCase("100", "  100")]
    [TestCase("100M", "  100")]
    [TestCase("1500K", "    1.500")]
    [TestCase("1G", " 1000")]
    [TestCase("0", "    0")]
    public void Maxbw_is_shown_in_megabits_as_illumos_prints_it(string value, string shown)
    {
        Ok("dladm", "set-linkprop", "-p", $"maxbw={value}", "vnic0");
        Assert.That(Value("maxbw"), Is.EqualTo(shown));
    }

    [Test]
    public void Each_property_sets_and_resets()
    {
        Ok("dladm", "set-linkprop", "-p", "maxbw=50M,priority=low,protection=mac-nospoof,ip-nospoof,allowed-ips=10.0.0.1,10.1.0.0/16,allowed-dhcp-cids=0x0102,host-a", "vnic0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Value("maxbw"), Is.EqualTo("   50"));
            Assert.That(Value("priority"), Is.EqualTo("low"));
            Assert.That(Value("protection"), Is.EqualTo("mac-nospoof,ip-nospoof"));
            Assert.That(Value("allowed-ips"), Is.EqualTo("10.0.0.1/32,10.1.0.0/16"));
            Assert.That(Value("allowed-dhcp-cids"), Is.EqualTo("0x0102,host-a"));
        }
        Ok("dladm", "reset-linkprop", "-p", "maxbw,priority,protection,allowed-ips,allowed-dhcp-cids", "vnic0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Value("maxbw"), Is.EqualTo("--"));
            Assert.That(Value("priority"), Is.EqualTo("high"));
            Assert.That(Value("protection"), Is.EqualTo("--"));
            Assert.That(Value("allowed-ips"), Is.EqualTo("--"));
            Assert.That(Value("allowed-dhcp-cids"), Is.EqualTo("--"));
        }
    }

    [TestCase("maxbw=1M", "dladm: warning: cannot set link property 'maxbw' on 'vnic0': minimum value for maxbw is 1200K")]
    [TestCase("maxbw=fast", "dladm: warning: cannot set link property 'maxbw' on 'vnic0': invalid argument")]
    // dladm.c set_linkprop, case DLADM_STATUS_BADVAL: warn("link property '%s' must be one of: %s")
    // with the modifiable values, or, when it has none, warn_dlerr(status, "cannot set link property ...").
    [TestCase("priority=urgent", "dladm: warning: link property 'priority' must be one of: low,medium,high")]
    [TestCase("protection=no-spoofing", "dladm: warning: link property 'protection' must be one of: mac-nospoof,restricted,ip-nospoof,dhcp-nospoof")]
    [TestCase("allowed-ips=10.0.0.256", "dladm: warning: cannot set link property 'allowed-ips' on 'vnic0': invalid value")]
    [TestCase("allowed-dhcp-cids=0xabc", "dladm: warning: cannot set link property 'allowed-dhcp-cids' on 'vnic0': invalid value")]
    // case DLADM_STATUS_NOTFOUND: warn("invalid link property '%s'", aip->ai_name)
    [TestCase("bandwidth=10M", "dladm: warning: invalid link property 'bandwidth'")]
    [TestCase("speed=10", "dladm: warning: cannot set link property 'speed' on 'vnic0': invalid argument")]
    [TestCase("state=down", "dladm: warning: cannot set link property 'state' on 'vnic0': read-only property")]
    [TestCase("zone=z1", "dladm: warning: cannot set link property 'zone' on 'vnic0': read-only property")]
    [TestCase("priority=", "dladm: warning: no value specified for 'priority'")]
    public void A_bad_value_fails_with_illumos_wording_and_changes_nothing(string bad, string message)
    {
        var before = _host.Store.Read("datalink.conf");
        var r = Run("dladm", "set-linkprop", "-p", "mtu=1400," + bad, "vnic0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr.TrimEnd(), Is.EqualTo(message));
            Assert.That(Value("mtu"), Is.EqualTo("1500"), "the good property before the bad one was not applied either");
            Assert.That(_host.Store.Read("datalink.conf"), Is.EqualTo(before));
        }
    }

    [Test]
    public void More_than_32_allowed_ips_is_refused()
    {
        string ips = string.Join(',', Enumerable.Range(1, 33).Select(i => $"10.0.0.{i}"));
        var r = Run("dladm", "set-linkprop", "-p", "allowed-ips=" + ips, "vnic0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr.TrimEnd(), Is.EqualTo("dladm: warning: cannot set link property 'allowed-ips' on 'vnic0': invalid number of values"));
            Assert.That(Value("allowed-ips"), Is.EqualTo("--"));
        }
    }

    [Test]
    public void Resource_properties_persist_and_replay_at_boot_unless_temporary()
    {
        Ok("dladm", "set-linkprop", "-p", "maxbw=200M,protection=mac-nospoof", "vnic0");
        Ok("dladm", "set-linkprop", "-t", "-p", "priority=low", "vnic0");
        var world2 = new World();
        var again = world2.AddHost("h1", 2, _host.Store);
        var r = Dispatcher.Run(world2, again, "dladm", "show-linkprop", "-c", "-o", "property,value", "-p", "maxbw,priority,protection", "vnic0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.BootProblems, Is.Empty);
            Assert.That(r.Stdout, Is.EqualTo("maxbw:  200\npriority:high\nprotection:mac-nospoof\n"));
        }
    }

    [Test]
    public void Properties_persist_through_a_file_store()
    {
        string root = Path.Combine(Path.GetTempPath(), "smartos-rc-" + Guid.NewGuid().ToString("N"));
        try
        {
            var w1 = new World();
            var h1 = w1.AddHost("h1", 1, new FileConfigStore(root));
            Assert.That(Dispatcher.Run(w1, h1, "dladm", "create-vnic", "-l", "e1000g0", "-p", "maxbw=10M,allowed-ips=10.0.0.5", "vnic0").ExitCode, Is.Zero);
            var w2 = new World();
            var h2 = w2.AddHost("h1", 1, new FileConfigStore(root));
            var r = Dispatcher.Run(w2, h2, "dladm", "show-linkprop", "-c", "-o", "value", "-p", "maxbw,allowed-ips", "vnic0");
            Assert.That(r.Stdout, Is.EqualTo("   10\n10.0.0.5/32\n"));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void Protection_counters_appear_in_kstat()
    {
        Ok("dladm", "set-linkprop", "-p", "protection=mac-nospoof", "vnic0");
        Ok("pktgen", "-d", "vnic0", "-c", "4", "--src", "2:0:0:0:0:9");
        Assert.That(Ok("kstat", "-p", "link:0:vnic0:macspoofed"), Is.EqualTo("link:0:vnic0:macspoofed\t4\n"));
    }
}
