using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>--json, this project's output mode for tools (Commands/Dtrace.cs; illumos dtrace has
/// none): one JSON object a line per record and per aggregation printed.</summary>
public class DtraceJsonTests
{
    private static CommandResult D(params string[] args) => CliHost.TwoVnicsOnAStub().Run(["dtrace", .. args]);

    [Test]
    public void Records_and_aggregations_are_json_lines()
    {
        var r = D("--json", "-q", "-n", "BEGIN { printf(\"hi %d\", 1); trace(\"s\"); @c[\"a\", 2] = count(); @q = lquantize(3, 0, 10, 5); @l = llquantize(0, 10, 0, 1, 10); exit(0); }");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((0, "")));
        Assert.That(r.Stdout, Is.EqualTo(
            "{\"cpu\":0,\"epid\":1,\"id\":1,\"probe\":\"dtrace:::BEGIN\",\"output\":\"hi 1s\"}\n" +
            "{\"aggregation\":\"@c\",\"entries\":[{\"keys\":[\"a\",2],\"value\":1}]}\n" +
            "{\"aggregation\":\"@q\",\"entries\":[{\"keys\":[],\"buckets\":[{\"value\":\"0\",\"count\":1}]}]}\n" +
            "{\"aggregation\":\"@l\",\"entries\":[{\"keys\":[],\"buckets\":[{\"value\":\"< 1\",\"count\":1}]}]}\n"));
    }

    [Test]
    public void Printa_without_a_format_prints_the_aggregation_after_its_record()
    {
        var r = D("--json", "-n", "BEGIN { @ = sum(5); printa(@); exit(0); }");
        Assert.That(r.Stdout, Is.EqualTo(
            "{\"cpu\":0,\"epid\":1,\"id\":1,\"probe\":\"dtrace:::BEGIN\",\"output\":\"\"}\n" +
            "{\"aggregation\":\"@\",\"entries\":[{\"keys\":[],\"value\":5}]}\n"));
        Assert.That(r.Stderr, Is.EqualTo("dtrace: description 'BEGIN ' matched 1 probe\n"));
    }
}
