using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// printa() of several aggregations, as libdtrace joins them (dt_aggregate.c's
/// dtrace_aggregate_walk_joined: every key once, 0 where an aggregation lacks it, sorted by the
/// values from -x aggsortpos on and then by key; dt_consume.c's dt_print_aggs: the keys, then each
/// aggregation's datum; dt_printf.c's dt_printf_format: each %@ takes the next aggregation, those
/// beyond the last the last's again; dt_printa_validate's key-signature errors).
/// </summary>
public class DtracePrintaJoinedTests
{
    private static CommandResult D(params string[] args) => CliHost.TwoVnicsOnAStub().Run(["dtrace", .. args]);

    // @a: x 1, y 2.  @b: x 30, z 5.  Joined: x (1, 30), y (2, 0), z (0, 5).
    private const string Fill = "@a[\"x\"] = count(); @a[\"y\"] = count(); @a[\"y\"] = count(); @b[\"x\"] = sum(30); @b[\"z\"] = sum(5);";

    private static string Quiet(string program, params string[] options)
    {
        var r = D([.. options, "-q", "-n", program]);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((0, "")));
        return r.Stdout;
    }

    [Test]
    public void A_format_takes_the_keys_then_one_aggregation_per_at_conversion()
    {
        // Sorted by @a's value, ties by @b's, then by key; both are printed, so nothing more at the end.
        Assert.That(Quiet($"BEGIN {{ {Fill} printa(\"%s %@d %@d\\n\", @a, @b); exit(0); }}"), Is.EqualTo("z 0 5\nx 1 30\ny 2 0\n\n"));
        // A %@ beyond the aggregations converts the last one again.
        Assert.That(Quiet($"BEGIN {{ {Fill} printa(\"%s %@d %@d %@d\\n\", @a, @b); exit(0); }}"), Is.EqualTo("z 0 5 5\nx 1 30 30\ny 2 0 0\n\n"));
    }

    [Test]
    public void Aggsortpos_sorts_by_the_named_aggregation_first()
    {
        const string Program = $"BEGIN {{ {Fill} printa(\"%s %@d %@d\\n\", @a, @b); exit(0); }}";
        Assert.That(Quiet(Program, "-x", "aggsortpos=1"), Is.EqualTo("y 2 0\nz 0 5\nx 1 30\n\n"));
        Assert.That(Quiet(Program, "-x", "aggsortpos=1", "-x", "aggsortrev"), Is.EqualTo("x 1 30\nz 0 5\ny 2 0\n\n"));
        // A position past the last aggregation is silently the first.
        Assert.That(Quiet(Program, "-x", "aggsortpos=7"), Is.EqualTo("z 0 5\nx 1 30\ny 2 0\n\n"));
        Assert.That(Quiet(Program, "-x", "aggsortkey"), Is.EqualTo("x 1 30\ny 2 0\nz 0 5\n\n"));
        Assert.That(D("-x", "aggsortpos=first", "-n", "BEGIN { exit(0); }").Stderr,
            Is.EqualTo("dtrace: failed to set -x aggsortpos=first: Invalid value for specified option\n"));
    }

    [Test]
    public void Without_a_format_each_row_has_the_keys_and_every_aggregation_s_value()
    {
        Assert.That(Quiet($"BEGIN {{ {Fill} printa(@a, @b); exit(0); }}"), Is.EqualTo(
            $"\n  {"z",-50} {0,16} {5,16}\n  {"x",-50} {1,16} {30,16}\n  {"y",-50} {2,16} {0,16}\n\n"));
    }

    [TestCase("BEGIN { @a[1] = count(); @b[1, 2] = count(); printa(@a, @b); }",
        "printa( ): @a and @b do not have matching key signatures: @a has 1 key, @b has 2 keys")]
    [TestCase("BEGIN { @a[\"x\"] = count(); @b[1] = count(); printa(@a, @b); }",
        "printa( ): @b[ ] key #1 is incompatible with @a:\n        a key #1: string\n        b key #1: int64_t")]
    [TestCase("BEGIN { printa(\"%d\\n\"); }", "printa( ) prototype mismatch: 1 args passed, 2 expected")]
    [TestCase("BEGIN { @a = count(); printa(@a, 1); }", "printa( ) argument #2 is incompatible with prototype:\n\tprototype: aggregation\n\t argument: int64_t")]
    public void Aggregations_printed_together_must_share_their_keys(string program, string message)
    {
        var r = D("-n", program);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, $"dtrace: invalid probe specifier {program}: {message}\n")));
    }
}
