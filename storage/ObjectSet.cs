namespace SmartOS.Storage;

/// <summary>
/// Numbered objects of bytes, the minimal object store over the pool (Pool.cs terms). Object 0 is the
/// meta object: its bytes are the dnodes of the others, Dnode.Size bytes each at id * Dnode.Size, and
/// its own dnode is what the uberblock holds (the pool's meta object set, the MOS) or what a dataset's
/// root block holds (Dsl.cs). The meta object's data blocks are 16 KiB (Dnode.MetaDataShift, 64
/// dnodes each, as ZFS's dnode blocks), so creating or changing one object rewrites one dnode block
/// and the indirect path to it, whatever the number of objects (object sets made before this kept
/// 128 KiB dnode blocks and still open). Changes stay in memory until Pool.Commit. Every block an object set
/// writes or drops is charged to its owner (BlockOwner): the MOS frees at once, a dataset keeps a
/// block a snapshot still needs on its dead list.
/// </summary>
public sealed class ObjectSet
{
    public const int MaxHeight = 4;
    public const long MaxObjectSize = 1L << 48;

    private readonly Pool _pool;
    private readonly BlockOwner _owner;
    private readonly Dictionary<long, ObjectTree> _objects = [];
    private readonly SortedSet<long> _dirty = [];
    private ObjectTree _meta;
    private long _nextId = 1;

    internal ObjectSet(Pool pool, BlockOwner owner)
    {
        _pool = pool; _owner = owner;
        _meta = new ObjectTree(pool, new Dnode(true, 0, 0, default, Dnode.MetaDataShift), owner);
    }

    private readonly SortedSet<long> _damaged = [];

    internal bool IsDirty => _dirty.Count > 0;

    /// <summary>Whether writes are refused (a snapshot, or a dataset with readonly=on).</summary>
    public bool IsReadOnly => _owner.IsReadOnly;

    private StorageResult CheckWritable()
    {
        if (!_pool.Suspended.IsOk) return _pool.Suspended;
        return _owner.IsReadOnly ? new StorageResult(StorageStatus.ReadOnly, _owner.Name) : StorageResult.Success;
    }

    /// <summary>How Write stores data blocks when the owner has no `compression` property of its own (the MOS: PoolOptions.Compression; Pool.cs rule 10).</summary>
    public CompressionSetting Compression
    {
        get => _compression;
        set
        {
            if (!value.IsValid) throw new ArgumentOutOfRangeException(nameof(value), value, "invalid compression");
            _compression = value;
        }
    }

    private CompressionSetting _compression = CompressionSetting.Off;

    /// <summary>Creates an empty object and returns its number.</summary>
    public StorageResult Create(out long id) => Create(out id, 0);

    /// <summary>Creates an empty object whose data blocks are 1 &lt;&lt; dataShift bytes (0: ObjectTree.BlockSize),
    /// for an object of the MOS that grows by small appends and is rewritten a little at each commit.</summary>
    internal StorageResult Create(out long id, byte dataShift)
    {
        id = 0;
        var writable = CheckWritable();
        if (!writable.IsOk) return writable;
        id = _nextId++;
        var tree = new ObjectTree(_pool, new Dnode(true, 0, 0, default, dataShift), _owner) { DnodeDirty = true };
        _objects[id] = tree;
        MarkDirty(id);
        _owner.Log?.LogCreate(id, dataShift);
        return StorageResult.Success;
    }

    /// <summary>Creates an empty object with a chosen number (zfs receive's dmu_object_claim: a received
    /// file keeps the number the sender gave it, so that later incremental streams find it).</summary>
    internal StorageResult CreateAt(long id, byte dataShift = 0)
    {
        var writable = CheckWritable();
        if (!writable.IsOk) return writable;
        if (id <= 0) return Fail(StorageStatus.InvalidArgument, id);
        if (Find(id, out _) == StorageStatus.Ok) return Fail(StorageStatus.Exists, id);
        _nextId = Math.Max(_nextId, id + 1);
        _objects[id] = new ObjectTree(_pool, new Dnode(true, 0, 0, default, dataShift), _owner) { DnodeDirty = true };
        MarkDirty(id);
        _owner.Log?.LogCreate(id, dataShift);
        return StorageResult.Success;
    }

    public bool Exists(long id) => Find(id, out _) == StorageStatus.Ok;

    public StorageResult GetLength(long id, out long length)
    {
        length = 0;
        var status = Find(id, out var tree);
        if (status != StorageStatus.Ok) return Fail(status, id);
        length = tree.Length;
        return StorageResult.Success;
    }

