using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>vmadm blocked_outgoing_ports: a maxbw=0 TCP flow per port on the VM's VNIC while it runs,
/// as SmartOS's joyent brand sets them up.</summary>
public class BlockedPortsTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private static string Create(CliHost h, string alias, string ip, string extra)
    {
        var r = h.WithStdin($$"""
            { "alias": "{{alias}}", "autoboot": false,
              "nics": [ { "nic_tag": "stub0", "ips": ["{{ip}}/24"]{{extra}} } ] }
            """, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stderr.Split(' ')[^1].Trim();
    }

    /// <summary>Starts a program in a zone and leaves it running.</summary>
    private static Task<int> Background(CliHost h, params string[] argv)
    {
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = Stream.Null, StderrBytes = Stream.Null };
        return Dispatcher.StartAsync(ctx, argv);
    }

    [Test]
    public void Outgoing_tcp_to_a_blocked_port_is_dropped_while_other_ports_connect()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add -l stub0"));
        string client = Create(h, "client", "10.7.0.2", """, "blocked_outgoing_ports": [25, 587]""");
        string server = Create(h, "server", "10.7.0.3", "");
        h.Ok("vmadm", "start", client);
        h.Ok("vmadm", "start", server);
        h.World.Scheduler.RunFor(2 * Time.Second);
        _ = Background(h, "zlogin", server, "nc", "-l", "25");
        _ = Background(h, "zlogin", server, "nc", "-l", "80");

        var smtp = h.Run("zlogin", client, "nc", "-z", "-w", "2", "10.7.0.3", "25");
        var web = h.Run("zlogin", client, "nc", "-z", "-w", "2", "10.7.0.3", "80");
        string flows = h.Ok(A("flowadm show-flow -p -o flow,link"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(smtp.ExitCode, Is.Not.Zero, "port 25 is blocked");
            Assert.That(web.ExitCode, Is.Zero, web.Stderr);
            Assert.That(flows.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(2));
            Assert.That(flows, Does.Match(@"(?m)^f[0-9a-f_]+_br_25:z\d+_net0$"));
            Assert.That(h.Ok(A("flowadm show-flowprop -c -o value -p maxbw")), Does.Contain("0"));
            Assert.That(h.Ok("vmadm", "get", client), Does.Contain("\"blocked_outgoing_ports\": [").And.Contain("587"));
        }
        h.Ok("vmadm", "stop", client);
        Assert.That(h.Ok(A("flowadm show-flow -p -o flow")), Is.Empty, "the flows go with the running VM");
    }

    [TestCase("[0]")]
    [TestCase("[65536]")]
    [TestCase("\"25\"")]
    [TestCase("[\"smtp\"]")]
    public void Bad_ports_are_refused(string ports)
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add -l stub0"));
        var r = h.WithStdin($$"""{ "nics": [ { "nic_tag": "stub0", "ips": ["10.7.0.2/24"], "blocked_outgoing_ports": {{ports}} } ] }""", "vmadm", "create");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.Contain("nics.*.blocked_outgoing_ports"));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }
}
