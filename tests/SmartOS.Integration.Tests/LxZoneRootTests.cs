namespace SmartOS.Integration.Tests;

/// <summary>
/// An lx zone on a dataset (zones/ZoneFiles.cs LinuxRoot, tools/Commands/Zlogin.cs): its root dataset is
/// shown to Linux through FUSE and its programs run chrooted into root/ there, so what a Linux program
/// writes lands in the pool, counts against the quota and is in the snapshots (LxPoolZone sets it up).
/// </summary>
[NonParallelizable]
public class LxZoneRootTests
{
    [Test]
    public void A_linux_programs_writes_land_in_the_zones_dataset_count_against_its_quota_and_are_in_snapshots()
    {
        if (LxPoolZone.Missing() is string missing) Assert.Ignore(missing);
        using var lx = new LxPoolZone();
        var host = lx.Host;
        string zone = lx.Zone;
        host.Ok("zoneadm", "-z", zone, "boot");

        var written = host.Sh("zlogin", zone, "/bin/busybox", "sh", "-c", "echo written by linux > /hello && /bin/busybox ls /");
        Assert.That(written.Code, Is.Zero, written.Err);
        Assert.That(written.Out, Does.Contain("hello"), "the program sees the zone's root as /");
        Assert.That(written.Out, Does.Not.Contain("proc").And.Not.Contain("etc"), "and nothing of the machine's root");
        Assert.That(host.Ok("cat", $"/zones/{zone}/root/hello"), Is.EqualTo("written by linux\n"), "the write is in the pool");
        Assert.That(host.Ok("zlogin", zone, "/bin/busybox", "cat", "/../../../hello"), Is.EqualTo("written by linux\n"), ".. stops at the zone's root");

        // Snapshots hold what the program wrote.
        host.Ok("zfs", "snapshot", $"zones/{zone}@one");
        host.Ok("zlogin", zone, "/bin/busybox", "rm", "/hello");
        host.Ok("zfs", "clone", $"zones/{zone}@one", "zones/copy");
        Assert.That(host.Ok("cat", "/zones/copy/root/hello"), Is.EqualTo("written by linux\n"));
        Assert.That(host.Sh("cat", $"/zones/{zone}/root/hello").Code, Is.Not.Zero);

        // What a Linux program writes is charged to the dataset, and its quota stops the writer
        // (LxZoneQuotaTests has the errno).
        long before = lx.Number("used", $"zones/{zone}");
        var grown = host.Sh("zlogin", zone, "/bin/busybox", "sh", "-c", "/bin/busybox head -c 262144 /bin/busybox > /grown && /bin/busybox sync /grown");
        Assert.That(grown.Code, Is.Zero, grown.Err);
        Assert.That(lx.Number("used", $"zones/{zone}"), Is.GreaterThanOrEqualTo(before + (200L << 10)), "the file counts in the dataset's used");
        long quota = lx.Number("used", $"zones/{zone}") + (64L << 10);
        host.Ok("zfs", "set", $"quota={quota}", $"zones/{zone}");
        var filler = host.Sh("zlogin", zone, "/bin/busybox", "dd", "if=/bin/busybox", "of=/big", "bs=4096", "count=64");
        Assert.That(filler.Code, Is.EqualTo(1), "the writer is stopped");
        Assert.That(filler.Err, Does.Contain("Disk quota exceeded"));
        Assert.That(lx.Number("used", $"zones/{zone}"), Is.LessThanOrEqualTo(quota));
        var after = host.Sh("zlogin", zone, "/bin/busybox", "sh", "-c", "/bin/busybox rm /big && echo again > /small && /bin/busybox cat /small");
        Assert.That((after.Code, after.Out), Is.EqualTo((0, "again\n")), after.Err);
        host.Ok("zoneadm", "-z", zone, "halt");
    }
}