    /// <summary>Writes bytes at offset, growing the object; visible to reads at once, durable at the next commit.</summary>
    public StorageResult Write(long id, long offset, ReadOnlySpan<byte> data) => Write(id, offset, data, _owner.Compression ?? _compression);

    /// <summary>Writes bytes at offset; the blocks they dirty are stored with compression (the caller's dataset's property).</summary>
    public StorageResult Write(long id, long offset, ReadOnlySpan<byte> data, CompressionSetting compression)
    {
        var writable = CheckWritable();
        if (!writable.IsOk) return writable;
        if (!compression.IsValid) return new StorageResult(StorageStatus.InvalidArgument, $"object {id}: invalid compression");
        var status = Find(id, out var tree);
        if (status != StorageStatus.Ok) return Fail(status, id);
        // Quota and free space are checked before a byte changes (Dsl.cs rule 5): nothing half-written.
        var reserved = _owner.Reserve(tree.Growth(offset, data.Length, record: false));
        if (!reserved.IsOk) return reserved;
        var result = tree.Write(offset, data, compression, placeWhole: true);
        if (result.IsOk) tree.Growth(offset, data.Length, record: true);
        if (!result.IsOk) return Fail(result.Status, id);
        MarkDirty(id);
        _owner.Log?.LogWrite(id, offset, data.Length, compression);
        return StorageResult.Success;
    }

    /// <summary>Reads up to destination.Length bytes at offset; read is short at the end. On error destination is cleared.</summary>
    public StorageResult Read(long id, long offset, Span<byte> destination, out int read)
    {
        read = 0;
        var status = Find(id, out var tree);
        if (status != StorageStatus.Ok) return Fail(status, id);
        var result = tree.Read(offset, destination, out read);
        if (result.Status is StorageStatus.ChecksumError or StorageStatus.IoError) _damaged.Add(id);
        return result.IsOk ? result : Fail(result.Status, id);
    }

    /// <summary>Objects a read found damaged beyond repair (`zpool status -v`), in id order.</summary>
    public IReadOnlyCollection<long> DamagedObjects => _damaged;

    internal void ClearDamaged() => _damaged.Clear();

    /// <summary>The committed block pointer of the data block holding offset (a hole where none is written).</summary>
    public StorageResult Locate(long id, long offset, out BlockPointer bp)
    {
        bp = default;
        var status = Find(id, out var tree);
        if (status == StorageStatus.Ok) status = tree.Locate(offset, out bp);
        return status == StorageStatus.Ok ? StorageResult.Success : Fail(status, id);
    }

    /// <summary>Removes an object; its blocks are freed when the txg commits.</summary>
    public StorageResult Delete(long id)
    {
        var writable = CheckWritable();
        if (!writable.IsOk) return writable;
        var status = Find(id, out var tree);
        if (status != StorageStatus.Ok) return Fail(status, id);
        var blocks = new List<BlockPointer>();
        status = tree.CollectBlocks(blocks);
        if (status != StorageStatus.Ok) return Fail(status, id);
        foreach (var bp in blocks) _owner.Kill(bp);
        tree.MarkDeleted();
        MarkDirty(id);
        _owner.Log?.LogRemove(id);
        return StorageResult.Success;
    }

    /// <summary>Sets an object's length; the blocks past a shorter length are freed when the txg commits.</summary>
    public StorageResult Truncate(long id, long length)
    {
        var result = Change(id, tree => tree.Truncate(length, _owner.Compression ?? _compression));
        if (result.IsOk) _owner.Log?.LogTruncate(id, length);
        return result;
    }

    /// <summary>Punches a hole: [offset, offset + length) reads as zeros and its whole blocks are freed at commit.</summary>
    public StorageResult FreeRange(long id, long offset, long length)
    {
        var result = Change(id, tree => tree.FreeRange(offset, length, _owner.Compression ?? _compression));
        if (result.IsOk) _owner.Log?.LogFree(id, offset, length);
        return result;
    }

    /// <summary>Whether the next SyncLog writes the intent log rather than committing a txg (IntentLog.cs L1).</summary>
    public bool LogIsOpen => _owner.Log is { Recording: true };

    /// <summary>
    /// fsync: makes every change to this set durable before it returns: through the owner's intent log
    /// when it has one (IntentLog.cs), else (the MOS) by committing a txg.
    /// </summary>
    public StorageResult SyncLog()
    {
        if (!_pool.Suspended.IsOk) return _pool.Suspended;
        return _owner.Log is { } log ? log.Commit() : _pool.Commit();
    }

