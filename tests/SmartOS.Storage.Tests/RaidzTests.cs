namespace SmartOS.Storage.Tests;

/// <summary>raidz1 (Pool.Raidz.cs): any one column lost or wrong is rebuilt from parity and rewritten.</summary>
public class RaidzTests : PoolFixture
{
    private static readonly byte[] s_content = Bytes(3 * 1024 * 1024 + 100, 11);

    private (long Id, BlockPointer Bp, int Column) MakePool()
    {
        using var pool = Create("tank", VdevSpec.Raidz1("r0", "r1", "r2"));
        long id = NewObject(pool, s_content);
        Assert.That(pool.Commit().IsOk, Is.True);
        pool.Objects.Locate(id, 1024 * 1024, out var bp);
        return (id, bp, pool.Vdevs[0].AllocSize(bp.PhysicalSize));
    }

    [Test]
    public void A_raidz1_block_is_split_into_two_data_columns_and_parity()
    {
        var (id, bp, column) = MakePool();
        Assert.That(column, Is.EqualTo(bp.PhysicalSize / 2));
        using var pool = Open("tank");
        Assert.That(pool.Vdevs[0].Name, Is.EqualTo("raidz1-0"));
        Assert.That(ReadAll(pool, id), Is.EqualTo(s_content));
    }

    [TestCase("r0")]
    [TestCase("r1")]
    public void A_corrupted_data_column_is_rebuilt_and_counted_on_its_leaf(string file)
    {
        var (id, bp, _) = MakePool();
        Damage(file, FileOffset(bp.Dva0) + 10, Bytes(100, 5));
        using (var pool = Open("tank"))
        {
            Assert.That(ReadAll(pool, id), Is.EqualTo(s_content));
            var leaf = pool.Vdevs[0].Leaves.Single(l => l.Path.EndsWith(file, StringComparison.Ordinal));
            Assert.That(leaf.ChecksumErrors, Is.EqualTo(1));
            Assert.That(leaf.RepairedBytes, Is.EqualTo(bp.PhysicalSize / 2));
            Assert.That(pool.DataErrors, Is.Zero);
        }
        using var again = Open("tank");
        Assert.That(ReadAll(again, id), Is.EqualTo(s_content));
        Assert.That(again.Vdevs[0].Leaves.Sum(l => l.ChecksumErrors), Is.Zero, "the column was rewritten");
    }

    [Test]
    public void A_whole_leaf_zeroed_is_rebuilt_by_a_scrub_parity_included()
    {
        var (id, _, _) = MakePool();
        Damage("r2", VdevLabel.LabelSize, new byte[4 * 1024 * 1024]);
        using (var pool = Open("tank"))
        {
            Assert.That(pool.Scrub().Errors, Is.Zero);
            Assert.That(pool.Vdevs[0].Leaves[2].ChecksumErrors, Is.GreaterThan(10), "parity column checked by the scrub");
        }
        Damage("r0", VdevLabel.LabelSize, new byte[4 * 1024 * 1024]);
        using var rebuilt = Open("tank");
        Assert.That(ReadAll(rebuilt, id), Is.EqualTo(s_content));
    }

    [Test]
    public void A_truncated_leaf_counts_read_errors_and_its_columns_are_rebuilt()
    {
        var (id, _, _) = MakePool();
        using (var fs = new FileStream(Path.Combine(Dir, "r1"), FileMode.Open)) fs.SetLength(VdevLabel.LabelSize + 512 * 1024);
        using var pool = Open("tank");
        Assert.That(ReadAll(pool, id), Is.EqualTo(s_content));
        Assert.That(pool.Vdevs[0].Leaves[1].ReadErrors, Is.GreaterThan(0));
    }

    [Test]
    public void Two_damaged_columns_of_one_block_are_an_error_not_wrong_data()
    {
        var (id, bp, _) = MakePool();
        Damage("r0", FileOffset(bp.Dva0), Bytes(512, 1));
        Damage("r1", FileOffset(bp.Dva0), Bytes(512, 2));
        using var pool = Open("tank");
        var buffer = new byte[s_content.Length];
        var result = pool.Objects.Read(id, 0, buffer, out int read);
        Assert.That(result.Status, Is.EqualTo(StorageStatus.ChecksumError));
        Assert.That(read, Is.Zero);
        Assert.That(buffer, Is.All.Zero);
    }

    [Test]
    public void A_raidz1_of_one_file_is_refused()
    {
        var result = Pool.Create(Dir, "tank", [VdevSpec.Raidz1("r0")], VdevSize, Options(), out _);
        Assert.That(result.Message, Is.EqualTo("cannot create 'tank': a raidz1 needs at least two files: invalid vdev specification"));
    }
}
