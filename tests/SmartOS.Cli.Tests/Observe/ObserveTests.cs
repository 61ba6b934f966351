using System.Text.Json;
using SmartOS.Cli.Observe;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Observe;

public class ObserveTests
{
    private static void Ok(World w, Host h, string line)
    {
        var r = Dispatcher.Run(w, h, line.Split(' '));
        Assert.That(r.ExitCode, Is.Zero, line + ": " + r.Stderr);
    }

    /// <summary>Two hosts joined by a wire; h1 has a stub with two VNICs, a VLAN and a flow.</summary>
    private static World TwoHosts()
    {
        var w = new World(7);
        var h1 = w.AddHost("h1", 1);
        var h2 = w.AddHost("h2", 1);
        w.Connect(h1.Mac.Find("e1000g0") as SmartOS.Vnic.PhysLink ?? throw new AssertionException("no nic"),
            h2.Mac.Find("e1000g0") as SmartOS.Vnic.PhysLink ?? throw new AssertionException("no nic"), delayNs: 50 * Time.Microsecond);
        Ok(w, h1, "dladm create-etherstub stub0");
        Ok(w, h1, "dladm create-vnic -l stub0 vnic0");
        Ok(w, h1, "dladm create-vnic -l stub0 vnic1");
        Ok(w, h1, "dladm create-vlan -l e1000g0 -v 100 vlan100");
        Ok(w, h1, "dladm set-linkprop -p maxbw=20M vnic1");
        Ok(w, h1, "flowadm add-flow -l vnic0 -a transport=tcp,local_port=80 -p maxbw=10M web0");
        return w;
    }

    [Test]
    public void A_topology_lists_hosts_links_wires_and_flows_in_creation_order_with_ids_that_name_them()
    {
        var t = Topology.Of(TwoHosts());
        var h1 = t.Hosts[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(t.Hosts.Select(h => h.Name), Is.EqualTo(new[] { "h1", "h2" }));
            Assert.That(h1.Links.Select(l => $"{l.Name}:{l.Class}"), Is.EqualTo(new[] { "e1000g0:phys", "stub0:etherstub", "vnic0:vnic", "vnic1:vnic", "vlan100:vlan" }));
            Assert.That(h1.Links[2].Over, Is.EqualTo(h1.Links[1].Id), "vnic0 is over stub0");
            Assert.That(h1.Links[4].Over, Is.EqualTo(h1.Links[0].Id), "vlan100 is over e1000g0");
            Assert.That(h1.Links[4].Vid, Is.EqualTo(100));
            Assert.That(h1.Links[3].MaxBwBps, Is.EqualTo(20_000_000));
            Assert.That(h1.Links[2].MaxBwBps, Is.Null);
            Assert.That(h1.Links[0].Id, Is.EqualTo("h1/link/1"));
            Assert.That(h1.Flows.Single(), Is.EqualTo(new FlowNode("h1/flow/web0", "web0", h1.Links[2].Id, "transport=tcp,local_port=80", 10_000_000, "medium")));
            Assert.That(t.Wires.Single(), Is.EqualTo(new WireEdge("wire/h1/e1000g0-h2/e1000g0", "h1/link/1", "h2/link/1", 1_000_000_000, 50_000, 0, 9000)));
        }
    }

    [Test]
    public void A_topology_shows_zones_with_their_state_links_and_memory_cap()
    {
        var w = new World(3);
        var h = w.AddHost("h1", 1);
        Ok(w, h, "nictagadm add external e1000g0");
        var r = Dispatcher.Run(w, h, ["vmadm", "create"], """{ "alias": "web", "brand": "joyent", "max_physical_memory": 128, "nics": [ { "nic_tag": "external", "ips": ["10.0.0.2/24"] } ] }""");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        var zone = Topology.Of(h).Hosts[0].Zones.Single();
        var link = Topology.Of(h).Hosts[0].Links.Single(l => l.Name == "z1_net0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(zone.Alias, Is.EqualTo("web"));
            Assert.That(zone.State, Is.EqualTo("running"));
            Assert.That(zone.IsVm, Is.True);
            Assert.That(zone.MemoryCapBytes, Is.EqualTo(128L << 20));
            Assert.That(zone.Links, Is.EqualTo(new[] { link.Id }));
            Assert.That(link.Zone, Is.EqualTo(zone.Name));
        }
    }

    [Test]
    public void A_topology_serialises_to_the_same_json_for_the_same_world_and_reads_back_equal()
    {
        string a = JsonSerializer.Serialize(Topology.Of(TwoHosts()));
        string b = JsonSerializer.Serialize(Topology.Of(TwoHosts()));
        Assert.That(a, Is.EqualTo(b));
        var back = JsonSerializer.Deserialize<Topology>(a)!;
        Assert.That(JsonSerializer.Serialize(back), Is.EqualTo(a));
        Assert.That(a, Does.Contain("\"Class\":\"etherstub\""));
    }

