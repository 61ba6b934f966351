using System.Text.Json;
using System.Text.Json.Nodes;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// Cases of SmartOS's own vmadm test suite (smartos-live src/vm/tests/test-*.js, issue 22), ported
/// as data: Data/vmadm-smartos-cases.json holds each case's payloads and expectations, naming its JS
/// file and case. A case is a list of steps on a fresh host whose nic tags are admin (e1000g0) and
/// external (e1000g1), and, when the case names a "pool" size in MiB (256), a `zones` pool on a sparse file
/// of that size in a temporary root directory, so that VMs live on datasets (zones/VmDatasets.cs):
///   "run"      a command line; "$uuid" is the VM the last create made, "$macN" its Nth nic's MAC;
///              "payload" its standard input; "exit" its status (0 unless given); "stderr" and
///              "stdout" texts its output must contain ("$uuid" expanded in stdout), "stderrIs" the whole of stderr;
///   "get"      paths into vmadm get's object ("nics.0.ips") and the JSON each must equal (null: absent;
///              "$uuid" and "$macN" as in "run"; "<NON-EMPTY>", as test-defaults.js writes it, any
///              string but ""); "getNot" paths and JSON each must not equal;
///   "keep"     names for paths of vmadm get's object, whose JSON "$name" then stands for (a value
///              before a change, as test-reboot.js keeps prev_boot_timestamp);
///   "wait"     a duration the host's clock runs on (SmartOS's tests take real seconds between steps;
///              here time is virtual and moves only when told);
///   "linkprop" VNIC name to property to the value dladm show-linkprop -p shows.
/// The cases left out, and why, are listed in README.md ("vmadm and SmartOS's test suite").
/// </summary>
public class VmadmSmartosSuiteTests
{
    private const string DataFile = "Commands/Data/vmadm-smartos-cases.json";