    /// <summary>The first offset at or after offset in a block holding data (SEEK_DATA by block), or -1 if only holes follow.</summary>
    public StorageResult NextData(long id, long offset, out long dataOffset)
    {
        dataOffset = -1;
        var status = Find(id, out var tree);
        if (status == StorageStatus.Ok) status = tree.NextData(offset, out dataOffset);
        return status == StorageStatus.Ok ? StorageResult.Success : Fail(status, id);
    }

    /// <summary>Bytes an object's blocks take (uncommitted ones at the size they will be stored with).</summary>
    public StorageResult AllocatedBytes(long id, out long bytes)
    {
        bytes = 0;
        var status = Find(id, out var tree);
        if (status == StorageStatus.Ok) status = tree.AllocatedBytes(out bytes);
        return status == StorageStatus.Ok ? StorageResult.Success : Fail(status, id);
    }

    /// <summary>The pool's size and free bytes, for statfs.</summary>
    /// <summary>Bytes more do not fit while the open txg holds room (BlockOwner.RoomIsInFlight).</summary>
    internal bool RoomIsInFlight(long bytes) => _owner.RoomIsInFlight(bytes);

    public (long Size, long Free) PoolSpace => (_pool.Size, _pool.Size - _pool.Allocated);

    private StorageResult Change(long id, Func<ObjectTree, StorageResult> change)
    {
        var writable = CheckWritable();
        if (!writable.IsOk) return writable;
        var status = Find(id, out var tree);
        if (status != StorageStatus.Ok) return Fail(status, id);
        var result = change(tree);
        if (!result.IsOk) return Fail(result.Status, id);
        MarkDirty(id);
        return StorageResult.Success;
    }

    private static StorageResult Fail(StorageStatus status, long id) => new(status, $"object {id}");

    /// <summary>Object id changes at the next commit; the first change since the last one tells the owner
    /// (a dataset's head is queued for that commit, so a commit visits only the heads that changed).</summary>
    private void MarkDirty(long id)
    {
        if (_dirty.Add(id) && _dirty.Count == 1) _owner.Dirtied();
    }

    private StorageStatus Find(long id, out ObjectTree tree)
    {
        tree = null!;
        if (id <= 0 || id >= _nextId) return StorageStatus.NoSuchObject;
        if (_objects.TryGetValue(id, out tree!)) return tree.Deleted ? StorageStatus.NoSuchObject : StorageStatus.Ok;
        Span<byte> raw = stackalloc byte[Dnode.Size];
        var result = _meta.Read(id * Dnode.Size, raw, out int read);
        if (!result.IsOk) return result.Status;
        if (read < Dnode.Size) return StorageStatus.NoSuchObject;
        if (!Dnode.TryRead(raw, out var dnode)) return StorageStatus.MetadataCorrupted;
        if (!dnode.InUse) return StorageStatus.NoSuchObject;
        tree = new ObjectTree(_pool, dnode, _owner);
        _objects.Add(id, tree);
        return StorageStatus.Ok;
    }

    /// <summary>Writes every changed object, then their dnodes into the meta object, then the meta object.</summary>
    internal StorageResult Sync(long txg, out Dnode meta)
    {
        meta = default;
        Span<byte> raw = stackalloc byte[Dnode.Size];
        foreach (long id in _dirty)
        {
            var tree = _objects[id];
            if (tree.Deleted)
            {
                raw.Clear();
                _objects.Remove(id);
            }
            else
            {
                var synced = tree.Sync(txg, BlockType.Data);
                if (!synced.IsOk) return synced;
                tree.Dnode.WriteTo(raw);
            }
            var written = _meta.Write(id * Dnode.Size, raw, CompressionSetting.Lz4);   // metadata: always compressed, as in ZFS
            if (!written.IsOk) return written;
        }
        _dirty.Clear();
        var metaSynced = _meta.Sync(txg, BlockType.Dnodes);
        if (!metaSynced.IsOk) return metaSynced;
        meta = _meta.Dnode;
        return StorageResult.Success;
    }

    /// <summary>At open: adopts the committed meta object and claims every block it reaches (Pool.cs rule 6).</summary>
    internal StorageResult Load(Dnode meta)
    {
        Adopt(meta);
        var walk = new TreeWalk(_pool, TreeWalk.Mode.Claim, 0, null);
        return walk.Run(meta, _meta);
    }

    /// <summary>Takes a committed meta object as this set's, without walking it (a dataset's blocks are claimed by Dsl).</summary>
    internal void Adopt(Dnode meta)
    {
        _meta = new ObjectTree(_pool, meta, _owner);
        _nextId = Math.Max(1, meta.Length / Dnode.Size);
    }

