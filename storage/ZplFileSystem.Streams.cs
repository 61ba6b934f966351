using System.Text;
using SmartOS.Storage.Send;

namespace SmartOS.Storage;

/// <summary>
/// The file layer's side of zfs send and zfs receive (DatasetStreams.cs): the file system read as a
/// <see cref="FileTreeImage"/>, and made to hold one.
///
/// Object numbers: a send stream names files by object number, and an incremental stream names the
/// files of its base by the numbers the base was sent or received with. The ZPL layouts differ
/// (zfs-fuse: 1 master, 2 unlinked set, 3 root, 4 shares; here: 1 master, 2 znode table, 3 root), so
/// one fixed map joins them: the root is object 3 on both sides, and inode i (i >= 4) is stream
/// object i + 1. A received file is created at inode object - 1 (ObjectSet.CreateAt), so the map
/// holds for every dataset whether its files were written here or received, and a later
/// incremental stream, from either side, finds each file under the number it expects.
/// </summary>
public sealed partial class ZplFileSystem
{
    /// <summary>Stream object number of an inode (see the map above).</summary>
    internal long StreamObject(long inode) => inode == Root ? (long)ZplCodec.RootObject : inode + 1;

    private long InodeOfStreamObject(ulong id) => id == ZplCodec.RootObject ? Root : (long)id - 1;

    /// <summary>
    /// The whole file system as a tree, every node carrying its stream object number and znode
    /// generation (FileTreeImage rule 5), data read block by block with holes left out. Changes no
    /// access time when the file system is read-only (a snapshot, or opened so for zfs diff).
    /// <paramref name="loadData"/> (by stream object number) picks the files whose bytes are read;
    /// the others come with their size and no extents (what an incremental send or receive needs
    /// only of the files it changes).
    /// </summary>
    internal StorageResult ReadTree(out FileTreeImage? tree, Func<ulong, bool>? loadData = null)
    {
        tree = null;
        var nodes = new Dictionary<long, FileNode>();
        var attributes = new List<FileAttributes>();
        var listed = EnumerateInodes(a => { attributes.Add(a); return true; });
        if (!listed.IsOk) return listed;
        foreach (var a in attributes)
        {
            var result = ReadNode(a, loadData?.Invoke((ulong)StreamObject(a.Inode)) ?? true, out var node);
            if (!result.IsOk) return result;
            nodes[a.Inode] = node!;
        }
        if (!nodes.TryGetValue(Root, out var root)) return new StorageResult(StorageStatus.MetadataCorrupted, "root directory");
        var entries = new List<DirectoryEntry>();
        foreach (var (inode, node) in nodes)
        {
            if (node.Kind != FileKind.Directory) continue;
            var dir = GetDirectory(inode, out var directory);
            if (!dir.IsOk) return dir;
            entries.Clear();
            directory.List(2, entries, int.MaxValue);
            foreach (var e in entries)
            {
                if (!nodes.TryGetValue(e.Inode, out var child)) return new StorageResult(StorageStatus.MetadataCorrupted, $"directory {inode} entry '{e.Name}'");
                node.Entries[e.Name] = child;
            }
        }
        tree = new FileTreeImage(root);
        return StorageResult.Success;
    }

    private StorageResult ReadNode(FileAttributes a, bool withData, out FileNode? node)
    {
        node = null;
        var kind = a.Type switch { FileType.Directory => FileKind.Directory, FileType.Symlink => FileKind.Symlink, _ => FileKind.RegularFile };
        var n = new FileNode(kind)
        {
            Id = (ulong)StreamObject(a.Inode), Generation = (ulong)a.Generation, Mode = a.Mode, Uid = a.Uid, Gid = a.Gid,
            AccessTime = Time(a.Atime), ModifyTime = Time(a.Mtime), ChangeTime = Time(a.Ctime), CreateTime = Time(a.Crtime),
        };
        if (kind == FileKind.Symlink)
        {
            var link = ReadLink(a.Inode, out string target);
            if (!link.IsOk) return link;
            n.SymlinkTarget = target;
            n.Size = Encoding.UTF8.GetByteCount(target);
        }
        else if (kind == FileKind.RegularFile)
        {
            n.Size = a.Size;
            if (!withData)
            {
                node = n;
                return StorageResult.Success;
            }
            var extents = new List<DataExtent>();
            var found = GetExtents(a.Inode, extents);
            if (!found.IsOk) return found;
            foreach (var e in extents)
            {
                byte[] data = new byte[e.Length];
                var read = _set.Read(a.Inode, e.Offset, data, out int got);
                if (!read.IsOk) return read;
                if (got != data.Length) return new StorageResult(StorageStatus.MetadataCorrupted, $"inode {a.Inode} is shorter than its size");
                n.Extents.Add(new FileExtent(e.Offset, data));
            }
        }
        node = n;
        return StorageResult.Success;
    }

