using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// Aggregations printed byte for byte as illumos dtrace prints them. The expected texts are built
/// from the formats of illumos's dt_consume.c (dt_print_aggs: a string key "  %-50s", an integer key
/// and a scalar value " %16lld", a newline after each entry; dt_print_quantize and
/// dt_print_lquantize: the header "\n%16s %41s %-9s\n" of "value", the 40-character
/// "------------- Distribution -------------" and "count", then "%16lld |" with count*40/total
/// @s, padding to 40 and " %-9lld\n") and of dtrace.c's main (one newline before the aggregations).
/// </summary>
public class DtraceAggregationTests
{
    private static string Run(string program)
    {
        var h = CliHost.TwoVnicsOnAStub();
        var r = h.Run("dtrace", "-q", "-n", program);
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stdout;
    }

    private static string Row(string value, int count, int total) =>
        $"{value,16} |{new string('@', count * 40 / total)}{new string(' ', 40 - count * 40 / total)} {count,-9}\n";

    private const string Header = "\n           value  ------------- Distribution ------------- count    \n";

    [Test]
    public void Quantize_prints_power_of_two_buckets_from_the_one_before_the_first_to_the_one_after_the_last()
    {
        string o = Run("BEGIN { @ = quantize(0); @ = quantize(1); @ = quantize(3); @ = quantize(3); @ = quantize(1000); exit(0); }");
        string expected = "\n" + Header + Row("-1", 0, 5) + Row("0", 1, 5) + Row("1", 1, 5) + Row("2", 2, 5)
            + Row("4", 0, 5) + Row("8", 0, 5) + Row("16", 0, 5) + Row("32", 0, 5) + Row("64", 0, 5) + Row("128", 0, 5)
            + Row("256", 0, 5) + Row("512", 1, 5) + Row("1024", 0, 5) + "\n";
        Assert.That(o, Is.EqualTo(expected));
        Assert.That(Row("2", 2, 5), Is.EqualTo("               2 |@@@@@@@@@@@@@@@@                         2        \n"));
    }

    [Test]
    public void Quantize_of_negative_values_counts_down_from_minus_one()
    {
        string o = Run("BEGIN { @ = quantize(-5); @ = quantize(-1); exit(0); }");
        Assert.That(o, Is.EqualTo("\n" + Header + Row("-8", 0, 2) + Row("-4", 1, 2) + Row("-2", 0, 2) + Row("-1", 1, 2) + Row("0", 0, 2) + "\n"));
    }

    [Test]
    public void Lquantize_labels_its_underflow_and_overflow_buckets()
    {
        string o = Run("BEGIN { @ = lquantize(-1, 0, 10, 5); @ = lquantize(3, 0, 10, 5); @ = lquantize(7, 0, 10, 5); @ = lquantize(12, 0, 10, 5); exit(0); }");
        Assert.That(o, Is.EqualTo("\n" + Header + Row("< 0", 1, 4) + Row("0", 1, 4) + Row("5", 1, 4) + Row(">= 10", 1, 4) + "\n"));
        o = Run("BEGIN { @ = lquantize(42, 0, 100, 10); exit(0); }");
        Assert.That(o, Is.EqualTo("\n" + Header + Row("30", 0, 1) + Row("40", 1, 1) + Row("50", 0, 1) + "\n"));
    }

    [Test]
    public void Count_sum_min_max_and_avg_print_keys_and_values_in_ascending_order_of_value()
    {
        string o = Run("BEGIN { @c[\"b\"] = count(); @c[\"b\"] = count(); @c[\"a\"] = count(); @c[\"z\"] = count(); " +
            "@s[7] = sum(10); @s[7] = sum(-3); @mn = min(5); @mn = min(-2); @mx[\"k\", 3] = max(4); @mx[\"k\", 3] = max(9); " +
            "@av = avg(1); @av = avg(2); exit(0); }");
        string expected = "\n"
            + $"  {"a",-50} {1,16}\n  {"z",-50} {1,16}\n  {"b",-50} {2,16}\n"
            + $" {7,16} {7,16}\n"
            + $" {-2,16}\n"
            + $"  {"k",-50} {3,16} {9,16}\n"
            + $" {1,16}\n";
        Assert.That(o, Is.EqualTo(expected));
    }

    [Test]
    public void Printa_prints_with_or_without_a_format_and_the_end_does_not_print_it_again()
    {
        string o = Run("BEGIN { @c[\"b\"] = count(); @c[\"b\"] = count(); @c[\"a\"] = count(); @other = count(); " +
            "printa(\"%s=%@d\\n\", @c); printa(@c); exit(0); }");
        Assert.That(o, Is.EqualTo("a=1\nb=2\n" + $"\n  {"a",-50} {1,16}\n  {"b",-50} {2,16}\n" + "\n" + $" {1,16}\n"));
    }

    [Test]
    public void Ticks_fire_in_the_hosts_clock()
    {
        string o = Run("BEGIN { n = 0; t0 = timestamp; } tick-100ms { n++; printf(\"%d %d\\n\", n, timestamp - t0); } tick-1sec { @ticks = count(); } tick-350ms { exit(0); }");
        Assert.That(o, Is.EqualTo("1 100000000\n2 200000000\n3 300000000\n\n"));
    }

    [Test]
    public void Profile_n_fires_on_the_hosts_one_cpu_as_tick_n_does()
    {
        // profile-10hz: every 100 ms on each CPU, and the host's loop is one CPU.
        string o = Run("BEGIN { t0 = timestamp; } profile-10hz { printf(\"%d %d %d\\n\", timestamp - t0, arg0, arg1); } tick-250ms { exit(0); }");
        Assert.That(o, Is.EqualTo("100000000 0 0\n200000000 0 0\n\n"));
    }
}
