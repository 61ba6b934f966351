using System.Diagnostics;
using System.Globalization;
using SmartOS.Cli.Observe;
using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// The cost of sampling a host's links (tools/Observe/LinkSeries.cs), which the dashboard does every
/// second on the host's loop: time and bytes allocated per sample against the number of links, once
/// each link's ring has filled (steady state), and a topology snapshot's time for the same hosts.
/// </summary>
public static class ObserveBenchmarks
{
    public static void Run(TextWriter o)
    {
        o.WriteLine("observe: one LinkSeries sample of every link of a host (rings full), and one Topology snapshot");
        o.WriteLine($"{"links",7} {"per sample",12} {"per link",10} {"alloc/sample",13} {"topology",10}");
        foreach (int n in (int[])[10, 100, 1_000, 10_000])
        {
            var world = new World(1);
            var host = world.AddHost("h1", 1);
            host.Mac.CreateEtherstub("stub0", temporary: true);
            for (int i = 0; i < n; i++)
            {
                var s = host.Mac.CreateVnic($"vnic{i}", "stub0", new MacLayer.MacRequest(MacAddressType.Random), 0, temporary: true, out _);
                if (!s.IsOk) throw new InvalidOperationException("create-vnic: " + s.Message);
            }
            const int capacity = 64;
            var series = new LinkSeries(host, Time.Second, capacity);
            for (int i = 0; i < capacity * 2; i++) series.Sample(i * Time.Second);
            int rounds = Math.Max(10, 200_000 / (n + 2));
            long before = GC.GetAllocatedBytesForCurrentThread();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < rounds; i++) series.Sample((capacity * 2 + i) * Time.Second);
            sw.Stop();
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            var tw = Stopwatch.StartNew();
            var topology = Topology.Of(world);
            tw.Stop();
            if (topology.Hosts[0].Links.Count != n + 2) throw new InvalidOperationException("topology lost links");
            double perSample = sw.Elapsed.TotalMicroseconds / rounds;
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{n + 2,7} {perSample,9:F1} us {perSample * 1000 / (n + 2),7:F0} ns {allocated / rounds,11} B {tw.Elapsed.TotalMilliseconds,7:F1} ms"));
        }
    }
}
