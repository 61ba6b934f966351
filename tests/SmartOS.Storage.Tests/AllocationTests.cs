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

    [TestCase(ChecksumKind.Fletcher4)]
    [TestCase(ChecksumKind.Sha256)]
    [TestCase(ChecksumKind.Blake3)]
    public void Checksums_allocate_nothing(ChecksumKind kind)
    {
        var block = Bytes(128 * 1024, 2);
        Checksum.Compute(kind, block);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) Checksum.Compute(kind, block);
        Assert.That(GC.GetAllocatedBytesForCurrentThread() - before, Is.Zero);
    }
}
