using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>dladm show-link -s -i and flowstat -i: totals first, then each interval's change, until ^C.</summary>
public class IntervalStatsTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private static CliHost Stub() => CliHost.TwoVnicsOnAStub();

    /// <summary>Starts a command, lets <paramref name="during"/> run at chosen times, then ^C.</summary>
    private static (int Code, string Out, string Err) Watch(CliHost h, string line, params (long At, string Command)[] during)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        using var cts = new CancellationTokenSource();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, Cancel = cts.Token };
        long start = h.World.Scheduler.Now;
        var task = Dispatcher.StartAsync(ctx, A(line));
        foreach (var (at, command) in during)
        {
            h.World.Scheduler.RunUntil(start + at);
            h.Ok(A(command));
        }
        h.World.Scheduler.RunUntil(start + 3500 * Time.Millisecond);
        cts.Cancel();
        h.World.Scheduler.RunUntil(() => task.IsCompleted, h.World.Scheduler.Now + Time.Second);
        Assert.That(task.IsCompleted, Is.True, "the command did not stop after ^C");
        return (task.Result, o.ToString(), e.ToString());
    }

    [Test]
    public void Show_link_s_i_reports_totals_then_each_intervals_change_until_interrupted()
    {
        var h = Stub();
        h.Ok(A("pktgen -d a0 -c 5 -s 100 --dst 2:0:0:0:0:2"));
        var r = Watch(h, "dladm show-link -s -i 1 -p -o link,opackets,obytes a0",
            (500 * Time.Millisecond, "pktgen -d a0 -c 3 -s 100 --dst 2:0:0:0:0:2"),
            (2500 * Time.Millisecond, "pktgen -d a0 -c 1 -s 100 --dst 2:0:0:0:0:2"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.Zero, r.Err);
            // At 0 s the totals, then the changes over (0,1], (1,2], (2,3] seconds.
            Assert.That(r.Out, Is.EqualTo("a0:5:500\na0:3:300\na0:0:0\na0:1:100\n"));
        }
    }

    [Test]
    public void Flowstat_i_reports_each_flows_change_per_interval()
    {
        var h = Stub();
        h.Ok(A("flowadm add-flow -t -l a0 -a transport=udp,local_port=5000 web"));
        var r = Watch(h, "flowstat -t -i 1 -p -o flow,opkts web",
            (1500 * Time.Millisecond, "pktgen -d a0 -c 4 -s 100 --dst 2:0:0:0:0:2 --udp 10.0.0.1:5000,10.0.0.2:7"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.Code, Is.Zero, r.Err);
            Assert.That(r.Out, Is.EqualTo("web:0\nweb:0\nweb:4\nweb:0\n"));
        }
    }

    [TestCase("dladm show-link -s -i 0", "dladm: invalid interval value '0'\n")]
    [TestCase("dladm show-link -i 1", "dladm: the option -i can be used only with -s\n")]
    [TestCase("flowstat -i x", "flowstat: invalid interval value 'x'\n")]
    public void Bad_intervals_are_refused(string line, string message)
    {
        var h = Stub();
        var r = h.Fails(A(line));
        Assert.That(r.Stderr, Is.EqualTo(message));
    }

    [Test]
    public void Interval_reports_need_a_running_host()
    {
        var h = Stub();
        var r = Dispatcher.Run(h.World, h.Host, A("flowstat -i 1"), stdin: null, hostRunning: false);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.StartWith("flowstat: the host is not booted"));
        }
    }
}
