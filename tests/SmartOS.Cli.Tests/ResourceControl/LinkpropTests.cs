using SmartOS.Kernel;
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

    [Test]
    public void Show_linkprop_lists_the_resource_properties_with_defaults_and_possible_values()
    {
        string o = Ok("dladm", "show-linkprop", "vnic0");
        Assert.That(o, Is.EqualTo("""
            LINK         PROPERTY        PERM VALUE          DEFAULT        POSSIBLE
            vnic0        mtu             rw   1500           1500           576-1500
            vnic0        maxbw           rw   --             --             --
            vnic0        priority        rw   high           high           low,medium,high
            vnic0        protection      rw   --             --             mac-nospoof,restricted,ip-nospoof,dhcp-nospoof
            vnic0        allowed-ips     rw   --             --             --
            vnic0        allowed-dhcp-cids rw --             --             --

            """.Replace("\r", "")));
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
            Assert.That(Value("allowed-ips"), Is.EqualTo("10.0.0.1,10.1.0.0/16"));
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

    [TestCase("maxbw=1M", "dladm: warning: cannot set link property 'maxbw' on 'vnic0': minimum value for maxbw is 1.2M")]
    [TestCase("maxbw=fast", "dladm: warning: cannot set link property 'maxbw' on 'vnic0': invalid argument")]
    [TestCase("priority=urgent", "dladm: warning: cannot set link property 'priority' on 'vnic0': invalid value")]
    [TestCase("protection=no-spoofing", "dladm: warning: cannot set link property 'protection' on 'vnic0': invalid value")]
    [TestCase("allowed-ips=10.0.0.256", "dladm: warning: cannot set link property 'allowed-ips' on 'vnic0': invalid value")]
    [TestCase("allowed-dhcp-cids=0xabc", "dladm: warning: cannot set link property 'allowed-dhcp-cids' on 'vnic0': invalid value")]
    [TestCase("bandwidth=10M", "dladm: warning: cannot set link property 'bandwidth' on 'vnic0': object not found")]
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
            Assert.That(r.Stdout, Is.EqualTo("   10\n10.0.0.5\n"));
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
