using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Storage.Send;

/// <summary>
/// The ZFS POSIX layer's objects as zfs-fuse (ZPL version 4 on pool version 23) lays out a file
/// system, read into a <see cref="FileTreeImage"/> and written from one.
///
/// Layout (what zfs-fuse's zfs_create_fs makes, seen in its streams):
///  - object 1, the master node (DMU_OT_MASTER_NODE, a ZAP): VERSION → 4, DELETE_QUEUE → 2,
///    ROOT → 3, SHARES → 4;
///  - object 2, the unlinked set (DMU_OT_UNLINKED_SET, an empty ZAP);
///  - object 3, the root directory, whose parent is itself; object 4, the hidden shares directory
///    (mode 0555, parent itself);
///  - every file is an object with a 264-byte znode_phys_t bonus (bonus type DMU_OT_ZNODE):
///    directories are ZAPs (DMU_OT_DIRECTORY_CONTENTS) of name → (type << 60 | object); regular files
///    and symlinks are DMU_OT_PLAIN_FILE_CONTENTS; a symlink's target follows the znode in the bonus
///    when it fits (at most 56 bytes) and is otherwise the object's first block.
///
/// znode_phys_t (zfs_znode.h, before system attributes): atime, mtime, ctime, crtime as
/// {seconds, nanoseconds} pairs at 0, 16, 32, 48; gen 64; mode 72; size 80; parent 88; links 96;
/// xattr 104; rdev 112; flags 120; uid 128; gid 136; zap 144; pad to 176; then the 88-byte
/// zfs_acl_phys_t (external object, byte size, version, count, 72 bytes of embedded ACEs).
///
/// ACLs: zfs-fuse keeps the six-entry "trivial" ACL that a mode implies (owner@, group@, everyone@,
/// each a deny then an allow entry, 8-byte FUID-version headers), with the flags ZFS_ACL_TRIVIAL,
/// ZFS_ARCHIVE and ZFS_AV_MODIFIED. The encoder writes exactly that for each mode (the masks below
/// match every mode zfs-fuse wrote in our captures); the decoder reads the mode and ignores the ACL.
/// </summary>
public static class ZplCodec
{
    public const ulong MasterNodeObject = 1, UnlinkedSetObject = 2, RootObject = 3, SharesObject = 4;
    public const ulong ZplVersion = 4;
    public const int ZnodeSize = 264, MaxInlineSymlink = SendFormat.MaxBonusLength - ZnodeSize;
    private const uint S_IFMT = 0xF000, S_IFDIR = 0x4000, S_IFREG = 0x8000, S_IFLNK = 0xA000,
        S_IFIFO = 0x1000, S_IFSOCK = 0xC000, S_IFCHR = 0x2000, S_IFBLK = 0x6000;
    private const uint PermissionBits = 0xFFF, ExecuteBits = 0x49; // 07777 and 0111
    private const ulong FlagsBase = 0x40800000000; // ZFS_AV_MODIFIED | ZFS_ARCHIVE
    private const ulong AclTrivial = 0x4, AclAutoInherit = 0x40, NoExecsDenied = 0x100;

    /// <summary>Reads the tree of a ZPL object set, or says what is wrong with it.</summary>
    public static bool TryDecode(ObjectSetImage set, out FileTreeImage? tree, out string? problem)
    {
        tree = null;
        if (!set.Objects.TryGetValue(MasterNodeObject, out ObjectImage? master) || master.Type != DmuObjectType.MasterNode)
        {
            problem = "no ZPL master node (object 1)";
            return false;
        }
        if (!Zap.TryDecode(master, out var keys, out problem)) return false;
        ulong root = 0;
        foreach (ZapEntry e in keys) if (e.Name == "ROOT") root = e.Value;
        if (root == 0) { problem = "master node has no ROOT"; return false; }
        var nodes = new Dictionary<ulong, FileNode>();
        var pending = new Stack<ulong>();
        FileNode? rootNode = Load(set, root, nodes, pending, out problem);
        if (rootNode is null) return false;
        if (rootNode.Kind != FileKind.Directory) { problem = "ROOT is not a directory"; return false; }
        while (pending.Count > 0)
        {
            ulong dirId = pending.Pop();
            if (!Zap.TryDecode(set.Objects[dirId], out var entries, out problem)) { problem = $"directory {dirId}: {problem}"; return false; }
            foreach (ZapEntry e in entries)
            {
                ulong child = e.Value & ((1UL << 48) - 1);
                FileNode? node = nodes.GetValueOrDefault(child) ?? Load(set, child, nodes, pending, out problem);
                if (node is null) return false;
                nodes[dirId].Entries[e.Name] = node;
            }
        }
        tree = new FileTreeImage(rootNode);
        return true;
    }

