using SmartOS.Kernel;

namespace SmartOS.Storage.Tests;

/// <summary>A volume as a block device (VolumeDevice.cs): what a VM's virtio-blk disk reads and writes.</summary>
public class VolumeDeviceTests : DatasetFixture
{
    private static Dictionary<string, string> Size(long bytes) => new() { ["volsize"] = bytes.ToString(System.Globalization.CultureInfo.InvariantCulture) };

    private Pool PoolWithVolume()
    {
        var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/vol", DatasetType.Volume, Size(1 << 20)));
        return pool;
    }

    [Test]
    public void Writes_read_back_and_survive_a_flush_and_a_reopen_of_the_pool()
    {
        var pool = PoolWithVolume();
        Ok(VolumeDevice.Open(pool, "tank/vol", out var device));
        var data = Bytes(8192, 3);
        var back = new byte[8192];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Size, Is.EqualTo(1 << 20));
            Assert.That(device.Write(4096, data), Is.EqualTo(BlockStatus.Ok));
            Assert.That(device.Read(4096, back), Is.EqualTo(BlockStatus.Ok));
            Assert.That(back, Is.EqualTo(data));
            Assert.That(device.Flush(), Is.EqualTo(BlockStatus.Ok));
        }
        pool.Dispose();
        var reopened = Open("tank");
        Ok(VolumeDevice.Open(reopened, "tank/vol", out var again));
        Assert.That(again.Read(4096, back), Is.EqualTo(BlockStatus.Ok));
        Assert.That(back, Is.EqualTo(data));
        reopened.Dispose();
    }

    [Test]
    public void Unflushed_writes_are_lost_in_a_crash_and_close_commits_them()
    {
        var pool = PoolWithVolume();
        Ok(VolumeDevice.Open(pool, "tank/vol", out var device));
        device.Write(0, Bytes(512, 4));
        pool.Dispose(); // a crash: the open txg never commits
        var after = Open("tank");
        Ok(VolumeDevice.Open(after, "tank/vol", out var second));
        var back = new byte[512];
        second.Read(0, back);
        Assert.That(back, Is.All.Zero);
        second.Write(0, Bytes(512, 4));
        Ok(second.Close());
        after.Dispose();
        var last = Open("tank");
        Ok(last.Datasets.ReadVolume("tank/vol", 0, back, out _));
        Assert.That(back, Is.EqualTo(Bytes(512, 4)));
        last.Dispose();
    }

    [TestCase(-512L, 512)]
    [TestCase(1L << 20, 512)]
    [TestCase((1L << 20) - 512, 1024)]
    public void A_range_outside_the_volume_is_refused_whole(long offset, int length)
    {
        var pool = PoolWithVolume();
        Ok(VolumeDevice.Open(pool, "tank/vol", out var device));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Write(offset, new byte[length]), Is.EqualTo(BlockStatus.OutOfRange));
            Assert.That(device.Read(offset, new byte[length]), Is.EqualTo(BlockStatus.OutOfRange));
        }
        pool.Dispose();
    }

    [Test]
    public void An_open_volume_is_busy_for_destroy_and_rollback_and_free_once_closed()
    {
        var pool = PoolWithVolume();
        Ok(pool.Datasets.Snapshot("tank/vol@a"));
        Ok(VolumeDevice.Open(pool, "tank/vol", out var device));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Datasets.Rollback("tank/vol@a").Status, Is.EqualTo(StorageStatus.DatasetBusy));
            Assert.That(pool.Datasets.Destroy("tank/vol", DestroyFlags.Recursive).Status, Is.EqualTo(StorageStatus.DatasetBusy));
        }
        Ok(device.Close());
        Ok(pool.Datasets.Rollback("tank/vol@a"));
        Assert.That(device.Size, Is.Zero, "a closed device has no size");
        pool.Dispose();
    }

    [Test]
    public void The_size_follows_volsize_and_a_filesystem_or_a_missing_name_does_not_open()
    {
        var pool = PoolWithVolume();
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        Ok(VolumeDevice.Open(pool, "tank/vol", out var device));
        Ok(pool.Datasets.Set("tank/vol", "volsize", "2m"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Size, Is.EqualTo(2 << 20));
            Assert.That(VolumeDevice.Open(pool, "tank/fs", out _).Status, Is.EqualTo(StorageStatus.NotSupported));
            Assert.That(VolumeDevice.Open(pool, "tank/none", out _).Message, Is.EqualTo("cannot open 'tank/none': dataset does not exist"));
        }
        pool.Dispose();
    }

    [Test]
    public void A_pool_closed_under_an_open_volume_fails_its_io_without_throwing()
    {
        var pool = PoolWithVolume();
        Ok(VolumeDevice.Open(pool, "tank/vol", out var device));
        device.Write(0, Bytes(4096, 5));
        pool.Export();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(device.Write(8192, new byte[4096]), Is.EqualTo(BlockStatus.IoError));
            Assert.That(device.Flush(), Is.EqualTo(BlockStatus.IoError));
            Assert.That(device.Close().IsOk, Is.False);
        }
    }
}
