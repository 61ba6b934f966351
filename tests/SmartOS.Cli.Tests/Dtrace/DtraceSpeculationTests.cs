using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// Speculative tracing (Consumer.Speculations.cs): speculation(), speculate(), commit(), discard(),
/// -x nspec and -x specsize. The drop messages are dt_handle.c's _dt_droptab wording ("%llu %s%s%s":
/// "speculative drop", "failed speculation" with " (no speculative buffer available)" or
/// " (available buffer(s) still busy)"), the order errors dt_cc.c's dt_stmt_append's, and the
/// state changes dtrace.c's dtrace_speculation_commit/_discard/_clean.
/// </summary>
public class DtraceSpeculationTests
{
    private static CommandResult D(params string[] args) => CliHost.TwoVnicsOnAStub().Run(["dtrace", .. args]);

    [Test]
    public void Committed_records_print_and_discarded_ones_do_not()
    {
        var r = D("-q", "-n",
            "BEGIN { n = 0; } tick-100ms { n++; self->s = speculation(); } " +
            "tick-100ms { speculate(self->s); printf(\"tick %d\\n\", n); } " +
            "tick-100ms /n % 2 == 0/ { commit(self->s); } " +
            "tick-100ms /n % 2 == 1/ { discard(self->s); } " +
            "tick-450ms { exit(0); }");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        // One speculation (nspec 1) serves every tick: a discard with records frees it at once.
        Assert.That((r.Stdout, r.Stderr), Is.EqualTo(("tick 2\ntick 4\n\n", "")));
    }

    [Test]
    public void A_committed_record_keeps_the_prefix_of_the_probe_that_speculated()
    {
        var r = D("-n", "BEGIN { s = speculation(); } BEGIN { speculate(s); trace(7); } BEGIN { exit(0); } END { commit(s); }");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That(r.Stdout, Is.EqualTo(
            "CPU     ID                    FUNCTION:NAME\n" +
            "  0      1                           :BEGIN \n" +
            "  0      1                           :BEGIN                 7\n" +
            "\n"));
    }

    [Test]
    public void Speculations_beyond_nspec_fail_and_are_reported()
    {
        const string Program = "BEGIN { a = speculation(); b = speculation(); c = speculation(); printf(\"%d %d %d\\n\", a, b, c); exit(0); }";
        var one = D("-q", "-n", Program);
        Assert.That((one.Stdout, one.Stderr), Is.EqualTo(("1 0 0\n\n", "dtrace: 2 failed speculations (no speculative buffer available)\n")));
        var two = D("-q", "-x", "nspec=2", "-n", Program);
        Assert.That((two.Stdout, two.Stderr), Is.EqualTo(("1 2 0\n\n", "dtrace: 1 failed speculation (no speculative buffer available)\n")));
        Assert.That(D("-x", "nspec=none", "-n", "BEGIN { exit(0); }").Stderr,
            Is.EqualTo("dtrace: failed to set -x nspec=none: Invalid value for specified option\n"));
    }

    [Test]
    public void Records_beyond_specsize_are_speculative_drops_reported_when_committed()
    {
        // Each record takes its 16-byte header and 8 bytes for trace(1): 100 bytes hold four.
        string fill = string.Concat(Enumerable.Repeat("BEGIN { speculate(s); trace(1); } ", 6));
        var commit = D("-q", "-x", "specsize=100", "-n", "BEGIN { s = speculation(); } " + fill + "BEGIN { commit(s); } BEGIN { exit(0); }");
        Assert.That((commit.Stdout, commit.Stderr), Is.EqualTo(("1111\n", "dtrace: 2 speculative drops\n")));
        // dtrace_speculation_discard zeroes the buffer's drops: a discarded speculation reports none.
        var discard = D("-q", "-x", "specsize=100", "-n", "BEGIN { s = speculation(); } " + fill + "BEGIN { discard(s); } BEGIN { exit(0); }");
        Assert.That((discard.Stdout, discard.Stderr), Is.EqualTo(("\n", "")));
    }

