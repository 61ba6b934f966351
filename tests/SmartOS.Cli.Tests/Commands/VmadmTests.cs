using System.Text.Json.Nodes;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

public class VmadmTests
{
    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>NIC flags that need no link protection (this branch's MAC layer may not have it).</summary>
    private const string Open = "\"allow_ip_spoofing\": true, \"allow_mac_spoofing\": true, \"allow_dhcp_spoofing\": true, \"allow_restricted_traffic\": true";

    private static CliHost Tagged()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add admin e1000g0"));
        h.Ok(A("nictagadm add -l stub0"));
        return h;
    }

    private static string Payload(string extra = "", string nics = "") => $$"""
        { "alias": "web", "brand": "joyent", "max_physical_memory": 512, "autoboot": false, "resolvers": ["8.8.8.8"]{{extra}},
          "nics": [ {{(nics.Length > 0 ? nics : $$"""{ "nic_tag": "admin", "ips": ["10.0.0.2/24"], "gateways": ["10.0.0.1"], "vlan_id": 12, {{Open}} }""")}} ] }
        """;

    private static string Create(CliHost h, string payload)
    {
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stderr, Does.Match("Successfully created VM [0-9a-f-]{36}\n"));
        return r.Stderr.Split(' ')[^1].Trim();
    }

    private static void AssertNothingCreated(CliHost h)
    {
        Assert.That(h.Host.Zones.Zones, Is.Empty);
        Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.Empty);
    }

    [Test]
    public void Create_makes_a_stopped_vm_with_a_generated_uuid()
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        var vm = h.Host.Zones.Find(uuid)!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(VmModel.IsUuid(uuid), Is.True);
            Assert.That(vm.State, Is.EqualTo(ZoneState.Installed));
            Assert.That(vm.Config.ZonePath, Is.EqualTo("/zones/" + uuid));
            Assert.That(vm.Config.CappedMemory, Is.EqualTo(512L << 20));
            Assert.That(h.Ok(A("vmadm list")), Is.EqualTo(
                "UUID                                  TYPE  RAM      STATE             ALIAS\n" +
                $"{uuid}  OS    512      stopped           web\n"));
        }
    }

    [Test]
    public void Uuids_come_from_the_hosts_seed()
    {
        string first = Create(Tagged(), Payload());
        string again = Create(Tagged(), Payload());
        Assert.That(again, Is.EqualTo(first));
    }

    [Test]
    public void Start_creates_the_vnics_named_after_the_vm_and_stop_removes_them()
    {
        var h = Tagged();
        string uuid = Create(h, Payload(nics: $$"""{ "nic_tag": "admin", "ips": ["10.0.0.2/24"], "vlan_id": 12, "mac": "90:b8:d0:00:00:01", {{Open}} }, { "nic_tag": "stub0", "ips": ["dhcp"], {{Open}} }"""));
        Assert.That(h.Run(A($"vmadm start {uuid}")).Stderr, Is.EqualTo($"Successfully started VM {uuid}\n"));
        string mac1 = ((VnicLink)h.Host.Mac.Find("z1_net1")!).MacAddress.ToString().Replace(":", "\\:", StringComparison.Ordinal);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("dladm show-vnic -p -o link,over,macaddress,vid,zone")), Is.EqualTo(
                $"z1_net0:e1000g0:90\\:b8\\:d0\\:0\\:0\\:1:12:{uuid}\nz1_net1:stub0:{mac1}:0:{uuid}\n"));
            Assert.That(h.Ok("zlogin", uuid, "dladm", "show-link", "-p", "-o", "link"), Is.EqualTo("z1_net0\nz1_net1\n"));
            Assert.That(h.Ok(A("vmadm list -p -o uuid,state")), Is.EqualTo($"{uuid}:running\n"));
        }
        Assert.That(h.Run(A($"vmadm stop {uuid}")).Stderr, Is.EqualTo($"Successfully completed stop for VM {uuid}\n"));
        Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.Empty);
    }

    [Test]
    public void Autoboot_starts_the_vm_at_create()
    {
        var h = Tagged();
        string uuid = Create(h, Payload().Replace("\"autoboot\": false", "\"autoboot\": true"));
        Assert.That(h.Host.Zones.Find(uuid)!.State, Is.EqualTo(ZoneState.Running));
    }

    [Test]
    public void Create_returns_once_the_vm_can_use_its_addresses()
    {
        // VM.js create returns when the zone runs; its network is up by then (svc:/network/physical).
        // Before: the first echo right after create failed with "Network is unreachable" while the
        // address was still tentative (duplicate address detection) and the default route not yet in.
        var h = Tagged();
        string Vm(string ip) => $$"""
            { "alias": "a{{ip}}", "brand": "joyent", "autoboot": true,
              "nics": [ { "nic_tag": "stub0", "ips": ["10.9.0.{{ip}}/24"], "gateways": ["10.9.0.1"], {{Open}} } ] }
            """;
        string server = Create(h, Vm("2"));
        string client = Create(h, Vm("3"));
        var ping = h.Run("zlogin", client, "ping", "-s", "10.9.0.2", "56", "1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ping.Stderr, Is.Empty);
            Assert.That(ping.Stdout, Does.Contain("1 packets transmitted, 1 packets received, 0% packet loss"));
            Assert.That(h.Ok("zlogin", server, "netstat", "-rn"), Does.Contain("10.9.0.1"));
        }
    }

    [Test]
    public void List_and_lookup_take_nic_fields_and_list_uses_vmadm_column_widths()
    {
        // vmadm.js getListProperties: nics.N.key is a column 20 wide headed NICS.N.KEY; LIST_FIELDS:
        // alias 10, brand 14, zonename 12; outputVMListLine: '%-WIDTHs' joined by two spaces, rtrim;
        // a VM without the value shows '-'. validFilterKey takes nics.[*0-9]*.(ip|mac|...).
        var h = Tagged();
        string web = Create(h, Payload().Replace("\"alias\": \"web\"", "\"alias\": \"a-rather-long-alias\""));
        string bare = Create(h, """{ "alias": "bare", "max_physical_memory": 1024, "autoboot": false }""");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("vmadm list -o alias,nics.0.ip,nics.0.vlan_id,brand")), Is.EqualTo(
                "ALIAS       NICS.0.IP             NICS.0.VLAN_ID        BRAND\n" +
                "a-rather-long-alias  10.0.0.2              12                    joyent\n" +
                "bare        -                     -                     joyent\n"));
            Assert.That(h.Ok(A("vmadm list -p -o alias,nics.0.ip,nics.0.netmask,nics.0.gateway")), Is.EqualTo(
                "a-rather-long-alias:10.0.0.2:255.255.255.0:10.0.0.1\nbare:::\n"));
            Assert.That(h.Ok(A("vmadm lookup nics.0.ip=10.0.0.2")), Is.EqualTo(web + "\n"));
            Assert.That(h.Ok(A("vmadm lookup nics.*.ip=10.0.0.2")), Is.EqualTo(web + "\n"));
            Assert.That(h.Ok(A("vmadm lookup nics.1.ip=10.0.0.2")), Is.Empty);
            Assert.That(h.Ok(A("vmadm list -H -o uuid nics.0.nic_tag=~^adm")), Is.EqualTo(web + "\n"));
            Assert.That(h.Fails(A("vmadm lookup nics.0.colour=red")).Stderr, Is.EqualTo("Invalid filter key: \"nics.0.colour\"\n"));
        }
        Assert.That(bare, Is.Not.EqualTo(web));
    }

    [Test]
    public void Get_prints_the_vm_as_json()
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        var j = JsonNode.Parse(h.Ok(A($"vmadm get {uuid}")))!.AsObject();
        var nic = j["nics"]![0]!.AsObject();
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)j["uuid"], Is.EqualTo(uuid));
            Assert.That((string?)j["alias"], Is.EqualTo("web"));
            Assert.That((int?)j["max_physical_memory"], Is.EqualTo(512));
            Assert.That((string?)j["state"], Is.EqualTo("stopped"));
            Assert.That((string?)j["zonepath"], Is.EqualTo("/zones/" + uuid));
            Assert.That((string?)nic["interface"], Is.EqualTo("net0"));
            Assert.That((string?)nic["nic_tag"], Is.EqualTo("admin"));
            Assert.That((string?)nic["ips"]![0], Is.EqualTo("10.0.0.2/24"));
            Assert.That((int?)nic["vlan_id"], Is.EqualTo(12));
            Assert.That((bool?)nic["primary"], Is.True);
            Assert.That((string?)nic["mac"], Does.StartWith("90:b8:d0:"));
        }
    }

    [Test]
    public void Create_reads_a_file_with_f()
    {
        var h = Tagged();
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, Payload());
            h.Ok("vmadm", "create", "-f", file);
            Assert.That(h.Host.Zones.Zones, Has.Count.EqualTo(1));
        }
        finally { File.Delete(file); }
    }

    [TestCase("{ not json", "Invalid JSON payload")]
    [TestCase("[1, 2]", "Invalid JSON payload: not an object")]
    [TestCase("""{ "cpu_cap": -1 }""", "Invalid value(s) for: cpu_cap")]
    [TestCase("""{ "disks": [] }""", "Unsupported property(s): disks")]
    [TestCase("""{ "max_physical_memory": "lots" }""", "Invalid value(s) for: max_physical_memory")]
    [TestCase("""{ "max_physical_memory": -5 }""", "Invalid value(s) for: max_physical_memory")]
    [TestCase("""{ "autoboot": 3 }""", "Invalid value(s) for: autoboot")]
    [TestCase("""{ "uuid": "not-a-uuid" }""", "Invalid value(s) for: uuid")]
    [TestCase("""{ "resolvers": ["dns.example"] }""", "Invalid value(s) for: resolvers")]
    [TestCase("""{ "brand": "solaris" }""", "Invalid value(s) for: brand")]
    [TestCase("""{ "nics": [ { "nic_tag": "nosuch", "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true } ] }""", "Invalid nic tag \"nosuch\"\n")]
    [TestCase("""{ "nics": [ { "ips": ["10.0.0.2/24"] } ] }""", "Invalid value(s) for: nics.*.nic_tag")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "ips": ["10.0.0.2"] } ] }""", "Invalid value(s) for: nics.*.ips")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "vlan_id": 5000 } ] }""", "Invalid value(s) for: nics.*.vlan_id")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "mac": "ff:ff:ff:ff:ff:ff" } ] }""", "Invalid value(s) for: nics.*.mac")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "mtu": 20 } ] }""", "Invalid value(s) for: nics.*.mtu")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "primary": "yes" } ] }""", "Invalid value(s) for: nics.*.primary")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "mtu": 9000, "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true } ] }""", "Invalid value(s) for: nics.*.mtu (nics.0: 9000 is larger than the MTU of e1000g0, 1500)")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "vrrp_vrid": 7 } ] }""", "Unsupported property(s): nics.*.vrrp_vrid")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "ips": ["10.0.0.2/24"], "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true }, { "nic_tag": "admin", "ips": ["10.0.0.2/24"], "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true } ] }""", "IP address 10.0.0.2 is already used by nics.0")]
    [TestCase("""{ "nics": [ { "nic_tag": "admin", "mac": "2:0:0:0:0:1", "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true }, { "nic_tag": "admin", "mac": "02:00:00:00:00:01", "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true } ] }""", "MAC address 02:00:00:00:00:01 is already used by nics.0")]
    public void Bad_payloads_create_nothing(string payload, string message)
    {
        var h = Tagged();
        var r = h.WithStdin(payload, "vmadm", "create");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.Contain(message));
            AssertNothingCreated(h);
        }
    }

    [Test]
    public void An_ip_used_by_another_vm_is_refused()
    {
        var h = Tagged();
        string first = Create(h, Payload());
        var r = h.WithStdin(Payload(), "vmadm", "create");
        Assert.That(r.Stderr, Does.Contain($"IP address 10.0.0.2 is already used by VM {first}"));
        Assert.That(h.Host.Zones.Zones, Has.Count.EqualTo(1));
    }

    [Test]
    public void A_vm_with_an_existing_uuid_is_refused()
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        var r = h.WithStdin($$"""{ "uuid": "{{uuid}}" }""", "vmadm", "create");
        Assert.That(r.Stderr, Does.Contain($"VM with UUID {uuid} already exists"));
    }

    [Test]
    public void Every_allow_flag_left_false_turns_its_protection_on()
    {
        var h = Tagged();
        string uuid = Create(h, """{ "autoboot": false, "nics": [ { "nic_tag": "admin", "ips": ["10.0.0.2/24"], "allowed_ips": ["10.0.0.9"], "allow_dhcp_spoofing": true } ] }""");
        h.Ok("vmadm", "start", uuid);
        var link = h.Host.Mac.Find("z1_net0")!;
        string protection = h.Host.Mac.FindProperty("protection")!.Get(link);
        string allowed = h.Host.Mac.FindProperty("allowed-ips")!.Get(link);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(protection, Does.Contain("mac-nospoof").And.Contain("ip-nospoof").And.Contain("restricted"));
            Assert.That(protection, Does.Not.Contain("dhcp-nospoof"));
            Assert.That(allowed, Does.Contain("10.0.0.2").And.Contain("10.0.0.9"));
        }
    }

    [Test]
    public void List_sorts_filters_and_selects_fields()
    {
        var h = Tagged();
        string small = Create(h, """{ "alias": "small", "max_physical_memory": 128, "autoboot": false }""");
        string big = Create(h, """{ "alias": "big", "max_physical_memory": 1024, "autoboot": false }""");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("vmadm list -H -o alias")), Is.EqualTo("small\nbig\n"));
            Assert.That(h.Ok(A("vmadm list -H -o alias -s -ram")), Is.EqualTo("big\nsmall\n"));
            Assert.That(h.Ok(A("vmadm list -p -o alias,ram alias=big")), Is.EqualTo("big:1024\n"));
            Assert.That(h.Ok(A("vmadm list -p -o alias alias=~^sm")), Is.EqualTo("small\n"));
            Assert.That(h.Ok(A("vmadm lookup alias=small")), Is.EqualTo(small + "\n"));
            Assert.That(h.Ok(A("vmadm lookup -1 alias=big")), Is.EqualTo(big + "\n"));
            Assert.That(h.Fails(A("vmadm lookup -1 brand=joyent")).Stderr, Does.Contain("Requested unique lookup but found 2 results."));
            // vmadm.js: formatVMList "invalid order field: ", validFilterKey 'Invalid filter key: "..."'.
            Assert.That(h.Fails(A("vmadm list -o colour")).Stderr, Is.EqualTo("invalid order field: colour\n"));
            Assert.That(h.Fails(A("vmadm list colour=red")).Stderr, Is.EqualTo("Invalid filter key: \"colour\"\n"));
            Assert.That(h.Fails(A("vmadm list -o nics.*.ip")).Stderr, Is.EqualTo("Invalid order key: \"nics.*.ip\"\n"));
            Assert.That(h.Fails(A("vmadm list alias")).Stderr, Does.Contain("invalid filter 'alias'"));
        }
        var json = JsonNode.Parse(h.Ok(A("vmadm lookup -j -o uuid,alias alias=big")))!.AsArray();
        Assert.That(json[0]!.AsObject().Select(p => p.Key), Is.EqualTo(new[] { "alias", "uuid" }));
    }

    [Test]
    public void Update_changes_scalars_and_nics()
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        string mac0 = h.Host.Zones.Find(uuid)!.Config.Nets[0].MacAddr!;
        h.Ok("vmadm", "update", uuid, "alias=renamed", "max_physical_memory=1024");
        var r = h.WithStdin($$"""{ "add_nics": [ { "nic_tag": "stub0", "ips": ["192.168.0.2/24"], {{Open}} } ], "update_nics": [ { "mac": "{{mac0}}", "ips": ["10.0.0.3/24"] } ] }""", "vmadm", "update", uuid);
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stderr, Is.EqualTo($"Successfully updated VM {uuid}\n"));
        var cfg = h.Host.Zones.Find(uuid)!.Config;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cfg.Vm!.Alias, Is.EqualTo("renamed"));
            Assert.That(cfg.CappedMemory, Is.EqualTo(1024L << 20));
            Assert.That(cfg.Nets.Select(n => n.Physical), Is.EqualTo(new[] { "z1_net0", "z1_net1" }));
            Assert.That(cfg.Nets[0].Ips, Is.EqualTo(new[] { "10.0.0.3/24" }));
        }
        h.WithStdin($$"""{ "remove_nics": ["{{mac0}}"] }""", "vmadm", "update", uuid);
        Assert.That(h.Host.Zones.Find(uuid)!.Config.Nets.Select(n => n.GlobalNic), Is.EqualTo(new[] { "stub0" }));
    }

    [TestCase("zpool=data", "Unsupported property(s): zpool")]
    [TestCase("max_physical_memory=lots", "Invalid value(s) for: max_physical_memory")]
    [TestCase("novalue", "Invalid property=value argument 'novalue'")]
    public void Bad_updates_change_nothing(string arg, string message)
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        var r = h.Fails("vmadm", "update", uuid, arg);
        Assert.That(r.Stderr, Does.Contain(string.Format(System.Globalization.CultureInfo.InvariantCulture, message, uuid)));
        Assert.That(h.Host.Zones.Find(uuid)!.Config.CappedMemory, Is.EqualTo(512L << 20));
    }

    [Test]
    public void An_update_giving_the_brand_leaves_it_and_says_nothing()
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        var r = h.Run("vmadm", "update", uuid, "brand=lx");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero);
            Assert.That(r.Stderr, Does.Not.Contain("brand"));
            Assert.That(h.Host.Zones.Find(uuid)!.Config.Brand, Is.EqualTo("joyent"));
        }
    }

    [Test]
    public void Zonecfg_info_attr_shows_the_attrs_vmadm_keeps()
    {
        var h = Tagged();
        string uuid = Create(h, Payload(extra: """, "package_name": "small" """));
        string info = h.Ok("zonecfg", "-z", uuid, "info", "attr");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(info, Does.Contain("attr:\n\tname: alias\n\ttype: string\n\tvalue: d2Vi\n"), "the alias 'web', base64");
            Assert.That(info, Does.Contain("\tname: owner-uuid\n\ttype: string\n\tvalue: 00000000-0000-0000-0000-000000000000\n"));
            Assert.That(info, Does.Contain("\tname: package-name\n\ttype: string\n\tvalue: small\n"));
            Assert.That(info, Does.Contain("\tname: create-timestamp\n\ttype: string\n\tvalue: 1970-01-01T00:00:00.000Z\n"));
            Assert.That(h.Ok("zonecfg", "-z", uuid, "info", "attr", "name=tmpfs"), Is.EqualTo("No such attr resource.\n"));
        }
    }

    [Test]
    public void Update_of_an_unknown_mac_is_refused()
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        var r = h.WithStdin("""{ "remove_nics": ["02:00:00:00:00:99"] }""", "vmadm", "update", uuid);
        Assert.That(r.Stderr, Does.Contain("no nic with MAC address 02:00:00:00:00:99"));
    }

    [Test]
    public void Quota_is_recorded_with_a_warning_that_it_is_not_enforced()
    {
        var h = Tagged();
        var r = h.WithStdin("""{ "quota": 10, "autoboot": false }""", "vmadm", "create");
        Assert.That(r.Stderr, Does.Contain("quota is recorded but not enforced yet"));
    }

    [Test]
    public void Lifecycle_commands_follow_the_vm_state()
    {
        var h = Tagged();
        string uuid = Create(h, Payload());
        using (Assert.EnterMultipleScope())
        {
            // VM.js reboot: 'Cannot reboot vm from state "' + obj.state + '", must be "running"'
            Assert.That(h.Fails("vmadm", "reboot", uuid).Stderr, Is.EqualTo($"Cannot reboot vm from state \"stopped\", must be \"running\"\n"));
        }
        h.Ok("vmadm", "start", uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run("vmadm", "reboot", uuid).Stderr, Is.EqualTo($"Successfully completed reboot for VM {uuid}\n"));
            Assert.That(h.Run("vmadm", "stop", "-F", uuid).ExitCode, Is.Zero);
        }
        h.Ok("vmadm", "start", uuid);
        Assert.That(h.Run("vmadm", "delete", uuid).Stderr, Is.EqualTo($"Successfully deleted VM {uuid}\n"));
        AssertNothingCreated(h);
    }

    [Test]
    public void Starting_a_running_vm_and_stopping_a_stopped_one_succeed_with_vmadm_messages()
    {
        // vmadm.js start: "if the error was because zone is already running (returned by VM.start()),
        // we'll treat as noop and exit 0"; VM.js: 'VM ' + obj.uuid + ' is already \'running\''.
        // vmadm.js stop: ENOTRUNNING is a noop too; VM.js: "VM %s is already not 'running' (currently: %s)".
        var h = Tagged();
        string uuid = Create(h, Payload());
        var stop = h.Run("vmadm", "stop", uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(stop.ExitCode, Is.Zero);
            Assert.That(stop.Stderr, Is.EqualTo($"VM {uuid} is already not 'running' (currently: stopped)\n"));
        }
        h.Ok("vmadm", "start", uuid);
        var start = h.Run("vmadm", "start", uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(start.ExitCode, Is.Zero);
            Assert.That(start.Stderr, Is.EqualTo($"VM {uuid} is already 'running'\n"));
            Assert.That(h.Host.Zones.Find(uuid)!.State, Is.EqualTo(ZoneState.Running));
        }
    }

    [Test]
    public void Unknown_payload_properties_are_warned_about_and_dropped()
    {
        // VM.js validateProperties: log.warn('Warning, invalid ' + action + ' property: [' + bad_prop
        // + '] removing from payload.'), then the create goes on without it.
        var h = Tagged();
        var r = h.WithStdin($$"""{ "alias": "w", "colour": "blue", "autoboot": false, "nics": [ { "nic_tag": "admin", "flavour": 1, {{Open}} } ] }""", "vmadm", "create");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.Zero, r.Stderr);
            Assert.That(r.Stderr, Does.StartWith(
                "Warning, invalid create property: [colour] removing from payload.\n" +
                "Warning, invalid create property: [nics.*.flavour] removing from payload.\n" +
                "Successfully created VM "));
        }
        string uuid = h.Host.Zones.Zones.Single(z => z.IsVm).Name;
        var u = h.Run("vmadm", "update", uuid, "colour=red", "alias=v");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(u.ExitCode, Is.Zero);
            Assert.That(u.Stderr, Is.EqualTo($"Warning, invalid update property: [colour] removing from payload.\nSuccessfully updated VM {uuid}\n"));
            Assert.That(h.Ok("vmadm", "get", uuid), Does.Not.Contain("colour"));
        }
    }

    [Test]
    public void Unknown_vms_and_bad_arguments_are_refused()
    {
        var h = Tagged();
        const string nope = "00000000-0000-4000-8000-000000000000";
        using (Assert.EnterMultipleScope())
        {
            // vmadm.js get: 'zoneadm: %s: No such zone configured', as vmload-zoneadm.js passes zoneadm's on.
            Assert.That(h.Fails("vmadm", "get", nope).Stderr, Is.EqualTo($"zoneadm: {nope}: No such zone configured\n"));
            Assert.That(h.Fails("vmadm", "delete", nope).Stderr, Is.EqualTo($"Failed to delete VM {nope}: zoneadm: {nope}: No such zone configured\n"));
            Assert.That(h.Fails("vmadm", "start", nope).ExitCode, Is.EqualTo(1));
            Assert.That(h.Fails("vmadm", "delete", nope).ExitCode, Is.EqualTo(1));
            Assert.That(h.Run("vmadm").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run("vmadm", "frob").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run("vmadm", "get").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run("vmadm", "create").ExitCode, Is.EqualTo(2));
            Assert.That(h.Fails("vmadm", "create", "-f", "/nonexistent.json").Stderr, Does.Contain("unable to read /nonexistent.json"));
            Assert.That(h.Run("vmadm", "update").ExitCode, Is.EqualTo(2));
        }
    }
}

