using SmartOS.Testing;
using SmartOS.Cli.Commands;
using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.ResourceControl;

/// <summary>flowstat's options, units and wording as illumos's usr/src/cmd/flowstat/flowstat.c has them.</summary>
public class FlowstatTests
{
    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A flow "web" on a0 that has sent 2,500 frames of 1,000 bytes.</summary>
    private static CliHost Busy()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-vnic -l stub0 -m 2:0:0:0:0:1 a0"));
        h.Ok(A("dladm create-vnic -l stub0 -m 2:0:0:0:0:2 b0"));
        h.Ok(A("flowadm add-flow -l a0 -a transport=udp,remote_port=7 web"));
        h.Ok(A("pktgen -d a0 -c 2500 -s 1000 --dst 2:0:0:0:0:2 --udp 10.0.0.1:5000,10.0.0.2:7"));
        h.World.Scheduler.RunFor(10 * SmartOS.Kernel.Time.Second);
        return h;
    }

    private static IEnumerable<TestCaseData> Units() => DataFile.Cases("flowstat-units.txt", 4);

    [TestCaseSource(nameof(Units))]
    public void Values_scale_as_map_to_units_does(DataCase c)
    {
        char unit = c[1] == "-" ? '\0' : c[1][0];
        Assert.That(Flowstat.MapToUnits(c.Int(0), unit, c.Bool(2)), Is.EqualTo(c[3]), c.Where);
    }

    [Test]
    public void Counters_scale_to_units_and_stay_right_justified()
    {
        var h = Busy();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("flowstat -t")), Is.EqualTo("           FLOW    OPKTS   OBYTES    OERRS\n            web    2.50K    2.50M        0\n"));
            Assert.That(h.Ok(A("flowstat -t -u R")), Is.EqualTo("           FLOW    OPKTS   OBYTES    OERRS\n            web     2500  2500000        0\n"));
            Assert.That(h.Ok(A("flowstat -p -o opkts,obytes web")), Is.EqualTo("2500:2500000\n"));
        }
    }

    [Test]
    public void Dash_A_dumps_every_statistic_of_each_flow()
    {
        var h = Busy();
        Assert.That(h.Ok(A("flowstat -A web")), Is.EqualTo(
            "web\n\t       ipackets\t              0\n\t         rbytes\t              0\n\t         idrops\t              0\n" +
            "\t       opackets\t           2500\n\t         obytes\t        2500000\n\t         odrops\t              0\n"));
    }

    [Test]
    public void Unknown_fields_are_left_out_with_a_warning_or_refused_when_parsable()
    {
        var h = Busy();
        var human = h.Run(A("flowstat -o flow,bogus,opkts"));
        var parsable = h.Run(A("flowstat -p -o flow,bogus"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(human.ExitCode, Is.Zero);
            Assert.That(human.Stderr, Is.EqualTo("flowstat: warning: ignoring unknown output field: `bogus'\n"));
            Assert.That(human.Stdout, Is.EqualTo("           FLOW    OPKTS\n            web    2.50K\n"));
            Assert.That((parsable.ExitCode, parsable.Stderr), Is.EqualTo((1, "flowstat: unknown output field: `bogus'\n")));
            Assert.That(h.Run(A("flowstat -o bogus")).Stderr, Is.EqualTo("flowstat: no valid output fields\n"));
        }
    }

    private static IEnumerable<TestCaseData> OptionErrors() => DataFile.Cases("flowstat-option-errors.txt", 2);

    [TestCaseSource(nameof(OptionErrors))]
    public void Option_errors_are_worded_as_flowstat_c_words_them(DataCase c)
    {
        var r = Busy().Run(A(c[0]));
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, c[1])), c.Where);
    }

    [Test]
    public void Unknown_options_and_missing_values_print_the_usage()
    {
        var h = Busy();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Run(A("flowstat -z")).Stderr, Does.StartWith("flowstat: unrecognized option '-z'\nusage: flowstat [-r | -t]"));
            Assert.That(h.Run(A("flowstat -u")).Stderr, Does.StartWith("flowstat: option '-u' requires a value\nusage: "));
        }
    }

    [Test]
    public void History_is_refused_because_no_accounting_log_is_kept()
    {
        var r = Busy().Run(A("flowstat -h -f /var/log/net.log"));
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, "flowstat: -h: flow usage history needs an extended accounting log (acctadm), which this host does not keep\n")));
    }
}
