using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Virt;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>vmadm's bhyve and kvm brands (zones/HvmGuest.cs): guests on the VMM behind VNICs.</summary>
public class HvmBrandTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private const string Open = "\"allow_ip_spoofing\": true, \"allow_mac_spoofing\": true, \"allow_dhcp_spoofing\": true, \"allow_restricted_traffic\": true";

    private static void NeedGcc()
    {
        if (GuestCompiler.FindGcc(out string why) == null) Assert.Ignore(why);
    }

    private static CliHost Stub()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add -l stub0"));
        return h;
    }

    private static string Hvm(string brand, string image = """{ "guest": "netecho" }""", string extra = "", string nic = "") => $$"""
        { "alias": "guest", "brand": "{{brand}}", "ram": 64, "vcpus": 1, "autoboot": false, "image": {{image}}{{extra}},
          "nics": [ {{(nic.Length > 0 ? nic : $$"""{ "nic_tag": "stub0", "model": "virtio", "ips": ["10.0.0.2/24"], "mac": "90:b8:d0:00:00:02", {{Open}} }""")}} ] }
        """;

    private const string Joyent = $$"""
        { "alias": "client", "brand": "joyent", "max_physical_memory": 128, "autoboot": true,
          "nics": [ { "nic_tag": "stub0", "ips": ["10.0.0.1/24"], {{Open}} } ] }
        """;

    private static string Create(CliHost h, string payload)
    {
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stderr.Split('\n')[0].Split(' ')[^1].Trim();
    }

    private static JsonObject Get(CliHost h, string uuid) => JsonNode.Parse(h.Ok("vmadm", "get", uuid))!.AsObject();

    [TestCase("bhyve", "BHYV")]
    [TestCase("kvm", "KVM")]
    public void A_guest_vm_is_created_started_shown_and_stopped(string brand, string type)
    {
        NeedGcc();
        var h = Stub();
        string uuid = Create(h, Hvm(brand));
        Assert.That(h.Ok(A("vmadm list -p -o alias,type,ram,state")), Is.EqualTo($"guest:{type}:64:stopped\n"));
        Assert.That(h.Run(A($"vmadm start {uuid}")).Stderr, Is.EqualTo($"Successfully started VM {uuid}\n"));
        h.World.Scheduler.RunFor(10 * Time.Millisecond);
        var j = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)j["state"], Is.EqualTo("running"));
            Assert.That((string?)j["brand"], Is.EqualTo(brand));
            Assert.That((string?)j["vm_backend"], Is.EqualTo("interpreter"), "virtual time runs guests on the interpreter");
            Assert.That((int?)j["ram"], Is.EqualTo(64));
            Assert.That((int?)j["vcpus"], Is.EqualTo(1));
            Assert.That((string?)j["image"]!["guest"], Is.EqualTo("netecho"));
            Assert.That((string?)j["nics"]![0]!["model"], Is.EqualTo("virtio"));
            Assert.That(j.ContainsKey("vm_stop_reason"), Is.False);
            Assert.That(h.Ok(A("dladm show-vnic -p -o link,over,zone")), Is.EqualTo($"z1_net0:stub0:{uuid}\n"));
            Assert.That(h.Ok(A($"vmadm console {uuid}")), Does.Contain("net up, mac 90:b8:d0:00:00:02"));
            Assert.That(h.Ok("zlogin", "-C", uuid), Is.EqualTo(h.Ok(A($"vmadm console {uuid}"))));
        }
        Assert.That(h.Run(A($"vmadm stop {uuid}")).Stderr, Is.EqualTo($"Successfully completed stop for VM {uuid}\n"));
        j = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)j["state"], Is.EqualTo("stopped"));
            Assert.That((string?)j["vm_stop_reason"], Is.EqualTo("stopped_by_host"));
            Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.Empty, "stop releases the VNICs");
            Assert.That(h.Ok(A($"vmadm console {uuid}")), Does.Contain("net up"), "the console outlives the stop");
        }
    }

    [TestCase("\"vcpus\": 1", "\"vcpus\": 2", "Invalid value(s) for: vcpus (2: this VMM runs one vCPU per guest; use 1)")]
    [TestCase("\"ram\": 64", "\"ram\": 2", "Invalid value(s) for: ram (2: MiB from 8 to 16384)")]
    [TestCase("\"vcpus\": 1", "\"vcpus\": 1, \"vcpus\": 1", "Invalid JSON payload: a property is given more than once")]
    public void A_bad_hvm_property_is_refused_and_nothing_is_created(string from, string to, string message)
    {
        var h = Stub();
        var r = h.WithStdin(Hvm("bhyve").Replace(from, to, StringComparison.Ordinal), "vmadm", "create");
        AssertRefused(h, r, message);
    }

    [TestCase("""{ "guest": "netecho", "path": "/x" }""", "Invalid value(s) for: image")]
    [TestCase("""{ "url": "http://x/flat.bin" }""", "Invalid value(s) for: image")]
    [TestCase("\"netecho\"", "Invalid value(s) for: image")]
    [TestCase("""{ "guest": "doom" }""", "Invalid value(s) for: image.guest (\"doom\": the guests are ")]
    [TestCase("""{ "path": "/nonexistent/flat.bin" }""", "Invalid value(s) for: image.path (no such file: /nonexistent/flat.bin)")]
    public void An_unknown_image_form_is_refused_and_nothing_is_created(string image, string message)
    {
        var h = Stub();
        AssertRefused(h, h.WithStdin(Hvm("kvm", image), "vmadm", "create"), message);
    }

    [TestCase("bhyve")]
    [TestCase("kvm")]
    public void A_vm_without_an_image_is_created_stays_stopped_and_start_says_why(string brand)
    {
        var h = Stub();
        string payload = Hvm(brand).Replace(""" "image": { "guest": "netecho" },""", "", StringComparison.Ordinal)
            .Replace("\"autoboot\": false", "\"autoboot\": true", StringComparison.Ordinal);
        Assert.That(payload, Does.Not.Contain("image"));
        var r = h.WithStdin(payload, "vmadm", "create");
        string uuid = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
        string why = $"{brand} VM has no image to boot: this host boots a guest from vmadm's \"image\"";
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero, r.Stderr);
            Assert.That(r.Stderr, Does.StartWith($"Warning, VM {uuid} not started: {why}"));
            Assert.That(r.Stderr, Does.EndWith($"Successfully created VM {uuid}\n"));
        }
        var j = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)j["state"], Is.EqualTo("stopped"));
            Assert.That((bool?)j["autoboot"], Is.True);
            Assert.That(j.ContainsKey("image"), Is.False);
        }
        var start = h.Run(A($"vmadm start {uuid}"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(start.ExitCode, Is.EqualTo(1));
            Assert.That(start.Stderr, Does.Contain(why));
            Assert.That((string?)Get(h, uuid)["state"], Is.EqualTo("stopped"));
        }
    }

    [Test]
    public void A_nic_model_other_than_virtio_is_refused_and_nothing_is_created()
    {
        var h = Stub();
        var r = h.WithStdin(Hvm("bhyve", nic: $$"""{ "nic_tag": "stub0", "model": "e1000", {{Open}} }"""), "vmadm", "create");
        AssertRefused(h, r, "Invalid value(s) for: nics.*.model (nics.0: \"e1000\": only virtio is supported");
    }

    private static void AssertRefused(CliHost h, CommandResult r, string message)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.StartWith(message));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
            Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.Empty);
        }
    }

    [Test]
    public void A_bhyve_guest_answers_ping_from_a_joyent_zone_across_an_etherstub()
    {
        NeedGcc();
        PingAcrossTheStub(VmBackend.Auto, "interpreter");
    }

    [Test]
    public void A_kvm_guest_answers_ping_from_a_joyent_zone_across_an_etherstub()
    {
        NeedGcc();
        if (!Vm.KvmAvailable(out string why)) Assert.Ignore(why);
        PingAcrossTheStub(VmBackend.Kvm, "kvm");
    }

    private static void PingAcrossTheStub(VmBackend backend, string expectBackend)
    {
        var h = Stub();
        h.Host.Zones.GuestBackend = backend;
        string client = Create(h, Joyent);
        string guest = Create(h, Hvm(backend == VmBackend.Kvm ? "kvm" : "bhyve").Replace("\"autoboot\": false", "\"autoboot\": true", StringComparison.Ordinal));
        h.World.Scheduler.RunFor(2 * Time.Second);
        var r = h.Run("zlogin", client, "ping", "-s", "10.0.0.2", "56", "3");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero, r.Stdout + r.Stderr);
            Assert.That(r.Stdout, Does.Contain("3 packets transmitted, 3 packets received, 0% packet loss"));
            Assert.That((string?)Get(h, guest)["vm_backend"], Is.EqualTo(expectBackend));
        }
    }

    [Test]
    public void A_guest_of_undefined_opcodes_stops_only_its_own_vm_with_the_reason()
    {
        NeedGcc();
        var h = Stub();
        string client = Create(h, Joyent);
        string good = Create(h, Hvm("bhyve").Replace("\"autoboot\": false", "\"autoboot\": true", StringComparison.Ordinal));
        string file = Path.Combine(Path.GetTempPath(), "smartos-ud-" + Guid.NewGuid().ToString("N") + ".bin");
        File.WriteAllBytes(file, [.. Enumerable.Repeat<byte>(0x0F, 64).SelectMany(b => new[] { b, (byte)0x0B })]); // ud2 ...
        try
        {
            string bad = Create(h, Hvm("bhyve", $$"""{ "path": "{{file}}" }""", nic: $$"""{ "nic_tag": "stub0", "ips": ["10.0.0.3/24"], "model": "virtio", {{Open}} }"""));
            Assert.That(h.Run(A($"vmadm start {bad}")).ExitCode, Is.Zero);
            h.World.Scheduler.RunFor(Time.Second);
            var j = Get(h, bad);
            using (Assert.EnterMultipleScope())
            {
                Assert.That((string?)j["state"], Is.EqualTo("stopped"));
                Assert.That((string?)j["vm_stop_reason"], Is.EqualTo("fault"));
                Assert.That((string?)j["vm_stop_detail"], Does.Contain("#UD"));
                Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.EqualTo("z1_net0\nz2_net0\n"), "the bad guest's VNIC is gone");
                Assert.That((string?)Get(h, good)["state"], Is.EqualTo("running"));
                Assert.That(h.Run("zlogin", client, "ping", "-s", "10.0.0.2", "56", "1").Stdout, Does.Contain("1 packets received"));
            }
        }
        finally { File.Delete(file); }
    }

    /// <summary>A guest image is read at boot on the loop, so a device or FIFO (length 0) is refused
    /// rather than waited on or read without end.</summary>
    [Test]
    public void A_device_as_the_guest_image_is_refused_at_start_with_the_reason()
    {
        var h = Stub();
        string vm = Create(h, Hvm("bhyve", """{ "path": "/dev/zero" }"""));
        var start = h.Run(A($"vmadm start {vm}"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(start.ExitCode, Is.EqualTo(1));
            Assert.That(start.Stderr, Does.Contain("cannot read image /dev/zero: not a regular file of 1 byte to 16384 MiB"));
        }
    }
}
