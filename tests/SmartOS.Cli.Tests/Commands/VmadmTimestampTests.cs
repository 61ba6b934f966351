using System.Text.Json.Nodes;
using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// A VM's create_timestamp, last_modified and boot_timestamp (issue 22), from the host's WallClock
/// (Host.cs rule 7): in virtual time the clock starts at the Unix epoch and moves only with the
/// scheduler, so every value here is exact.
/// </summary>
public class VmadmTimestampTests
{
    private const string Stopped = """{"brand": "joyent", "autoboot": false}""";

    private static string Create(CliHost h, string payload)
    {
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Split(' ')[^1];
    }

    private static JsonNode Get(CliHost h, string uuid) => JsonNode.Parse(h.Ok("vmadm", "get", uuid))!;

    private static string? Text(JsonNode vm, string key) => (string?)vm[key];

    [TestCase(0L, false, "1970-01-01T00:00:00.000Z")]
    [TestCase(1_399_400_962_381_000_000L, false, "2014-05-06T18:29:22.381Z")]
    [TestCase(1_399_400_962_381_999_999L, false, "2014-05-06T18:29:22.381Z")]
    [TestCase(1_399_400_962_381_000_000L, true, "2014-05-06T18:29:22.000Z")]
    [TestCase(-1L, false, "1969-12-31T23:59:59.999Z")]
    public void Iso8601_prints_a_unix_time_as_javascripts_toISOString_does(long unixNs, bool wholeSeconds, string expected)
        => Assert.That(WallClock.Iso8601(unixNs, wholeSeconds), Is.EqualTo(expected));

    [Test]
    public void Create_stamps_create_timestamp_with_milliseconds_and_last_modified_to_the_second()
    {
        var h = new CliHost();
        h.World.Scheduler.RunFor(2_500 * Time.Millisecond);
        var vm = Get(h, Create(h, Stopped));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Text(vm, "create_timestamp"), Is.EqualTo("1970-01-01T00:00:02.500Z"));
            Assert.That(Text(vm, "last_modified"), Is.EqualTo("1970-01-01T00:00:02.000Z"));
            Assert.That(vm["boot_timestamp"], Is.Null, "a stopped VM has no boot time");
        }
    }

    [Test]
    public void The_host_clock_tells_the_date_its_front_end_gives_as_epoch()
    {
        var h = new CliHost(epoch: 1_399_400_962_381_000_000L);
        var vm = Get(h, Create(h, Stopped));
        Assert.That(Text(vm, "create_timestamp"), Is.EqualTo("2014-05-06T18:29:22.381Z"));
    }

    [Test]
    public void Update_moves_last_modified_on_and_leaves_create_timestamp()
    {
        var h = new CliHost();
        string uuid = Create(h, Stopped);
        h.World.Scheduler.RunFor(3 * Time.Second);
        h.Ok("vmadm", "update", uuid, "cpu_cap=100");
        var first = Get(h, uuid);
        h.World.Scheduler.RunFor(4 * Time.Second);
        h.Ok("vmadm", "update", uuid, "cpu_cap=200");
        var second = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Text(first, "last_modified"), Is.EqualTo("1970-01-01T00:00:03.000Z"));
            Assert.That(Text(second, "last_modified"), Is.EqualTo("1970-01-01T00:00:07.000Z"));
            Assert.That(string.CompareOrdinal(Text(second, "last_modified"), Text(first, "last_modified")), Is.Positive);
            Assert.That(Text(second, "create_timestamp"), Is.EqualTo("1970-01-01T00:00:00.000Z"));
        }
    }

    [Test]
    public void Boot_timestamp_is_the_last_boot_and_only_while_the_vm_runs()
    {
        var h = new CliHost();
        string uuid = Create(h, Stopped);
        h.World.Scheduler.RunFor(5 * Time.Second);
        h.Ok("vmadm", "start", uuid);
        string? booted = Text(Get(h, uuid), "boot_timestamp");
        h.World.Scheduler.RunFor(2 * Time.Second);
        h.Ok("vmadm", "stop", uuid);
        var stopped = Get(h, uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(booted, Is.EqualTo("1970-01-01T00:00:05.000Z"));
            Assert.That(stopped["boot_timestamp"], Is.Null);
        }
    }

    [Test]
    public void Timestamps_are_kept_with_the_vm_across_a_host_restart()
    {
        var store = new MemoryConfigStore();
        var h = new CliHost(store: store);
        h.World.Scheduler.RunFor(3_250 * Time.Millisecond);
        string uuid = Create(h, Stopped);
        var restarted = Get(new CliHost(store: store), uuid);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Text(restarted, "create_timestamp"), Is.EqualTo("1970-01-01T00:00:03.250Z"));
            Assert.That(Text(restarted, "last_modified"), Is.EqualTo("1970-01-01T00:00:03.000Z"));
        }
    }

    [Test]
    public void Vmadm_list_shows_create_and_boot_timestamp_as_columns_and_lookup_matches_last_modified()
    {
        var h = new CliHost();
        h.World.Scheduler.RunFor(Time.Second);
        string uuid = Create(h, Stopped);
        using (Assert.EnterMultipleScope())
        {
            // vmadm.js's LIST_FIELDS have these two (24 wide), not last_modified.
            Assert.That(h.Ok("vmadm", "list", "-H", "-o", "create_timestamp,boot_timestamp", "uuid=" + uuid).Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries),
                Is.EqualTo(new[] { "1970-01-01T00:00:01.000Z", "-" }));
            Assert.That(h.Ok("vmadm", "lookup", "last_modified=1970-01-01T00:00:01.000Z"), Is.EqualTo(uuid + "\n"));
        }
    }
}
