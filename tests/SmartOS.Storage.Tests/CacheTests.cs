namespace SmartOS.Storage.Tests;

/// <summary>Pool.cs rule 11: the block cache is bounded, counts, and never serves the wrong block.</summary>
public class CacheTests : PoolFixture
{
    private Pool CreateWithCache(long cacheSize, string compression = "off")
    {
        CompressionSetting.TryParse(compression, out var setting);
        return Create("tank", Options() with { CacheSize = cacheSize, Compression = setting }, VdevSpec.Disk("d0"));
    }

    [TestCase("off")]
    [TestCase("lz4")]
    public void The_cache_never_holds_more_than_its_size_and_reads_stay_right_under_eviction(string compression)
    {
        const long cacheSize = 1024 * 1024;
        using var pool = CreateWithCache(cacheSize, compression);
        var contents = new List<(long Id, byte[] Data)>();
        for (int i = 0; i < 6; i++)
        {
            var data = Bytes(1024 * 1024 + 1000 * i, (ulong)i + 1);
            if (compression != "off") data.AsSpan(0, data.Length / 2).Clear();
            contents.Add((NewObject(pool, data), data));
            pool.Commit();
            Assert.That(pool.Cache.Held, Is.LessThanOrEqualTo(cacheSize));
        }
        var random = new SmartOS.Kernel.HostRandom(5);
        var buffer = new byte[200_000];
        for (int round = 0; round < 60; round++)
        {
            var (id, data) = contents[(int)(random.NextUInt64() % (ulong)contents.Count)];
            long offset = (long)(random.NextUInt64() % (ulong)(data.Length - buffer.Length));
            Assert.That(pool.Objects.Read(id, offset, buffer, out int n).IsOk, Is.True);
            Assert.That(buffer.AsSpan(0, n).SequenceEqual(data.AsSpan((int)offset, n)), Is.True, $"round {round}");
            Assert.That(pool.Cache.Held, Is.LessThanOrEqualTo(cacheSize));
            Assert.That(pool.Cache.Size, Is.LessThanOrEqualTo(pool.Cache.Held));
        }
        Assert.That(pool.Cache.Evictions, Is.Positive);
    }

    [Test]
    public void A_second_read_of_a_block_is_a_hit()
    {
        long id;
        using (var pool = CreateWithCache(PoolOptions.DefaultCacheSize))
        {
            id = NewObject(pool, Bytes(128 * 1024, 1));
            pool.Commit();
        }
        using var reopened = Open("tank");
        var buffer = new byte[4096];
        reopened.Objects.Read(id, 0, buffer, out _);
        var (hits, misses) = (reopened.Cache.Hits, reopened.Cache.Misses);
        reopened.Objects.Read(id, 8192, buffer, out _);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reopened.Cache.Hits, Is.GreaterThan(hits));
            Assert.That(reopened.Cache.Misses, Is.EqualTo(misses));
            Assert.That(reopened.Cache.MfuSize, Is.Positive, "a block read twice is frequent");
        }
    }

    [Test]
    public void A_scan_of_a_large_object_does_not_push_out_blocks_read_twice()
    {
        using var pool = CreateWithCache(2 * 1024 * 1024);
        long hot = NewObject(pool, Bytes(256 * 1024, 1));
        long large = NewObject(pool, Bytes(8 * 1024 * 1024, 2));
        pool.Commit();
        var buffer = new byte[256 * 1024];
        pool.Objects.Read(hot, 0, buffer, out _);
        pool.Objects.Read(hot, 0, buffer, out _);
        for (long offset = 0; offset < 8 * 1024 * 1024; offset += buffer.Length) pool.Objects.Read(large, offset, buffer, out _);
        long misses = pool.Cache.Misses;
        pool.Objects.Read(hot, 0, buffer, out _);
        Assert.That(pool.Cache.Misses, Is.EqualTo(misses));
        Assert.That(buffer, Is.EqualTo(Bytes(256 * 1024, 1)));
    }

    [Test]
    public void Blocks_just_written_into_a_cache_with_room_are_read_from_it()
    {
        using var pool = CreateWithCache(PoolOptions.DefaultCacheSize);
        var content = Bytes(1024 * 1024, 7);
        long id = NewObject(pool, content);
        pool.Commit();
        long misses = pool.Cache.Misses;
        Assert.That(ReadAll(pool, id), Is.EqualTo(content));
        Assert.That(pool.Cache.Misses, Is.EqualTo(misses), "every block written was kept");
    }

    [Test]
    public void A_long_write_goes_around_a_full_cache_and_pushes_out_nothing_read()
    {
        const long cacheSize = 2 * 1024 * 1024;
        long cold;
        var coldContent = Bytes(512 * 1024, 8);
        using (var created = CreateWithCache(cacheSize))
        {
            cold = NewObject(created, coldContent);
            created.Commit();
        }
        using var pool = Open("tank", Options() with { CacheSize = cacheSize });
        Assert.That(ReadAll(pool, cold), Is.EqualTo(coldContent));   // read once: MRU
        long large = NewObject(pool, Bytes(16 * 1024 * 1024, 9));
        pool.Commit();
        var more = Bytes(8 * 1024 * 1024, 10);
        Assert.That(pool.Objects.Write(large, 16 * 1024 * 1024, more).IsOk, Is.True);
        pool.Commit();
        long misses = pool.Cache.Misses;
        Assert.That(ReadAll(pool, cold), Is.EqualTo(coldContent));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(pool.Cache.Misses, Is.EqualTo(misses), "24 MiB written through a 2 MiB cache pushed out a block read before");
            Assert.That(pool.Cache.Held, Is.LessThanOrEqualTo(cacheSize));
        }
        var tail = new byte[more.Length];
        Assert.That(pool.Objects.Read(large, 16 * 1024 * 1024, tail, out int n).IsOk, Is.True);
        Assert.That(tail.AsSpan(0, n).SequenceEqual(more), Is.True, "blocks that went around the cache read back from the vdev");
    }

    [Test]
    public void A_pool_without_a_cache_still_reads_and_writes()
    {
        long id;
        var content = Bytes(3 * 1024 * 1024, 3);
        using (var pool = CreateWithCache(0, "lz4"))
        {
            id = NewObject(pool, content);
            pool.Commit();
            pool.Objects.Write(id, 1_000_000, Bytes(300_000, 4));
            Bytes(300_000, 4).CopyTo(content, 1_000_000);
            pool.Commit();
            Assert.That(ReadAll(pool, id), Is.EqualTo(content));
            Assert.That(pool.Cache.Held, Is.Zero);
        }
        using var reopened = Open("tank", Options() with { CacheSize = 0 });
        Assert.That(ReadAll(reopened, id), Is.EqualTo(content));
        Assert.That(reopened.Scrub().Errors, Is.Zero);
    }

    [Test]
    public void A_freed_block_leaves_the_cache()
    {
        using var pool = CreateWithCache(PoolOptions.DefaultCacheSize);
        long id = NewObject(pool, Bytes(512 * 1024, 1));
        pool.Commit();
        long size = pool.Cache.Size;
        Assert.That(pool.Objects.Delete(id).IsOk, Is.True);
        pool.Commit();
        Assert.That(pool.Cache.Size, Is.LessThanOrEqualTo(size - 512 * 1024));
    }

    [Test]
    public void A_negative_cache_size_is_refused()
    {
        var result = Pool.Create(Dir, "tank", [VdevSpec.Disk("d0")], VdevSize, Options() with { CacheSize = -1 }, out _);
        Assert.That(result.Message, Is.EqualTo("cannot create 'tank': cache size must not be negative: invalid argument"));
    }
}
