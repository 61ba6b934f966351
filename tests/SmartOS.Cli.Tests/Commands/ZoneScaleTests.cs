using System.Globalization;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// Issue 17: nothing on the way of vmadm create depends on how many zones the host has already
/// (zones/ZoneIndex.cs, kernel/ConfigFile.cs rule 6, vnic/VSwitch.cs), and an idle zone costs no
/// CPU and little memory. Counted, never timed: configuration documents rendered, bytes allocated,
/// scheduler events, heap retained. Each zone is alone on its VLAN, so that no broadcast of one
/// zone reaches another: what a flat L2 domain costs per broadcast is the benchmark's to show
/// (tests/SmartOS.Benchmarks zones), not a cost of creating a zone.
/// </summary>
public class ZoneScaleTests
{
    private static (CliHost Host, MemoryConfigStore Store) Stub()
    {
        var store = new MemoryConfigStore();
        var h = new CliHost(store: store);
        h.Ok(CliHost.Split("nictagadm add -l stub0"));
        return (h, store);
    }

    private static string Uuid(int i) => string.Create(CultureInfo.InvariantCulture, $"{i + 1:x8}-0000-4000-8000-000000000000");

    /// <summary>A running joyent zone, number i, on VLAN 2 + i with 10.(i/256).(i%256).1/24.</summary>
    private static void Create(CliHost h, int i)
    {
        string payload = string.Create(CultureInfo.InvariantCulture,
            $$"""{ "alias": "z{{i}}", "brand": "joyent", "uuid": "{{Uuid(i)}}", "max_physical_memory": 64, "nics": [ { "nic_tag": "stub0", "vlan_id": {{2 + i}}, "ips": ["10.{{i >> 8}}.{{i & 255}}.1/24"] } ] }""");
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
    }

    private static void CreateRange(CliHost h, int from, int to)
    {
        for (int i = from; i < to; i++) Create(h, i);
    }

    [Test]
    public void Creating_one_more_vm_renders_no_zone_table_until_it_is_read()
    {
        var (h, store) = Stub();
        CreateRange(h, 0, 40);
        long renders = store.Renders;
        Create(h, 40);
        Assert.That(store.Renders, Is.EqualTo(renders), "a vmadm create rendered a configuration document of every zone");
        // Read, the table is rendered once, whole and current: a host booted from it has every zone.
        string? text = store.Read(ZoneTable.ConfigName);
        Assert.That(store.Renders, Is.EqualTo(renders + 1));
        Assert.That(text, Does.Contain(Uuid(40)));
        var again = new World(2).AddHost("h2", 2, store);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.BootProblems, Is.Empty);
            Assert.That(again.Zones.Zones, Has.Count.EqualTo(41));
            Assert.That(again.Zones.Find(Uuid(40))!.State, Is.EqualTo(ZoneState.Installed));
        }
    }

    [Test]
    public void A_later_create_reads_the_table_the_earlier_ones_left()
    {
        // A read between changes renders the state then; the next change defers again.
        var (h, store) = Stub();
        Create(h, 0);
        Assert.That(store.Read(ZoneTable.ConfigName), Does.Contain(Uuid(0)).And.Not.Contain(Uuid(1)));
        Create(h, 1);
        Assert.That(store.Read(ZoneTable.ConfigName), Does.Contain(Uuid(0)).And.Contain(Uuid(1)));
        Assert.That(h.Ok(CliHost.Split("vmadm delete " + Uuid(0))), Is.Empty);
        Assert.That(store.Read(ZoneTable.ConfigName), Does.Not.Contain(Uuid(0)).And.Contain(Uuid(1)));
    }

    [Test]
    public void Creating_ten_zones_allocates_as_much_after_150_zones_as_after_10()
    {
        var (h, _) = Stub();
        CreateRange(h, 0, 10);
        long early = Allocated(() => CreateRange(h, 10, 20));
        CreateRange(h, 20, 150);
        long late = Allocated(() => CreateRange(h, 150, 160));
        // Before ZoneIndex and the deferred table, the late batch allocated several times the early
        // one (every create copied every zone's addresses and re-serialised every zone).
        Assert.That(late, Is.LessThan(early * 13 / 10), $"10 creates after 10 zones: {early} B; after 150 zones: {late} B");
    }

    private static long Allocated(Action a)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        a();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Test]
    public void Idle_zones_add_no_events_to_the_scheduler()
    {
        var (h, _) = Stub();
        var sched = h.World.Scheduler;
        long Events(long seconds)
        {
            long before = sched.EventsRun;
            sched.RunFor(seconds * Time.Second);
            return sched.EventsRun - before;
        }
        long without = Events(3600);
        int pending = sched.PendingCount;
        CreateRange(h, 0, 20);
        Events(60); // whatever the boots left (duplicate address detection, announcements) ends
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Events(3600), Is.EqualTo(without), "20 idle zones ran events in an hour of virtual time");
            Assert.That(sched.PendingCount, Is.EqualTo(pending), "an idle zone keeps a timer armed");
        }
    }

    [Test]
    public void An_idle_zone_retains_less_than_40_KiB()
    {
        var (h, _) = Stub();
        CreateRange(h, 0, 20);
        h.World.Scheduler.RunFor(60 * Time.Second);
        long before = GC.GetTotalMemory(forceFullCollection: true);
        CreateRange(h, 20, 120);
        h.World.Scheduler.RunFor(60 * Time.Second);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        GC.KeepAlive(h);
        long perZone = (after - before) / 100;
        // Issue 17's goal is 100 KiB. Before the stack's receive ring started small a zone held about
        // 84 KiB, 64 KiB of it that empty ring; about 20 KiB since (tests/SmartOS.Benchmarks zones).
        Assert.That(perZone, Is.LessThan(40 * 1024), $"{perZone} B per idle zone");
    }
}
