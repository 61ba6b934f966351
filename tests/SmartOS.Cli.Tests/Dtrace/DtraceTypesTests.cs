using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// C integer types and casts, the string subroutines, thread-local variables, tcp.d's inlines and
/// typed probe arguments (Syntax.cs rules 5 to 7), as `dtrace -n` runs them on a host.
/// </summary>
public class DtraceTypesTests
{
    private static CommandResult D(params string[] args) => CliHost.TwoVnicsOnAStub().Run(["dtrace", .. args]);

    private static string Printed(string format, string expr)
    {
        var r = D("-q", "-n", $"BEGIN {{ printf(\"{format}\", {expr}); exit(0); }}");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stdout;
    }

    [TestCase("(uint8_t)300", "44")]
    [TestCase("(char)200", "-56")]
    [TestCase("(unsigned char)-1", "255")]
    [TestCase("(short)70000", "4464")]
    [TestCase("(uint16_t)-2", "65534")]
    [TestCase("(int)4294967297", "1")]
    [TestCase("(int32_t)2147483648", "-2147483648")]
    [TestCase("(unsigned int)-1", "4294967295")]
    [TestCase("(long long)-5", "-5")]
    [TestCase("(uint8_t)255 + 1", "256")]
    [TestCase("-(uint8_t)1", "-1")]
    public void Casts_truncate_and_extend_as_C_does(string expr, string value) =>
        Assert.That(Printed("%d", expr), Is.EqualTo(value + "\n"));

    [TestCase("strjoin(\"ab\", \"cd\")", "abcd")]
    [TestCase("substr(\"hello\", 1)", "ello")]
    [TestCase("substr(\"hello\", 1, 3)", "ell")]
    [TestCase("substr(\"hello\", -3)", "llo")]
    [TestCase("substr(\"hello\", 1, -1)", "ell")]
    [TestCase("substr(\"hello\", -7, 4)", "he")]
    [TestCase("substr(\"hello\", 10)", "")]
    [TestCase("lltostr(-42)", "-42")]
    [TestCase("stringof(12)", "12")]
    [TestCase("stringof(zonename)", "global")]
    [TestCase("tcp_state_string[TCP_STATE_SYN_RECEIVED]", "state-syn-received")]
    [TestCase("tcp_state_string[99]", "<unknown>")]
    public void String_subroutines_follow_dtrace(string expr, string value) =>
        Assert.That(Printed("%s", expr), Is.EqualTo(value + "\n"));

    [Test]
    public void Walltimestamp_is_the_hosts_clock_and_printf_Y_prints_it_as_pfprint_time_does()
    {
        Assert.That(Printed("[%Y]", "86400000000000 + 3723 * 1000000000"), Is.EqualTo("[1970 Jan  2 01:02:03]\n"));
        Assert.That(Printed("[%22Y]", "1000000000 * 86400 * 365 * 30"), Is.EqualTo("[  1999 Dec 25 00:00:00]\n"));
        var h = CliHost.TwoVnicsOnAStub();
        long now = h.Host.Mac.Scheduler.Now;
        var r = h.Run("dtrace", "-q", "-n", "BEGIN { printf(\"%d %d\", walltimestamp, walltimestamp == timestamp); exit(0); }");
        Assert.That(r.Stdout, Is.EqualTo($"{now} 1\n"), r.Stderr);
    }

    [Test]
    public void Walltimestamp_is_the_host_clock_s_date_and_Y_prints_it()
    {
        var h = new CliHost(epoch: 1_399_400_962_381_000_000L);   // 2014-05-06T18:29:22.381Z
        var r = h.Run("dtrace", "-q", "-n", "BEGIN { printf(\"%d %Y\", walltimestamp - timestamp, walltimestamp); exit(0); }");
        Assert.That(r.Stdout, Is.EqualTo("1399400962381000000 2014 May  6 18:29:22\n"), r.Stderr);
    }