public class NictagadmTests
{
    private static string[] A(string line) => CliHost.Split(line);

    [Test]
    public void List_shows_normal_and_etherstub_tags()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add admin e1000g0"));
        string mac = NicTagTable.Normalize(((PhysLink)h.Host.Mac.Find("e1000g1")!).FactoryMac);
        h.Ok("nictagadm", "add", "-p", "mtu=9000", "external", mac);
        h.Ok(A("nictagadm add -l stub0"));
        string admin = h.Host.NicTags.Find("admin")!.Mac!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("nictagadm list")), Is.EqualTo(
                "NAME           MACADDRESS         LINK           TYPE\n" +
                $"admin          {admin}  e1000g0        normal\n" +
                $"external       {mac}  e1000g1        normal\n" +
                "stub0          -                  -              etherstub\n"));
            Assert.That(h.Ok(A("nictagadm list -l -p")), Is.EqualTo("stub0:-:-:etherstub\n"));
            Assert.That(h.Ok(A("nictagadm list -L -p -d ,")), Is.EqualTo($"admin,{admin},e1000g0,normal\nexternal,{mac},e1000g1,normal\n"));
            Assert.That(h.Ok(A("nictagadm list -L -p")), Does.StartWith("admin:" + admin.Replace(":", "\\:", StringComparison.Ordinal) + ":e1000g0:normal\n"));
            Assert.That(h.Ok(A("dladm show-etherstub -p -o link")), Is.EqualTo("stub0\n"));
            Assert.That(h.Run(A("nictagadm exists admin")).ExitCode, Is.Zero);
            Assert.That(h.Run(A("nictagadm exists nope")).ExitCode, Is.EqualTo(1));
        }
    }

    [TestCase("nictagadm add admin", "Error: create non-local tag, but no mac address specified\n")]
    [TestCase("nictagadm add -l stub0 e1000g0", "Error: create local tag, but mac address specified\n")]
    [TestCase("nictagadm add admin 00:00:00:00:00:01", "Error: No physical nic found with MAC address '00:00:00:00:00:01'\n")]
    [TestCase("nictagadm add admin zz", "Error: MAC address 'zz' is invalid\n")]
    [TestCase("nictagadm add bad-name e1000g0", "Error: nic tag name is invalid\n")]
    [TestCase("nictagadm add -l stub e1000g0", "Error: create local tag, but mac address specified\n")]
    [TestCase("nictagadm add -l stub", "Error: nic tag name is invalid\n")]
    [TestCase("nictagadm add -p mtu=100 admin e1000g0", "Error: mtu must be between 1500-9000\n")]
    [TestCase("nictagadm add -p mtu=big admin e1000g0", "Error: invalid mtu: big\n")]
    [TestCase("nictagadm add -p speed=1 admin e1000g0", "Error: invalid property speed\n")]
    [TestCase("nictagadm update nope e1000g0", "Error: nic tag 'nope' does not exist\n")]
    [TestCase("nictagadm update nope", "Error: nothing to update\n")]
    [TestCase("nictagadm delete nope", "Error: nic tag 'nope' does not exist\n")]
    [TestCase("nictagadm list -d ,", "Error: Delimiter option requires parsable option to be set\n")]
    [TestCase("nictagadm list -l -L", "Error: Cannot specify both local and non-local options\n")]
    public void Bad_input_is_an_error_and_changes_nothing(string line, string stderr)
    {
        var h = new CliHost();
        var r = h.Fails(A(line));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Is.EqualTo(stderr));
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(h.Host.NicTags.Tags, Is.Empty);
        }
    }

    [Test]
    public void Usage_errors_exit_2()
    {
        var h = new CliHost();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run("nictagadm").ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("nictagadm frob")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("nictagadm add")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("nictagadm list -x")).ExitCode, Is.EqualTo(2));
        }
    }

    [Test]
    public void A_duplicate_tag_is_refused()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add admin e1000g0"));
        Assert.That(h.Fails(A("nictagadm add admin e1000g1")).Stderr, Is.EqualTo("Error: nic tag 'admin' already exists\n"));
    }

    [Test]
    public void Update_moves_a_tag_to_another_nic()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add admin e1000g0"));
        Assert.That(h.Ok(A("nictagadm update -p mtu=9000 admin e1000g1")), Is.EqualTo("MTU changes will not take effect until next reboot\n"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.NicTags.Resolve("admin")!.Name, Is.EqualTo("e1000g1"));
            Assert.That(h.Host.NicTags.Find("admin")!.Mtu, Is.EqualTo(9000));
        }
    }

    [Test]
    public void A_tag_in_use_by_a_vm_needs_force_to_delete()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add -l stub0"));
        var r = h.WithStdin("""{ "autoboot": false, "nics": [ { "nic_tag": "stub0", "allow_ip_spoofing": true, "allow_mac_spoofing": true, "allow_dhcp_spoofing": true, "allow_restricted_traffic": true } ] }""", "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        string uuid = h.Host.Zones.Zones[0].Name;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("nictagadm vms stub0")), Is.EqualTo(uuid + "\n"));
            Assert.That(h.Fails(A("nictagadm delete stub0")).Stderr, Is.EqualTo("Error: nic tag 'stub0' is in use\n"));
        }
        h.Ok(A("nictagadm delete -f stub0"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.NicTags.Tags, Is.Empty);
            Assert.That(h.Host.Mac.Find("stub0"), Is.Null);
        }
    }
}
