namespace SmartOS.Storage.Tests;

/// <summary>Damage to vdev files (Pool.cs rule 3): mirrors heal and count, a single vdev refuses wrong data.</summary>
public class FaultTests : PoolFixture
{
    private static readonly byte[] s_content = Bytes(3 * 1024 * 1024 + 100, 7);

    private (long Id, BlockPointer Bp) MakePool(params VdevSpec[] layout) => MakePool(Options(), layout);

    private (long Id, BlockPointer Bp) MakePool(PoolOptions options, params VdevSpec[] layout)
    {
        using var pool = Create("tank", options, layout);
        long id = NewObject(pool, s_content);
        Assert.That(pool.Commit().IsOk, Is.True);
        pool.Objects.Locate(id, 1024 * 1024, out var bp);
        return (id, bp);
    }

    [Test]
    public void A_mirror_heals_a_corrupted_side_and_counts_cksum_on_it()
    {
        var (id, bp) = MakePool(VdevSpec.Mirror("d0", "d1"));
        Damage("d0", FileOffset(bp.Dva0) + 100, Bytes(1000, 99));
        using (var pool = Open("tank"))
        {
            Assert.That(ReadAll(pool, id), Is.EqualTo(s_content));
            var (d0, d1) = (pool.Vdevs[0].Leaves[0], pool.Vdevs[0].Leaves[1]);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(d0.ChecksumErrors, Is.EqualTo(1));
                Assert.That(d0.RepairedBytes, Is.EqualTo(bp.PhysicalSize));
                Assert.That(d1.ChecksumErrors, Is.Zero);
                Assert.That(pool.DataErrors, Is.Zero);
            }
        }
        // The repair was written: with the other side's copy gone, the healed side serves alone.
        Damage("d1", FileOffset(bp.Dva0), new byte[bp.PhysicalSize]);
        using var again = Open("tank");
        Assert.That(ReadAll(again, id), Is.EqualTo(s_content));
        Assert.That(again.Vdevs[0].Leaves[0].ChecksumErrors, Is.Zero);
        Assert.That(again.DataErrors, Is.Zero);
    }

    [Test]
    public void A_mirror_survives_a_whole_side_zeroed_and_scrub_repairs_every_block()
    {
        var (id, _) = MakePool(VdevSpec.Mirror("d0", "d1"));
        Damage("d1", VdevLabel.LabelSize, new byte[8 * 1024 * 1024]);
        using (var pool = Open("tank"))
        {
            var scrub = pool.Scrub();
            Assert.That(scrub.Errors, Is.Zero);
            Assert.That(pool.Vdevs[0].Leaves[1].ChecksumErrors, Is.GreaterThan(20));
            Assert.That(pool.Vdevs[0].Leaves[1].RepairedBytes, Is.GreaterThanOrEqualTo(s_content.Length));
        }
        Damage("d0", VdevLabel.LabelSize, new byte[8 * 1024 * 1024]);
        using var healed = Open("tank");
        Assert.That(ReadAll(healed, id), Is.EqualTo(s_content));
        Assert.That(healed.Vdevs[0].Leaves[1].ChecksumErrors, Is.Zero, "d1 was rewritten by the scrub");
    }

    [Test]
    public void A_truncated_mirror_side_counts_read_errors_and_the_other_side_serves()
    {
        var (id, _) = MakePool(VdevSpec.Mirror("d0", "d1"));
        using (var fs = new FileStream(Path.Combine(Dir, "d0"), FileMode.Open)) fs.SetLength(VdevLabel.LabelSize + 1024 * 1024);
        using var pool = Open("tank");
        Assert.That(ReadAll(pool, id), Is.EqualTo(s_content));
        Assert.That(pool.Vdevs[0].Leaves[0].ReadErrors, Is.GreaterThan(0));
    }

    [Test]
    public void A_single_vdev_refuses_a_corrupted_block_and_returns_no_bytes()
    {
        var (id, bp) = MakePool(VdevSpec.Disk("d0"));
        Damage("d0", FileOffset(bp.Dva0) + 4096, [0xde, 0xad]);
        using var pool = Open("tank");
        var buffer = new byte[s_content.Length];
        Array.Fill(buffer, (byte)0x55);
        var result = pool.Objects.Read(id, 0, buffer, out int read);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Message, Is.EqualTo($"object {id}: checksum mismatch"));
            Assert.That(read, Is.Zero);
            Assert.That(buffer, Is.All.Zero, "never wrong data");
            Assert.That(pool.Vdevs[0].Leaves[0].ChecksumErrors, Is.EqualTo(1));
            Assert.That(pool.DataErrors, Is.EqualTo(1));
        }
        // Blocks before the damaged one still read.
        var head = new byte[1024 * 1024];
        Assert.That(pool.Objects.Read(id, 0, head, out _).IsOk, Is.True);
        Assert.That(head, Is.EqualTo(s_content[..head.Length]));
    }

    [Test]
    public void Copies_two_on_a_single_vdev_heal_a_damaged_copy()
    {
        var (id, bp) = MakePool(Options(copies: 2), VdevSpec.Disk("d0"));
        Damage("d0", FileOffset(bp.Dva0), Bytes(512, 3));
        using var pool = Open("tank");
        Assert.That(ReadAll(pool, id), Is.EqualTo(s_content));
        Assert.That(pool.Vdevs[0].Leaves[0].RepairedBytes, Is.EqualTo(bp.PhysicalSize));
    }

    [Test]
    public void Damaged_metadata_on_a_single_vdev_refuses_the_open()
    {
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            NewObject(pool, Bytes(1000, 1));
            pool.Commit();
        }
        // The meta object's dnode block is the last block txg 2 wrote before its uberblock: zero
        // everything the two commits wrote (a few KiB at the front of the data area).
        Damage("d0", VdevLabel.LabelSize, new byte[64 * 1024]);
        var result = Pool.Open(Dir, "tank", Options(), out var opened);
        Assert.That(opened, Is.Null);
        Assert.That(result.Status, Is.EqualTo(StorageStatus.MetadataCorrupted));
        Assert.That(result.Message, Does.StartWith("cannot import 'tank': meta object"));
    }
}
