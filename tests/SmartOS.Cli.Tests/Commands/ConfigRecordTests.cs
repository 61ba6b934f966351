using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>Configuration files read record by record (issue 20, items 1 and 9): a bad record loses
/// only itself, is named with its file and position, and is kept in the file on later writes; a
/// file that could not be read whole is never rewritten.</summary>
public class ConfigRecordTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-records-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private CliHost Boot() => new(store: new FileConfigStore(_root));

    private string PathOf(string name) => Path.Combine(_root, "etc", name);

    private void Put(string name, string text)
    {
        Directory.CreateDirectory(Path.Combine(_root, "etc"));
        File.WriteAllText(PathOf(name), text);
    }

    private const string ThreeStubsAndABadVid = """
        [
          {"Name": "stub0", "Class": "etherstub"},
          {"Name": "vnic0", "Class": "vnic", "Over": "stub0", "Mac": "2:8:20:1:2:3", "Vid": "abc"},
          {"Name": "stub1", "Class": "etherstub"},
          {"Name": "vnic1", "Class": "vnic", "Over": "stub1", "Mac": "2:8:20:1:2:4", "MacType": "fixed"}
        ]
        """;

    [Test]
    public void A_bad_field_loses_only_its_record_and_the_problem_names_file_record_and_line()
    {
        Put(MacLayer.ConfigName, ThreeStubsAndABadVid);

        var h = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Has.Count.EqualTo(1));
            Assert.That(h.Host.BootProblems[0], Does.StartWith("datalink.conf: record 2 (line 3): $.Vid: "));
            Assert.That(h.Ok(A("dladm show-link -p -o link")), Is.EqualTo("e1000g0\ne1000g1\nstub0\nstub1\nvnic1\n"));
        }
    }

    [Test]
    public void The_next_write_keeps_the_bad_record_in_the_file()
    {
        Put(MacLayer.ConfigName, ThreeStubsAndABadVid);
        Boot().Ok(A("dladm create-etherstub stub9"));

        var again = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.ReadAllText(PathOf(MacLayer.ConfigName)), Does.Contain("\"Vid\": \"abc\""));
            Assert.That(again.Host.BootProblems, Has.Count.EqualTo(1).And.Some.Contains("$.Vid"));
            Assert.That(again.Ok(A("dladm show-link -p -o link")), Is.EqualTo("e1000g0\ne1000g1\nstub0\nstub1\nvnic1\nstub9\n"));
        }
    }

    [Test]
    public void A_record_that_cannot_be_replayed_stays_in_the_file_after_a_write()
    {
        Put(MacLayer.ConfigName, """[{"Name":"v0","Class":"vnic","Over":"e1000g7","Mac":"2:0:0:0:0:1","MacType":"fixed"}]""");
        Boot().Ok(A("dladm create-etherstub stub0"));

        var again = Boot();

        Assert.That(again.Host.BootProblems, Is.EqualTo(new[] { "datalink.conf: record 2 (line 7): v0: object not found" }));
    }

    [Test]
    public void A_bad_zone_record_loses_only_that_zone_and_survives_the_next_vmadm_create()
    {
        Put(ZoneTable.ConfigName, """
            [
              {"Config": {"Name": "a", "ZonePath": "/zones/a"}, "State": "installed"},
              {"Config": {"Name": "b", "ZonePath": "/zones/b", "CappedMemory": "lots"}, "State": "installed"},
              {"Config": {"Name": "c", "ZonePath": "/zones/c"}, "State": "installed"}
            ]
            """);
        var h = Boot();
        Assert.That(h.Host.BootProblems.Single(), Does.StartWith("zones.conf: record 2 (line 3): $.Config.CappedMemory: "));
        Assert.That(h.WithStdin("""{ "alias": "x" }""", "vmadm", "create").ExitCode, Is.Zero);

        var again = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.Host.BootProblems.Single(), Does.Contain("CappedMemory"));
            Assert.That(again.Host.Zones.Zones.Select(z => z.Name).Take(2), Is.EqualTo(new[] { "a", "c" }));
            Assert.That(again.Host.Zones.Zones, Has.Count.EqualTo(3));
        }
    }

    [TestCase(MacLayer.ConfigName)]
    [TestCase(MacLayer.FlowConfigName)]
    [TestCase(NicTagTable.ConfigName)]
    [TestCase(ZoneTable.ConfigName)]
    public void A_null_record_is_reported_not_thrown(string file)
    {
        Put(file, "[null]");

        CliHost? h = null;
        Assert.DoesNotThrow(() => h = Boot());

        Assert.That(h!.Host.BootProblems, Is.EqualTo(new[] { $"{file}: record 1 (line 1): empty record (null)" }));
    }

    [TestCase("null", "not an array")]
    [TestCase("{}", "not an array")]
    [TestCase("\"x\"", "not an array")]
    [TestCase("[{\"Name\":\"stub0\",\"Class\":\"etherstub\"},", "line 1")]
    public void A_file_that_is_not_an_array_of_records_is_reported_and_never_rewritten(string text, string reason)
    {
        Put(MacLayer.ConfigName, text);
        var h = Boot();

        var r = h.Fails(A("dladm create-etherstub stub5"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems.Single(), Does.StartWith("datalink.conf: ").And.Contains(reason));
            Assert.That(r.Stderr, Does.Contain("datalink.conf").And.Contain("could not be read"));
            Assert.That(File.ReadAllText(PathOf(MacLayer.ConfigName)), Is.EqualTo(text));
            Assert.That(h.Ok(A("dladm show-link -p -o link")), Does.Not.Contain("stub5"));
        }
    }

    [Test]
    public void A_directory_in_place_of_a_file_is_reported()
    {
        Directory.CreateDirectory(PathOf(ZoneTable.ConfigName));

        var h = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems.Single(), Does.StartWith("zones.conf: ").And.Contains("directory"));
            Assert.That(h.Fails("zonecfg", "-z", "web", "create; set zonepath=/zones/web").Stderr, Does.Contain("could not be read"));
        }
    }

    [Test]
    public void A_directory_in_place_of_an_ipadm_file_is_reported()
    {
        Directory.CreateDirectory(PathOf("ipadm.conf"));

        var h = Boot();

        Assert.That(h.Host.BootProblems.Single(), Does.StartWith("global zone: ipadm.conf: ").And.Contains("directory"));
    }

    [Test]
    public void A_bad_ipadm_record_is_named_by_its_line_and_the_others_apply()
    {
        Put("ipadm.conf", "# persistent interfaces\ncreate-if e1000g0\nbogus-verb x\ncreate-if e1000g1\n");

        var h = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems.Single(), Does.StartWith("global zone: ipadm.conf: line 3: ipadm bogus-verb x: "));
            Assert.That(h.Ok(A("ipadm show-if")), Does.Contain("e1000g0").And.Contain("e1000g1"));
        }
    }

    [Test]
    public void Out_of_range_zone_values_are_reported_not_accepted()
    {
        Put(ZoneTable.ConfigName, """
            [
              {"Config": {"Name": "a", "ZonePath": "/zones/a", "CappedMemory": 4611686018427387904}, "State": "installed"},
              {"Config": {"Name": "b", "ZonePath": "/zones/b"}, "State": "exploded"},
              {"Config": {"Name": "c", "ZonePath": "/zones/c"}, "State": "installed"}
            ]
            """);

        var h = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Has.Count.EqualTo(2));
            Assert.That(h.Host.BootProblems[0], Does.StartWith("zones.conf: record 1 (line 2): a: capped-memory"));
            Assert.That(h.Host.BootProblems[1], Does.StartWith("zones.conf: record 2 (line 3): b: ").And.Contains("exploded"));
            Assert.That(h.Host.Zones.Zones.Select(z => z.Name), Is.EqualTo(new[] { "c" }));
        }
    }

    [TestCase("\"Mtu\": 100000", "mtu '100000' is not from 576 to 9000")]
    [TestCase("\"BlockedOutgoingPorts\": [70000]", "blocked outgoing port '70000' is not from 1 to 65535")]
    [TestCase("\"VlanId\": 5000", "vlan-id '5000' is not valid")]
    public void An_out_of_range_net_value_in_zones_conf_is_reported(string field, string reason)
    {
        Put(ZoneTable.ConfigName, $$"""[{"Config": {"Name": "a", "ZonePath": "/zones/a", "Nets": [{"Physical": "net0", "GlobalNic": "admin", {{field}}}]}, "State": "installed"}]""");

        var h = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Is.EqualTo(new[] { $"zones.conf: record 1 (line 1): a: net net0: {reason}" }));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void A_vm_record_beyond_vmadms_limits_is_reported_not_accepted()
    {
        Put(ZoneTable.ConfigName, $$$"""
            [
              {"Config": {"Name": "a", "ZonePath": "/zones/a", "Vm": {"Alias": "{{{new string('x', 2000)}}}", "Index": 1}}, "State": "installed"},
              {"Config": {"Name": "b", "ZonePath": "/zones/b", "Vm": {"Quota": 9223372036854775807, "Index": 2}}, "State": "installed"}
            ]
            """);

        var h = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Is.EqualTo(new[]
            {
                $"zones.conf: record 1 (line 2): a: alias: longer than {VmModel.MaxAliasBytes} bytes",
                $"zones.conf: record 2 (line 3): b: quota: must be from 0 to {VmModel.MaxQuotaGiB} GiB",
            }));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void A_huge_bad_record_is_not_echoed_in_full()
    {
        string huge = new('x', 5_000_000);
        Put(MacLayer.ConfigName, $$"""[{"Name": "{{huge}}", "Class": "etherstub"}, {"Name": "v", "Class": "vnic", "Mac": "{{huge}}"}]""");

        var h = Boot();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Host.BootProblems, Has.Count.EqualTo(2));
            Assert.That(h.Host.BootProblems, Has.All.Length.LessThan(300));
        }
    }

    // ---- item 2: numbers in range ---------------------------------------------------------------

    private const string HugeMaxbw = "99999999999999999999999M";

    [Test]
    public void A_huge_maxbw_in_datalink_conf_is_reported_and_the_host_boots()
    {
        Put(MacLayer.ConfigName, $$$"""[{"Name": "stub0", "Class": "etherstub"}, {"Name": "v0", "Class": "vnic", "Over": "stub0", "Mac": "2:8:20:1:2:3", "Props": {"maxbw": "{{{HugeMaxbw}}}"}}]""");

        CliHost? h = null;
        Assert.DoesNotThrow(() => h = Boot());

        Assert.That(h!.Host.BootProblems, Is.EqualTo(new[] { "datalink.conf: record 2 (line 1): v0: cannot set link property 'maxbw': invalid argument" }));
    }

    [Test]
    public void Set_linkprop_with_a_huge_maxbw_gives_dladms_error()
    {
        var h = Boot();

        var r = h.Fails(A($"dladm set-linkprop -p maxbw={HugeMaxbw} e1000g0"));

        Assert.That(r.Stderr, Is.EqualTo($"dladm: warning: cannot set link property 'maxbw' on 'e1000g0': invalid argument\n"));
    }

    [Test]
    public void Create_vnic_with_a_huge_maxbw_leaves_nothing()
    {
        var h = Boot();

        var r = h.Fails(A($"dladm create-vnic -l e1000g0 -p maxbw={HugeMaxbw} v0"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.StartWith("dladm: ").And.Contains("invalid argument"));
            Assert.That(h.Ok(A("dladm show-vnic -p -o link")), Is.Empty);
            Assert.That(File.Exists(PathOf(MacLayer.ConfigName)) ? File.ReadAllText(PathOf(MacLayer.ConfigName)) : "", Does.Not.Contain("v0"));
        }
    }

    [Test]
    public void Add_flow_with_a_huge_maxbw_gives_flowadms_error()
    {
        var h = Boot();

        var r = h.Fails(A($"flowadm add-flow -l e1000g0 -a transport=tcp -p maxbw={HugeMaxbw} f0"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Stderr, Does.StartWith("flowadm: ").And.Contains("invalid argument"));
            Assert.That(h.Ok(A("flowadm show-flow -p -o flow")), Is.Empty);
        }
    }

    [Test]
    public void Set_flowprop_with_a_huge_maxbw_gives_flowadms_error()
    {
        var h = Boot();
        h.Ok(A("flowadm add-flow -l e1000g0 -a transport=tcp f0"));

        var r = h.Fails(A($"flowadm set-flowprop -p maxbw={HugeMaxbw} f0"));

        Assert.That(r.Stderr, Does.StartWith("flowadm: ").And.Contains("invalid argument"));
    }

    // ---- every field of every file, damaged ---------------------------------------------------

    private static readonly (string File, string Record)[] s_goodRecords =
    [
        (MacLayer.ConfigName, """{"Name": "vnic0", "Class": "vnic", "Over": "e1000g0", "Mac": "2:8:20:1:2:3", "MacType": "fixed", "Vid": 5, "FactorySlot": 1, "Zone": "global", "Props": {"mtu": "1400", "maxbw": "10M"}}"""),
        (MacLayer.FlowConfigName, """{"Name": "f0", "Link": "e1000g0", "Attrs": "transport=tcp", "Props": {"maxbw": "10M", "priority": "low"}}"""),
        (NicTagTable.ConfigName, """{"Name": "admin", "Mac": "00:08:20:00:00:00", "Mtu": 1500, "Local": false}"""),
        (ZoneTable.ConfigName, """{"Config": {"Name": "z1", "ZonePath": "/zones/z1", "Brand": "joyent", "Autoboot": true, "IpType": "exclusive", "CappedMemory": 1073741824, "Uuid": "u", "Nets": [{"Physical": "vnic0", "GlobalNic": "admin", "VlanId": 0, "Mtu": 1500, "Ips": ["10.0.0.2/24"], "Gateways": ["10.0.0.1"], "AllowedIps": [], "BlockedOutgoingPorts": [25]}], "Vm": {"Alias": "web", "Quota": 10, "Resolvers": ["8.8.8.8"], "Index": 1}}, "State": "installed"}"""),
    ];

    private static readonly JsonNode?[] s_damage = [null, "abc", 1e30, -1, 99999999999999999999.0, new JsonArray(), new JsonObject(), new JsonArray((JsonNode?)null)];

    /// <summary>Every (file, JSON path, damaged value): each property of a good record, at any depth.</summary>
    private static IEnumerable<TestCaseData> DamagedFields()
    {
        foreach (var (file, record) in s_goodRecords)
        {
            var paths = new List<string>();
            void Walk(JsonNode? n, string path)
            {
                if (n is JsonObject o) foreach (var (k, v) in o) { paths.Add(path + "." + k); Walk(v, path + "." + k); }
                else if (n is JsonArray a) for (int i = 0; i < a.Count; i++) { paths.Add($"{path}[{i}]"); Walk(a[i], $"{path}[{i}]"); }
            }
            Walk(JsonNode.Parse(record), "$");
            foreach (string path in paths)
                yield return new TestCaseData(file, record, path).SetArgDisplayNames(file, path);
        }
    }

    [TestCaseSource(nameof(DamagedFields))]
    public void A_damaged_field_never_throws_and_any_problem_names_its_position(string file, string record, string path)
    {
        foreach (var damage in s_damage)
        {
            var bad = JsonNode.Parse(record)!;
            Replace(bad, path, damage?.DeepClone());
            Put(file, $"[{bad.ToJsonString()}, {record.Replace("0", "1", StringComparison.Ordinal)}]");

            CliHost? h = null;
            Assert.DoesNotThrow(() => h = Boot(), $"{path} = {damage?.ToJsonString() ?? "null"}");
            Assert.That(h!.Host.BootProblems, Has.All.StartsWith(file + ": record ").Or.StartsWith(file + ": line "), $"{path} = {damage?.ToJsonString() ?? "null"}");
        }
    }

    private static void Replace(JsonNode root, string path, JsonNode? value)
    {
        var parts = path[2..].Replace("[", ".[", StringComparison.Ordinal).Split('.', StringSplitOptions.RemoveEmptyEntries);
        JsonNode node = root;
        for (int i = 0; i < parts.Length - 1; i++) node = Step(node, parts[i])!;
        string last = parts[^1];
        if (last.StartsWith('[')) node.AsArray()[int.Parse(last[1..^1], System.Globalization.CultureInfo.InvariantCulture)] = value;
        else node.AsObject()[last] = value;
    }

    private static JsonNode? Step(JsonNode node, string part)
        => part.StartsWith('[') ? node.AsArray()[int.Parse(part[1..^1], System.Globalization.CultureInfo.InvariantCulture)] : node.AsObject()[part];
}
