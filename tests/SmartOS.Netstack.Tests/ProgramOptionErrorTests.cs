using SmartOS.Kernel;
using SmartOS.Vnic;

namespace SmartOS.Netstack.Tests;

/// <summary>
/// Each netstack program reads its options with Getopt from its descriptor's getopt string: a bad
/// option and a missing value print what its source prints (getopt(3C)'s line, then its usage;
/// getopt_long's line for iperf3; curl's own words) with its exit status.
/// </summary>
public class ProgramOptionErrorTests
{
    private const string PingUsage = "usage: ping host [timeout]\nusage: ping -s [-anv] [-c traffic_class] [-I interval] [-i interface] [-P tos]\n\t[-t ttl] host [data_size] [npackets]\n";
    private const string NetstatUsage = "usage: netstat [-anv] [-f address_family]\n       netstat -r [-anv] [-f address_family]\n       netstat -s [-f address_family] [-P protocol]\n";
    private const string ArpUsage = "Usage: arp hostname\n       arp -a [-n]\n       arp -d hostname\n       arp -s hostname ether_addr\n";
    private const string RouteUsage = "usage: route [ -fnpqv ] [-z <zone> ] [ -R <root-dir> ] cmd [[ -<qualifers> ] args ]\n";
    private const string NcUsage = "usage: nc [-luvz] [-w timeout] [-m text | --send text | --bytes n] [--count] [-p port] [host] [port]\n";

    private static (int Status, string Err) Run(string command)
    {
        var (status, stdout, stderr) = RunBoth(command);
        Assert.That(stdout, Is.Empty, "a refused command line prints nothing on stdout");
        return (status, stderr);
    }

    private static (int Status, string Out, string Err) RunBoth(string command)
    {
        var w = new World();
        w.Stub("stub0");
        var stack = w.Stack("stub0", "10.0.0.1/24");
        string[] argv = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(Programs.TryGet(argv[0], out var run), Is.True, argv[0]);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var ctx = new ProgramContext
        {
            Out = o, Err = e, Cancel = default, Stack = stack,
            OpenLink = name => (w.Mac.Find(name) as PortLink)?.OpenClient("ip"),
        };
        int status = w.Await(() => run(ctx, argv[1..]), 10 * Time.Second);
        return (status, o.ToString(), e.ToString());
    }

    private static void Check(string command, int status, string err)
        => Assert.That(Run(command), Is.EqualTo((status, err)));

    // ping.c: getopt(... "aA:c:dF:G:g:I:i:LlnP:p:rRSsTt:UvX:x:Y0123?"), case '?': usage(progname);
    // exit(EXIT_FAILURE). getopt(3C) has printed its own line first.
    [TestCase("ping -Z 10.0.0.2", 1, "ping: illegal option -- Z\n" + PingUsage)]
    [TestCase("ping -t", 1, "ping: option requires an argument -- t\n" + PingUsage)]
    [TestCase("ping -?", 1, PingUsage)]
    [TestCase("ping 10.0.0.2 -s", 1, "ping: bad timeout: -s\n")] // options end at the host, as getopt stops there
    public void Ping_words_option_errors_as_ping_c(string command, int status, string err) => Check(command, status, err);

    // traceroute.c: opterr = 0 before getopt, so getopt prints nothing; '?' is usage(), which
    // ends in exit(EXIT_FAILURE).
    [TestCase("traceroute -Z 10.0.0.2", 1)]
    [TestCase("traceroute -m", 1)]
    public void Traceroute_prints_only_its_usage_for_option_errors_as_traceroute_c(string command, int status)
        => Check(command, status, "Usage: traceroute [-n] [-m max_hop] [-p port] [-q nqueries] [-w wait_time] host [packetlen]\n");

    // netstat.c: case '?': default: usage(name), which exits EXIT_FAILURE; "%s: extra arguments".
    [TestCase("netstat -Z", 1, "netstat: illegal option -- Z\n" + NetstatUsage)]
    [TestCase("netstat -s -P", 1, "netstat: option requires an argument -- P\n" + NetstatUsage)]
    [TestCase("netstat -rn 5", 1, "netstat: extra arguments\n" + NetstatUsage)]
    public void Netstat_words_option_errors_as_netstat_c(string command, int status, string err) => Check(command, status, err);

    // arp.c: getopt(argc, argv, "nadfs"), case '?': usage(); exit(1); usage() prints on stdout.
    [TestCase("arp -Z", "arp: illegal option -- Z\n")]
    [TestCase("arp -a -d 10.0.0.2", "")]
    [TestCase("arp -n 10.0.0.2", "")]
    [TestCase("arp -d", "")]
    public void Arp_words_option_errors_as_arp_c(string command, string err)
    {
        var (status, stdout, stderr) = RunBoth(command);
        Assert.That((status, stdout, stderr), Is.EqualTo((1, ArpUsage, err)));
    }

