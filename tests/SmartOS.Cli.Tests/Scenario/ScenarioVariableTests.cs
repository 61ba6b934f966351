using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>$NAME of the environment in a scenario's words and here-documents
/// (tools/Scenario/ScenarioRunner.Variables.cs).</summary>
public class ScenarioVariableTests
{
    private string _dir = "";
    private readonly string _name = "SMARTOS_TEST_" + Guid.NewGuid().ToString("N").ToUpperInvariant();

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-vars-").FullName;

    [TearDown]
    public void RemoveDir()
    {
        Environment.SetEnvironmentVariable(_name, null);
        Directory.Delete(_dir, recursive: true);
    }

    private (int Code, string Out, string Err) Run(string script)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = new ScenarioRunner(o, e, _dir).Run(script, Path.Combine(_dir, "test.scn"));
        return (code, o.ToString(), e.ToString());
    }

    [Test]
    public void A_variable_names_a_file_in_a_word_and_in_a_here_document_and_the_transcript_shows_it_as_written()
    {
        string payloads = Directory.CreateDirectory(Path.Combine(_dir, "payloads")).FullName;
        File.WriteAllText(Path.Combine(payloads, "p.json"), """{ "brand": "joyent", "max_physical_memory": 64 }""");
        Environment.SetEnvironmentVariable(_name, payloads);
        var (code, o, e) = Run($$"""
            host h1
            vmadm validate create -f ${{_name}}/p.json
            vmadm create <<JSON
            { "alias": "{{"${" + _name + "}"}}", "brand": "joyent", "max_physical_memory": 64 }
            JSON
            vmadm list -H -o alias
            """);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, e);
            Assert.That(o, Does.Contain($"h1# vmadm validate create -f ${_name}/p.json\nVALID 'create' payload for joyent brand VMs.\n"));
            Assert.That(o, Does.Contain(payloads + "\n"), "the here-document's ${NAME} is the value");
        }
    }

    [Test]
    public void An_unset_variable_is_the_scenarios_error_at_its_line_and_nothing_runs()
    {
        var (code, o, e) = Run($$"""
            host h1
            vmadm create <<JSON
            { "alias": "x", "brand": "joyent", "image_uuid": "${{_name}}" }
            JSON
            vmadm validate create -f ${{_name}}/p.json
            vmadm list -H -o alias
            """);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(1));
            Assert.That(e, Does.Contain($"test.scn:2: ${_name} is not set in the environment (the scenario names files by it)"));
            Assert.That(e, Does.Contain($"test.scn:5: ${_name} is not set in the environment"));
            Assert.That(o, Does.Not.Contain("h1# vmadm create"), "the here-document's command did not run");
            Assert.That(o, Does.Not.Contain("JSON"), "the here-document's lines are not run as commands");
        }
    }
}
