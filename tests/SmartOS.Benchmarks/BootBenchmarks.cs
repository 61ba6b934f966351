using System.Diagnostics;
using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Benchmarks;

/// <summary>
/// Boot time against the size of the configuration (issue 20, item 9): a host booted from N VNIC
/// records (VNICs over 1 + N/1000 etherstubs, VLAN ids 0-99, so switches hold many ports and
/// addresses repeat across VLANs), then from N zone records. Boot must be linear: the per-record
/// column stays flat as N grows.
/// </summary>
public static class BootBenchmarks
{
    public static void Run(TextWriter o)
    {
        Table(o, "datalink.conf of N VNIC records", "datalink.conf", LinkRecords, h => h.Mac.PersistentLinks.Count(r => r.Class == "vnic"));
        Table(o, "zones.conf of N zone records", "zones.conf", ZoneRecords, h => h.Zones.Zones.Count);
    }

    private static void Table(TextWriter o, string what, string file, Func<int, string> records, Func<Host, int> replayed)
    {
        o.WriteLine($"boot: {what}, replayed by a fresh host (in-memory store)");
        o.WriteLine($"{"N",9} {"wall",10} {"per record",12}");
        Boot(file, records(1_000)); // the JIT
        foreach (int n in (int[])[1_000, 10_000, 100_000])
        {
            string text = records(n);
            var sw = Stopwatch.StartNew();
            var host = Boot(file, text);
            sw.Stop();
            if (host.BootProblems.Count > 0) throw new InvalidOperationException("boot problems: " + host.BootProblems[0]);
            if (replayed(host) != n) throw new InvalidOperationException($"{replayed(host)} of {n} records replayed");
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{n,9} {sw.Elapsed.TotalMilliseconds,8:F0} ms {sw.Elapsed.TotalMilliseconds * 1000 / n,9:F1} us"));
        }
    }

    private static Host Boot(string file, string text)
    {
        var store = new MemoryConfigStore();
        store.Write(file, text);
        return new World().AddHost("bench", 2, store);
    }

    private static string ZoneRecords(int n)
    {
        var sb = new StringBuilder("[\n");
        for (int i = 0; i < n; i++)
        {
            sb.Append(CultureInfo.InvariantCulture,
                $"  {{\"Config\": {{\"Name\": \"z{i}\", \"ZonePath\": \"/zones/z{i}\", \"CappedMemory\": 268435456, \"Nets\": [{{\"Physical\": \"net{i}\", \"GlobalNic\": \"admin\", \"Ips\": [\"10.0.0.2/24\"]}}]}}, \"State\": \"installed\"}}");
            sb.Append(i + 1 < n ? ",\n" : "\n");
        }
        return sb.Append(']').ToString();
    }

    private static int Stubs(int n) => 1 + n / 1000;

    private static string LinkRecords(int n)
    {
        var sb = new StringBuilder("[\n");
        for (int s = 0; s < Stubs(n); s++)
            sb.Append(CultureInfo.InvariantCulture, $"  {{\"Name\": \"stub{s}\", \"Class\": \"etherstub\"}},\n");
        for (int i = 0; i < n; i++)
        {
            ulong mac = 0x020820000000UL + (ulong)i;
            string macText = string.Join(':', Enumerable.Range(0, 6).Select(b => ((mac >> (40 - 8 * b)) & 0xff).ToString("x", CultureInfo.InvariantCulture)));
            sb.Append(CultureInfo.InvariantCulture,
                $"  {{\"Name\": \"vnic{i}\", \"Class\": \"vnic\", \"Over\": \"stub{i % Stubs(n)}\", \"Mac\": \"{macText}\", \"MacType\": \"fixed\", \"Vid\": {i % 100}}}");
            sb.Append(i + 1 < n ? ",\n" : "\n");
        }
        return sb.Append(']').ToString();
    }
}
