using System.Diagnostics;
using System.Text;
using SmartOS.Cli;
using SmartOS.Dtrace;
using SmartOS.Kernel;
using SmartOS.Kernel.Trace;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// DTrace (issue 14): the wall time of `dtrace -q -n` on a 50-clause program that ends in BEGIN, so
/// compiling, matching and enabling every clause on every link's probes, and tearing it down. The
/// datapath's cost with probes disabled and enabled is in DatapathBenchmarks; the IP stacks' here:
/// 64-byte UDP datagrams between two stacks without probes, with the host's ip/tcp/udp probes
/// present but disabled, and with `udp:::send, ip:::receive { @[zonename] = count(); }` enabled;
/// then with the sched provider (kernel/Trace/SchedProbes.cs) hooked to the scheduler but disabled
/// (its one test per event), and with `sched:::on-cpu { @[execname] = count(); }` enabled.
/// </summary>
public static class DtraceBenchmarks
{
    public static void Run(TextWriter o)
    {
        Compile(o);
        // Two passes, the first unprinted: the JIT's tiers settle before anything is measured.
        for (int pass = 0; pass < 2; pass++)
            foreach (var mode in new[] { "no probes", "probes disabled", "udp:::send, ip:::receive { @[zonename] = count(); }", "sched probes disabled", "sched:::on-cpu { @[execname] = count(); }" })
                Udp(pass == 0 ? TextWriter.Null : o, mode);
        DtraceProviderBenchmarks.Run(o);   // the io and vmm providers
    }

    private static void Udp(TextWriter o, string mode)
    {
        var scheduler = new Scheduler();
        var pool = new PacketPool();
        var mac = new MacLayer("bench", scheduler, pool, new KstatRegistry(), new HostRandom(1));
        if (mode.Contains("sched")) SchedProbes.Attach(mac.Probes, scheduler);
        mac.CreateEtherstub("stub0", temporary: true);
        IpStack Stack(int n)
        {
            mac.CreateVnic("bnet" + n, "stub0", new MacLayer.MacRequest(MacAddressType.Auto), 0, true, out var vnic);
            var s = new IpStack("z" + n, scheduler, pool, new HostRandom((ulong)n + 10)) { DadTransmits = 0 };
            if (mode != "no probes") s.Probes = NetProbes.For(mac.Probes);
            s.CreateInterface("net0", vnic!.OpenClient("ip")!);
            s.AddAddress("net0/v4", IpAddress.V4(0x0A000001u + (uint)n), 24, out _);
            return s;
        }
        var a = Stack(0);
        var b = Stack(1);
        Consumer? consumer = null;
        if (mode.Contains('{'))
        {
            consumer = new Consumer(mac.Probes, scheduler, "global", TextWriter.Null, TextWriter.Null) { Quiet = true };
            consumer.Enable(DProgram.Parse(mode));
            consumer.Start();
        }
        var rx = b.OpenUdpSocket();
        rx.Bind(IpAddress.AnyV4, 9);
        var tx = a.OpenUdpSocket();
        var to = new IpEndpoint(IpAddress.V4(0x0A000002), 9);
        var payload = new byte[64];
        var sink = new byte[64];
        long received = 0;
        void Send(int n)
        {
            for (int i = 0; i < n; i++)
            {
                tx.SendTo(payload, to);
                if ((i & 127) == 127)
                {
                    scheduler.RunUntil(scheduler.Now);
                    while (rx.TryReceiveFrom(sink, out _, out _)) received++;
                }
            }
            scheduler.RunUntil(scheduler.Now);
            while (rx.TryReceiveFrom(sink, out _, out _)) received++;
        }
        Send(200_000);
        received = 0;
        const int count = 2_000_000;
        var sw = Stopwatch.StartNew();
        Send(count);
        sw.Stop();
        consumer?.Finish(interrupted: false);
        o.WriteLine($"dtrace: 64-byte UDP datagrams between two stacks, {mode}: {sw.Elapsed.TotalNanoseconds / count:F0} ns per datagram ({received:N0} delivered)");
    }

    private static void Compile(TextWriter o)
    {
        var world = new World(1);
        var host = world.AddHost("h1", 4);
        var script = new StringBuilder();
        for (int i = 0; i < 50; i++)
            script.Append($"mac:::transmit /arg1 > {i} && probemod != \"x{i}\"/ {{ this->n = arg1 * 2 + {i}; @a{i}[probemod, this->n % 7] = count(); @q{i} = quantize(arg1); }}\n");
        script.Append("BEGIN { exit(0); }\n");
        string[] argv = ["dtrace", "-q", "-n", script.ToString()];
        for (int i = 0; i < 20; i++) Check(Dispatcher.Run(world, host, argv)); // the JIT
        const int runs = 200;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < runs; i++) Check(Dispatcher.Run(world, host, argv));
        sw.Stop();
        o.WriteLine($"dtrace: a 50-clause program on 4 links' probes compiled, enabled, run to exit and torn down: {sw.Elapsed.TotalMilliseconds * 1000 / runs:N0} us per run");
    }

    private static void Check(CommandResult r)
    {
        if (r.ExitCode != 0) throw new InvalidOperationException("dtrace failed: " + r.Stderr);
    }
}