    [Test]
    public void Tcp_d_inlines_have_illumos_values()
    {
        Assert.That(Printed("%d %d %d %x %x", "TCP_STATE_CLOSED, TCP_STATE_ESTABLISHED, TCP_STATE_TIME_WAIT, TH_SYN | TH_ACK, TH_RST"), Is.EqualTo("-6 0 6 12 4\n"));
        Assert.That(Printed("%d", "strlen(strjoin(\"a\", \"bc\"))"), Is.EqualTo("3\n"));
    }

    [Test]
    public void Thread_local_variables_keep_their_value_across_clauses_of_the_same_thread()
    {
        // BEGIN and END run on the consumer's own thread: self->t set in BEGIN is seen in END.
        var r = D("-q", "-n", "BEGIN { self->t = 5; self->s = \"x\"; self->t += 2; self->gone = 1; self->gone = 0; } BEGIN { exit(0); } END { printf(\"%d %s %d\\n\", self->t, self->s, self->gone); }");
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "7 x 0\n\n")), r.Stderr);
    }

    [TestCase("BEGIN { trace(self->nope); }", "failed to resolve self->nope: Unknown variable name")]
    [TestCase("BEGIN { self->x = 1; self->x = \"s\"; }", "operator = operands have incompatible types: \"int64_t\" = \"string\"")]
    [TestCase("BEGIN { trace(args[0]->ip_ver); }", "operator -> must be applied to a pointer")]
    [TestCase("BEGIN { x = 1; trace(x->y); }", "operator -> must be applied to a pointer")]
    [TestCase("ip:::send { trace(args[2]->ip_nope); }", "ip_nope is not a member of ipinfo_t")]
    [TestCase("ip:::send { trace(args[2]); }", "args[2] is a pointer to ipinfo_t: read a member with ->")]
    [TestCase("ip:::send { trace(args[9]); }", "index 9 is out of range for args[ ]")]
    [TestCase("ip:::send, tcp:::send { trace(args[3]->if_name); }", "args[ ] may not be referenced because probe description ip:::send, tcp:::send matches an unstable set of probes")]
    [TestCase("BEGIN { trace((uint8_t)\"s\"); }", "invalid cast expression: \"string\" to \"uint8_t\"")]
    [TestCase("BEGIN { TCP_STATE_CLOSED = 1; }", "operator = can only be applied to a writable variable")]
    [TestCase("BEGIN { trace(inet_ntoa(1)); }", "inet_ntoa( ) argument #1 is incompatible with prototype:\n\tprototype: ipaddr_t *\n\t argument: int64_t")]
    [TestCase("ip:::send { trace(inet_ntoa(&args[4]->ipv4_ttl)); }", "inet_ntoa( ) argument #1 is incompatible with prototype:\n\tprototype: ipaddr_t *\n\t argument: uint8_t *")]
    [TestCase("BEGIN { trace(substr(1, 2)); }", "substr( ) argument #1 is incompatible with prototype:\n\tprototype: string\n\t argument: int64_t")]
    [TestCase("BEGIN { trace(strjoin(\"a\")); }", "strjoin( ) prototype mismatch: 1 arg passed, 2 expected")]
    public void Type_errors_are_worded_as_dtrace_words_them(string program, string message)
    {
        var r = D("-n", program);
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, $"dtrace: invalid probe specifier {program}: {message}\n")));
    }

    [Test]
    public void Dash_l_lists_the_ip_tcp_and_udp_providers_once_for_every_zone()
    {
        var h = CliHost.TwoVnicsOnAStub();
        string o = h.Ok("dtrace", "-l", "-n", "tcp:::");
        Assert.That(o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]),
            Is.EqualTo(new[] { "send", "receive", "state-change", "connect-request", "connect-established", "connect-refused", "accept-established", "accept-refused",
                "send", "receive", "receive" })); // send and receive again under their other illumos functions (NetProbes.cs rule 4)
        // udp:::send under udp_output_newdst and udp_output_connected, and udp:::receive; ip's send and its v4 and v6 receive.
        Assert.That(h.Ok("dtrace", "-l", "-P", "udp").Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(4));
        Assert.That(h.Ok("dtrace", "-l", "-n", "ip:ip::").Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(4));
    }
}
