using SmartOS.Vnic;

namespace SmartOS.Cli.Tests.Commands;

public class PktgenKstatTests
{
    private static string[] A(string line) => CliHost.Split(line);

    [Test]
    public void Kstat_p_prints_link_counters_in_illumos_format()
    {
        var h = new CliHost();
        h.Ok(A("pktgen -d e1000g0 -c 2 -s 100"));
        string o = h.Ok(A("kstat -p link:0:e1000g0:opackets"));
        Assert.That(o, Is.EqualTo("link:0:e1000g0:opackets\t0\n"), "no wire: the NIC is down and counts drops instead");
        h.World.Connect((SmartOS.Vnic.PhysLink)h.Host.Mac.Find("e1000g0")!, (SmartOS.Vnic.PhysLink)h.Host.Mac.Find("e1000g1")!);
        h.Ok(A("pktgen -d e1000g0 -c 3 -s 100"));
        h.World.Scheduler.RunFor(1_000_000);
        Assert.That(h.Ok(A("kstat -p link:0:e1000g0:/^o/")), Is.EqualTo("link:0:e1000g0:obytes\t300\nlink:0:e1000g0:oerrors\t0\nlink:0:e1000g0:opackets\t3\n"));
        Assert.That(h.Ok(A("kstat -p link:0:e1000g1:ipackets")), Is.EqualTo("link:0:e1000g1:ipackets\t3\n"));
        Assert.That(h.Ok(A("kstat -p link:0:e1000g0:drop_link_down")), Is.EqualTo("link:0:e1000g0:drop_link_down\t2\n"));
    }

    [Test]
    public void Kstat_selectors_and_globs_filter()
    {
        var h = new CliHost();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("kstat -p -m link -n e1000g1 -s obytes")), Is.EqualTo("link:0:e1000g1:obytes\t0\n"));
            Assert.That(h.Ok(A("kstat -p link:0:e1000g*:ipackets")), Is.EqualTo("link:0:e1000g0:ipackets\t0\nlink:0:e1000g1:ipackets\t0\n"));
            Assert.That(h.Ok(new[] { "kstat", "-p", "link::/g1$/:rbytes" }), Is.EqualTo("link:0:e1000g1:rbytes\t0\n"));
            Assert.That(h.Run(A("kstat -p nosuch:::")).ExitCode, Is.EqualTo(1));
            Assert.That(h.Run(A("kstat -x")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Run(A("kstat -p a:b:c:d:e")).ExitCode, Is.EqualTo(2));
        }
    }

    [Test]
    public void Pktgen_frames_reach_the_peer_vnic_with_the_requested_size()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-vnic -l stub0 -m 2:0:0:0:0:1 a0"));
        h.Ok(A("dladm create-vnic -l stub0 -m 2:0:0:0:0:2 b0"));
        string o = h.Ok(A("pktgen -d a0 -c 4 -s 200 --dst 2:0:0:0:0:2 --udp 198.18.0.1:1,198.18.0.2:2"));
        Assert.That(o, Is.EqualTo("pktgen: sent 4 frames (800 bytes) on a0\n"));
        Assert.That(h.Host.Mac.Find("b0")!.Stats.RBytes, Is.EqualTo(800));
    }

    [Test]
    public void Pktgen_with_a_rate_spaces_frames_in_virtual_time()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub stub0"));
        h.Ok(A("dladm create-vnic -l stub0 a0"));
        long start = h.World.Scheduler.Now;
        h.Ok(A("pktgen -d a0 -c 11 -s 60 -r 1k"));
        Assert.That(h.World.Scheduler.Now - start, Is.EqualTo(10_000_000), "11 frames at 1000/s span 10 ms");
    }

    [TestCase("pktgen -c 1", 2, "pktgen: -d LINK is required\n")]
    [TestCase("pktgen -d nosuch0", 1, "pktgen: link nosuch0 is not valid: object not found\n")]
    [TestCase("pktgen -d e1000g0 -c 0", 2, "pktgen: invalid count '0'\n")]
    [TestCase("pktgen -d e1000g0 -s 10", 2, "pktgen: invalid size '10'\n")]
    [TestCase("pktgen -d e1000g0 -s 20 --udp 1.2.3.4:1,1.2.3.5:2", 2, "pktgen: size 20 is too small: at least 42 bytes for these headers\n")]
    [TestCase("pktgen -d e1000g0 --dst 1:2", 2, "pktgen: invalid MAC address '1:2'\n")]
    [TestCase("pktgen -d e1000g0 --vlan 4095", 2, "pktgen: invalid VLAN identifier '4095'\n")]
    [TestCase("pktgen -d e1000g0 --udp 1.2.3.4,1.2.3.5", 2, "pktgen: invalid --udp '1.2.3.4,1.2.3.5': expected SRC_IP:PORT,DST_IP:PORT (IPv4)\n")]
    [TestCase("pktgen -d e1000g0 -r fast", 2, "pktgen: invalid rate 'fast'\n")]
    public void Pktgen_rejects_bad_input(string line, int code, string firstLine)
    {
        var h = new CliHost();
        var r = h.Run(A(line));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(code));
            Assert.That(r.Stderr, Does.StartWith(firstLine));
            Assert.That(h.Host.Mac.Find("e1000g0")!.Stats.OPackets + h.Host.Mac.Find("e1000g0")!.Stats.DropLinkDown, Is.Zero);
        }
    }

    [Test]
    public void Pktgen_refuses_an_etherstub()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-etherstub stub0"));
        Assert.That(h.Run(A("pktgen -d stub0")).Stderr, Does.Contain("an etherstub has no client"));
    }

    [Test]
    public void Unknown_command_exits_127()
    {
        var h = new CliHost();
        var r = h.Run("frob");
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((127, "smartos: frob: command not found\n")));
    }
}
