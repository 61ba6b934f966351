/*
 * The POSIX file layer (ZFS's ZPL): files, directories and symbolic links kept as numbered objects of
 * one ObjectSet, so that it works on any dataset's object set.
 *
 * Terms
 *   znode       an inode: one object of the set holds its contents, and a fixed 256-byte attribute
 *               header (Znode, ZplZnode.cs) in the znode table holds mode, owner, links, size, the
 *               four times, generation and parent. Its inode number is its object number.
 *   master      object 1 (ZFS's MASTER_NODE_OBJ): magic, version, the root's and the table's object
 *               numbers, the next generation and the count of znodes.
 *   table       object 2: the znode headers, inode * 256 bytes in. Keeping them together (where ZFS
 *               keeps them in each dnode's bonus buffer) makes creating 100,000 files dirty 200 blocks
 *               of the table, not 100,000 blocks of their own.
 *   directory   its object is a hash table of names (ZplDirectory.cs); "." and ".." are not stored:
 *               "." is the directory, ".." its header's parent.
 *   symlink     its object holds the target's bytes.
 *
 * Rules
 *   1. Times come from the caller's clock (FileSystemOptions.Clock, nanoseconds); nothing here reads
 *      the wall clock (Pool.cs rule 1). Same calls, same bytes.
 *   2. Format takes an empty object set and creates objects 1 (master), 2 (table) and 3 (the root);
 *      Open finds everything from object 1. The headers are written through to the table on every
 *      change and cached (unbounded for now, as the pool's indirect blocks are). Everything is in the
 *      object set, so a file system opened later sees every earlier change; two used side by side
 *      would each miss the other's (their caches), so one object set has one user at a time.
 *   3. A directory scales: it is read into memory whole on first use (one pass over its object),
 *      a lookup scans one bucket and an insert or removal rewrites one (a doubling rewrites the
 *      directory, once per doubling: linear in total). Listing order is by hash key and stable: a
 *      cookie stays valid across inserts, removals and doublings. "." (cookie 0) and ".." (1) first.
 *   4. Files have holes: bytes never written read as zeros and hold no block; Truncate and FreeRange
 *      free the blocks they cut off (ObjectTree.FreeRange) at the next commit.
 *   5. Every operation checks everything it can before it changes anything, so a refusal (EEXIST,
 *      ENOTEMPTY, EINVAL on a rename into itself, ...) leaves the tree as it was; everything one call
 *      changes commits in the same txg, so a crash opens at a tree from before or after the call.
 *      Fsync makes everything changed so far durable through the dataset's intent log (IntentLog.cs:
 *      its records are object changes, replayed whole commits at a time, so a crash after an fsync
 *      opens at the tree of that fsync or a later one).
 *   6. Paths: '/'-separated, relative ones from the root; a name is at most 255 bytes and a path 1024
 *      (MAXNAMELEN, MAXPATHLEN); a lookup follows at most 40 symbolic links (ELOOP).
 *   7. Read and Write of file data allocate nothing once the blocks and headers they touch are
 *      cached (Pool.cs rule 7). With atime on, a read updates the access time (as ZFS with atime=on).
 *   8. A read-only file system refuses every change with EROFS and updates no access time.
 *   9. Permissions are stored, not checked: the callers (file commands, zones) check credentials.
 *      Errors follow illumos's ZFS: unlink of a directory and a hard link to one are EPERM; rmdir of
 *      a non-empty directory is ENOTEMPTY (illumos's ZFS says EEXIST; callers print the same words).
 *
 * Reading it all (zfs send, ls -R, du, cp -r): Walk visits paths depth first in listing order;
 * EnumerateInodes visits each inode once in inode order with its attributes; GetExtents gives a
 * file's data runs with the holes skipped; ReadLink(inode) and ReadDirectory(inode) give the rest.
 * SpaceUsed and StatFs give du's and df's figures.
 *
 * Not done yet (issue 12): extended attributes and ACLs, device nodes and fifos (mknod), reuse of
 * inode numbers (the object set does not reuse ids), a bounded znode and directory cache, and
 * unlinked-but-open files (there are no open handles: the last unlink frees the object at once).
 */
using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Storage;

/// <summary>How a file system is mounted.</summary>
public sealed record FileSystemOptions
{
    /// <summary>Nanoseconds for atime/mtime/ctime/crtime (rule 1).</summary>
    public required Func<long> Clock { get; init; }

    public bool ReadOnly { get; init; }

    /// <summary>ZFS's atime property: reads update the access time when on.</summary>
    public bool Atime { get; init; } = true;
}

/// <summary>statvfs-like figures: the pool's space, the file system's inode count.</summary>
public readonly record struct FileSystemStats(long BlockSize, long TotalBytes, long FreeBytes, long Files, long FreeFiles);

/// <summary>A run of file bytes that hold data (a hole is everything between two extents).</summary>
public readonly record struct DataExtent(long Offset, long Length);

/// <summary>One node reached by Walk: its path from the root and its attributes.</summary>
public readonly record struct WalkEntry(string Path, FileAttributes Attributes);