    public static IEnumerable<TestCaseData> Cases()
    {
        string path = Path.Combine(TestContext.CurrentContext.TestDirectory, DataFile);
        var cases = JsonNode.Parse(File.ReadAllText(path))!.AsArray();
        foreach (var c in cases)
        {
            var o = c!.AsObject();
            string js = (string)o["js"]!, name = (string)o["case"]!;
            yield return new TestCaseData(o.ToJsonString()).SetName($"{js}: {name}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Smartos_vmadm_case_behaves_as_its_test_expects(string caseJson)
    {
        var c = JsonNode.Parse(caseJson)!.AsObject();
        // A case running a bhyve/kvm guest builds it from virt/guests with gcc (HvmGuest.cs).
        if ((string?)c["needs"] == "gcc" && SmartOS.Virt.GuestCompiler.FindGcc(out string noGcc) == null) Assert.Ignore(noGcc);
        string? root = c["pool"] is JsonNode ? Directory.CreateTempSubdirectory("smartos-vmadm-case-").FullName : null;
        try
        {
            Run(c, root);
        }
        finally
        {
            if (root != null) Directory.Delete(root, recursive: true);
        }
    }

    private static void Run(JsonObject c, string? root)
    {
        var h = root == null ? new CliHost() : new CliHost(store: new SmartOS.Kernel.FileConfigStore(root));
        if (root != null)
        {
            // A `zones` pool on a sparse file of the case's size (MiB), as a SmartOS host has.
            using (var fs = new FileStream(Path.Combine(root, "d0"), FileMode.CreateNew)) fs.SetLength((long)c["pool"]! << 20);
            h.Ok(CliHost.Split("zpool create zones d0"));
        }
        h.Ok(CliHost.Split("nictagadm add admin e1000g0"));
        h.Ok(CliHost.Split("nictagadm add external e1000g1"));
        string? uuid = null;
        var kept = new Dictionary<string, string>(StringComparer.Ordinal);
        int n = 0;
        foreach (var stepNode in c["steps"]!.AsArray())
        {
            var step = stepNode!.AsObject();
            string where = $"step {n++} of {(string)c["js"]!} \"{(string)c["case"]!}\"";
            if (step["wait"] is JsonNode wait)
            {
                Assert.That(SmartOS.Kernel.Time.TryParseDuration((string)wait!, out long ns), Is.True, $"{where}: wait {wait}");
                h.World.Scheduler.RunFor(ns);
            }
            if (step["run"] is JsonNode run)
            {
                string line = Expand(h, (string)run!, uuid);
                string[] argv = CliHost.Split(line);
                var r = step["payload"] is JsonNode p ? h.WithStdin(Expand(h, p.ToJsonString(), uuid), argv) : h.Run(argv);
                using (Assert.EnterMultipleScope())
                {
                    Assert.That(r.ExitCode, Is.EqualTo((int?)step["exit"] ?? 0), $"{where}: {line}: {r.Stderr}");
                    if (step["stderr"] is JsonNode se) Assert.That(r.Stderr, Does.Contain((string)se!), where);
                    if (step["stderrIs"] is JsonNode si) Assert.That(r.Stderr, Is.EqualTo(Expand(h, (string)si!, uuid)), where);
                    if (step["stdout"] is JsonNode so) Assert.That(r.Stdout, Does.Contain(Expand(h, (string)so!, uuid)), where);
                }
                if (argv is ["vmadm", "create", ..] && r.ExitCode == 0)
                    uuid = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
            }
            if (step["get"] is JsonObject get)
            {
                var vm = JsonNode.Parse(h.Ok("vmadm", "get", uuid!))!;
                using (Assert.EnterMultipleScope())
                {
                    foreach (var (key, want) in get)
                    {
                        if (want is JsonValue v && v.TryGetValue(out string? text) && text == "<NON-EMPTY>")
                            Assert.That(At(vm, key) is JsonValue got && got.TryGetValue(out string? str) && str.Length > 0, Is.True, $"{where}: vmadm get {key} is {At(vm, key)?.ToJsonString() ?? "absent"}");
                        else
                            Assert.That(At(vm, key)?.ToJsonString(), Is.EqualTo(want == null ? null : Expand(h, want.ToJsonString(), uuid, kept)), $"{where}: vmadm get {key}");
                    }
                }
            }
            if (step["getNot"] is JsonObject getNot)
            {
                var vm = JsonNode.Parse(h.Ok("vmadm", "get", uuid!))!;
                using (Assert.EnterMultipleScope())
                {
                    foreach (var (key, unwanted) in getNot)
                        Assert.That(At(vm, key)?.ToJsonString(), Is.Not.EqualTo(Expand(h, unwanted!.ToJsonString(), uuid, kept)), $"{where}: vmadm get {key}");
                }
            }
            if (step["keep"] is JsonObject keep)
            {
                var vm = JsonNode.Parse(h.Ok("vmadm", "get", uuid!))!;
                foreach (var (name, path) in keep) kept[name] = At(vm, (string)path!)?.ToJsonString() ?? "null";
            }
            if (step["linkprop"] is JsonObject links)
            {
                using (Assert.EnterMultipleScope())
                {
                    foreach (var (link, props) in links)
                        foreach (var (prop, want) in props!.AsObject())
                            Assert.That(h.Ok("dladm", "show-linkprop", "-c", "-o", "value", "-p", prop, link).TrimEnd('\n'),
                                Is.EqualTo((string)want!), $"{where}: {link} {prop}");
                }
            }
        }
    }

    /// <summary>A path of vmadm get's object ("nics.0.allowed_ips"); null when it is not there.</summary>
    private static JsonNode? At(JsonNode root, string path)
    {
        JsonNode? node = root;
        foreach (string part in path.Split('.'))
        {
            node = node switch
            {
                JsonArray a when int.TryParse(part, out int i) => i < a.Count ? a[i] : null,
                JsonObject o => o[part],
                _ => null,
            };
            if (node == null) return null;
        }
        return node;
    }

    /// <summary>Replaces $uuid and $macN with the last created VM's, and a "$name" JSON string with the
    /// JSON a "keep" step kept under that name.</summary>
    private static string Expand(CliHost h, string text, string? uuid, Dictionary<string, string>? kept = null)
    {
        if (kept != null)
            foreach (var (name, json) in kept) text = text.Replace($"\"${name}\"", json, StringComparison.Ordinal);
        if (uuid == null || !text.Contains('$', StringComparison.Ordinal)) return text;
        var vm = JsonNode.Parse(h.Ok("vmadm", "get", uuid))!;
        var nics = vm["nics"]!.AsArray();
        for (int i = nics.Count - 1; i >= 0; i--) text = text.Replace($"$mac{i}", (string)nics[i]!["mac"]!, StringComparison.Ordinal);
        return text.Replace("$uuid", uuid, StringComparison.Ordinal);
    }
}