    [TestCase("arp -s 10.0.0.9 2:0:0:0:0:9 temp", "arp: keyword 'temp' is not supported by this arp\n")]
    [TestCase("arp -s 10.0.0.9 2:0:0:0:0:9 loud", "arp: unknown keyword 'loud'\n")]
    [TestCase("arp -f /etc/ethers", "arp: option -f is not supported by this arp\n")]
    public void Arp_refuses_what_it_does_not_do_by_name(string command, string err) => Check(command, 1, err);

    // route.c: getopt(argc, argv, "R:nqdtvfpz:"), case '?': usage(NULL), exit(1); an unknown
    // command is usage(*argv): "route: botched keyword: %s" first.
    [TestCase("route -Z add default 10.0.0.254", 1, "route: illegal option -- Z\n" + RouteUsage)]
    [TestCase("route -z", 1, "route: option requires an argument -- z\n" + RouteUsage)]
    [TestCase("route flip default", 1, "route: botched keyword: flip\n" + RouteUsage)]
    [TestCase("route -p add default 10.0.0.254", 1, "route: option -p is not supported by this route\n")]
    public void Route_words_option_errors_as_route_c(string command, int status, string err) => Check(command, status, err);

    // ifconfig.c reads -a and its modifiers itself (no getopt): anything else is its usage.
    [TestCase("ifconfig -Z")]
    [TestCase("ifconfig")]
    [TestCase("ifconfig -a net0")]
    public void Ifconfig_prints_its_usage_for_a_bad_command_line(string command)
        => Check(command, 2, "usage: ifconfig <interface> | -a[ 4 | 6 | D ][ u | d ][ Z ]\n");

    // OpenBSD nc (as illumos ships it): getopt, then usage(1), exit 1.
    [TestCase("nc -Z 10.0.0.2 80", 1, "nc: illegal option -- Z\n" + NcUsage)]
    [TestCase("nc -l -p", 1, "nc: option requires an argument -- p\n" + NcUsage)]
    [TestCase("nc --nope 10.0.0.2 80", 1, "nc: illegal option -- nope\n" + NcUsage)]
    [TestCase("nc -m hi --bytes 1k 10.0.0.2 80", 1, NcUsage)]
    public void Nc_words_option_errors_as_nc(string command, int status, string err) => Check(command, status, err);

    // curl's tool_getparam: "option %s: is unknown" / "requires parameter" / "expected a proper
    // numerical parameter", then the hint, exit 2 (CURLE_FAILED_INIT), whether or not -s is given.
    [TestCase("curl -Z http://10.0.0.2/", "option -Z: is unknown")]
    [TestCase("curl -s --nope http://10.0.0.2/", "option --nope: is unknown")]
    [TestCase("curl http://10.0.0.2/ --output", "option --output: requires parameter")]
    [TestCase("curl -m soon http://10.0.0.2/", "option -m: expected a proper numerical parameter")]
    public void Curl_words_option_errors_as_curl(string command, string message)
        => Check(command, 2, $"curl: {message}\ncurl: try 'curl --help' for more information\n");

    // iperf3 reads its options with getopt_long; its default case prints the usage and exits 1.
    // Values are checked by iperf3 itself: "iperf3: parameter error - ...".
    [TestCase("iperf -Z -s", "invalid option -- 'Z'")]
    [TestCase("iperf -c", "option requires an argument -- 'c'")]
    [TestCase("iperf -s --port", "option '--port' requires an argument")]
    [TestCase("iperf --nope -s", "unrecognized option '--nope'")]
    [TestCase("iperf --udp=1 -s", "option '--udp' doesn't allow an argument")]
    [TestCase("iperf -s -p 0", "parameter error - unknown or invalid option -p")]
    [TestCase("iperf -s -c 10.0.0.2", "parameter error - must either be a client (-c) or server (-s)")]
    public void Iperf_words_option_errors_as_iperf3(string command, string message)
        => Check(command, 1, $"iperf: {message}\nUsage: iperf [-s|-c host] [options]\n");

    // httpd and dhcpd are this project's: getopt(3C)'s line, then the usage, exit 2.
    [TestCase("httpd -Z", "httpd: illegal option -- Z\n")]
    [TestCase("httpd -p", "httpd: option requires an argument -- p\n")]
    [TestCase("httpd -p 0", "")]
    [TestCase("httpd extra", "")]
    public void Httpd_words_option_errors_as_getopt(string command, string first)
        => Check(command, 2, first + "usage: httpd [-p port] [-d directory] [-c count]\n");

    [TestCase("dhcpd -Z -i net0 -r 10.0.0.5-10.0.0.9", "dhcpd: illegal option -- Z\n")]
    [TestCase("dhcpd -i", "dhcpd: option requires an argument -- i\n")]
    [TestCase("dhcpd -i net0 -r 10.0.0.5-10.0.0.9 -l 0", "")]
    public void Dhcpd_words_option_errors_as_getopt(string command, string first)
        => Check(command, 2, first + "usage: dhcpd -i interface -r first-last [-g router] [-d name_server] [-l lease_seconds]\n");
}