public sealed partial class ZplFileSystem
{
    public const long MasterObject = 1;
    public const int MaxPath = 1024;
    public const int MaxSymlinks = 40;
    private const ulong MasterMagic = 0x5254534D4C50_5A;   // "ZPLMSTR" read little-endian
    private const long Version = 1;
    private const int MasterSize = 48;

    private readonly ObjectSet _set;
    private readonly FileSystemOptions _options;
    private readonly Dictionary<long, Znode> _znodes = [];
    private readonly Dictionary<long, ZplDirectory> _directories = [];
    private readonly long _table;
    // One table block being decoded (GetZnode): shared by the file systems of a thread (a pool is used
    // from one thread, Pool.cs rule 9) rather than 128 KiB held by each mounted file system, which
    // with thousands of zones mounted made most of the heap and its collections (issue 13).
    [ThreadStatic] private static byte[]? t_tableChunk;
    private long _nextGeneration;
    private long _files;

    private ZplFileSystem(ObjectSet set, FileSystemOptions options, long root, long table, long nextGeneration, long files)
    {
        _set = set; _options = options; Root = root; _table = table; _nextGeneration = nextGeneration; _files = files;
    }

    public long Root { get; }

    public bool ReadOnly => _options.ReadOnly;

    /// <summary>The file system's clock now (rule 1): what utimensat's UTIME_NOW stands for.</summary>
    public long Now => _options.Clock();

    /// <summary>Creates an empty file system (master, table, root directory) in an empty object set (rule 2).</summary>
    public static StorageResult Format(ObjectSet set, long now, uint rootMode = 0x1ED, uint uid = 0, uint gid = 0)
    {
        if (set.Exists(MasterObject)) return new StorageResult(StorageStatus.Exists, "object set is not empty");
        var created = set.Create(out long master);
        if (!created.IsOk) return created;
        if (master != MasterObject)
        {
            set.Delete(master);
            return new StorageResult(StorageStatus.InvalidArgument, "object set is not empty");
        }
        var result = set.Create(out long table);
        long root = 0;
        if (result.IsOk) result = set.Create(out root);
        if (!result.IsOk) return result;
        var fs = new ZplFileSystem(set, new FileSystemOptions { Clock = () => now }, root, table, 1, 0);
        var node = new Znode { Id = root, Mode = ((uint)FileType.Directory << 12) | (rootMode & Znode.PermissionBits), Uid = uid, Gid = gid, Links = 2, Parent = root };
        result = fs.Initialise(node);
        return result.IsOk ? fs.StoreMaster() : result;
    }

    /// <summary>Opens the file system of an object set that Format prepared.</summary>
    public static StorageResult Open(ObjectSet set, FileSystemOptions options, out ZplFileSystem? fs)
    {
        fs = null;
        Span<byte> raw = stackalloc byte[MasterSize];
        var read = set.Read(MasterObject, 0, raw, out int n);
        if (!read.IsOk) return new StorageResult(read.Status == StorageStatus.NoSuchObject ? StorageStatus.InvalidArgument : read.Status, "no file system in this object set");
        if (n != MasterSize || BinaryPrimitives.ReadUInt64LittleEndian(raw) != MasterMagic)
            return new StorageResult(StorageStatus.InvalidArgument, "no file system in this object set");
        if (BinaryPrimitives.ReadInt64LittleEndian(raw[8..]) != Version)
            return new StorageResult(StorageStatus.InvalidArgument, "unsupported file system version");
        var opened = new ZplFileSystem(set, options, BinaryPrimitives.ReadInt64LittleEndian(raw[16..]), BinaryPrimitives.ReadInt64LittleEndian(raw[24..]),
                                       BinaryPrimitives.ReadInt64LittleEndian(raw[32..]), BinaryPrimitives.ReadInt64LittleEndian(raw[40..]));
        var root = opened.GetZnode(opened.Root, out var node);
        if (!root.IsOk) return new StorageResult(StorageStatus.MetadataCorrupted, "root directory: " + root.Message);
        if (!node.IsDirectory) return new StorageResult(StorageStatus.MetadataCorrupted, "root is not a directory");
        fs = opened;
        return StorageResult.Success;
    }

    // ---- lookups ----

    /// <summary>The inode a path names, following symbolic links (the last one too when follow).</summary>
    public StorageResult Lookup(string path, out long inode, bool follow = true)
    {
        var result = Resolve(path, follow, out _, out _, out inode);
        if (result.IsOk && inode < 0) return NotFound(path);
        return result;
    }

