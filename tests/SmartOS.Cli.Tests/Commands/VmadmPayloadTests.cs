using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>What issue 22 added to vmadm beyond the ported SmartOS cases (VmadmSmartosSuiteTests):
/// kept properties and their persistence, create's wait for dynamic addresses, vmadm validate.</summary>
public class VmadmPayloadTests
{
    private static CliHost Tagged(IConfigStore? store = null)
    {
        var h = new CliHost(store: store);
        h.Ok(CliHost.Split("nictagadm add admin e1000g0"));
        h.Ok(CliHost.Split("nictagadm add -l stub0"));
        return h;
    }

    private static string Uuid(CommandResult r) => r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];

    [Test]
    public void Kept_properties_are_warned_about_once_and_survive_a_reboot_of_the_host()
    {
        var store = new MemoryConfigStore();
        var h = Tagged(store);
        var r = h.WithStdin("""{ "autoboot": false, "cpu_cap": 100, "max_lwps": 2000, "owner_uuid": "o1", "tags": { "role": "db" } }""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        string uuid = Uuid(r);
        Assert.That(r.Stderr, Is.EqualTo($"Warning, not enforced on this host (kept, shown by vmadm get): cpu_cap, max_lwps.\nSuccessfully created VM {uuid}\n"));
        var u = h.WithStdin("""{ "cpu_cap": 50, "set_tags": { "tier": 2 }, "remove_tags": ["role"] }""", "vmadm", "update", uuid);
        Assert.That(u.ExitCode, Is.Zero, u.Stderr);

        var again = new CliHost(store: store);
        var vm = JsonNode.Parse(again.Ok("vmadm", "get", uuid))!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That((int?)vm["cpu_cap"], Is.EqualTo(50));
            Assert.That((int?)vm["max_lwps"], Is.EqualTo(2000));
            Assert.That((string?)vm["owner_uuid"], Is.EqualTo("o1"));
            Assert.That(vm["tags"]!.ToJsonString(), Is.EqualTo("""{"tier":2}"""));
        }
    }

    [TestCase("""{ "autoboot": false, "vnc_port": 5900 }""", "Warning, invalid create property: [vnc_port] removing from payload.")]
    [TestCase("""{ "autoboot": false, "nics": [ { "nic_tag": "admin", "allow_unfiltered_promisc": true } ] }""", "Warning, invalid create property: [nics.*.allow_unfiltered_promisc] removing from payload.")]
    public void A_property_of_another_brand_is_warned_about_and_dropped(string payload, string warning)
    {
        var h = Tagged();
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stderr, Does.StartWith(warning + "\n"));
        Assert.That(h.Ok("vmadm", "get", Uuid(r)), Does.Not.Contain("vnc_port").And.Not.Contain("promisc"));
    }

    [Test]
    public void Create_waits_for_dhcp_and_says_when_no_lease_came()
    {
        // No DHCP server on stub0: the client gives up after DhcpClient.ReadyAttempts discovers, in the
        // zone's (virtual) time; vmadm says so, and only then that the VM was created.
        var h = Tagged();
        var r = h.WithStdin("""{ "autoboot": true, "nics": [ { "nic_tag": "stub0", "ips": ["dhcp"], "allow_ip_spoofing": true } ] }""", "vmadm", "create");
        string uuid = Uuid(r);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero, r.Stderr);
            Assert.That(r.Stderr, Does.Match($"^Warning, VM {uuid} is running without an address: [a-z0-9_]+: dhcp: .+\nSuccessfully created VM {uuid}\n$"));
            Assert.That(h.Host.Zones.Find(uuid)!.State, Is.EqualTo(ZoneState.Running));
        }
    }

    [Test]
    public void Create_with_nowait_returns_before_the_addresses_come()
    {
        var h = Tagged();
        var r = h.WithStdin("""{ "autoboot": true, "nowait": true, "nics": [ { "nic_tag": "stub0", "ips": ["dhcp"], "allow_ip_spoofing": true } ] }""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stderr, Is.EqualTo($"Successfully created VM {Uuid(r)}\n"));
    }

    [Test]
    public void Validate_reads_a_file_and_refuses_a_call_without_its_brand()
    {
        var h = Tagged();
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, """{ "alias": "a", "colour": "blue" }""");
            var ok = h.Run("vmadm", "validate", "update", "joyent", "-f", file);
            var usage = h.Run("vmadm", "validate", "update", "-f", file);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(ok.ExitCode, Is.EqualTo(1));
                Assert.That(ok.Stderr, Is.EqualTo("{\n  \"bad_values\": [],\n  \"bad_properties\": [\n    \"colour\"\n  ],\n  \"missing_properties\": []\n}\n"));
                Assert.That(usage.ExitCode, Is.EqualTo(2));
                Assert.That(usage.Stderr, Does.StartWith("vmadm: Will not validate without a valid action and brand.\n"));
                Assert.That(h.Host.Zones.Zones, Is.Empty);
            }
        }
        finally { File.Delete(file); }
    }
}