    private static FileTime Time(long ns) => new(Math.DivRem(ns, 1_000_000_000L, out long rest) - (rest < 0 ? 1 : 0), rest < 0 ? rest + 1_000_000_000L : rest);

    private static long Nanoseconds(FileTime t) => t.Seconds * 1_000_000_000L + t.Nanoseconds;

    /// <summary>
    /// Whether this file system can hold the tree: only directories, regular files and symbolic links
    /// (this ZPL has no device nodes or fifos), and object numbers the map above can place.
    /// </summary>
    internal static string? CheckRestorable(FileTreeImage tree)
    {
        foreach (var (path, node) in tree.Walk())
        {
            if (node.Kind is not (FileKind.Directory or FileKind.RegularFile or FileKind.Symlink))
                return $"'{path}' is a {node.Kind}, which this file system cannot hold";
            if (node != tree.Root && node.Id <= ZplCodec.SharesObject) return $"'{path}' has object number {node.Id}";
        }
        return null;
    }

    /// <summary>
    /// Makes the file system hold <paramref name="tree"/>, given that it now holds
    /// <paramref name="before"/> (null: freshly formatted). What is the same in both (by object number
    /// and generation) is left alone, so the blocks a base snapshot holds stay shared; a changed file
    /// has only its changed 128 KiB blocks rewritten (restore_write's effect). Every attribute, time and
    /// generation is the tree's (receive keeps the sender's times, not the clock's). A file for which
    /// <paramref name="untouched"/> holds (no record of the stream named it) is left as it is, whatever
    /// the tree says of its bytes: an incremental receive reads only the base files the stream changes.
    /// </summary>
    internal StorageResult Restore(FileTreeImage tree, FileTreeImage? before, Func<ulong, bool>? untouched = null)
    {
        var old = new Dictionary<ulong, FileNode>();
        if (before is not null) foreach (var (_, n) in before.Walk()) old.TryAdd(n.Id, n);
        var now = new Dictionary<ulong, (FileNode Node, long Parent)>();
        var names = new Dictionary<ulong, long>();
        now[tree.Root.Id] = (tree.Root, Root);
        foreach (var (_, n) in tree.Walk())
            if (n.Kind == FileKind.Directory)
                foreach (var child in n.Entries.Values)
                {
                    now.TryAdd(child.Id, (child, InodeOfStreamObject(n.Id)));
                    names[child.Id] = names.GetValueOrDefault(child.Id) + 1;
                }
        // Free what is gone or was replaced (a number reused for a new file, rule 5 of FileTreeImage).
        foreach (var (id, was) in old)
        {
            if (id == tree.Root.Id) continue;
            if (now.TryGetValue(id, out var next) && next.Node.Kind == was.Kind && next.Node.Generation == was.Generation) continue;
            var freed = GetZnode(InodeOfStreamObject(id), out var victim);
            if (freed.IsOk) freed = Free(victim);
            if (!freed.IsOk) return freed;
            old.Remove(id);
        }
        foreach (var (id, (node, parent)) in now)
        {
            if (untouched is not null && untouched(id) && old.ContainsKey(id)) continue;
            var result = RestoreNode(node, InodeOfStreamObject(id), parent, names.GetValueOrDefault(id), old.GetValueOrDefault(id));
            if (!result.IsOk) return result;
        }
        long generation = 0;
        foreach (var (node, _) in now.Values) generation = Math.Max(generation, (long)node.Generation);
        _nextGeneration = Math.Max(_nextGeneration, generation + 1);
        _files = now.Count;
        return StoreMaster();
    }