    [Test]
    public void Samples_fall_on_multiples_of_the_interval_and_give_the_rate_of_the_traffic()
    {
        var w = TwoHosts();
        var h = w.FindHost("h1")!;
        using var series = new LinkSeries(h);
        series.Start();
        // 1000 frames of 1000 bytes a second for 2 s, broadcast on the stub: vnic0 sends them, vnic1 receives them.
        var run = Dispatcher.StartAsync(new CommandContext { World = w, Host = h, StdoutBytes = new MemoryStream(), StderrBytes = new MemoryStream() },
            ["pktgen", "-d", "vnic0", "-c", "2000", "-s", "1000", "-r", "1000", "--dst", "broadcast"]);
        w.Scheduler.RunUntil(4 * Time.Second);
        Assert.That(run.IsCompleted, Is.True);
        var vnic0 = series.ReadLink("vnic0")!;
        var vnic1 = series.ReadLink("vnic1")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vnic0.Samples.Select(s => s.TimeNs), Is.EqualTo(new[] { 0, Time.Second, 2 * Time.Second, 3 * Time.Second, 4 * Time.Second }));
            Assert.That(vnic0.Samples[^1].OBytes, Is.EqualTo(2000 * 1000));
            Assert.That(vnic0.Samples[^1].OPackets, Is.EqualTo(2000));
            Assert.That(vnic1.Samples[^1].IPackets, Is.EqualTo(2000));
            Assert.That(vnic0.Throughput(1).SentBps, Is.EqualTo(8_000_000).Within(1_000_000), "1000 frames of 8000 bits in the first second");
            Assert.That(vnic1.Throughput(2).ReceivedBps, Is.EqualTo(8_000_000).Within(1_000_000));
            Assert.That(vnic0.Throughput(4).SentBps, Is.Zero, "nothing after the burst");
            Assert.That(series.NextSampleTime, Is.EqualTo(5 * Time.Second));
        }
    }

    [Test]
    public void Drops_are_kept_by_reason_and_summed_in_each_sample()
    {
        var w = TwoHosts();
        var h = w.FindHost("h1")!;
        var series = new LinkSeries(h);
        // Unicast to an address no port has, on a stub with no uplink: dropped, and counted by reason.
        Ok(w, h, "pktgen -d vnic0 -c 5 -s 100 --dst 2:8:20:0:0:99");
        series.Sample();
        var all = series.ReadAll();
        long total = all.Sum(l => l.Samples[^1].Drops);
        var byReason = all.SelectMany(l => l.Drops).Where(d => d.Count > 0).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(total, Is.EqualTo(5));
            Assert.That(byReason, Is.EqualTo(new[] { new DropCount("drop_unknown_dst", 5) }));
            Assert.That(series.DropReasons, Does.Contain("ipspoofed").And.Contain("drop_maxbw"));
        }
    }

    [Test]
    public void A_deleted_link_keeps_its_history_marked_gone_and_a_new_link_of_its_name_starts_a_new_one()
    {
        var w = TwoHosts();
        var h = w.FindHost("h1")!;
        var series = new LinkSeries(h);
        series.Sample(0);
        int oldId = series.ReadLink("vnic1")!.LinkId;
        Ok(w, h, "dladm delete-vnic vnic1");
        series.Sample(Time.Second);
        Ok(w, h, "dladm create-vnic -l stub0 vnic1");
        series.Sample(2 * Time.Second);
        var gone = series.ReadLink(oldId)!;
        var fresh = series.ReadLink("vnic1")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(gone.GoneAtNs, Is.EqualTo(Time.Second));
            Assert.That(gone.Samples, Has.Count.EqualTo(1));
            Assert.That(fresh.LinkId, Is.Not.EqualTo(oldId));
            Assert.That(fresh.GoneAtNs, Is.Null);
            Assert.That(fresh.Samples.Select(s => s.TimeNs), Is.EqualTo(new[] { 2 * Time.Second }));
            Assert.That(series.ReadAll().Count(l => l.Name == "vnic1"), Is.EqualTo(2));
        }
    }

    [Test]
    public void The_history_is_bounded_and_a_full_ring_samples_without_allocating()
    {
        var w = TwoHosts();
        var h = w.FindHost("h1")!;
        var series = new LinkSeries(h, Time.Second, capacity: 40);
        for (int i = 0; i < 100; i++) series.Sample(i * Time.Second);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 100; i < 200; i++) series.Sample(i * Time.Second);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var vnic0 = series.ReadLink("vnic0")!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(allocated, Is.Zero);
            Assert.That(vnic0.Samples, Has.Count.EqualTo(40));
            Assert.That(vnic0.Samples[0].TimeNs, Is.EqualTo(160 * Time.Second));
            Assert.That(series.ReadLink("vnic0", lastSamples: 3)!.Samples.Select(s => s.TimeNs),
                Is.EqualTo(new[] { 197 * Time.Second, 198 * Time.Second, 199 * Time.Second }));
            // Evicting a gone link once its samples are out of the window.
            Ok(w, h, "dladm delete-vnic vnic1");
            for (int i = 200; i < 241; i++) series.Sample(i * Time.Second);
            Assert.That(series.ReadAll().Any(l => l.Name == "vnic1"), Is.False);
        }
    }
}