    private static FileNode? Load(ObjectSetImage set, ulong id, Dictionary<ulong, FileNode> nodes, Stack<ulong> pending, out string? problem)
    {
        problem = null;
        if (!set.Objects.TryGetValue(id, out ObjectImage? obj) || obj.BonusType != DmuObjectType.Znode || obj.Bonus.Length < ZnodeSize)
        {
            problem = $"object {id} is not a znode";
            return null;
        }
        ReadOnlySpan<byte> z = obj.Bonus;
        ulong mode = U64(z, 72);
        FileKind kind = ((uint)mode & S_IFMT) switch
        {
            S_IFDIR => FileKind.Directory,
            S_IFREG => FileKind.RegularFile,
            S_IFLNK => FileKind.Symlink,
            S_IFIFO => FileKind.Fifo,
            S_IFSOCK => FileKind.Socket,
            S_IFCHR => FileKind.CharDevice,
            S_IFBLK => FileKind.BlockDevice,
            _ => (FileKind)(-1),
        };
        if ((int)kind < 0) { problem = $"object {id} has file type {mode:o}"; return null; }
        var node = new FileNode(kind)
        {
            Id = id,
            AccessTime = Time(z, 0), ModifyTime = Time(z, 16), ChangeTime = Time(z, 32), CreateTime = Time(z, 48),
            Generation = U64(z, 64), Mode = (uint)mode & PermissionBits, Size = (long)U64(z, 80), Rdev = U64(z, 112),
            Uid = (uint)U64(z, 128), Gid = (uint)U64(z, 136),
        };
        if (kind == FileKind.Directory) pending.Push(id);
        else if (kind == FileKind.Symlink)
        {
            int length = (int)Math.Min((ulong)node.Size, 4096);
            byte[] target = obj.Bonus.Length >= ZnodeSize + length ? obj.Bonus.AsSpan(ZnodeSize, length).ToArray() : obj.Read(0, length);
            node.SymlinkTarget = Encoding.UTF8.GetString(target);
        }
        else if (kind == FileKind.RegularFile)
        {
            // Rule 2 of FileTreeImage: runs of present blocks, cut at the file's size.
            long runStart = -1;
            var run = new List<byte[]>();
            void Flush()
            {
                if (run.Count == 0) return;
                byte[] data = new byte[run.Sum(b => b.Length)];
                int at = 0;
                foreach (byte[] b in run) { b.CopyTo(data, at); at += b.Length; }
                node.Extents.Add(new FileExtent(runStart, data));
                run.Clear();
            }
            long expected = -1;
            foreach (var (block, data) in obj.Blocks)
            {
                long start = (long)(block * obj.BlockSize);
                if (start >= node.Size) break;
                if (start != expected) { Flush(); runStart = start; }
                int length = (int)Math.Min(data.Length, node.Size - start);
                run.Add(length == data.Length ? data : data[..length]);
                expected = start + obj.BlockSize;
            }
            Flush();
        }
        nodes[id] = node;
        return node;
    }

    /// <summary>Options for <see cref="Encode"/>: the salt seeds every ZAP's hash (any non-zero value);
    /// Generation is the znode generation (zp_gen, the txg that created it) given to nodes that have
    /// none yet, so that a later snapshot's new files differ from earlier ones that had their numbers.</summary>
    public sealed record EncodeOptions(ulong ZapSalt = 0x1234_5678_9abc_def1, ulong RecordSize = SendFormat.MaxBlockSize, ulong Generation = 1);

