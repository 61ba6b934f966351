using SmartOS.Kernel;

namespace SmartOS.Storage.Tests;

/// <summary>A fresh directory per test, and helpers to create, open and damage pools in it.</summary>
public abstract class PoolFixture
{
    protected const long VdevSize = Pool.MinVdevSize;
    protected string Dir = "";
    private long _now;
    private HostRandom _random = new(42);

    [SetUp]
    public void MakeDirectory()
    {
        Dir = Path.Combine(Path.GetTempPath(), $"smartos-storage-{Environment.ProcessId}-{TestContext.CurrentContext.Test.ID}");
        if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true);
        Directory.CreateDirectory(Dir);
        _random = new HostRandom(42);
        _now = 0;
    }

    [TearDown]
    public void RemoveDirectory()
    {
        if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true);
    }

    protected PoolOptions Options(ChecksumKind checksum = ChecksumKind.Fletcher4, int copies = 1, VdevOpener? opener = null) => new()
    {
        Clock = () => _now += 1_000_000_000,
        Random = _random,
        Checksum = checksum,
        Copies = copies,
        Opener = opener ?? FileVdevIo.Opener,
    };

    protected Pool Create(string name, params VdevSpec[] layout) => Create(name, Options(), layout);

    protected Pool Create(string name, PoolOptions options, params VdevSpec[] layout)
    {
        var result = Pool.Create(Dir, name, layout, VdevSize, options, out var pool);
        Assert.That(result.Message, Is.EqualTo("ok"));
        return pool!;
    }

    protected Pool Open(string name, PoolOptions? options = null)
    {
        var result = Pool.Open(Dir, name, options ?? Options(), out var pool);
        Assert.That(result.Message, Is.EqualTo("ok"));
        return pool!;
    }

    /// <summary>The pool's root filesystem's object set, where a file system (ZPL) lives as in ZFS.</summary>
    protected static ObjectSet RootSet(Pool pool)
    {
        Assert.That(pool.Datasets.Open(pool.Name, out var objects).Message, Is.EqualTo("ok"));
        return objects;
    }

    protected static byte[] Bytes(int length, ulong seed)
    {
        var data = new byte[length];
        new HostRandom(seed).NextBytes(data);
        return data;
    }

    protected static long NewObject(Pool pool, byte[] content)
    {
        Assert.That(pool.Objects.Create(out long id).IsOk, Is.True);
        Assert.That(pool.Objects.Write(id, 0, content).Message, Is.EqualTo("ok"));
        return id;
    }

    protected static byte[] ReadAll(Pool pool, long id)
    {
        var length = pool.Objects.GetLength(id, out long n);
        Assert.That(length.Message, Is.EqualTo("ok"));
        var data = new byte[n];
        var read = pool.Objects.Read(id, 0, data, out int got);
        Assert.That(read.Message, Is.EqualTo("ok"));
        Assert.That(got, Is.EqualTo(n));
        return data;
    }

    protected void Damage(string file, long offset, ReadOnlySpan<byte> bytes)
    {
        using var fs = new FileStream(Path.Combine(Dir, file), FileMode.Open, FileAccess.Write);
        fs.Position = offset;
        fs.Write(bytes);
    }

    /// <summary>Byte offset in a leaf file of a DVA's block (the data area follows label L0).</summary>
    protected static long FileOffset(Dva dva) => VdevLabel.LabelSize + dva.Offset;
}
