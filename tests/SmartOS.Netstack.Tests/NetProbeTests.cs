using SmartOS.Kernel;
using SmartOS.Kernel.Trace;
using SmartOS.Kernel.Wire;

namespace SmartOS.Netstack.Tests;

/// <summary>The ip and udp providers' sites (NetProbes.cs): one probe set per host, firings named
/// by the stack's zone, typed arguments read through their ProbeType, and no allocation to fire.</summary>
public class NetProbeTests
{
    private sealed class Recorder : IProbeConsumer
    {
        public bool Record;
        public int Count;
        public readonly List<string> Lines = [];

        public void Fired(Probe probe, in ProbeArgs args)
        {
            Count++;
            if (!Record) return;
            var ip = probe.ArgTypes[2]!;
            string line = $"{args.Zone} {probe.Provider}:::{probe.Name} {ip.Member("ip_saddr")!.Str!(args.A2.Obj!)} -> {ip.Member("ip_daddr")!.Str!(args.A2.Obj!)} plength {ip.Member("ip_plength")!.Int!(args.A2.Obj!)}";
            if (probe.Provider == "udp") line += $" dport {probe.ArgTypes[4]!.Member("udp_dport")!.Int!(args.A4.Obj!)}";
            if (probe.Provider == "ip") line += $" v6 {(args.A5.Obj != null ? 1 : 0)} ttl {probe.ArgTypes[4]!.Member("ipv4_ttl")!.Int!(args.A4.Obj!)}";
            Lines.Add(line);
        }
    }

    private static (World W, IpStack A, IpStack B, NetProbes Probes) Rig()
    {
        var w = new World();
        w.Stub("stub0");
        var a = w.Stack("stub0", "10.0.0.1/24");
        var b = w.Stack("stub0", "10.0.0.2/24");
        var probes = NetProbes.For(new ProbeRegistry());
        a.Probes = probes;
        b.Probes = probes;
        return (w, a, b, probes);
    }

    [Test]
    public void A_datagram_fires_udp_and_ip_send_in_its_zone_and_receive_in_the_peers()
    {
        var (w, a, b, probes) = Rig();
        var rec = new Recorder { Record = true };
        foreach (var p in new[] { probes.IpSend, probes.IpReceive, probes.UdpSend, probes.UdpReceive }) p.Attach(rec);
        using var server = b.OpenUdpSocket();
        server.Bind(IpAddress.AnyV4, 7000);
        using var client = a.OpenUdpSocket();
        client.Bind(IpAddress.AnyV4, 4000);
        client.SendTo("hello"u8, new IpEndpoint(World.Ip("10.0.0.2"), 7000));
        w.Run(Time.Millisecond);
        Assert.That(rec.Lines, Is.EqualTo(new[]
        {
            "z0 udp:::send 10.0.0.1 -> 10.0.0.2 plength 13 dport 7000",
            "z0 ip:::send 10.0.0.1 -> 10.0.0.2 plength 13 v6 0 ttl 255",
            "z1 ip:::receive 10.0.0.1 -> 10.0.0.2 plength 13 v6 0 ttl 255",
            "z1 udp:::receive 10.0.0.1 -> 10.0.0.2 plength 13 dport 7000",
        }));
    }

    [Test]
    public void Stacks_of_one_host_share_its_probes()
    {
        var registry = new ProbeRegistry();
        var first = NetProbes.For(registry);
        Assert.That(NetProbes.For(registry), Is.SameAs(first));
        Assert.That(registry.All.Where(p => p.Provider is "ip" or "tcp" or "udp").Select(p => p.Name), Is.EqualTo(new[]
        {
            "send", "receive", "send", "receive", "state-change", "connect-request", "connect-established", "connect-refused",
            "accept-established", "accept-refused", "send", "receive", "receive", "send", "receive", "receive", "send",
        }));
        // Each under the illumos function that fires it (NetProbes.cs rule 4).
        Assert.That(registry.All.Where(p => p.Provider is "ip" or "tcp" or "udp").Select(p => $"{p.Provider}:{p.Module}:{p.Function}:{p.Name}"), Is.EqualTo(new[]
        {
            "ip:ip:ip_xmit:send", "ip:ip:ill_input_short_v4:receive", "tcp:ip:tcp_send_data:send", "tcp:ip:tcp_input_data:receive",
            "tcp:ip:tcp_set_state:state-change", "tcp:ip:tcp_do_connect:connect-request", "tcp:ip:tcp_input_data:connect-established",
            "tcp:ip:tcp_input_data:connect-refused", "tcp:ip:tcp_input_data:accept-established", "tcp:ip:tcp_xmit_early_reset:accept-refused",
            "udp:ip:udp_output_newdst:send", "udp:ip:udp_input:receive", "ip:ip:ill_input_short_v6:receive", "tcp:ip:tcp_xmit_early_reset:send",
            "tcp:ip:tcp_input_listener:receive", "tcp:ip:tcp_xmit_listeners_reset:receive", "udp:ip:udp_output_connected:send",
        }));
        Assert.That(registry.All.Where(p => p.Provider != "dtrace"), Is.All.Matches<Probe>(p => p.Shared));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Sending_and_receiving_datagrams_allocates_nothing_with_the_probes_disabled_or_enabled(bool enabled)
    {
        var (w, a, b, probes) = Rig();
        var rec = new Recorder();
        if (enabled) foreach (var p in new[] { probes.IpSend, probes.IpReceive, probes.UdpSend, probes.UdpReceive }) p.Attach(rec);
        using var server = b.OpenUdpSocket();
        server.Bind(IpAddress.AnyV4, 7000);
        using var client = a.OpenUdpSocket();
        var to = new IpEndpoint(World.Ip("10.0.0.2"), 7000);
        var buf = new byte[64];
        int received = 0;
        void Round()
        {
            for (int i = 0; i < 100; i++) client.SendTo(buf.AsSpan(0, 64), to);
            w.Run(Time.Millisecond);
            while (server.TryReceiveFrom(buf, out _, out _)) received++;
        }
        for (int i = 0; i < 5; i++) Round();
        // The least of several rounds, as UdpTests' steady-state test measures.
        long allocated = long.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Round();
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        Assert.That(allocated, Is.LessThan(1024));
        // Every datagram sent fires udp:::send and ip:::send; every one delivered (the first round
        // loses some while ARP resolves) ip:::receive and udp:::receive.
        Assert.That(rec.Count, Is.EqualTo(enabled ? 2 * 10 * 100 + 2 * received : 0));
    }
}
