using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Roots;

/// <summary>Drawn identities that already exist are drawn again (Host.cs rule 1), shown with an
/// identity source that can be rewound so it repeats what it drew before.</summary>
public class IdentityCollisionTests
{
    /// <summary>A seeded source that can start over, so its next draws repeat earlier ones.</summary>
    private sealed class RewindableSource(ulong seed) : IIdentitySource
    {
        private HostRandom _random = new(seed);
        public void Rewind() => _random = new HostRandom(seed);
        public ulong NextUInt64() => _random.NextUInt64();
    }

    private static (World World, Host Host, RewindableSource Source) Tagged()
    {
        var source = new RewindableSource(7);
        var world = new World();
        var host = world.AddHost("h1", 2, null, source);
        Assert.That(Dispatcher.Run(world, host, ["nictagadm", "add", "admin", "e1000g0"]).ExitCode, Is.Zero);
        return (world, host, source);
    }

    private static CommandResult Create(World world, Host host, string payload)
        => Dispatcher.Run(world, host, ["vmadm", "create"], payload);

    [Test]
    public void A_vm_uuid_that_repeats_an_existing_one_is_drawn_again()
    {
        var (world, host, source) = Tagged();
        var first = Create(world, host, """{ "alias": "a", "autoboot": false }""");
        source.Rewind();
        var second = Create(world, host, """{ "alias": "b", "autoboot": false }""");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.ExitCode, Is.Zero, first.Stderr);
            Assert.That(second.ExitCode, Is.Zero, second.Stderr);
            Assert.That(second.Stderr, Is.Not.EqualTo(first.Stderr));
            Assert.That(host.Zones.Zones.Count(), Is.EqualTo(2));
        }
    }

    [Test]
    public void A_vm_mac_address_that_repeats_an_existing_one_is_drawn_again()
    {
        var (world, host, source) = Tagged();
        const string Nic = "\"nics\": [ { \"nic_tag\": \"admin\", \"ips\": [\"dhcp\"], \"allow_ip_spoofing\": true, \"allow_mac_spoofing\": true, "
            + "\"allow_dhcp_spoofing\": true, \"allow_restricted_traffic\": true } ]";
        var first = Create(world, host, $$"""{ "uuid": "11111111-1111-4111-8111-111111111111", "autoboot": false, {{Nic}} }""");
        source.Rewind();
        var second = Create(world, host, $$"""{ "uuid": "22222222-2222-4222-8222-222222222222", "autoboot": false, {{Nic}} }""");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.ExitCode, Is.Zero, first.Stderr);
            Assert.That(second.ExitCode, Is.Zero, second.Stderr);
            var a = host.Zones.Find("11111111-1111-4111-8111-111111111111")!.Config.Nets[0].MacAddr;
            var b = host.Zones.Find("22222222-2222-4222-8222-222222222222")!.Config.Nets[0].MacAddr;
            Assert.That(b, Is.Not.EqualTo(a));
        }
    }

    [Test]
    public void A_random_vnic_address_that_repeats_one_in_use_is_drawn_again()
    {
        var (world, host, source) = Tagged();
        var first = Dispatcher.Run(world, host, ["dladm", "create-vnic", "-l", "e1000g0", "v0"]);
        source.Rewind();
        var second = Dispatcher.Run(world, host, ["dladm", "create-vnic", "-l", "e1000g0", "v1"]);
        var macs = Dispatcher.Run(world, host, ["dladm", "show-vnic", "-p", "-o", "macaddress"]).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(first.ExitCode, Is.Zero, first.Stderr);
            Assert.That(second.ExitCode, Is.Zero, second.Stderr);
            Assert.That(macs, Has.Length.EqualTo(2));
            Assert.That(macs, Is.Unique);
        }
    }
}
