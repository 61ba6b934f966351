using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// The ip, tcp and udp providers (netstack/NetProbes.cs) asked the issue's questions over real
/// traffic in one `smartos run` scenario: zone a fetches a page from zone b's httpd on port 443,
/// is refused on port 444 and sends a UDP datagram to b's nc. The one-liners are the Dynamic
/// Tracing Guide's tcp provider examples with this scenario's ports.
/// </summary>
public class DtraceNetworkTests
{
    private const string ZoneA = "cc741433-1d1a-48c8-a8c9-ab064ae789a4", ZoneB = "8e41b0c2-4281-4ddb-9776-4d757ce2d3d8";

    private static readonly Lazy<(int Code, string Out, string Err)> s_run = new(() => DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
        dtrace -q -n 'tcp:::send /args[4]->tcp_dport == 443/ { @[zonename] = sum(args[2]->ip_plength); }' &
        zlogin b dtrace -q -n 'tcp:::receive { @[zonename, args[4]->tcp_dport] = count(); }' &
        dtrace -q -n 'tcp:::state-change { printf("%s %s -> %s %s:%d\n", zonename, tcp_state_string[args[5]->tcps_state], tcp_state_string[args[3]->tcps_state], args[3]->tcps_raddr, args[3]->tcps_rport); }' &
        dtrace -q -n 'tcp:::state-change /args[3]->tcps_state == TCP_STATE_SYN_RECEIVED/ { self->t = timestamp; } tcp:::state-change /self->t && args[5]->tcps_state == TCP_STATE_SYN_RECEIVED/ { @["SYN_RECEIVED"] = quantize(timestamp - self->t); self->t = 0; }' &
        dtrace -q -n 'tcp:::connect-*, tcp:::accept-* { printf("%s %s %s:%d -> %s:%d flags %x\n", zonename, probename, args[2]->ip_saddr, args[4]->tcp_sport, args[2]->ip_daddr, args[4]->tcp_dport, args[4]->tcp_flags); }' &
        dtrace -q -n 'udp:::send, udp:::receive { printf("%s %s %s %d %d %d\n", zonename, probename, inet_ntoa(&args[2]->ip_daddr), args[4]->udp_dport, args[4]->udp_length, args[3]->udps_lport); }' &
        dtrace -q -n 'ip:::send /args[4]->ipv4_protocol == IPPROTO_UDP/ { printf("%s %s %d\n", args[4]->ipv4_protostr, inet_ntoa(&args[4]->ipv4_dst), args[3]->if_local); trace(args[5]->ipv6_plen); }' &
        zlogin b httpd -p 443 &
        zlogin b nc -l -u 5000 &
        zlogin a curl -s -o /dev/null -w '%{http_code}\n' http://10.0.0.2:443/
        ! zlogin a curl -s http://10.0.0.2:444/
        zlogin a nc -u -m hello 10.0.0.2 5000
        sleep 1s
        """));

    /// <summary>A bulk transfer from a to b on one link, where b defers its ACKs (TcpProtocol.cs
    /// rule 9): tcps_rack, the sequence number b has acked, falls behind tcps_rnxt between ACKs.</summary>
    private static readonly Lazy<(int Code, string Out, string Err)> s_bulk = new(() => DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
        zlogin b dtrace -q -n 'tcp:::receive /args[2]->ip_plength > 1000/ { @["unacked", args[3]->tcps_rnxt != args[3]->tcps_rack] = count(); }' &
        zlogin b dtrace -q -n 'tcp:::send { @["sent", args[3]->tcps_rnxt != args[3]->tcps_rack] = count(); }' &
        zlogin b iperf -s &
        sleep 10ms
        zlogin a iperf -c 10.0.0.2 -t 0.2
        sleep 1s
        """));

    [Test]
    public void Tcps_rack_is_the_sequence_acked_and_lags_rnxt_while_an_ack_is_deferred()
    {
        // b ACKs up to eight of a's segments at once on one link: most data segments arrive while
        // earlier ones wait for their ACK. Every segment b sends acks all it has received.
        string receive = Output(s_bulk, 12), send = Output(s_bulk, 13);
        var unacked = System.Text.RegularExpressions.Regex.Matches(receive, @"unacked +(\d) +(\d+)").ToDictionary(m => m.Groups[1].Value, m => long.Parse(m.Groups[2].Value));
        Assert.That(unacked.GetValueOrDefault("1"), Is.GreaterThan(unacked.GetValueOrDefault("0")), receive);
        Assert.That(send, Does.Match(@"^\n* +sent +0 +\d+\n$"), "nothing sent with rack behind rnxt");
    }

    /// <summary>The output of the background dtrace started on the scenario's line.</summary>
    private static string Output(int line) => Output(s_run, line);

    private static string Output(Lazy<(int Code, string Out, string Err)> run, int line)
    {
        var (code, o, e) = run.Value;
        Assert.That(code, Is.Zero, o + e);
        string mark = $"[background, line {line}] h1# ";
        int at = o.IndexOf(mark, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), o);
        int start = o.IndexOf('\n', at) + 1;
        int end = o.IndexOf("\n[background", start, StringComparison.Ordinal);
        return o[start..(end < 0 ? o.IndexOf("# end of scenario", start, StringComparison.Ordinal) : end + 1)];
    }

    [Test]
    public void Which_zone_sends_the_most_to_port_443_sums_ip_payload_per_zonename()
    {
        // Only a sends to 443; b's replies go to a's ephemeral port.
        Assert.That(Output(12), Does.Match($"^\n\n  {ZoneA} +\\d+\n$"));
    }

    [Test]
    public void A_zones_dtrace_hears_only_its_own_stacks_firings()
    {
        // b received seven segments for 443 (SYN, ACK, request, a's ACKs and FIN: a new connection
        // ACKs its first data segments at once, TcpProtocol rule 9) and the SYN for 444.
        Assert.That(Output(13), Is.EqualTo($"\n\n  {ZoneB,-50} {444,16} {1,16}\n  {ZoneB,-50} {443,16} {7,16}\n"));
    }

    [Test]
    public void State_changes_follow_both_ends_of_each_connection()
    {
        string o = Output(14);
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Member($"{ZoneB} state-listen -> state-syn-received 10.0.0.1:33839"));
        Assert.That(lines.Where(l => l.EndsWith(":443", StringComparison.Ordinal)).Select(l => l[(ZoneA.Length + 1)..]), Is.EqualTo(new[]
        {
            "state-closed -> state-syn-sent 10.0.0.2:443",
            "state-syn-sent -> state-established 10.0.0.2:443",
            "state-established -> state-fin-wait-1 10.0.0.2:443",
            "state-fin-wait-1 -> state-fin-wait-2 10.0.0.2:443",
            "state-fin-wait-2 -> state-time-wait 10.0.0.2:443",
        }));
        Assert.That(lines, Has.Member($"{ZoneA} state-syn-sent -> state-closed 10.0.0.2:444"));
    }

    [Test]
    public void Time_in_syn_received_is_measured_with_a_thread_local_variable_per_connection()
    {
        // The link has no latency, so the handshake's ACK arrives in the same virtual instant.
        Assert.That(Output(15), Is.EqualTo(
            "\n\n  SYN_RECEIVED                                      \n" +
            "           value  ------------- Distribution ------------- count    \n" +
            "              -1 |                                         0        \n" +
            "               0 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@ 1        \n" +
            "               1 |                                         0        \n\n"));
    }

    [Test]
    public void Connect_and_accept_probes_carry_the_segment_that_made_them()
    {
        Assert.That(Output(16), Is.EqualTo(
            $"{ZoneA} connect-request 10.0.0.1:33839 -> 10.0.0.2:443 flags 2\n" +
            $"{ZoneA} connect-established 10.0.0.2:443 -> 10.0.0.1:33839 flags 12\n" +
            $"{ZoneB} accept-established 10.0.0.1:33839 -> 10.0.0.2:443 flags 10\n" +
            $"{ZoneA} connect-request 10.0.0.1:57555 -> 10.0.0.2:444 flags 2\n" +
            $"{ZoneB} accept-refused 10.0.0.2:444 -> 10.0.0.1:57555 flags 14\n" +
            $"{ZoneA} connect-refused 10.0.0.2:444 -> 10.0.0.1:57555 flags 14\n" +
            "\n\n"));
    }

    [Test]
    public void Udp_probes_give_udpinfo_and_the_sockets_udpsinfo()
    {
        var lines = Output(17).Split('\n');
        // a's nc sends from an ephemeral port (udp_smallest_anon_port and up); b's is bound to 5000.
        Assert.That(lines[0], Does.StartWith($"{ZoneA} send 10.0.0.2 5000 14 "));
        Assert.That(int.Parse(lines[0].Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThanOrEqualTo(32768));
        Assert.That(lines[1..], Is.EqualTo(new[] { $"{ZoneB} receive 10.0.0.2 5000 14 5000", "", "", "" }));
    }

    [Test]
    public void Reading_through_a_null_argument_is_an_invalid_address_and_tracing_goes_on()
    {
        // args[5] (ipv6info_t) is NULL for IPv4; its ipv6_plen is the fourth member (offset 0x18).
        // The clause's printf output is discarded with the faulting record.
        Assert.That(Output(18), Is.EqualTo("dtrace: error on enabled probe ID 1 (ID 13: ip:ip:ip_xmit:send): invalid address (0x18) in action #2 at DIF offset 0\n\n\n"));
    }
}
