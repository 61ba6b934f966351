using SmartOS.Cli.Tests.Commands;

namespace SmartOS.Cli.Tests.Snoop;

/// <summary>The application-layer interpreters on what this system's own programs send: snoop
/// reads the DHCP client's DISCOVER as snoop_dhcp.c would.</summary>
public class SnoopLiveApplicationTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private static (Task<int> Task, OutputCapture Out, OutputCapture Err) Start(CliHost h, string line)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e };
        return (Dispatcher.StartAsync(ctx, A(line)), o, e);
    }

    [Test]
    public void Snoop_shows_the_dhcp_clients_discover_as_snoop_dhcp_c_names_it()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 db0"));
        h.Ok("zonecfg", "-z", "db", "create; set zonepath=/zones/db; add net; set physical=db0; end");
        h.Ok("zoneadm", "-z", "db", "install");
        h.Ok("zoneadm", "-z", "db", "boot");
        var snoop = Start(h, "snoop -d db0 -c 1 -V udp port 67");
        var client = Start(h, "zlogin db ipadm create-addr -T dhcp net0/dhcp");
        bool seen = h.World.Scheduler.RunUntil(() => snoop.Task.IsCompleted, h.World.Scheduler.Now + 30 * SmartOS.Kernel.Time.Second);
        string[] lines = snoop.Out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(seen, Is.True, $"no DHCP packet within 30 s of virtual time; ipadm: {client.Err}");
            Assert.That(lines, Has.Length.GreaterThanOrEqualTo(2), snoop.Out.ToString());
            Assert.That(lines[^2], Does.Contain("UDP D=67 S=68 "));
            Assert.That(lines[^1], Does.EndWith(" DHCP/BOOTP DHCPDISCOVER"));
        }
    }
}
