namespace SmartOS.Integration.Tests;

/// <summary>
/// An lx zone's Linux programs meet its dataset's limits as on SmartOS (storage/Fuse/FuseMount.cs rule
/// 4): past the zone's quota a write fails with EDQUOT ("Disk quota exceeded", errno 122 on Linux),
/// with the pool full with ENOSPC ("No space left on device"), never EIO; the zone goes on running and
/// its programs' other work succeeds. BusyBox's dd reports the errno's text (its head would word
/// every stdio failure "I/O error").
/// </summary>
[NonParallelizable]
public class LxZoneQuotaTests
{
    [Test]
    public void A_writer_past_the_quota_gets_EDQUOT_and_past_the_pool_ENOSPC_and_the_zone_goes_on()
    {
        if (LxPoolZone.Missing() is string missing) Assert.Ignore(missing);
        using var lx = new LxPoolZone();
        string dataset = "zones/" + lx.Zone;
        lx.Host.Ok("zoneadm", "-z", lx.Zone, "boot");
        lx.Host.Ok("zfs", "set", $"quota={lx.Number("used", dataset) + (64L << 10)}", dataset);

        var over = lx.Sh("/bin/busybox dd if=/bin/busybox of=/big bs=4096 count=64");
        Assert.That(over.Code, Is.EqualTo(1), "dd stops at the quota");
        Assert.That(over.Err, Does.Contain("Disk quota exceeded"));
        Assert.That(lx.Number("used", dataset), Is.LessThanOrEqualTo(lx.Number("quota", dataset)));

        var goesOn = lx.Sh("/bin/busybox rm /big && echo still here > /small && /bin/busybox cat /small");
        Assert.That((goesOn.Code, goesOn.Out), Is.EqualTo((0, "still here\n")), goesOn.Err);
        Assert.That(lx.Host.Ok("zoneadm", "list"), Does.Contain(lx.Zone), "the zone still runs");

        // The pool full: no quota, and the rest of the pool reserved by another dataset.
        lx.Host.Ok("zfs", "set", "quota=none", dataset);
        lx.Host.Ok("zfs", "create", "-o", $"reservation={lx.Number("available", "zones") - (96L << 10)}", "zones/hog");
        var full = lx.Sh("/bin/busybox dd if=/bin/busybox of=/big bs=4096 count=64");
        Assert.That(full.Code, Is.EqualTo(1), "dd stops when the pool is full");
        Assert.That(full.Err, Does.Contain("No space left on device"));

        lx.Host.Ok("zfs", "destroy", "zones/hog");
        var again = lx.Sh("/bin/busybox dd if=/bin/busybox of=/big bs=4096 count=64 && /bin/busybox wc -c < /big");
        Assert.That((again.Code, again.Out.Trim()), Is.EqualTo((0, "262144")), again.Err);
        lx.Host.Ok("zoneadm", "-z", lx.Zone, "halt");
    }
}
