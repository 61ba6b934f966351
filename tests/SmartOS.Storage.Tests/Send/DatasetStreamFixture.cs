using System.Text;

namespace SmartOS.Storage.Tests.Send;

/// <summary>Helpers for send/receive tests over datasets: a populated filesystem and a listing of everything the ZPL shows.</summary>
public abstract class DatasetStreamFixture : DatasetFixture
{
    private long _fsNow = 1_700_000_000L * 1_000_000_000;

    protected ZplFileSystem Mount(Pool pool, string dataset, bool readOnly = false)
    {
        Ok(pool.Datasets.Open(dataset, out var set));
        Ok(ZplFileSystem.Open(set, new FileSystemOptions { Clock = () => _fsNow += 1_234_567, ReadOnly = readOnly }, out var fs));
        return fs!;
    }

    protected static long Write(ZplFileSystem fs, string path, byte[] content, uint mode = 0x1A4, uint uid = 100, uint gid = 10)
    {
        Ok(fs.CreateFile(path, mode, uid, gid, out long inode));
        Ok(fs.Write(inode, 0, content));
        return inode;
    }

    protected static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    /// <summary>A populated filesystem: directories, files small and large, a hole, symlinks short and long, a hard link.</summary>
    protected void Populate(Pool pool, string dataset)
    {
        var fs = Mount(pool, dataset);
        Ok(fs.MakeDirectory("etc", 0x1ED, 0, 0, out _));
        Ok(fs.MakeDirectory("etc/ssh", 0x3FF, 1001, 99, out _));
        Write(fs, "etc/motd", Encoding.UTF8.GetBytes("Welcome to SmartOS\n"), 0x1A0, 0, 3);
        Write(fs, "big.bin", Bytes(700_000, 1));
        long sparse = Write(fs, "sparse.img", "in a hole"u8.ToArray());
        Ok(fs.Write(sparse, 3 * 1024 * 1024 + 17, "far out"u8));
        Ok(fs.Truncate(sparse, 5 * 1024 * 1024));
        Ok(fs.CreateSymlink("etc/motd", "motd", 0, 0, out _));
        Ok(fs.CreateSymlink(new string('x', 200), "long-link", 5, 6, out _));
        Ok(fs.Link("etc/motd", "etc/motd.hard"));
        Ok(fs.MakeDirectory("empty", 0x1C0, 7, 8, out _));
        Ok(pool.Commit());
    }

    /// <summary>
    /// Everything a path shows through the ZPL, one line a path (the root left out), in the form
    /// ZfsFuse's stat listing gives for a mount: path, type, mode, owner, links, size, atime, mtime,
    /// ctime (s.nnnnnnnnn; whole seconds to compare with zfs-fuse, whose FUSE attributes drop the
    /// nanoseconds it keeps), symlink target, SHA-256 of a file's bytes.
    /// </summary>
    protected List<string> Listing(Pool pool, string dataset, bool wholeSeconds = false)
    {
        var fs = Mount(pool, dataset, readOnly: true);
        var entries = new List<WalkEntry>();
        Ok(fs.Walk("/", e => { entries.Add(e); return true; }));
        var lines = new List<string>();
        foreach (var e in entries)
        {
            if (e.Path == "/") continue;
            var a = e.Attributes;
            string extra = "", type = a.Type switch { FileType.Directory => "directory", FileType.Symlink => "symbolic link", _ => a.Size == 0 ? "regular empty file" : "regular file" };
            if (a.Type == FileType.Symlink)
            {
                Ok(fs.ReadLink(a.Inode, out string target));
                extra = target;
            }
            else if (a.Type == FileType.Regular)
            {
                var data = new byte[a.Size];
                Ok(fs.Read(a.Inode, 0, data, out _));
                extra = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data)).ToLowerInvariant();
            }
            uint mode = a.Type == FileType.Symlink ? 0x1FF : a.Mode;
            lines.Add(string.Join('\t', e.Path[1..], type, Convert.ToString(mode, 8), a.Uid, a.Gid, a.Links, a.Size,
                Seconds(a.Atime, wholeSeconds), Seconds(a.Mtime, wholeSeconds), Seconds(a.Ctime, wholeSeconds), extra));
        }
        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    private static string Seconds(long ns, bool whole) => $"{ns / 1_000_000_000}.{(whole ? 0 : ns % 1_000_000_000):D9}";

    protected static byte[] Send(Pool pool, string snapshot, string? from = null)
    {
        var output = new MemoryStream();
        Ok(pool.Datasets.Send(snapshot, new SendOptions { From = from }, output));
        return output.ToArray();
    }

    protected static StorageResult Receive(Pool pool, byte[] stream, string target, ReceiveOptions? options = null) =>
        pool.Datasets.Receive(new MemoryStream(stream), target, options ?? new ReceiveOptions(), out _);

    protected static IReadOnlyList<string> All(Pool pool)
    {
        Ok(pool.Datasets.List(null, -1, DatasetKinds.All, out var names));
        return names;
    }

    protected static ulong Guid(Pool pool, string snapshot)
    {
        Ok(pool.Datasets.SnapshotGuid(snapshot, out ulong guid));
        return guid;
    }
}