    /// <summary>The ZPL objects holding this tree, numbered as zfs-fuse numbers a new file system.
    /// Every node's Id is its object number afterwards (see the numbering rule inside).</summary>
    public static ObjectSetImage Encode(FileTreeImage tree, EncodeOptions? options = null)
    {
        options ??= new EncodeOptions();
        var set = new ObjectSetImage();
        var ids = new Dictionary<FileNode, ulong>(ReferenceEqualityComparer.Instance);
        var parents = new Dictionary<FileNode, ulong>(ReferenceEqualityComparer.Instance);
        var links = new Dictionary<FileNode, int>(ReferenceEqualityComparer.Instance);
        ids[tree.Root] = RootObject;
        tree.Root.Id = RootObject;
        if (tree.Root.Generation == 0) tree.Root.Generation = options.Generation;
        var assigned = new HashSet<ulong>();
        parents[tree.Root] = RootObject;
        // Nodes keep the object numbers they have (decoded, or numbered by an earlier Encode), so
        // that two snapshots of one tree name each file by one object and send incrementally; a
        // node without one (Id 0) gets the next free number, written back to it.
        var taken = new HashSet<ulong> { MasterNodeObject, UnlinkedSetObject, RootObject, SharesObject };
        foreach (var (_, node) in tree.Walk())
            if (node != tree.Root && node.Id > SharesObject) taken.Add(node.Id);
        ulong next = SharesObject + 1;
        foreach (var (_, node) in tree.Walk())
        {
            if (!ids.ContainsKey(node))
            {
                if (node == tree.Root) ids[node] = RootObject;
                else if (node.Id > SharesObject && assigned.Add(node.Id)) ids[node] = node.Id;
                else
                {
                    while (taken.Contains(next)) next++;
                    taken.Add(next);
                    ids[node] = next;
                }
                node.Id = ids[node];
                if (node.Generation == 0) node.Generation = options.Generation;
            }
            if (node.Kind != FileKind.Directory) continue;
            foreach (FileNode child in node.Entries.Values)
            {
                parents.TryAdd(child, ids[node]);
                links[child] = links.GetValueOrDefault(child) + 1;
            }
        }
        ObjectImage MakeZap(DmuObjectType type, IReadOnlyList<ZapEntry> entries, byte[] bonus)
        {
            var obj = new ObjectImage { Type = type, BonusType = bonus.Length > 0 ? DmuObjectType.Znode : DmuObjectType.None, BlockSize = SendFormat.MinBlockSize, Bonus = bonus };
            Zap.Encode(obj, entries, options.ZapSalt);
            return obj;
        }
        set.Objects[MasterNodeObject] = MakeZap(DmuObjectType.MasterNode,
            [new("VERSION", ZplVersion), new("DELETE_QUEUE", UnlinkedSetObject), new("ROOT", RootObject), new("SHARES", SharesObject)], []);
        set.Objects[UnlinkedSetObject] = MakeZap(DmuObjectType.UnlinkedSet, [], []);
        FileNode shares = FileNode.Directory(0x16D);
        shares.Generation = tree.Root.Generation;
        set.Objects[SharesObject] = MakeZap(DmuObjectType.DirectoryContents, [], Znode(shares, S_IFDIR, 2, SharesObject, 2, []));
        foreach (var (node, id) in ids)
        {
            ulong parent = parents[node];
            switch (node.Kind)
            {
                case FileKind.Directory:
                {
                    var entries = new List<ZapEntry>(node.Entries.Count);
                    int subdirs = 0;
                    foreach (var (name, child) in node.Entries)
                    {
                        ValidateName(name);
                        entries.Add(new ZapEntry(name, ((ulong)DirentType(child.Kind) << 60) | ids[child]));
                        if (child.Kind == FileKind.Directory) subdirs++;
                    }
                    set.Objects[id] = MakeZap(DmuObjectType.DirectoryContents, entries,
                        Znode(node, S_IFDIR, (ulong)node.Entries.Count + 2, parent, 2 + (ulong)subdirs, []));
                    break;
                }
                case FileKind.Symlink:
                {
                    byte[] target = Encoding.UTF8.GetBytes(node.SymlinkTarget);
                    bool inline = target.Length <= MaxInlineSymlink;
                    var obj = new ObjectImage
                    {
                        Type = DmuObjectType.PlainFileContents, BonusType = DmuObjectType.Znode,
                        BlockSize = RoundUp((ulong)Math.Max(target.Length, 1), SendFormat.MinBlockSize),
                        Bonus = Znode(node, S_IFLNK, (ulong)target.Length, parent, (ulong)links[node], inline ? target : []),
                    };
                    if (!inline)
                    {
                        byte[] block = new byte[obj.BlockSize];
                        target.CopyTo(block, 0);
                        obj.Blocks[0] = block;
                    }
                    set.Objects[id] = obj;
                    break;
                }
                case FileKind.RegularFile:
                    set.Objects[id] = FileObject(node, parent, (ulong)links[node], options.RecordSize);
                    break;
                default:
                    set.Objects[id] = new ObjectImage
                    {
                        Type = DmuObjectType.PlainFileContents, BonusType = DmuObjectType.Znode, BlockSize = SendFormat.MinBlockSize,
                        Bonus = Znode(node, TypeBits(node.Kind), 0, parent, (ulong)links[node], []),
                    };
                    break;
            }
        }
        return set;
    }