    [Test]
    public void A_speculation_discarded_before_use_is_busy_until_the_cleaner_runs()
    {
        // Discarding an ACTIVE speculation leaves it DISCARDING until dtrace's cleaner, every
        // 9900990 ns (cleanrate 101 Hz), makes it INACTIVE again.
        var r = D("-q", "-n", "BEGIN { s = speculation(); discard(s); t = speculation(); printf(\"%d %d\\n\", s, t); } tick-20ms { printf(\"%d\\n\", speculation()); exit(0); }");
        Assert.That((r.Stdout, r.Stderr), Is.EqualTo(("1 0\n1\n\n", "dtrace: 1 failed speculation (available buffer(s) still busy)\n")));
        var rate = D("-x", "cleanrate=50hz", "-n", "BEGIN { exit(0); }");
        Assert.That((rate.ExitCode, rate.Stderr), Is.EqualTo((2, "dtrace: failed to set -x cleanrate=50hz: option is not supported yet (speculations are cleaned at dtrace's default rate, 101 Hz)\n")));
    }

    [Test]
    public void Speculate_zero_drops_the_record_and_an_id_beyond_nspec_is_an_illegal_operation()
    {
        var r = D("-q", "-n", "BEGIN { speculate(0); printf(\"lost\\n\"); } BEGIN { speculate(5); printf(\"bad\\n\"); } BEGIN { commit(2); } BEGIN { printf(\"after\\n\"); exit(0); }");
        Assert.That(r.ExitCode, Is.Zero);
        Assert.That(r.Stdout, Is.EqualTo("after\n\n"));
        // The fault is raised outside DIF, so dt_handle_err prints no DIF offset.
        Assert.That(r.Stderr, Is.EqualTo(
            "dtrace: error on enabled probe ID 2 (ID 1: dtrace:::BEGIN): illegal operation in action #1\n" +
            "dtrace: error on enabled probe ID 3 (ID 1: dtrace:::BEGIN): illegal operation in action #1\n"));
    }

    [TestCase("BEGIN { trace(1); speculate(1); }", "speculate( ) may not follow data-recording action(s)")]
    [TestCase("BEGIN { speculate(1); speculate(1); }", "speculate( ) may not follow speculate( )")]
    [TestCase("BEGIN { commit(1); speculate(1); }", "speculate( ) may not follow commit( )")]
    [TestCase("BEGIN { speculate(1); @a = count(); }", "aggregating actions may not follow speculate( )")]
    [TestCase("BEGIN { speculate(1); exit(0); }", "exit( ) may not follow speculate( )")]
    [TestCase("BEGIN { commit(1); commit(1); }", "commit( ) may not follow commit( )")]
    [TestCase("BEGIN { printf(\"x\"); commit(1); }", "commit( ) may not follow data-recording action(s)")]
    [TestCase("BEGIN { commit(1); trace(1); }", "data-recording actions may not follow commit( )")]
    [TestCase("BEGIN { commit(1); @a = count(); }", "aggregating actions may not follow commit( )")]
    [TestCase("BEGIN { speculate(\"s\"); }", "speculate( ) argument #1 is incompatible with prototype:\n\tprototype: int\n\t argument: string")]
    [TestCase("BEGIN { x = speculation(1); }", "speculation( ) prototype mismatch: 1 arg passed, 0 expected")]
    [TestCase("BEGIN { x = commit(1); }", "commit( ) may not be used in an expression")]
    public void Misplaced_speculation_actions_are_refused_as_dt_cc_words_it(string program, string message)
    {
        var r = D("-n", program);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, $"dtrace: invalid probe specifier {program}: {message}\n")));
    }

    [Test]
    public void Discard_and_expressions_may_share_a_clause_with_data_after_speculate()
    {
        var r = D("-q", "-n", "BEGIN { s = speculation(); } BEGIN { speculate(s); x = 2; printf(\"%d\\n\", x); discard(s); } BEGIN { printf(\"done\\n\"); exit(0); }");
        Assert.That((r.ExitCode, r.Stdout, r.Stderr), Is.EqualTo((0, "done\n\n", "")));
    }
}
