namespace SmartOS.Storage.Tests;

/// <summary>Write failures: counted as WRITE on the leaf; a commit fails only when no copy could be written.</summary>
public class WriteErrorTests : PoolFixture
{
    private sealed class FailingWrites(IVdevIo inner, Func<bool> failing) : IVdevIo
    {
        public int Read(long offset, Span<byte> destination) => inner.Read(offset, destination);

        public void Write(long offset, ReadOnlySpan<byte> source)
        {
            if (failing()) throw new IOException("injected write error");
            inner.Write(offset, source);
        }

        public void Flush() => inner.Flush();

        public void Dispose() => inner.Dispose();
    }

    private PoolOptions FailWritesTo(string file, Func<bool> failing) => Options(opener: (path, writable) =>
    {
        var io = FileVdevIo.Opener(path, writable);
        return Path.GetFileName(path) == file ? new FailingWrites(io, failing) : io;
    });

    [Test]
    public void A_mirror_side_that_fails_writes_counts_them_and_the_commit_succeeds()
    {
        Create("tank", VdevSpec.Mirror("d0", "d1")).Dispose();
        var content = Bytes(500_000, 1);
        long id;
        using (var pool = Open("tank", FailWritesTo("d1", () => true)))
        {
            id = NewObject(pool, content);
            Assert.That(pool.Commit().IsOk, Is.True);
            Assert.That(pool.Vdevs[0].Leaves[1].WriteErrors, Is.GreaterThan(4));
            Assert.That(pool.Vdevs[0].Leaves[0].WriteErrors, Is.Zero);
        }
        using var reopened = Open("tank");
        Assert.That(ReadAll(reopened, id), Is.EqualTo(content));
    }

    [Test]
    public void A_single_vdev_that_fails_writes_fails_the_commit_and_keeps_the_last_txg()
    {
        long txg, id;
        using (var pool = Create("tank", VdevSpec.Disk("d0"))) txg = pool.Txg;
        using (var pool = Open("tank", FailWritesTo("d0", () => true)))
        {
            id = NewObject(pool, Bytes(1000, 1));
            var result = pool.Commit();
            Assert.That(result.Message, Is.EqualTo("pool 'tank': no copy of a block could be written: I/O error"));
            Assert.That(pool.Suspended.Status, Is.EqualTo(StorageStatus.IoError));
        }
        using var reopened = Open("tank");
        Assert.That(reopened.Txg, Is.EqualTo(txg));
        Assert.That(reopened.Objects.Exists(id), Is.False);
    }
}