    private static ObjectImage FileObject(FileNode node, ulong parent, ulong links, ulong recordSize)
    {
        // zfs_grow_blocksize: a file within one record has one block of its size rounded up to
        // 512 bytes; a longer one has record-sized blocks.
        ulong size = (ulong)node.Size;
        uint blockSize = size <= recordSize ? RoundUp(Math.Max(size, 1), SendFormat.MinBlockSize) : (uint)recordSize;
        var obj = new ObjectImage
        {
            Type = DmuObjectType.PlainFileContents, BonusType = DmuObjectType.Znode, BlockSize = blockSize,
            Bonus = Znode(node, S_IFREG, size, parent, links, []),
        };
        foreach (FileExtent e in node.Extents)
        {
            if (e.Offset < 0 || e.Offset + e.Data.Length > node.Size)
                throw new ArgumentException($"an extent of object {node.Id} lies outside its size {node.Size}", nameof(node));
            for (ulong block = (ulong)e.Offset / blockSize; block * blockSize < (ulong)(e.Offset + e.Data.Length); block++)
            {
                byte[] data = obj.Blocks.TryGetValue(block, out byte[]? existing) ? existing : new byte[blockSize];
                long start = (long)(block * blockSize);
                long from = Math.Max(start, e.Offset), to = Math.Min(start + blockSize, e.Offset + e.Data.Length);
                e.Data.AsSpan((int)(from - e.Offset), (int)(to - from)).CopyTo(data.AsSpan((int)(from - start)));
                obj.Blocks[block] = data;
            }
        }
        return obj;
    }

    private static byte[] Znode(FileNode node, uint typeBits, ulong size, ulong parent, ulong links, byte[] tail)
    {
        byte[] z = new byte[ZnodeSize + tail.Length];
        Span<byte> s = z;
        PutTime(s, 0, node.AccessTime); PutTime(s, 16, node.ModifyTime); PutTime(s, 32, node.ChangeTime); PutTime(s, 48, node.CreateTime);
        uint mode = typeBits | (node.Mode & PermissionBits);
        Put(s, 64, Math.Max(node.Generation, 1));
        Put(s, 72, mode);
        Put(s, 80, size);
        Put(s, 88, parent);
        Put(s, 96, links);
        Put(s, 112, node.Rdev);
        ulong flags = FlagsBase | AclTrivial;
        if (typeBits == S_IFDIR) flags |= AclAutoInherit;
        else if ((mode & ExecuteBits) == ExecuteBits) flags |= NoExecsDenied;
        Put(s, 120, flags);
        Put(s, 128, node.Uid);
        Put(s, 136, node.Gid);
        WriteTrivialAcl(s[176..264], mode);
        tail.CopyTo(s[ZnodeSize..]);
        return z;
    }

