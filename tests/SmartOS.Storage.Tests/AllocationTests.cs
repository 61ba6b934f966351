namespace SmartOS.Storage.Tests;

/// <summary>Pool.cs rule 7: the block path allocates nothing once buffers and indirect blocks are cached.</summary>
public class AllocationTests : PoolFixture
{
    [Test]
    public void Reading_committed_blocks_allocates_nothing_in_steady_state()
    {
        using var pool = Create("tank", VdevSpec.Mirror("d0", "d1"));
        long id = NewObject(pool, Bytes(4 * 1024 * 1024, 1));
        pool.Commit();
        var buffer = new byte[1024 * 1024];
        for (int i = 0; i < 4; i++) pool.Objects.Read(id, i * buffer.Length, buffer, out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 4; i++) pool.Objects.Read(id, i * buffer.Length, buffer, out _);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    [Test]
    public void Writing_and_reading_a_datasets_objects_allocates_nothing_in_steady_state()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Assert.That(pool.Datasets.Create("tank/fs", DatasetType.Filesystem).IsOk, Is.True);
        Assert.That(pool.Datasets.Set("tank/fs", "quota", "1G").IsOk, Is.True);
        Assert.That(pool.Datasets.Open("tank/fs", out var objects).IsOk, Is.True);
        objects.Create(out long id);
        var block = Bytes(128 * 1024, 1);
        for (int i = 0; i < 8; i++) objects.Write(id, i * block.Length, block);
        pool.Commit();
        for (int i = 0; i < 8; i++) objects.Write(id, i * block.Length, block);
        pool.Commit();
        // The first write of a txg marks the object dirty (a node of ObjectSet's dirty set); the rest are steady state.
        objects.Write(id, 0, block);
        var buffer = new byte[block.Length];
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 8; i++) objects.Write(id, i * block.Length, block);   // quota checked on each
        for (int i = 0; i < 8; i++) objects.Read(id, i * block.Length, buffer, out _);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }

    [TestCase(ChecksumKind.Fletcher4)]
    [TestCase(ChecksumKind.Sha256)]
    [TestCase(ChecksumKind.Blake3)]
    public void Checksums_allocate_nothing(ChecksumKind kind)
    {
        var block = Bytes(128 * 1024, 2);
        for (int i = 0; i < 3; i++) Checksum.Compute(kind, block);   // warm up: the first calls may set up the platform's hash state
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) Checksum.Compute(kind, block);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }
}
