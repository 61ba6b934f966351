namespace SmartOS.Storage.Send;

/// <summary>
/// A file system's contents as a send stream carries them, independent of any on-disk layout: the
/// seam between the send/receive codec and a file layer. A file layer implements
/// <see cref="IFileTreeSource"/> to be sent (render a snapshot as a tree) and
/// <see cref="IFileTreeSink"/> to receive (make a dataset hold a tree). <see cref="ZplCodec"/> turns a
/// tree into the ZPL objects of a stream and back.
///
/// Rules:
///  1. A node is one file (one inode): a hard link is the same <see cref="FileNode"/> reached under
///     two names; its link count is the number of names, not a stored field.
///  2. A regular file's bytes are its extents; everything in [0, Size) outside them is a hole and
///     reads as zeros. Extents are sorted, do not overlap, and lie inside [0, Size).
///  3. Mode holds the permission bits and setuid/setgid/sticky (07777); the file type is Kind.
///  4. Times are seconds and nanoseconds since the epoch as the znode keeps them.
///  5. Id is the object number the node had in a decoded stream (0 for a node built by hand); it
///     lets two decoded snapshots be compared as zfs diff does (same object, new name: a rename).
/// </summary>
public sealed class FileTreeImage
{
    public FileTreeImage(FileNode root)
    {
        if (root.Kind != FileKind.Directory) throw new ArgumentException("the root must be a directory", nameof(root));
        Root = root;
    }

    public FileNode Root { get; }

    /// <summary>Every (path, node) pair, parents before children, names in ordinal order; a hard-linked
    /// node appears once per name. The root's path is "".</summary>
    public IEnumerable<(string Path, FileNode Node)> Walk()
    {
        var stack = new Stack<(string, FileNode)>();
        stack.Push(("", Root));
        while (stack.Count > 0)
        {
            var (path, node) = stack.Pop();
            yield return (path, node);
            if (node.Kind != FileKind.Directory) continue;
            foreach (var (name, child) in node.Entries.Reverse()) stack.Push((path.Length == 0 ? name : path + "/" + name, child));
        }
    }

    public FileNode? Lookup(string path)
    {
        FileNode node = Root;
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
            if (node.Kind != FileKind.Directory || !node.Entries.TryGetValue(part, out node!)) return null;
        return node;
    }
}

public enum FileKind { Directory, RegularFile, Symlink, Fifo, Socket, CharDevice, BlockDevice }

public readonly record struct FileTime(long Seconds, long Nanoseconds)
{
    public static FileTime FromUnixSeconds(long seconds) => new(seconds, 0);
}

/// <summary>A run of a regular file's data (rule 2).</summary>
public sealed record FileExtent(long Offset, byte[] Data);

public sealed class FileNode
{
    public FileNode(FileKind kind) => Kind = kind;

    public FileKind Kind { get; }
    /// <summary>Permission bits with setuid, setgid and sticky (C's 07777; C# has no octal: 0x1ED is 0755).</summary>
    public uint Mode { get; set; }
    public uint Uid { get; set; }
    public uint Gid { get; set; }
    public FileTime AccessTime { get; set; }
    public FileTime ModifyTime { get; set; }
    public FileTime ChangeTime { get; set; }
    public FileTime CreateTime { get; set; }
    public ulong Generation { get; set; }
    public ulong Id { get; set; }

    /// <summary>A directory's entries by name (ordinal order).</summary>
    public SortedDictionary<string, FileNode> Entries { get; } = new(StringComparer.Ordinal);

    /// <summary>A regular file's length; a symlink's is its target's byte count.</summary>
    public long Size { get; set; }
    public List<FileExtent> Extents { get; } = [];
    public string SymlinkTarget { get; set; } = "";
    /// <summary>Device number of a character or block device (zp_rdev).</summary>
    public ulong Rdev { get; set; }

    public static FileNode Directory(uint mode = 0x1ED) => new(FileKind.Directory) { Mode = mode };

    public static FileNode File(byte[] content, uint mode = 0x1A4)
    {
        var node = new FileNode(FileKind.RegularFile) { Mode = mode, Size = content.Length };
        if (content.Length > 0) node.Extents.Add(new FileExtent(0, content));
        return node;
    }

    public static FileNode Symlink(string target) =>
        new(FileKind.Symlink) { Mode = 0x1FF, SymlinkTarget = target, Size = System.Text.Encoding.UTF8.GetByteCount(target) };

    /// <summary>The file's bytes [offset, offset+count), holes as zeros.</summary>
    public byte[] Read(long offset, int count)
    {
        byte[] result = new byte[count];
        foreach (FileExtent e in Extents)
        {
            long from = Math.Max(e.Offset, offset), to = Math.Min(e.Offset + e.Data.Length, offset + count);
            if (to > from) e.Data.AsSpan((int)(from - e.Offset), (int)(to - from)).CopyTo(result.AsSpan((int)(from - offset)));
        }
        return result;
    }

    public byte[] ReadAll() => Read(0, checked((int)Size));
}

/// <summary>A file layer's snapshot as a tree, for zfs send.</summary>
public interface IFileTreeSource
{
    FileTreeImage ReadTree();
}

/// <summary>A file layer that takes a received tree as a dataset's new contents, for zfs receive.</summary>
public interface IFileTreeSink
{
    void WriteTree(FileTreeImage tree);
}