    /// <summary>One name in one directory, not following a symbolic link it names ("." and ".." too).</summary>
    public StorageResult Lookup(long directory, string name, out long inode)
    {
        inode = 0;
        var result = GetDirectory(directory, out var dir);
        if (!result.IsOk) return result;
        if (name.Length == 0 || name.Contains('/') || name.Contains('\0')) return new StorageResult(StorageStatus.InvalidArgument, name);
        byte[] bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length > ZplDirectory.MaxName) return new StorageResult(StorageStatus.NameTooLong, name);
        if (name == ".") inode = directory;
        else if (name == "..") inode = directory == Root ? Root : dir.Node.Parent;
        else if (dir.TryFind(bytes, out long value, out _)) inode = value & ((1L << 60) - 1);
        else return NotFound(name);
        return StorageResult.Success;
    }

    /// <summary>stat(2): the attributes of what path names, after symbolic links.</summary>
    public StorageResult Stat(string path, out FileAttributes attributes) => StatPath(path, true, out attributes);

    /// <summary>lstat(2): a symbolic link's own attributes.</summary>
    public StorageResult StatLink(string path, out FileAttributes attributes) => StatPath(path, false, out attributes);

    public StorageResult GetAttributes(long inode, out FileAttributes attributes)
    {
        attributes = default;
        var found = GetZnode(inode, out var node);
        if (found.IsOk) attributes = node.Attributes;
        return found;
    }

    private StorageResult StatPath(string path, bool follow, out FileAttributes attributes)
    {
        attributes = default;
        var result = Lookup(path, out long inode, follow);
        return result.IsOk ? GetAttributes(inode, out attributes) : result;
    }

    /// <summary>readlink(2): EINVAL for anything but a symbolic link.</summary>
    public StorageResult ReadLink(string path, out string target)
    {
        target = "";
        var result = Lookup(path, out long inode, follow: false);
        if (!result.IsOk) return result;
        result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (node.Type != FileType.Symlink) return new StorageResult(StorageStatus.InvalidArgument, path);
        return ReadTarget(node, out target);
    }

    /// <summary>
    /// Appends up to max entries of a directory from cookie on (0 starts with "." and ".."); each
    /// entry's Next continues after it (rule 3). Updates the directory's atime when atime is on.
    /// </summary>
    public StorageResult ReadDirectory(long directory, long cookie, List<DirectoryEntry> into, int max = int.MaxValue)
    {
        var result = GetDirectory(directory, out var dir);
        if (!result.IsOk) return result;
        if (cookie <= 0 && max > 0) { into.Add(new DirectoryEntry(".", directory, FileType.Directory, 1)); max--; }
        if (cookie <= 1 && max > 0) { into.Add(new DirectoryEntry("..", dir.Node.Parent, FileType.Directory, 2)); max--; }
        dir.List(Math.Max(cookie, 2), into, max);
        Accessed(dir.Node);
        return StorageResult.Success;
    }

    /// <summary>Every entry of the directory a path names, "." and ".." first.</summary>
    public StorageResult ReadDirectory(string path, List<DirectoryEntry> into)
    {
        var result = Lookup(path, out long inode);
        return result.IsOk ? ReadDirectory(inode, 0, into) : result;
    }

    // ---- creating and removing names ----

    /// <summary>Creates an empty regular file; EEXIST if the name is taken (O_CREAT|O_EXCL).</summary>
    public StorageResult CreateFile(string path, uint mode, uint uid, uint gid, out long inode) =>
        CreateNode(path, FileType.Regular, mode, uid, gid, null, out inode);

    /// <summary>mkdir(2).</summary>
    public StorageResult MakeDirectory(string path, uint mode, uint uid, uint gid, out long inode) =>
        CreateNode(path, FileType.Directory, mode, uid, gid, null, out inode);

    /// <summary>symlink(2): path becomes a link to target (stored as given, not checked).</summary>
    public StorageResult CreateSymlink(string target, string path, uint uid, uint gid, out long inode)
    {
        inode = 0;
        if (target.Length == 0) return new StorageResult(StorageStatus.NoSuchObject, path);
        if (Encoding.UTF8.GetByteCount(target) > MaxPath) return new StorageResult(StorageStatus.NameTooLong, target);
        return CreateNode(path, FileType.Symlink, 0x1FF, uid, gid, target, out inode);
    }

    private StorageResult CreateNode(string path, FileType type, uint mode, uint uid, uint gid, string? target, out long inode)
    {
        inode = 0;
        var check = Writable(path);
        if (!check.IsOk) return check;
        var result = ResolveNew(path, out var parent, out string name);
        if (!result.IsOk) return result;
        var created = _set.Create(out inode);
        if (!created.IsOk) return created;
        long now = _options.Clock();
        var node = new Znode
        {
            Id = inode, Mode = ((uint)type << 12) | (mode & Znode.PermissionBits), Uid = uid, Gid = gid,
            Links = type == FileType.Directory ? 2 : 1, Parent = parent.Node.Id,
        };
        if (target is not null)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(target);
            var written = _set.Write(inode, 0, bytes);
            if (!written.IsOk) { _set.Delete(inode); return written; }
            node.Length = bytes.Length;
        }
        var added = AddName(parent, name, node);
        if (!added.IsOk) { _set.Delete(inode); return added; }
        result = Initialise(node, now);
        if (!result.IsOk) return result;
        if (type == FileType.Directory) parent.Node.Links++;
        return Changed(parent.Node, now, content: true);
    }

    /// <summary>link(2): a second name for a file or symbolic link (EPERM for a directory).</summary>
    public StorageResult Link(string existing, string path)
    {
        var check = Writable(path);
        if (!check.IsOk) return check;
        var result = Lookup(existing, out long inode, follow: false);
        if (!result.IsOk) return result;
        result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (node.IsDirectory) return new StorageResult(StorageStatus.NotPermitted, existing);
        result = ResolveNew(path, out var parent, out string name);
        if (!result.IsOk) return result;
        result = AddName(parent, name, node);
        if (!result.IsOk) return result;
        long now = _options.Clock();
        node.Links++;
        result = Changed(node, now, content: false);
        return result.IsOk ? Changed(parent.Node, now, content: true) : result;
    }

    /// <summary>unlink(2): removes a name; the last name frees the file (EPERM for a directory, rule 9).</summary>
    public StorageResult Unlink(string path)
    {
        var check = Writable(path);
        if (!check.IsOk) return check;
        var result = ResolveExisting(path, out var parent, out string name, out var node);
        if (!result.IsOk) return result;
        if (node.IsDirectory) return new StorageResult(StorageStatus.NotPermitted, path);
        return DropName(parent, name, node, _options.Clock());
    }

    /// <summary>rmdir(2): ENOTEMPTY while it has entries; EINVAL for "." and the root.</summary>
    public StorageResult RemoveDirectory(string path)
    {
        var check = Writable(path);
        if (!check.IsOk) return check;
        var result = ResolveExisting(path, out var parent, out string name, out var node);
        if (!result.IsOk) return result;
        if (!node.IsDirectory) return new StorageResult(StorageStatus.NotDirectory, path);
        if (name is "." or ".." || node.Id == Root) return new StorageResult(StorageStatus.InvalidArgument, path);
        if (node.Length > 0) return new StorageResult(StorageStatus.NotEmpty, path);
        return DropName(parent, name, node, _options.Clock());
    }

    /// <summary>
    /// rename(2), all or nothing (rule 5): replaces an existing target of the same kind (an empty
    /// directory for a directory), refuses to move a directory under itself (EINVAL), and does
    /// nothing when both names are links to the same file.
    /// </summary>
    public StorageResult Rename(string from, string to)
    {
        var check = Writable(to);
        if (!check.IsOk) return check;
        var result = ResolveExisting(from, out var fromParent, out string fromName, out var node);
        if (!result.IsOk) return result;
        if (fromName is "." or ".." || node.Id == Root) return new StorageResult(StorageStatus.InvalidArgument, from);
        result = Resolve(to, false, out var toParent, out string toName, out long existing);
        if (!result.IsOk) return result;
        if (toName is "." or "..") return new StorageResult(StorageStatus.InvalidArgument, to);
        if (existing == node.Id) return StorageResult.Success;
        if (node.IsDirectory)
        {
            // The target's parent chain must not pass through the directory being moved.
            for (long up = toParent.Node.Id; ; )
            {
                if (up == node.Id) return new StorageResult(StorageStatus.InvalidArgument, to);
                if (up == Root) break;
                result = GetZnode(up, out var step);
                if (!result.IsOk) return result;
                up = step.Parent;
            }
        }
        Znode? victim = null;
        if (existing >= 0)
        {
            result = GetZnode(existing, out victim);
            if (!result.IsOk) return result;
            if (node.IsDirectory && !victim.IsDirectory) return new StorageResult(StorageStatus.NotDirectory, to);
            if (!node.IsDirectory && victim.IsDirectory) return new StorageResult(StorageStatus.IsDirectory, to);
            if (victim.IsDirectory && victim.Length > 0) return new StorageResult(StorageStatus.NotEmpty, to);
        }
        long now = _options.Clock();
        byte[] toBytes = Encoding.UTF8.GetBytes(toName);
        result = victim is null ? AddName(toParent, toName, node) : toParent.SetValue(_set, toBytes, Value(node));
        if (!result.IsOk) return result;
        result = fromParent.Remove(_set, Encoding.UTF8.GetBytes(fromName));
        if (!result.IsOk) return result;
        fromParent.Node.Length--;
        if (victim is not null)
        {
            victim.Links -= victim.IsDirectory ? 2 : 1;
            if (victim.IsDirectory) toParent.Node.Links--;
            result = victim.Links > 0 ? Changed(victim, now, content: false) : Free(victim);
            if (!result.IsOk) return result;
        }
        if (node.IsDirectory && fromParent != toParent)
        {
            node.Parent = toParent.Node.Id;
            fromParent.Node.Links--;
            toParent.Node.Links++;
        }
        result = Changed(node, now, content: false);
        if (result.IsOk) result = Changed(fromParent.Node, now, content: true);
        if (result.IsOk && toParent != fromParent) result = Changed(toParent.Node, now, content: true);
        return result;
    }

    // ---- file data ----

    /// <summary>Reads file bytes at offset; short at the end of the file (rule 7: allocates nothing once cached).</summary>
    public StorageResult Read(long inode, long offset, Span<byte> destination, out int read)
    {
        read = 0;
        var result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (node.Type != FileType.Regular) return Kind(node);
        if (offset < 0) return new StorageResult(StorageStatus.InvalidArgument, "negative offset");
        if (offset >= node.Length) return StorageResult.Success;
        int n = (int)Math.Min(destination.Length, node.Length - offset);
        result = _set.Read(inode, offset, destination[..n], out read);
        if (result.IsOk) Accessed(node);
        return result;
    }

    /// <summary>Writes file bytes at offset, extending the file; a gap past the old end is a hole (rule 4).</summary>
    public StorageResult Write(long inode, long offset, ReadOnlySpan<byte> data)
    {
        if (_options.ReadOnly) return new StorageResult(StorageStatus.ReadOnly, "");
        var result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (node.Type != FileType.Regular) return Kind(node);
        if (offset < 0) return new StorageResult(StorageStatus.InvalidArgument, "negative offset");
        if (offset + data.Length > ObjectSet.MaxObjectSize) return new StorageResult(StorageStatus.FileTooBig, "");
        if (data.IsEmpty) return StorageResult.Success;
        result = _set.Write(inode, offset, data);
        if (!result.IsOk) return result;
        node.Length = Math.Max(node.Length, offset + data.Length);
        return Changed(node, _options.Clock(), content: true);
    }

    /// <summary>
    /// fsync(2) and fsyncdir: every change made to this file system so far is durable when it returns,
    /// written to the dataset's intent log (IntentLog.cs) or, while that is not open, committed as a txg.
    /// A read-only file system has nothing to make durable.
    /// </summary>
    public StorageResult Fsync() => _options.ReadOnly ? StorageResult.Success : _set.SyncLog();

    /// <summary>truncate(2): a shorter file frees the blocks past its end, a longer one ends in a hole.</summary>
    public StorageResult Truncate(long inode, long length)
    {
        if (_options.ReadOnly) return new StorageResult(StorageStatus.ReadOnly, "");
        var result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (node.Type != FileType.Regular) return Kind(node);
        if (length < 0) return new StorageResult(StorageStatus.InvalidArgument, "negative length");
        if (length > ObjectSet.MaxObjectSize) return new StorageResult(StorageStatus.FileTooBig, "");
        result = _set.Truncate(inode, length);
        if (!result.IsOk) return result;
        node.Length = length;
        return Changed(node, _options.Clock(), content: true);
    }

    public StorageResult Truncate(string path, long length)
    {
        var result = Lookup(path, out long inode);
        return result.IsOk ? Truncate(inode, length) : result;
    }

    /// <summary>Punches a hole (fcntl F_FREESP / fallocate PUNCH_HOLE): the range reads as zeros, its blocks are freed; the size stays.</summary>
    public StorageResult FreeRange(long inode, long offset, long length)
    {
        if (_options.ReadOnly) return new StorageResult(StorageStatus.ReadOnly, "");
        var result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (node.Type != FileType.Regular) return Kind(node);
        if (offset < 0 || length < 0) return new StorageResult(StorageStatus.InvalidArgument, "negative range");
        result = _set.FreeRange(inode, offset, Math.Min(length, Math.Max(0, node.Length - offset)));
        return result.IsOk ? Changed(node, _options.Clock(), content: true) : result;
    }

    /// <summary>The runs of a file that hold data, in order; holes are skipped (for zfs send, cp, du).</summary>
    public StorageResult GetExtents(long inode, List<DataExtent> into)
    {
        var result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (node.Type != FileType.Regular) return Kind(node);
        long position = 0, start = -1, end = -1;
        while (position < node.Length)
        {
            result = _set.NextData(inode, position, out long data);
            if (!result.IsOk) return result;
            if (data < 0) break;
            long blockEnd = Math.Min(node.Length, (data | (ObjectTree.BlockSize - 1)) + 1);
            if (data == end) end = blockEnd;
            else
            {
                if (start >= 0) into.Add(new DataExtent(start, end - start));
                start = data; end = blockEnd;
            }
            position = blockEnd;
        }
        if (start >= 0) into.Add(new DataExtent(start, end - start));
        return StorageResult.Success;
    }

    /// <summary>Bytes an inode's blocks take in the pool (st_blocks * 512, du).</summary>
    public StorageResult SpaceUsed(long inode, out long bytes)
    {
        bytes = 0;
        var result = GetZnode(inode, out _);
        return result.IsOk ? _set.AllocatedBytes(inode, out bytes) : result;
    }

    // ---- attributes ----

    /// <summary>chmod(2): the permission bits (07777); the type stays.</summary>
    public StorageResult ChangeMode(string path, uint mode)
    {
        var result = Modify(path, out var node);
        if (!result.IsOk) return result;
        if ((mode & ~Znode.PermissionBits) != 0) return new StorageResult(StorageStatus.InvalidArgument, $"mode {Convert.ToString(mode, 8)}");
        node.Mode = (node.Mode & ~Znode.PermissionBits) | mode;
        return Changed(node, _options.Clock(), content: false);
    }

    /// <summary>chown(2) (lchown when follow is false); uint.MaxValue (-1) leaves an id as it is.</summary>
    public StorageResult ChangeOwner(string path, uint uid, uint gid, bool follow = true)
    {
        var result = Modify(path, out var node, follow);
        if (!result.IsOk) return result;
        if (uid != uint.MaxValue) node.Uid = uid;
        if (gid != uint.MaxValue) node.Gid = gid;
        return Changed(node, _options.Clock(), content: false);
    }

    /// <summary>utimes(2) (lutimes when follow is false): sets atime and mtime (nanoseconds); ctime becomes now.</summary>
    public StorageResult SetTimes(string path, long atime, long mtime, bool follow = true)
    {
        var result = Modify(path, out var node, follow);
        if (!result.IsOk) return result;
        node.Atime = atime;
        node.Mtime = mtime;
        node.Ctime = _options.Clock();
        return Store(node);
    }

    /// <summary>statvfs(2)-like counts: the pool's bytes, this file system's inodes.</summary>
    /// <summary>True when a change of about bytes does not fit while the open txg holds room (a writer at
    /// its quota that removed a file): the caller commits first, as ZFS's dmu_tx_assign waits for the
    /// sync and tries again on ERESTART.</summary>
    public bool RoomIsInFlight(long bytes) => _set.RoomIsInFlight(bytes);

    public FileSystemStats StatFs()
    {
        var (size, free) = _set.PoolSpace;
        // Each new inode costs a dnode and a znode header.
        return new FileSystemStats(ObjectTree.BlockSize, size, free, _files, free / (Dnode.Size + Znode.Size));
    }

    // ---- enumeration (zfs send, ls -R, du, cp -r) ----

    /// <summary>
    /// Visits every node under path depth first, in listing order, the start first; stops early when
    /// visit returns false. A file with several names is visited under each. Access times stay as they are.
    /// </summary>
    public StorageResult Walk(string path, Func<WalkEntry, bool> visit)
    {
        var result = Lookup(path, out long start);
        if (!result.IsOk) return result;
        result = GetZnode(start, out var first);
        if (!result.IsOk) return result;
        string prefix = "/" + string.Join('/', path.Split('/', StringSplitOptions.RemoveEmptyEntries));
        if (!visit(new WalkEntry(prefix, first.Attributes))) return StorageResult.Success;
        if (!first.IsDirectory) return StorageResult.Success;
        var pending = new Stack<(long Inode, string Path)>();
        pending.Push((start, prefix == "/" ? "" : prefix));
        var entries = new List<DirectoryEntry>();
        while (pending.Count > 0)
        {
            var (dir, dirPath) = pending.Pop();
            entries.Clear();
            result = GetDirectory(dir, out var listed);   // not ReadDirectory: a walk leaves atimes alone
            if (!result.IsOk) return result;
            listed.List(2, entries, int.MaxValue);
            var subdirectories = new List<(long, string)>();
            foreach (var entry in entries)
            {
                result = GetZnode(entry.Inode, out var node);
                if (!result.IsOk) return result;
                string childPath = dirPath + "/" + entry.Name;
                if (!visit(new WalkEntry(childPath, node.Attributes))) return StorageResult.Success;
                if (node.IsDirectory) subdirectories.Add((entry.Inode, childPath));
            }
            for (int i = subdirectories.Count - 1; i >= 0; i--) pending.Push(subdirectories[i]);
        }
        return StorageResult.Success;
    }

    /// <summary>Visits every inode once, in inode order, from the znode table (zfs send's object order).</summary>
    public StorageResult EnumerateInodes(Func<FileAttributes, bool> visit)
    {
        var length = _set.GetLength(_table, out long tableLength);
        if (!length.IsOk) return length;
        var chunk = new byte[ObjectTree.BlockSize];
        for (long offset = 0; offset < tableLength; offset += chunk.Length)
        {
            var read = _set.Read(_table, offset, chunk, out int n);
            if (!read.IsOk) return read;
            for (int i = 0; i + Znode.Size <= n; i += Znode.Size)
            {
                long id = (offset + i) / Znode.Size;
                var status = Znode.TryRead(id, chunk.AsSpan(i, Znode.Size), out var node);
                if (status == StorageStatus.NoSuchObject) continue;
                if (status != StorageStatus.Ok) return new StorageResult(status, $"znode {id}");
                if (!visit(_znodes.TryGetValue(id, out var cached) ? cached.Attributes : node!.Attributes)) return StorageResult.Success;
            }
        }
        return StorageResult.Success;
    }

    /// <summary>A symbolic link's target by inode (for send and ls -l).</summary>
    public StorageResult ReadLink(long inode, out string target)
    {
        target = "";
        var result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        return node.Type == FileType.Symlink ? ReadTarget(node, out target) : new StorageResult(StorageStatus.InvalidArgument, $"inode {inode}");
    }

    // ---- internals ----

    private static StorageResult NotFound(string path) => new(StorageStatus.NoSuchObject, path);

    private static StorageResult Kind(Znode node) =>
        new(node.IsDirectory ? StorageStatus.IsDirectory : StorageStatus.InvalidArgument, $"inode {node.Id}");

    private StorageResult Writable(string path) =>
        _options.ReadOnly ? new StorageResult(StorageStatus.ReadOnly, path) : StorageResult.Success;

    private static long Value(Znode node) => ((long)node.Type << 60) | node.Id;

    private StorageResult Modify(string path, out Znode node, bool follow = true)
    {
        node = null!;
        var result = Writable(path);
        if (!result.IsOk) return result;
        result = Lookup(path, out long inode, follow);
        return result.IsOk ? GetZnode(inode, out node) : result;
    }

    /// <summary>
    /// A znode from the cache, or else from the table: a miss decodes the whole 128 KiB table block
    /// around it (512 headers), since reading one header costs reading and verifying that block anyway.
    /// </summary>
    private StorageResult GetZnode(long inode, out Znode node)
    {
        if (_znodes.TryGetValue(inode, out node!)) return StorageResult.Success;
        if (inode <= MasterObject || inode == _table) return new StorageResult(StorageStatus.NoSuchObject, $"inode {inode}");
        var chunk = t_tableChunk ??= new byte[ObjectTree.BlockSize];
        long start = inode * Znode.Size & ~(long)(ObjectTree.BlockSize - 1);
        var read = _set.Read(_table, start, chunk, out int n);
        if (!read.IsOk) return read;
        for (int at = 0; at + Znode.Size <= n; at += Znode.Size)
        {
            long id = (start + at) / Znode.Size;
            if (id == inode || _znodes.ContainsKey(id)) continue;
            if (Znode.TryRead(id, chunk.AsSpan(at, Znode.Size), out var other) == StorageStatus.Ok) _znodes.Add(id, other!);
        }
        int slot = (int)(inode * Znode.Size - start);
        if (slot + Znode.Size > n) return new StorageResult(StorageStatus.NoSuchObject, $"inode {inode}");
        var status = Znode.TryRead(inode, chunk.AsSpan(slot, Znode.Size), out var decoded);
        if (status != StorageStatus.Ok) return new StorageResult(status, $"inode {inode}");
        node = decoded!;
        _znodes.Add(inode, node);
        return StorageResult.Success;
    }

    private StorageResult GetDirectory(long inode, out ZplDirectory dir)
    {
        dir = null!;
        if (_directories.TryGetValue(inode, out dir!)) return StorageResult.Success;
        var result = GetZnode(inode, out var node);
        if (!result.IsOk) return result;
        if (!node.IsDirectory) return new StorageResult(StorageStatus.NotDirectory, $"inode {inode}");
        result = ZplDirectory.Load(_set, node, out var loaded);
        if (!result.IsOk) return result;
        dir = loaded!;
        _directories.Add(inode, dir);
        return StorageResult.Success;
    }

    private StorageResult Store(Znode node)
    {
        Span<byte> raw = stackalloc byte[Znode.Size];
        node.WriteTo(raw);
        return _set.Write(_table, node.Id * Znode.Size, raw);
    }

    /// <summary>A change to the node's contents (mtime and ctime) or only its attributes (ctime).</summary>
    private StorageResult Changed(Znode node, long now, bool content)
    {
        if (content) node.Mtime = now;
        node.Ctime = now;
        return Store(node);
    }

    private void Accessed(Znode node)
    {
        if (!_options.Atime || _options.ReadOnly) return;
        node.Atime = _options.Clock();
        Store(node);
    }

    private StorageResult Initialise(Znode node, long now = -1)
    {
        if (now < 0) now = _options.Clock();
        node.Atime = node.Mtime = node.Ctime = node.Crtime = now;
        node.Generation = _nextGeneration++;
        _znodes[node.Id] = node;
        _files++;
        var stored = Store(node);
        return stored.IsOk ? StoreMaster() : stored;
    }

    private StorageResult StoreMaster()
    {
        Span<byte> raw = stackalloc byte[MasterSize];
        BinaryPrimitives.WriteUInt64LittleEndian(raw, MasterMagic);
        BinaryPrimitives.WriteInt64LittleEndian(raw[8..], Version);
        BinaryPrimitives.WriteInt64LittleEndian(raw[16..], Root);
        BinaryPrimitives.WriteInt64LittleEndian(raw[24..], _table);
        BinaryPrimitives.WriteInt64LittleEndian(raw[32..], _nextGeneration);
        BinaryPrimitives.WriteInt64LittleEndian(raw[40..], _files);
        return _set.Write(MasterObject, 0, raw);
    }

    private StorageResult AddName(ZplDirectory parent, string name, Znode node)
    {
        var added = parent.Add(_set, Encoding.UTF8.GetBytes(name), Value(node));
        if (added.IsOk) parent.Node.Length++;
        var stored = Store(parent.Node);   // a doubling changed the bucket shift even when the add failed
        return added.IsOk ? stored : added;
    }

    /// <summary>Removes name from parent; a node left without names is freed.</summary>
    private StorageResult DropName(ZplDirectory parent, string name, Znode node, long now)
    {
        var result = parent.Remove(_set, Encoding.UTF8.GetBytes(name));
        if (!result.IsOk) return result;
        parent.Node.Length--;
        if (node.IsDirectory) { parent.Node.Links--; node.Links = 0; }
        else node.Links--;
        result = node.Links > 0 ? Changed(node, now, content: false) : Free(node);
        return result.IsOk ? Changed(parent.Node, now, content: true) : result;
    }

    private StorageResult Free(Znode node)
    {
        var result = _set.Delete(node.Id);
        if (!result.IsOk) return result;
        _znodes.Remove(node.Id);
        _directories.Remove(node.Id);
        _files--;
        Span<byte> zero = stackalloc byte[Znode.Size];
        zero.Clear();
        result = _set.Write(_table, node.Id * Znode.Size, zero);
        return result.IsOk ? StoreMaster() : result;
    }

    private StorageResult ReadTarget(Znode node, out string target)
    {
        target = "";
        var bytes = new byte[node.Length];
        var read = _set.Read(node.Id, 0, bytes, out _);
        if (!read.IsOk) return read;
        target = Encoding.UTF8.GetString(bytes);
        return StorageResult.Success;
    }

    /// <summary>Resolves a path whose last name must not exist yet: its directory and the name.</summary>
    private StorageResult ResolveNew(string path, out ZplDirectory parent, out string name)
    {
        var result = Resolve(path, false, out parent, out name, out long existing);
        if (!result.IsOk) return result;
        if (existing >= 0) return new StorageResult(StorageStatus.Exists, path);
        return StorageResult.Success;
    }

    /// <summary>Resolves a path whose last name must exist, without following it.</summary>
    private StorageResult ResolveExisting(string path, out ZplDirectory parent, out string name, out Znode node)
    {
        node = null!;
        var result = Resolve(path, false, out parent, out name, out long inode);
        if (!result.IsOk) return result;
        if (inode < 0) return NotFound(path);
        return GetZnode(inode, out node);
    }

    /// <summary>
    /// namei (rule 6): walks path from the root, following symbolic links in the middle, and the last
    /// one when follow or when the path ends in '/'. Gives the directory holding the last name, the
    /// name, and its inode, or -1 when only the last name is missing.
    /// </summary>
    private StorageResult Resolve(string path, bool follow, out ZplDirectory parent, out string name, out long inode)
    {
        parent = null!; name = ""; inode = -1;
        if (path.Length == 0) return NotFound(path);
        if (Encoding.UTF8.GetByteCount(path) > MaxPath) return new StorageResult(StorageStatus.NameTooLong, path);
        var pending = new Stack<string>();
        Push(pending, path);
        bool mustBeDirectory = path.EndsWith('/');
        long dir = Root;
        int links = 0;
        var result = GetDirectory(Root, out var current);
        if (!result.IsOk) return result;
        parent = current; name = "."; inode = Root;
        while (pending.Count > 0)
        {
            string component = pending.Pop();
            bool last = pending.Count == 0;
            if (Encoding.UTF8.GetByteCount(component) > ZplDirectory.MaxName) return new StorageResult(StorageStatus.NameTooLong, path);
            if (component.Contains('\0')) return new StorageResult(StorageStatus.InvalidArgument, path);
            result = GetDirectory(dir, out current);
            if (result.Status == StorageStatus.NotDirectory) return new StorageResult(StorageStatus.NotDirectory, path);
            if (!result.IsOk) return result;
            long child;
            if (component == ".") child = dir;
            else if (component == "..") child = dir == Root ? Root : current.Node.Parent;
            else if (current.TryFind(Encoding.UTF8.GetBytes(component), out long value, out _)) child = value & ((1L << 60) - 1);
            else
            {
                if (!last) return NotFound(path);
                parent = current; name = component; inode = -1;
                return StorageResult.Success;
            }
            result = GetZnode(child, out var node);
            if (!result.IsOk) return result;
            if (node.Type == FileType.Symlink && (!last || follow || mustBeDirectory))
            {
                if (++links > MaxSymlinks) return new StorageResult(StorageStatus.SymlinkLoop, path);
                result = ReadTarget(node, out string target);
                if (!result.IsOk) return result;
                if (target.Length == 0) return NotFound(path);
                if (target[0] == '/') dir = Root;
                if (!Push(pending, target) && last)
                {
                    // a link to "/" (or "." from the root): the walk ends at dir itself
                    result = GetDirectory(dir, out current);
                    if (!result.IsOk) return result;
                    parent = current; name = "."; inode = dir;
                }
                continue;
            }
            if (last) { parent = current; name = component; inode = child; }
            else dir = child;
        }
        if (mustBeDirectory && inode >= 0)
        {
            result = GetZnode(inode, out var end);
            if (!result.IsOk) return result;
            if (!end.IsDirectory) return new StorageResult(StorageStatus.NotDirectory, path);
        }
        return StorageResult.Success;
    }

    /// <summary>Pushes a path's names so that the first pops first; false if it has none ("/").</summary>
    private static bool Push(Stack<string> pending, string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = parts.Length - 1; i >= 0; i--) pending.Push(parts[i]);
        return parts.Length > 0;
    }
}
