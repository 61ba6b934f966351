namespace SmartOS.Integration.Tests;

/// <summary>
/// zonecfg `add fs` (lofs) in an lx zone (zones/ZoneFiles.cs LinuxBinds, tools/Commands/Zlogin.cs): the
/// zone's Linux programs see the global directory at dir, bind-mounted in their mount namespace, and
/// with options ro a write there fails with EROFS ("Read-only file system"), as the file commands'
/// view says (tests/SmartOS.Cli.Tests/Commands/ZoneFileTests.cs).
/// </summary>
[NonParallelizable]
public class LxZoneFsTests
{
    [Test]
    public void An_lx_zones_programs_see_its_lofs_mounts_and_a_read_only_one_refuses_writes()
    {
        if (LxPoolZone.Missing() is string missing) Assert.Ignore(missing);
        using var lx = new LxPoolZone(zonecfg:
            "add fs; set dir=/shared; set special=/zones/shared; set type=lofs; end; "
            + "add fs; set dir=/opt/ro; set special=/zones/shared/sub; set type=lofs; add options [ro]; end");
        var host = lx.Host;
        host.Ok("zfs", "create", "zones/shared");
        host.Ok("mkdir", "/zones/shared/sub");
        host.ShIn("from the global zone\n", "dd", "of=/zones/shared/hello");
        host.ShIn("read only\n", "dd", "of=/zones/shared/sub/note");
        host.Ok("zoneadm", "-z", lx.Zone, "boot");

        var read = lx.Sh("/bin/busybox cat /shared/hello /opt/ro/note");
        Assert.That((read.Code, read.Out), Is.EqualTo((0, "from the global zone\nread only\n")), read.Err);

        var written = lx.Sh("echo from the zone > /shared/back");
        Assert.That(written.Code, Is.Zero, written.Err);
        Assert.That(host.Ok("cat", "/zones/shared/back"), Is.EqualTo("from the zone\n"), "the write lands in the global directory");
        Assert.That(host.Sh("cat", $"/zones/{lx.Zone}/root/shared/back").Code, Is.Not.Zero, "not in the zone's own dataset");

        var refused = lx.Sh("echo no > /opt/ro/other");
        Assert.That(refused.Code, Is.Not.Zero);
        Assert.That(refused.Err, Does.Contain("Read-only file system"));
        Assert.That(host.Sh("cat", "/zones/shared/sub/other").Code, Is.Not.Zero, "nothing was written");

        Assert.That(lx.Sh("/bin/busybox ls -d /opt/ro /shared").Out, Is.EqualTo("/opt/ro\n/shared\n"), "the mount points were made in the zone");
        host.Ok("zoneadm", "-z", lx.Zone, "halt");
    }

    [Test]
    public void A_lofs_dir_that_is_a_file_in_the_zone_stops_its_programs_with_the_reason()
    {
        if (LxPoolZone.Missing() is string missing) Assert.Ignore(missing);
        using var lx = new LxPoolZone(zonecfg: "add fs; set dir=/blocked; set special=/zones/shared; set type=lofs; end");
        lx.Host.Ok("zfs", "create", "zones/shared");
        lx.Host.ShIn("a file\n", "dd", $"of=/zones/{lx.Zone}/root/blocked");
        lx.Host.Ok("zoneadm", "-z", lx.Zone, "boot");
        var run = lx.Sh("echo ran");
        Assert.That((run.Code, run.Out, run.Err), Is.EqualTo((1, "", $"zlogin: zone '{lx.Zone}': cannot mount fs /blocked: not a directory\n")));
        Assert.That(lx.Host.Ok("cat", $"/zones/{lx.Zone}/root/blocked"), Is.EqualTo("a file\n"), "nothing was changed");
        lx.Host.Ok("zoneadm", "-z", lx.Zone, "halt");
    }
}
