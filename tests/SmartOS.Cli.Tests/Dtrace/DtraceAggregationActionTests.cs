using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// stddev, trunc, clear, normalize/denormalize and the aggsort options, printed as dt_consume.c's
/// dt_print_aggs prints them (a scalar as " %16lld", a string key as "  %-50s"), and the -l
/// filters -m and -f.
/// </summary>
public class DtraceAggregationActionTests
{
    private static CommandResult D(params string[] args) => CliHost.TwoVnicsOnAStub().Run(["dtrace", .. args]);

    private static string Quiet(string program, params string[] options)
    {
        var r = D([.. options, "-q", "-n", program]);
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stdout;
    }

    [Test]
    public void Stddev_is_the_integer_root_of_the_mean_square_less_the_squared_mean()
    {
        // 1..4: mean 10/4 = 2, mean of squares 30/4 = 7, sqrt(7 - 4) = 1. 10 and 20: sqrt(250 - 225) = 5.
        Assert.That(Quiet("BEGIN { @a = stddev(1); @a = stddev(2); @a = stddev(3); @a = stddev(4); @b = stddev(10); @b = stddev(20); exit(0); }"),
            Is.EqualTo($"\n {1,16}\n {5,16}\n"));
        Assert.That(Quiet("BEGIN { @a = stddev(-7); @a = stddev(7); printa(\"%@d\\n\", @a); exit(0); }"), Is.EqualTo("7\n\n"));
    }

    [Test]
    public void Normalize_divides_what_is_printed_and_denormalize_undoes_it()
    {
        Assert.That(Quiet("BEGIN { @c[\"a\"] = sum(1000); @c[\"b\"] = sum(3500); @q = quantize(4); @q = quantize(4); normalize(@c, 1000); normalize(@q, 2); exit(0); }"),
            Is.EqualTo($"\n  {"a",-50} {1,16}\n  {"b",-50} {3,16}\n\n" +
                "           value  ------------- Distribution ------------- count    \n" +
                "               2 |                                         0        \n" +
                "               4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1        \n" +
                "               8 |                                         0        \n\n"));
        Assert.That(Quiet("BEGIN { @c = sum(1000); normalize(@c, 10); printa(\"%@d\\n\", @c); denormalize(@c); printa(\"%@d\\n\", @c); exit(0); }"),
            Is.EqualTo("100\n1000\n\n"));
    }

    [Test]
    public void Trunc_keeps_the_greatest_values_or_for_a_negative_count_the_least()
    {
        const string Fill = "@c[1] = sum(5); @c[2] = sum(1); @c[3] = sum(9);";
        Assert.That(Quiet($"BEGIN {{ {Fill} trunc(@c, 2); exit(0); }}"), Is.EqualTo($"\n {1,16} {5,16}\n {3,16} {9,16}\n"));
        Assert.That(Quiet($"BEGIN {{ {Fill} trunc(@c, -1); exit(0); }}"), Is.EqualTo($"\n {2,16} {1,16}\n"));
        Assert.That(Quiet($"BEGIN {{ {Fill} trunc(@c); @c[4] = sum(2); exit(0); }}"), Is.EqualTo($"\n {4,16} {2,16}\n"));
    }

    [Test]
    public void Clear_zeroes_the_values_and_keeps_the_keys()
    {
        Assert.That(Quiet("BEGIN { @c[\"x\"] = count(); @c[\"x\"] = count(); @s[\"y\"] = avg(4); clear(@c); clear(@s); exit(0); }"),
            Is.EqualTo($"\n  {"x",-50} {0,16}\n  {"y",-50} {0,16}\n"));
    }

    [Test]
    public void Aggsortkey_and_aggsortrev_order_the_entries()
    {
        const string Program = "BEGIN { @c[\"b\", 1] = sum(1); @c[\"a\", 2] = sum(2); @c[\"c\", 0] = sum(3); exit(0); }";
        string Row(string k, int n, int v) => $"  {k,-50} {n,16} {v,16}\n";
        Assert.That(Quiet(Program), Is.EqualTo("\n" + Row("b", 1, 1) + Row("a", 2, 2) + Row("c", 0, 3)));
        Assert.That(Quiet(Program, "-x", "aggsortkey"), Is.EqualTo("\n" + Row("a", 2, 2) + Row("b", 1, 1) + Row("c", 0, 3)));
        Assert.That(Quiet(Program, "-x", "aggsortrev"), Is.EqualTo("\n" + Row("c", 0, 3) + Row("a", 2, 2) + Row("b", 1, 1)));
        Assert.That(Quiet(Program, "-x", "aggsortkey", "-x", "aggsortkeypos=1"), Is.EqualTo("\n" + Row("c", 0, 3) + Row("b", 1, 1) + Row("a", 2, 2)));
    }

    [TestCase("switchrate=10hz")]
    [TestCase("aggrate=1s")]
    [TestCase("bufsize=4m")]
    public void Rate_and_buffer_options_are_refused_with_the_reason(string option)
    {
        var r = D("-x", option, "-n", "BEGIN { exit(0); }");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((2, $"dtrace: failed to set -x {option}: option has no effect here (records are consumed as probes fire, without kernel buffers)\n")));
    }

    [TestCase("BEGIN { trunc(1); }", "trunc( ) argument #1 is incompatible with prototype:\n\tprototype: aggregation\n\t argument: expression")]
    [TestCase("BEGIN { @a = count(); normalize(@a); }", "normalize( ) prototype mismatch: 1 arg passed, 2 expected")]
    [TestCase("BEGIN { clear(@nosuch); }", "failed to resolve @nosuch: Unknown variable name")]
    public void Aggregation_actions_check_their_arguments(string program, string message)
    {
        var r = D("-n", program);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, $"dtrace: invalid probe specifier {program}: {message}\n")));
    }

    [Test]
    public void Dash_l_filters_by_module_and_function_with_m_and_f()
    {
        var h = CliHost.TwoVnicsOnAStub();
        string[] Names(params string[] args) => h.Ok(["dtrace", "-l", .. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries)[1..]
            .Select(l => string.Join(':', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..])).ToArray();
        Assert.That(Names("-m", "a0"), Has.Length.EqualTo(6).And.All.StartWith("mac:a0:"));
        Assert.That(Names("-m", "mac:a0"), Has.Length.EqualTo(6));
        Assert.That(Names("-f", "a0:mac_tx"), Is.EqualTo(new[] { "mac:a0:mac_tx:transmit" }));
        Assert.That(Names("-f", "mac:*:mac_rx"), Has.Length.EqualTo(5));
        Assert.That(Names("-P", "ud?"), Is.EqualTo(new[] { "udp:ip:udp_output:send", "udp:ip:udp_input:receive" }));
        var r = h.Run("dtrace", "-l", "-m", "a:b:c");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "dtrace: invalid probe specifier a:b:c: invalid probe description \"a:b:c\": Overspecified probe description\n")));
    }
}
