using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// The ip, tcp, udp and mac probes under the illumos kernel functions that fire them
/// (netstack/NetProbes.cs rule 4): `dtrace -l` lists them so, and probefunc names the one that
/// fired. The functions are those of illumos-gate's DTRACE_IP7/DTRACE_TCP5/DTRACE_UDP5 call sites
/// (ip_input.c's ill_input_short_v4; tcp_input.c's tcp_input_data and tcp_input_listener;
/// tcp_output.c's tcp_send_data, tcp_xmit_early_reset and tcp_xmit_listeners_reset; udp.c's
/// udp_input and udp_output_*) and mac_protect.c's mac_protect_check_one for the SDT probes of
/// link protection.
/// </summary>
public class DtraceProbefuncTests
{
    private const string Header = "   ID   PROVIDER            MODULE                          FUNCTION NAME\n";

    private static string[] Listed(CliHost h, params string[] args) =>
        h.Ok(["dtrace", "-l", .. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries)[1..]
            .Select(l => string.Join(':', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..])).ToArray();

    [Test]
    public void Dash_l_P_ip_lists_illumos_s_send_and_receive_functions()
    {
        var h = CliHost.TwoVnicsOnAStub();
        Assert.That(Listed(h, "-P", "ip"), Is.EqualTo(new[] { "ip:ip:ip_xmit:send", "ip:ip:ill_input_short_v4:receive", "ip:ip:ill_input_short_v6:receive" }));
        Assert.That(h.Ok("dtrace", "-l", "-P", "ip"), Does.StartWith(Header));
    }

    [Test]
    public void Dash_l_P_tcp_and_udp_list_illumos_s_functions()
    {
        var h = CliHost.TwoVnicsOnAStub();
        Assert.That(Listed(h, "-P", "tcp"), Is.EquivalentTo(new[]
        {
            "tcp:ip:tcp_send_data:send", "tcp:ip:tcp_xmit_early_reset:send", "tcp:ip:tcp_input_data:receive",
            "tcp:ip:tcp_input_listener:receive", "tcp:ip:tcp_xmit_listeners_reset:receive", "tcp:ip:tcp_set_state:state-change",
            "tcp:ip:tcp_do_connect:connect-request", "tcp:ip:tcp_input_data:connect-established", "tcp:ip:tcp_input_data:connect-refused",
            "tcp:ip:tcp_input_data:accept-established", "tcp:ip:tcp_xmit_early_reset:accept-refused",
        }));
        Assert.That(Listed(h, "-n", "tcp:::send"), Is.EqualTo(new[] { "tcp:ip:tcp_send_data:send", "tcp:ip:tcp_xmit_early_reset:send" }));
        Assert.That(Listed(h, "-P", "udp"), Is.EquivalentTo(new[] { "udp:ip:udp_output_newdst:send", "udp:ip:udp_output_connected:send", "udp:ip:udp_input:receive" }));
        Assert.That(Listed(h, "-n", "mac:a0::*-fail"), Is.All.Match("^mac:a0:mac_protect_check_one:"));
    }

    [Test]
    public void Probefunc_names_the_function_that_fired_for_listeners_connections_and_closed_ports()
    {
        var (code, o, e) = DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
            dtrace -q -n 'tcp:::, ip::: { @[probeprov, probefunc, probename] = count(); }' &
            zlogin b httpd -p 443 &
            zlogin a curl -s -o /dev/null http://10.0.0.2:443/
            ! zlogin a curl -s http://10.0.0.2:444/
            """);
        Assert.That(code, Is.Zero, o + e);
        string Row(string prov, string func, string name) => $@"\n  {prov} +{func} +{name} +[1-9]\d*\n";
        using (Assert.EnterMultipleScope())
        {
            // The SYN to 443 reaches httpd's listener; the rest of that connection is tcp_input_data's.
            Assert.That(o, Does.Match(Row("tcp", "tcp_input_listener", "receive")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_input_data", "receive")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_send_data", "send")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_do_connect", "connect-request")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_input_data", "connect-established")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_input_data", "accept-established")));
            // The SYN to 444 finds no one: received by tcp_xmit_listeners_reset, refused by tcp_xmit_early_reset's RST.
            Assert.That(o, Does.Match(Row("tcp", "tcp_xmit_listeners_reset", "receive")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_xmit_early_reset", "send")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_xmit_early_reset", "accept-refused")));
            Assert.That(o, Does.Match(Row("tcp", "tcp_input_data", "connect-refused")));
            Assert.That(o, Does.Match(Row("ip", "ip_xmit", "send")));
            Assert.That(o, Does.Match(Row("ip", "ill_input_short_v4", "receive")));
        }
    }
}
