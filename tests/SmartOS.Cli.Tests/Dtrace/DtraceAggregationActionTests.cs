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
    public void Aggsize_bounds_the_keys_and_the_drops_are_reported_as_dtrace_does()
    {
        // A count() keyed by one integer takes 8 + 8 + 40 bytes: 200 bytes hold three keys.
        var r = D("-q", "-x", "aggsize=200", "-n", "BEGIN { @[1] = count(); @[2] = count(); @[3] = count(); @[4] = count(); @[5] = count(); @[1] = count(); exit(0); }");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stderr, Is.EqualTo("dtrace: 2 aggregation drops on CPU 0\n"));
        Assert.That(r.Stdout, Is.EqualTo($"\n{2,17}{1,17}\n{3,17}{1,17}\n{1,17}{2,17}\n"));
        // trunc() gives the room back.
        var t = D("-q", "-x", "aggsize=200", "-n", "BEGIN { @[1] = count(); @[2] = count(); @[3] = count(); trunc(@); @[4] = count(); @[5] = count(); @[6] = count(); exit(0); }");
        Assert.That((t.ExitCode, t.Stderr), Is.EqualTo((0, "")));
        var bad = D("-x", "aggsize=lots", "-n", "BEGIN { exit(0); }");
        Assert.That((bad.ExitCode, bad.Stderr), Is.EqualTo((2, "dtrace: failed to set -x aggsize=lots: Invalid value for specified option\n")));
    }

    [Test]
    public void Dynvarsize_bounds_arrays_and_self_variables_and_the_drops_are_reported()
    {
        // An integer element keyed by one integer takes 64 + 8 + 8 bytes: 300 bytes hold three.
        var r = D("-q", "-x", "dynvarsize=300", "-n", "BEGIN { a[1] = 1; a[2] = 2; a[3] = 3; a[4] = 4; a[1] = 0; a[5] = 5; printf(\"%d %d %d %d %d\\n\", a[1], a[2], a[3], a[4], a[5]); exit(0); }");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stdout, Is.EqualTo("0 2 3 0 5\n\n"), "a[4] found no room; deleting a[1] gave room to a[5]");
        Assert.That(r.Stderr, Is.EqualTo("dtrace: 1 dynamic variable drop\n"));
        var self = D("-q", "-x", "dynvarsize=64", "-n", "BEGIN { self->x = 1; printf(\"%d\\n\", self->x); exit(0); }");
        Assert.That((self.Stdout, self.Stderr), Is.EqualTo(("0\n\n", "dtrace: 1 dynamic variable drop\n")));
        Assert.That(D("-x", "dynvarsize=0", "-n", "BEGIN { exit(0); }").Stderr,
            Is.EqualTo("dtrace: failed to set -x dynvarsize=0: Invalid value for specified option\n"));
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
    public void A_repeated_key_counts_into_its_own_entry_across_trunc_and_clear()
    {
        // The aggregation reuses the last firing's entry when the key is the same (Aggregations.cs);
        // trunc and clear must not leave it pointing at an entry the table no longer holds.
        Assert.That(Quiet("BEGIN { @c[7] = count(); @c[7] = count(); trunc(@c); @c[7] = count(); @c[8] = count(); @c[7] = count(); exit(0); }"),
            Is.EqualTo($"\n {8,16} {1,16}\n {7,16} {2,16}\n"));
        Assert.That(Quiet("BEGIN { @c[\"x\", 1] = count(); @c[\"x\", 1] = count(); clear(@c); @c[\"x\", 1] = count(); @c[\"x\", 2] = count(); @c[\"x\", 2] = count(); exit(0); }"),
            Is.EqualTo($"\n  {"x",-50} {1,16} {1,16}\n  {"x",-50} {2,16} {2,16}\n"));
        Assert.That(Quiet("BEGIN { @c[1] = sum(5); @c[2] = sum(1); @c[3] = sum(9); trunc(@c, 1); @c[3] = sum(1); @c[2] = sum(1); exit(0); }"),
            Is.EqualTo($"\n {2,16} {1,16}\n {3,16} {10,16}\n"));
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

    private static string Row(string label, int count, int total) =>
        $"{label,16} |{new string('@', total == 0 ? 0 : count * 40 / total),-40} {count,-9}\n";

    private const string DistributionHeader = "\n           value  ------------- Distribution ------------- count    \n";

    [Test]
    public void Llquantize_prints_linear_steps_within_each_power_of_the_factor()
    {
        // dt_print_llquantize: factor 10, magnitudes 0..1, 10 steps: buckets 1..9, then 10..90 by 10;
        // rows from the bucket before the first non-zero one to the one after the last.
        Assert.That(Quiet("BEGIN { @ = llquantize(5, 10, 0, 1, 10); @ = llquantize(50, 10, 0, 1, 10); exit(0); }"), Is.EqualTo(
            "\n" + DistributionHeader + Row("4", 0, 2) + Row("5", 1, 2) + string.Concat(new[] { "6", "7", "8", "9", "10", "20", "30", "40" }.Select(l => Row(l, 0, 2)))
            + Row("50", 1, 2) + Row("60", 0, 2) + "\n"));
        // Below factor^low is "< 1", from factor^(high+1) on ">= 100"; with both ends non-zero
        // every bucket prints. The sixth argument is the increment.
        string all = Quiet("BEGIN { @ = llquantize(0, 10, 0, 1, 10, 3); @ = llquantize(150, 10, 0, 1, 10); exit(0); }");
        Assert.That(all, Is.EqualTo("\n" + DistributionHeader + Row("< 1", 3, 4)
            + string.Concat(new[] { "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "20", "30", "40", "50", "60", "70", "80", "90" }.Select(l => Row(l, 0, 4)))
            + Row(">= 100", 1, 4) + "\n"));
    }

    [TestCase("BEGIN { @ = llquantize(1, 1, 0, 6, 20); }", "llquantize( ) factor (argument #1) must be two or more")]
    [TestCase("BEGIN { @ = llquantize(1, 10, 6, 6, 20); }", "llquantize( ) high magnitude (argument #3) must be greater than low magnitude (argument #2)")]
    [TestCase("BEGIN { @ = llquantize(1, 10, 0, 6, 5); }", "llquantize( ) factor (argument #1) must be less than or equal to the number of linear steps per magnitude (argument #4)")]
    [TestCase("BEGIN { @ = llquantize(1, 10, 0, 6, 25); }", "llquantize( ) factor (argument #1) must evenly divide the number of steps per magnitude (argument #4), and the number of steps per magnitude must evenly divide a power of the factor")]
    [TestCase("BEGIN { s = 10; @ = llquantize(1, 10, 0, 6, s); }", "llquantize( ) argument #4 (linear steps per magnitude) must be an integer constant")]
    [TestCase("BEGIN { @ = llquantize(1, 10, 0, 6, 70000); }", "llquantize( ) argument #4 (linear steps per magnitude) must be an unsigned 16-bit quantity")]
    [TestCase("BEGIN { @ = llquantize(1, 10, 0, 30, 10); }", "llquantize( ) factor (10) raised to power of high magnitude (30) plus 1 overflows 64-bits")]
    [TestCase("BEGIN { @ = llquantize(1, 10, 0, 6, 10); @ = llquantize(1, 10, 0, 5, 10); }", "llquantize( ) high magnitude (argument #3) doesn't match previous declaration: expected 6, found 5")]
    [TestCase("BEGIN { @ = llquantize(1, 10, 0); }", "llquantize( ) prototype mismatch: 3 args passed, at least 5 expected")]
    public void Llquantize_arguments_are_checked_as_dt_cc_checks_them(string program, string message)
    {
        var r = D("-n", program);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, $"dtrace: invalid probe specifier {program}: {message}\n")));
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
        // transmit, receive, the four protection probes and the three of the bandwidth shaper.
        Assert.That(Names("-m", "a0"), Has.Length.EqualTo(9).And.All.StartWith("mac:a0:"));
        Assert.That(Names("-m", "mac:a0"), Has.Length.EqualTo(9));
        Assert.That(Names("-f", "a0:mac_tx"), Is.EqualTo(new[] { "mac:a0:mac_tx:transmit" }));
        Assert.That(Names("-f", "mac:*:mac_rx"), Has.Length.EqualTo(5));
        Assert.That(Names("-P", "ud?"), Is.EqualTo(new[] { "udp:ip:udp_output_newdst:send", "udp:ip:udp_input:receive", "udp:ip:udp_output_connected:send" }));
        var r = h.Run("dtrace", "-l", "-m", "a:b:c");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "dtrace: invalid probe specifier a:b:c: invalid probe description \"a:b:c\": Overspecified probe description\n")));
    }
}