    internal ScrubResult Scrub(long minBirth = 0)
    {
        var walk = new TreeWalk(_pool, TreeWalk.Mode.Scrub, minBirth, null);
        walk.Run(_meta.Dnode, _meta);
        return new ScrubResult(walk.Blocks, walk.Bytes, walk.Errors);
    }

    /// <summary>
    /// Hands every committed block born after minBirth to visit (false stops the walk), reading only
    /// indirect blocks and dnodes: a subtree whose pointer was born at or before minBirth is shared
    /// with the previous snapshot and skipped whole, since copy-on-write never makes a child younger
    /// than its parent (Dsl.cs rule 3).
    /// </summary>
    internal StorageResult Walk(long minBirth, Func<BlockPointer, bool> visit)
    {
        var walk = new TreeWalk(_pool, TreeWalk.Mode.Visit, minBirth, visit);
        return walk.Run(_meta.Dnode, _meta);
    }

    /// <summary>
    /// Visits every block of the committed tree: the meta object's, then each in-use object's. Claiming
    /// (at open) marks them in the space maps and needs only indirect blocks and dnodes read; scrubbing
    /// reads every block, so ReadBlock verifies and heals each (Pool.cs rule 3).
    /// </summary>
    private sealed class TreeWalk(Pool pool, TreeWalk.Mode mode, long minBirth, Func<BlockPointer, bool>? visit)
    {
        public enum Mode { Claim, Scrub, Visit }

        private readonly bool claim = mode != Mode.Scrub;
        public long Blocks, Bytes, Errors;

        public StorageResult Run(Dnode meta, ObjectTree metaTree)
        {
            var status = Visit(meta.Root, meta.Height);
            if (status != StorageStatus.Ok) return new StorageResult(status, "meta object");
            byte[] chunk = pool.RentBuffer();
            try
            {
                for (long offset = 0; offset < meta.Length; offset += chunk.Length)
                {
                    var read = metaTree.Read(offset, chunk, out int n);
                    if (!read.IsOk) { Errors++; return new StorageResult(read.Status, "meta object"); }
                    for (int i = 0; i + Dnode.Size <= n; i += Dnode.Size)
                    {
                        long id = (offset + i) / Dnode.Size;
                        if (!Dnode.TryRead(chunk.AsSpan(i, Dnode.Size), out var dnode))
                            return new StorageResult(StorageStatus.MetadataCorrupted, $"dnode {id}");
                        if (!dnode.InUse) continue;
                        status = Visit(dnode.Root, dnode.Height);
                        if (status != StorageStatus.Ok && claim) return new StorageResult(status, $"object {id}");
                    }
                }
            }
            finally
            {
                pool.ReturnBuffer(chunk);
            }
            return StorageResult.Success;
        }

        private StorageStatus Visit(in BlockPointer bp, int level)
        {
            if (bp.IsHole || bp.BirthTxg <= minBirth) return StorageStatus.Ok;
            if (bp.Level != level) return StorageStatus.MetadataCorrupted;
            Blocks++;
            Bytes += bp.PhysicalSize;
            if (mode == Mode.Claim && !pool.ClaimBlock(bp)) return StorageStatus.MetadataCorrupted;
            if (mode == Mode.Visit && !visit!(bp)) return StorageStatus.MetadataCorrupted;
            if (level == 0 && claim) return StorageStatus.Ok;
            byte[] buffer = pool.RentBuffer();
            byte[]? scratch = claim ? null : pool.RentBuffer();
            try
            {
                StorageStatus status;
                if (claim) status = pool.ReadLogical(bp, buffer);
                else if (!bp.IsCompressed) status = pool.ScrubBlock(bp, buffer, scratch!);
                else
                {
                    // Every copy is verified as stored; a block that then fails to decompress is an error too.
                    status = pool.ScrubBlock(bp, scratch!, buffer);
                    if (status == StorageStatus.Ok) status = pool.Decompress(bp, scratch!, buffer);
                }
                if (status != StorageStatus.Ok) { Errors++; return status; }
                if (level == 0) return StorageStatus.Ok;
                for (int i = 0; i < bp.LogicalSize / BlockPointer.Size; i++)
                {
                    if (!BlockPointer.TryRead(buffer.AsSpan(i * BlockPointer.Size), out var child)) return StorageStatus.MetadataCorrupted;
                    status = Visit(child, level - 1);
                    if (status != StorageStatus.Ok && claim) return status;
                }
                return StorageStatus.Ok;
            }
            finally
            {
                pool.ReturnBuffer(buffer);
                if (scratch is not null) pool.ReturnBuffer(scratch);
            }
        }
    }
}