    private StorageResult RestoreNode(FileNode node, long inode, long parent, long links, FileNode? was)
    {
        Znode z;
        if (inode == Root)
        {
            var found = GetZnode(Root, out z);
            if (!found.IsOk) return found;
        }
        else if (was is null)
        {
            var created = _set.CreateAt(inode);
            if (!created.IsOk) return created;
            z = new Znode { Id = inode };
            _znodes[inode] = z;
        }
        else
        {
            var found = GetZnode(inode, out z);
            if (!found.IsOk) return found;
        }
        var type = node.Kind switch { FileKind.Directory => FileType.Directory, FileKind.Symlink => FileType.Symlink, _ => FileType.Regular };
        z.Mode = ((uint)type << 12) | (node.Mode & Znode.PermissionBits);
        z.Uid = node.Uid; z.Gid = node.Gid; z.Generation = (long)node.Generation; z.Parent = parent;
        z.Atime = Nanoseconds(node.AccessTime); z.Mtime = Nanoseconds(node.ModifyTime);
        z.Ctime = Nanoseconds(node.ChangeTime); z.Crtime = Nanoseconds(node.CreateTime);
        StorageResult result;
        switch (node.Kind)
        {
            case FileKind.Directory:
                result = RestoreEntries(z, node, was);
                z.Links = 2;
                foreach (var child in node.Entries.Values) if (child.Kind == FileKind.Directory) z.Links++;
                break;
            case FileKind.Symlink:
                byte[] target = Encoding.UTF8.GetBytes(node.SymlinkTarget);
                result = was is not null && was.SymlinkTarget == node.SymlinkTarget ? StorageResult.Success : RewriteObject(inode, target);
                z.Length = target.Length;
                break;
            default:
                result = RestoreData(inode, node, was);
                z.Length = node.Size;
                break;
        }
        if (!result.IsOk) return result;
        if (node.Kind != FileKind.Directory) z.Links = links;
        return Store(z);
    }

    private StorageResult RewriteObject(long inode, byte[] bytes)
    {
        var result = _set.Truncate(inode, 0);
        if (result.IsOk && bytes.Length > 0) result = _set.Write(inode, 0, bytes);
        return result;
    }

    /// <summary>Writes the blocks whose bytes differ from the old file's; a block all zeros and outside
    /// every extent becomes a hole.</summary>
    private StorageResult RestoreData(long inode, FileNode node, FileNode? was)
    {
        const int block = ObjectTree.BlockSize;
        long size = node.Size, oldSize = was?.Size ?? 0;
        if (was is not null && size < oldSize)
        {
            var cut = _set.Truncate(inode, size);
            if (!cut.IsOk) return cut;
        }
        for (long at = 0; at < size; at += block)
        {
            int length = (int)Math.Min(block, size - at);
            bool data = Overlaps(node, at, length);
            if (was is not null && at < oldSize)
            {
                if (!data && !Overlaps(was, at, length)) continue;
                byte[] mine = node.Read(at, length);
                if (mine.AsSpan().SequenceEqual(was.Read(at, length))) continue;
                var result = data ? _set.Write(inode, at, mine) : _set.FreeRange(inode, at, length);
                if (!result.IsOk) return result;
            }
            else if (data)
            {
                var result = _set.Write(inode, at, node.Read(at, length));
                if (!result.IsOk) return result;
            }
        }
        return _set.Truncate(inode, size);
    }

    private static bool Overlaps(FileNode node, long offset, int length)
    {
        foreach (var e in node.Extents)
            if (e.Offset < offset + length && e.Offset + e.Data.Length > offset) return true;
        return false;
    }

    private StorageResult RestoreEntries(Znode z, FileNode node, FileNode? was)
    {
        var result = GetDirectory(z.Id, out var dir);
        if (!result.IsOk) return result;
        if (was is not null)
            foreach (var (name, child) in was.Entries)
            {
                if (node.Entries.TryGetValue(name, out var kept) && kept.Id == child.Id && kept.Kind == child.Kind) continue;
                if (!dir.TryFind(Encoding.UTF8.GetBytes(name), out _, out _)) continue;
                result = dir.Remove(_set, Encoding.UTF8.GetBytes(name));
                if (!result.IsOk) return result;
            }
        foreach (var (name, child) in node.Entries)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(name);
            if (bytes.Length > ZplDirectory.MaxName || name.Contains('/') || name.Contains('\0') || name is "." or "..")
                return new StorageResult(StorageStatus.InvalidArgument, $"entry name '{name}'");
            long value = ((long)TypeOf(child.Kind) << 60) | InodeOfStreamObject(child.Id);
            if (dir.TryFind(bytes, out long existing, out _))
            {
                if (existing == value) continue;
                result = dir.SetValue(_set, bytes, value);
            }
            else result = dir.Add(_set, bytes, value);
            if (!result.IsOk) return result;
        }
        z.Length = node.Entries.Count;
        return StorageResult.Success;
    }

    private static FileType TypeOf(FileKind kind) =>
        kind switch { FileKind.Directory => FileType.Directory, FileKind.Symlink => FileType.Symlink, _ => FileType.Regular };
}