    /// <summary>
    /// The trivial ACL of a mode: owner@ deny what the owner lacks, allow its bits plus the owner's
    /// administrative rights (write_attributes, write_named_attrs, write_acl, write_owner); group@
    /// deny what the group lacks, allow its bits; everyone@ deny what others lack plus the owner's
    /// administrative rights, allow their bits plus read_attributes, read_named_attrs, read_acl and
    /// synchronize. r is read_data, w is write_data|append_data, x is execute.
    /// </summary>
    private static void WriteTrivialAcl(Span<byte> acl, uint mode)
    {
        const uint ownerAdmin = 0x000c0110, everyoneRead = 0x00120088;
        const ushort deny = 1, allow = 0, owner = 0x1000, group = 0x2040, everyone = 0x4000;
        static uint Rights(uint bits) => ((bits & 4) != 0 ? 0x1u : 0) | ((bits & 2) != 0 ? 0x6u : 0) | ((bits & 1) != 0 ? 0x20u : 0);
        uint u = Rights(mode >> 6 & 7), g = Rights(mode >> 3 & 7), o = Rights(mode & 7), all = 0x27;
        Put(acl, 0, 0);                                            // z_acl_extern_obj
        BinaryPrimitives.WriteUInt32LittleEndian(acl[8..], 48);    // z_acl_size
        BinaryPrimitives.WriteUInt16LittleEndian(acl[12..], 1);    // ZFS_ACL_VERSION_FUID
        BinaryPrimitives.WriteUInt16LittleEndian(acl[14..], 6);
        (ushort Type, ushort Flags, uint Mask)[] aces =
        [
            (deny, owner, all & ~u), (allow, owner, ownerAdmin | u),
            (deny, group, all & ~g), (allow, group, g),
            (deny, everyone, ownerAdmin | (all & ~o)), (allow, everyone, everyoneRead | o),
        ];
        for (int i = 0; i < aces.Length; i++)
        {
            Span<byte> ace = acl.Slice(16 + 8 * i, 8);
            BinaryPrimitives.WriteUInt16LittleEndian(ace, aces[i].Type);
            BinaryPrimitives.WriteUInt16LittleEndian(ace[2..], aces[i].Flags);
            BinaryPrimitives.WriteUInt32LittleEndian(ace[4..], aces[i].Mask);
        }
    }

    private static void ValidateName(string name)
    {
        if (name.Length == 0 || name is "." or ".." || name.Contains('/') || name.Contains('\0') || Encoding.UTF8.GetByteCount(name) > 255)
            throw new ArgumentException($"'{name}' is not a valid file name", nameof(name));
    }

    private static uint TypeBits(FileKind kind) => kind switch
    {
        FileKind.Directory => S_IFDIR, FileKind.RegularFile => S_IFREG, FileKind.Symlink => S_IFLNK,
        FileKind.Fifo => S_IFIFO, FileKind.Socket => S_IFSOCK, FileKind.CharDevice => S_IFCHR, _ => S_IFBLK,
    };

    /// <summary>IFTODT: the mode's type bits shifted down, the d_type of a directory entry.</summary>
    private static uint DirentType(FileKind kind) => TypeBits(kind) >> 12;

    private static uint RoundUp(ulong value, uint unit) => (uint)((value + unit - 1) / unit * unit);
    private static ulong U64(ReadOnlySpan<byte> s, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(s[offset..]);
    private static void Put(Span<byte> s, int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(s[offset..], value);
    private static FileTime Time(ReadOnlySpan<byte> z, int offset) => new((long)U64(z, offset), (long)U64(z, offset + 8));
    private static void PutTime(Span<byte> s, int offset, FileTime t) { Put(s, offset, (ulong)t.Seconds); Put(s, offset + 8, (ulong)t.Nanoseconds); }
}
