using System.Diagnostics;

namespace SmartOS.Storage;

/// <summary>
/// One object's blocks: a tree of Height levels of indirect blocks (1024 pointers each) above its
/// 128 KiB data blocks, rooted in its dnode. Writes go to dirty block buffers; Sync writes them as
/// new blocks and rewrites the indirect blocks on their paths bottom-up, freeing (deferred) every
/// pointer it replaces (Pool.cs rules 5 and 6). Indirect blocks are parsed into Indirects only while
/// Sync changes them; between syncs a lookup reads the one pointer it needs from the block's bytes in
/// the pool's bounded cache (rule 11), so an open object holds no indirect block of its own.
/// Each dirty block remembers the compression its last write asked for; Sync writes it so (rule 10).
/// A write of whole data blocks places them at once instead (Pool.cs rule 12): written already, they
/// wait in _placed for Sync to link them, and one taken back before that is freed at once.
/// </summary>
internal sealed class ObjectTree
{
    public const int BlockShift = 17;
    public const int BlockSize = 1 << BlockShift;
    public const int FanoutShift = 10;
    public const int Fanout = 1 << FanoutShift;

    internal sealed class Indirect
    {
        public readonly BlockPointer[] Pointers = new BlockPointer[Fanout];
        public bool Dirty;
    }

    private readonly Pool _pool;
    private readonly BlockOwner _owner;
    private readonly Dictionary<long, byte[]> _dirtyData = [];
    private readonly Dictionary<long, int> _reserved = [];   // Growth's bound for each dirty block
    private readonly Dictionary<long, CompressionSetting> _dirtyCompression = [];
    // Data blocks whose committed pointer becomes a hole at the next Sync (FreeRange); a dirty buffer for
    // the same block wins over this.
    private readonly HashSet<long> _freed = [];
    // Whole data blocks a write placed at once (Pool.cs rule 12): written as blocks of the open txg,
    // linked into the tree by the next Sync. A block id is in at most one of this and _dirtyData.
    private readonly Dictionary<long, BlockPointer> _placed = [];
    private readonly Dictionary<long, Indirect> _indirects = [];
    private readonly List<long> _order = [];
    private BlockPointer _root;
    private byte _height;
    // The data block size: BlockSize unless the dnode names a smaller one (a meta object's dnode
    // blocks, ObjectSet.cs), fixed for the object's life as ZFS fixes an object's block size once it
    // has more than one block. Indirect blocks are BlockSize whatever it is.
    private readonly int _shift, _blockSize;

    /// <summary>A tree whose blocks are charged to owner: born when Sync writes them, killed when replaced or deleted.</summary>
    public ObjectTree(Pool pool, Dnode dnode, BlockOwner owner)
    {
        Debug.Assert(BlockSize == Pool.MaxBlockSize && Fanout * BlockPointer.Size == BlockSize);
        _shift = dnode.DataShift == 0 ? BlockShift : dnode.DataShift;
        _blockSize = 1 << _shift;
        _pool = pool; _owner = owner; _root = dnode.Root; _height = dnode.Height; Length = dnode.Length;
    }

    public long Length { get; private set; }

    public bool DnodeDirty { get; set; }

    public bool Deleted { get; private set; }

    public bool IsDirty => DnodeDirty || _dirtyData.Count > 0 || _placed.Count > 0;

    public Dnode Dnode => new(true, _height, Length, _root, _shift == BlockShift ? (byte)0 : (byte)_shift);

    private static long Capacity(int height) => 1L << (FanoutShift * height);

    private static long Key(int level, long index) => ((long)level << 56) | index;

    public StorageResult Read(long offset, Span<byte> destination, out int read)
    {
        read = 0;
        if (offset < 0) return new StorageResult(StorageStatus.InvalidArgument, "negative offset");
        if (offset >= Length) return StorageResult.Success;
        int total = (int)Math.Min(destination.Length, Length - offset);
        int done = 0;
        while (done < total)
        {
            long pos = offset + done;
            long blockId = pos >> _shift;
            int inBlock = (int)(pos & (_blockSize - 1));
            int n = Math.Min(_blockSize - inBlock, total - done);
            var target = destination.Slice(done, n);
            if (_dirtyData.TryGetValue(blockId, out var dirty))
            {
                dirty.AsSpan(inBlock, n).CopyTo(target);
            }
            else if (_placed.TryGetValue(blockId, out var placed))
            {
                var status = ReadData(placed, inBlock, target);
                if (status != StorageStatus.Ok)
                {
                    destination[..total].Clear();
                    return new StorageResult(status, "");
                }
            }
            else if (_freed.Count > 0 && _freed.Contains(blockId))
            {
                target.Clear();
            }
            else
            {
                var status = GetPointer(blockId, out var bp);
                if (status == StorageStatus.Ok) status = ReadData(bp, inBlock, target);
                if (status != StorageStatus.Ok)
                {
                    destination[..total].Clear();
                    return new StorageResult(status, "");
                }
            }
            done += n;
        }
        read = total;
        return StorageResult.Success;
    }

    private StorageStatus ReadData(in BlockPointer bp, int inBlock, Span<byte> target)
    {
        if (bp.IsHole) { target.Clear(); return StorageStatus.Ok; }
        if (bp.Type != BlockType.Data && bp.Type != BlockType.Dnodes || bp.Level != 0) return StorageStatus.ChecksumError;
        var status = _pool.ReadCached(bp, out byte[] block);
        if (status == StorageStatus.Ok)
        {
            // Bytes past the logical size are the trimmed zeros (Pool.StoredSize).
            // A cached block's buffer may end at its logical size, before inBlock: nothing to copy then.
            int stored = Math.Clamp(bp.LogicalSize - inBlock, 0, target.Length);
            if (stored > 0) block.AsSpan(inBlock, stored).CopyTo(target);
            target[stored..].Clear();
        }
        return status;
    }

    /// <summary>
    /// Writes data at offset into dirty blocks, to be stored with compression; on failure nothing the
    /// caller can see changed. With placeWhole, the whole data blocks it covers are written as blocks
    /// of the open txg at once, from data itself (Pool.cs rule 12), when the pool allows it.
    /// </summary>
    public StorageResult Write(long offset, ReadOnlySpan<byte> data, CompressionSetting compression, bool placeWhole = false)
    {
        if (offset < 0 || offset + data.Length > ObjectSet.MaxObjectSize)
            return new StorageResult(StorageStatus.InvalidArgument, "offset beyond the largest object");
        if (data.IsEmpty) return StorageResult.Success;
        long end = offset + data.Length;
        long first = offset >> _shift, last = (end - 1) >> _shift;
        // Only the first and last blocks can be partly overwritten: fetch them before changing anything.
        var status = Prepare(first, offset, end);
        if (status == StorageStatus.Ok && last != first) status = Prepare(last, offset, end);
        if (status != StorageStatus.Ok) return new StorageResult(status, "");
        bool place = placeWhole && _blockSize == Pool.MaxBlockSize && data.Length >= _blockSize && _pool.PlacesAtWrite(compression, _owner.Checksum);
        int done = 0;
        while (done < data.Length)
        {
            long pos = offset + done;
            long blockId = pos >> _shift;
            int inBlock = (int)(pos & (_blockSize - 1));
            int n = Math.Min(_blockSize - inBlock, data.Length - done);
            if (place && n == _blockSize)
            {
                // Whole blocks: written from data now, no copy into a dirty buffer (rule 12).
                int whole = Math.Min((data.Length - done) >> _shift, Pool.BatchSize);
                int placed = _pool.PlaceWhole(data.Slice(done, whole << _shift), compression, _owner.Checksum, out var bps);
                for (int i = 0; i < placed; i++) Adopt(blockId + i, bps[i]);
                done += placed << _shift;
                if (placed < whole) place = false;   // the block that failed, and the rest, wait for the commit as dirty blocks
                continue;
            }
            if (!_dirtyData.TryGetValue(blockId, out var buffer))
            {
                buffer = _pool.RentBuffer();   // a whole block is overwritten: no read needed
                _dirtyData.Add(blockId, buffer);
                DropPlaced(blockId);
            }
            data.Slice(done, n).CopyTo(buffer.AsSpan(inBlock));
            _dirtyCompression[blockId] = compression;
            done += n;
        }
        if (end > Length) Length = end;
        DnodeDirty = true;
        return StorageResult.Success;
    }

    /// <summary>Takes a block PlaceWhole placed for blockId as its new contents, in place of a dirty
    /// buffer or an earlier placed block of the same txg (freed at once, Pool.Unplace).</summary>
    private void Adopt(long blockId, in BlockPointer bp)
    {
        if (_dirtyData.Remove(blockId, out var buffer))
        {
            _pool.ReturnBuffer(buffer);
            _dirtyCompression.Remove(blockId);
        }
        DropPlaced(blockId);
        _placed.Add(blockId, bp);
    }

    /// <summary>Forgets blockId's placed block, if it has one, and frees it at once (Pool.cs rule 12).</summary>
    private void DropPlaced(long blockId)
    {
        if (_placed.Remove(blockId, out var bp)) _pool.Unplace(bp);
    }

    private StorageStatus Prepare(long blockId, long offset, long end)
    {
        if (_dirtyData.ContainsKey(blockId)) return StorageStatus.Ok;
        long blockStart = blockId << _shift;
        if (offset <= blockStart && end >= blockStart + _blockSize) return StorageStatus.Ok;
        byte[] buffer = _pool.RentBuffer();
        StorageStatus status = StorageStatus.Ok;
        if (_placed.TryGetValue(blockId, out var placed))
        {
            // Partly overwritten: its contents become a dirty buffer and the placed block is freed.
            status = ReadData(placed, 0, buffer);
            if (status == StorageStatus.Ok) DropPlaced(blockId);
        }
        else if (blockStart >= Length || _freed.Contains(blockId))
        {
            buffer.AsSpan().Clear();
        }
        else
        {
            status = GetPointer(blockId, out var bp);
            if (status == StorageStatus.Ok) status = ReadData(bp, 0, buffer);
        }
        if (status != StorageStatus.Ok) { _pool.ReturnBuffer(buffer); return status; }
        _dirtyData.Add(blockId, buffer);
        return StorageStatus.Ok;
    }

    /// <summary>The committed pointer of the data block holding offset (what zdb prints for it).</summary>
    public StorageStatus Locate(long offset, out BlockPointer bp) => GetPointer(offset >> _shift, out bp);

    /// <summary>Finds the pointer of a data block, reading indirect blocks into the cache as needed.</summary>
    private StorageStatus GetPointer(long blockId, out BlockPointer bp)
    {
        bp = default;
        if (blockId >= Capacity(_height)) return StorageStatus.Ok;
        bp = _root;
        for (int level = _height; level >= 1; level--)
        {
            int slot = (int)((blockId >> (FanoutShift * (level - 1))) & (Fanout - 1));
            if (_indirects.TryGetValue(Key(level, blockId >> (FanoutShift * level)), out var indirect))
            {
                bp = indirect.Pointers[slot];
                continue;
            }
            if (bp.IsHole) return StorageStatus.Ok;   // under a hole, everything is a hole
            if (bp.Type != BlockType.Indirect || bp.Level != level) return StorageStatus.ChecksumError;
            var status = _pool.ReadCached(bp, out byte[] block);
            if (status != StorageStatus.Ok) { bp = default; return status; }
            int at = slot * BlockPointer.Size;
            if (at >= bp.LogicalSize) bp = default;   // in the trimmed zeros: a hole
            else if (!BlockPointer.TryRead(block.AsSpan(at), out bp)) return StorageStatus.ChecksumError;
        }
        return StorageStatus.Ok;
    }

    /// <summary>The parsed indirect block for changing it inside Sync: kept in _indirects until Sync ends.</summary>
    private StorageStatus GetIndirect(int level, long index, in BlockPointer bp, out Indirect indirect)
    {
        if (_indirects.TryGetValue(Key(level, index), out indirect!)) return StorageStatus.Ok;
        indirect = _pool.RentIndirect();
        var status = Parse(level, bp, indirect);
        if (status != StorageStatus.Ok) { _pool.ReturnIndirect(indirect); return status; }
        _indirects.Add(Key(level, index), indirect);
        return StorageStatus.Ok;
    }

    /// <summary>Fills a cleared Indirect with the pointers of the level-level block bp (none for a hole).</summary>
    private StorageStatus Parse(int level, in BlockPointer bp, Indirect indirect)
    {
        if (bp.IsHole) return StorageStatus.Ok;
        if (bp.Type != BlockType.Indirect || bp.Level != level) return StorageStatus.ChecksumError;
        var status = _pool.ReadCached(bp, out byte[] block);
        for (int i = 0; status == StorageStatus.Ok && i < bp.LogicalSize / BlockPointer.Size; i++)
            if (!BlockPointer.TryRead(block.AsSpan(i * BlockPointer.Size), out indirect.Pointers[i])) status = StorageStatus.ChecksumError;
        return status;
    }

    /// <summary>Points data block blockId at bp, growing the tree when it is too short (inside Sync only).</summary>
    private StorageStatus SetPointer(long blockId, in BlockPointer bp)
    {
        while (blockId >= Capacity(_height))
        {
            // The old root moves, unchanged, into slot 0 of a new top indirect block.
            var top = _pool.RentIndirect();
            top.Dirty = true;
            top.Pointers[0] = _root;
            _height++;
            _indirects.Add(Key(_height, 0), top);
            _root = default;
        }
        if (_height == 0) { Replace(ref _root, bp); return StorageStatus.Ok; }
        BlockPointer current = _root;
        Indirect? indirect = null;
        for (int level = _height; level >= 1; level--)
        {
            var status = GetIndirect(level, blockId >> (FanoutShift * level), current, out indirect);
            if (status != StorageStatus.Ok) return status;
            indirect.Dirty = true;
            if (level > 1) current = indirect.Pointers[(blockId >> (FanoutShift * (level - 1))) & (Fanout - 1)];
        }
        Replace(ref indirect!.Pointers[blockId & (Fanout - 1)], bp);
        return StorageStatus.Ok;
    }

    private void Replace(ref BlockPointer slot, in BlockPointer bp)
    {
        if (!slot.IsHole) _owner.Kill(slot);
        slot = bp;
    }

    /// <summary>
    /// Bytes more that a write of [offset, offset+length) may need at the next sync (Dsl.cs rule 5):
    /// a dirty block is stored up to its last byte that can be non-zero (the object's length or the
    /// write's end within it), rounded to a sector; what earlier writes to it reserved is subtracted.
    /// With record, the new bounds are kept for the blocks' later writes.
    /// </summary>
    public long Growth(long offset, long length, bool record)
    {
        if (length <= 0 || offset < 0) return 0;
        long end = offset + length, n = 0;
        for (long b = offset >> _shift; b <= (end - 1) >> _shift; b++)
        {
            long start = b << _shift;
            long high = Math.Max(Math.Min(end, start + _blockSize), Math.Min(Length, start + _blockSize)) - start;
            int bound = (int)((high + Pool.SectorSize - 1) / Pool.SectorSize * Pool.SectorSize);
            _reserved.TryGetValue(b, out int reserved);
            if (bound <= reserved) continue;
            n += bound - reserved;
            if (record) _reserved[b] = bound;
        }
        return n;
    }

    /// <summary>
    /// Writes the dirty blocks of this object as txg's new blocks; its new root is in Dnode after.
    /// Indirect blocks are always compressed with lz4, as ZFS compresses metadata whatever the dataset's setting.
    /// </summary>
    public StorageResult Sync(long txg, BlockType dataType)
    {
        foreach (long blockId in _freed)
        {
            if (_dirtyData.ContainsKey(blockId) || _placed.ContainsKey(blockId)) continue;
            var freed = SetPointer(blockId, default);
            if (freed != StorageStatus.Ok) return new StorageResult(freed, "indirect block");
        }
        _freed.Clear();
        // Blocks placed by writes (Pool.cs rule 12) are written already: they only take their places.
        _order.Clear();
        foreach (long id in _placed.Keys) _order.Add(id);
        _order.Sort();
        foreach (long blockId in _order)
        {
            var bp = _placed[blockId];
            Debug.Assert(bp.IsHole || bp.BirthTxg == txg, "a placed block is linked by the commit of the txg it was written in");
            if (!bp.IsHole) _owner.Born(bp);
            var status = SetPointer(blockId, bp);
            if (status != StorageStatus.Ok) return new StorageResult(status, "indirect block");
            _placed.Remove(blockId);
        }
        _order.Clear();
        foreach (long id in _dirtyData.Keys) _order.Add(id);
        _order.Sort();
        // Blocks are compressed and checksummed in batches on the pool's workers, then placed in block
        // order on this thread (Pool.Compress.cs rule C1): the same bytes whatever the thread count.
        // Pipelined (rule C3): the workers prepare the next batch while this thread places this one.
        try
        {
            bool batch = StartBatch(0);
            if (batch) _pool.FinishBatch();
            for (int start = 0; start < _order.Count; start += Pool.BatchSize)
            {
                int count = Math.Min(Pool.BatchSize, _order.Count - start);
                int set = (start / Pool.BatchSize) & 1;
                bool nextBatch = StartBatch(start + Pool.BatchSize);
                for (int i = 0; i < count; i++)
                {
                    long blockId = _order[start + i];
                    byte[] buffer = _dirtyData[blockId];
                    var written = batch
                        ? _pool.WritePrepared(set * Pool.BatchSize + i, dataType, 0, txg, out var bp)
                        : _pool.WriteBlock(buffer.AsSpan(0, _blockSize), dataType, 0, txg, _dirtyCompression[blockId], out bp, _owner.Checksum);
                    if (!written.IsOk) return written;
                    if (!bp.IsHole) _owner.Born(bp);
                    var status = SetPointer(blockId, bp);
                    if (status != StorageStatus.Ok) return new StorageResult(status, "indirect block");
                    _dirtyData.Remove(blockId);
                    _dirtyCompression.Remove(blockId);
                    _pool.ReturnBuffer(buffer);
                }
                if (nextBatch) _pool.FinishBatch();
                batch = nextBatch;
            }
        }
        finally
        {
            // Whatever happened, no worker may still be reading a dirty buffer or writing an output.
            if (_pool.BatchRunning) _pool.FinishBatch();
        }
        _reserved.Clear();
        byte[] encoded = _pool.RentBuffer();
        try
        {
            for (int level = 1; level <= _height; level++)
            {
                _order.Clear();
                foreach (var (key, indirect) in _indirects)
                    if (key >> 56 == level && indirect.Dirty) _order.Add(key & ((1L << 56) - 1));
                _order.Sort();
                foreach (long index in _order)
                {
                    var indirect = _indirects[Key(level, index)];
                    for (int i = 0; i < Fanout; i++) indirect.Pointers[i].WriteTo(encoded.AsSpan(i * BlockPointer.Size));
                    var written = _pool.WriteBlock(encoded, BlockType.Indirect, (byte)level, txg, CompressionSetting.Lz4, out var bp, _owner.Checksum);
                    if (!written.IsOk) return written;
                    if (!bp.IsHole) _owner.Born(bp);
                    indirect.Dirty = false;
                    if (level == _height) { Replace(ref _root, bp); continue; }
                    var parent = _indirects[Key(level + 1, index >> FanoutShift)];
                    Replace(ref parent.Pointers[index & (Fanout - 1)], bp);
                    parent.Dirty = true;
                }
            }
        }
        finally
        {
            _pool.ReturnBuffer(encoded);
        }
        // Every indirect block is clean again and its bytes are in the cache: let the cache bound them.
        foreach (var indirect in _indirects.Values) _pool.ReturnIndirect(indirect);
        _indirects.Clear();
        DnodeDirty = false;
        return StorageResult.Success;
    }

    /// <summary>
    /// Hands the batch of dirty blocks from _order[start] to the pool's workers if it is worth preparing
    /// in parallel (Pool.Compress.cs rule C2), in the set of slots its number gives; false if there is
    /// no such batch (each of its blocks is then prepared and placed in one WriteBlock).
    /// </summary>
    private bool StartBatch(int start)
    {
        int count = Math.Min(Pool.BatchSize, _order.Count - start);
        if (count <= 1) return false;
        bool parallel = false;
        for (int i = 0; i < count && !parallel; i++) parallel = _pool.PreparesInParallel(_dirtyCompression[_order[start + i]], _owner.Checksum);
        if (!parallel) return false;
        int first = ((start / Pool.BatchSize) & 1) * Pool.BatchSize;
        for (int i = 0; i < count; i++)
            _pool.SetBatchBlock(first + i, _dirtyData[_order[start + i]], _blockSize, _dirtyCompression[_order[start + i]], _owner.Checksum);
        _pool.StartBatch(first, count);
        return true;
    }

    /// <summary>Collects every committed block of the tree (for a delete); fails without freeing if one cannot be read.</summary>
    public StorageStatus CollectBlocks(List<BlockPointer> blocks)
    {
        return Collect(_root, _height, blocks);
    }

    private StorageStatus Collect(in BlockPointer bp, int level, List<BlockPointer> blocks)
    {
        if (bp.IsHole) return StorageStatus.Ok;
        blocks.Add(bp);
        if (level == 0) return StorageStatus.Ok;
        var indirect = _pool.RentIndirect();
        var status = Parse(level, bp, indirect);
        for (int i = 0; status == StorageStatus.Ok && i < Fanout; i++)
            status = Collect(indirect.Pointers[i], level - 1, blocks);
        _pool.ReturnIndirect(indirect);
        return status;
    }

    /// <summary>Drops the uncommitted blocks and marks the object gone; the caller frees its committed blocks.</summary>
    public void MarkDeleted()
    {
        foreach (var buffer in _dirtyData.Values) _pool.ReturnBuffer(buffer);
        _dirtyData.Clear();
        foreach (var bp in _placed.Values) _pool.Unplace(bp);
        _placed.Clear();
        _reserved.Clear();
        _dirtyCompression.Clear();
        foreach (var indirect in _indirects.Values) _pool.ReturnIndirect(indirect);
        _freed.Clear();
        _indirects.Clear();
        Deleted = true;
    }

    // ---- holes: freeing ranges, finding data (used by the file layer, ZplFileSystem.cs) ----

    /// <summary>
    /// Makes [offset, offset + length) read as zeros without changing Length: whole blocks in the range
    /// lose their blocks at the next Sync (their pointers become holes, rule 6 frees them deferred); the
    /// partial blocks at either end are zeroed in a dirty copy. Fails before changing anything if a
    /// partial block cannot be read.
    /// </summary>
    public StorageResult FreeRange(long offset, long length, CompressionSetting compression)
    {
        if (offset < 0 || length < 0) return new StorageResult(StorageStatus.InvalidArgument, "negative range");
        long end = Math.Min(offset + length, Length);
        if (end <= offset) return StorageResult.Success;
        long firstWhole = (offset + _blockSize - 1) >> _shift;
        // Past Length a block holds only zeros, so a range reaching Length frees its last block whole.
        long endWhole = end == Length ? (end + _blockSize - 1) >> _shift : end >> _shift;
        long headBlock = offset >> _shift, tailBlock = (end - 1) >> _shift;
        bool head = headBlock < firstWhole || headBlock >= endWhole;
        bool tail = tailBlock != headBlock && tailBlock >= endWhole;
        var status = head ? Prepare(headBlock, offset, end) : StorageStatus.Ok;
        if (status == StorageStatus.Ok && tail) status = Prepare(tailBlock, offset, end);
        // The committed blocks to free are found (reading indirect blocks) before anything changes.
        var committed = new List<long>();
        for (long id = firstWhole; status == StorageStatus.Ok && id < endWhole; id++)
        {
            status = FirstCommitted(_root, _height, 0, id, out id);
            if (id < 0 || id >= endWhole) break;
            committed.Add(id);
        }
        if (status != StorageStatus.Ok) return new StorageResult(status, "");
        long clearEnd = end == Length ? long.MaxValue : end;
        if (head) ClearPart(headBlock, offset, clearEnd, compression);
        if (tail) ClearPart(tailBlock, offset, clearEnd, compression);
        _order.Clear();
        foreach (long id in _dirtyData.Keys) if (id >= firstWhole && id < endWhole) _order.Add(id);
        foreach (long id in _order) { _pool.ReturnBuffer(_dirtyData[id]); _dirtyData.Remove(id); _dirtyCompression.Remove(id); }
        _order.Clear();
        foreach (long id in _placed.Keys) if (id >= firstWhole && id < endWhole) _order.Add(id);
        foreach (long id in _order) DropPlaced(id);
        foreach (long id in committed) _freed.Add(id);
        DnodeDirty = true;
        return StorageResult.Success;
    }

    private void ClearPart(long blockId, long offset, long end, CompressionSetting compression)
    {
        _dirtyCompression[blockId] = compression;
        long start = blockId << _shift;
        int from = (int)Math.Max(0, offset - start), to = (int)Math.Min(_blockSize, end - start);
        _dirtyData[blockId].AsSpan(from, to - from).Clear();
    }

    /// <summary>Sets Length: a shorter object loses the blocks past it (FreeRange); a longer one ends in a hole.</summary>
    public StorageResult Truncate(long length, CompressionSetting compression)
    {
        if (length < 0 || length > ObjectSet.MaxObjectSize) return new StorageResult(StorageStatus.InvalidArgument, "length beyond the largest object");
        if (length < Length)
        {
            var freed = FreeRange(length, Length - length, compression);
            if (!freed.IsOk) return freed;
        }
        Length = length;
        DnodeDirty = true;
        return StorageResult.Success;
    }

    /// <summary>
    /// The first block at or after offset's block that holds data (SEEK_DATA at block granularity):
    /// a dirty block with a non-zero byte, or a committed one not freed. -1 when only holes follow.
    /// </summary>
    public StorageStatus NextData(long offset, out long dataOffset)
    {
        dataOffset = -1;
        if (offset < 0 || offset >= Length) return StorageStatus.Ok;
        long from = offset >> _shift, best = long.MaxValue;
        if (_dirtyData.TryGetValue(from, out var first) && Pool.StoredSize(first.AsSpan(0, _blockSize)) > 0) { dataOffset = offset; return StorageStatus.Ok; }
        foreach (var (id, buffer) in _dirtyData)
            if (id >= from && id < best && Pool.StoredSize(buffer.AsSpan(0, _blockSize)) > 0) best = id;
        foreach (var (id, bp) in _placed)
            if (id >= from && id < best && !bp.IsHole) best = id;
        for (long id = from; id < best; id++)
        {
            var status = FirstCommitted(_root, _height, 0, id, out id);
            if (status != StorageStatus.Ok) return status;
            if (id < 0 || id >= best) break;
            if (!_freed.Contains(id) && !_dirtyData.ContainsKey(id) && !_placed.ContainsKey(id)) { best = id; break; }
        }
        if (best != long.MaxValue && best << _shift < Length) dataOffset = Math.Max(offset, best << _shift);
        return StorageStatus.Ok;
    }

    /// <summary>Bytes this object holds: its committed blocks (indirect ones too) less those freed, plus dirty blocks at their stored size.</summary>
    public StorageStatus AllocatedBytes(out long bytes)
    {
        bytes = 0;
        foreach (var buffer in _dirtyData.Values) bytes += Pool.StoredSize(buffer.AsSpan(0, _blockSize));
        foreach (var bp in _placed.Values) bytes += bp.LogicalSize;   // what its dirty buffer would count
        return SumCommitted(_root, _height, 0, ref bytes);
    }

    private StorageStatus SumCommitted(in BlockPointer bp, int level, long index, ref long bytes)
    {
        if (bp.IsHole) return StorageStatus.Ok;
        if (level == 0)
        {
            if (!_freed.Contains(index) && !_dirtyData.ContainsKey(index) && !_placed.ContainsKey(index)) bytes += bp.PhysicalSize;
            return StorageStatus.Ok;
        }
        bytes += bp.PhysicalSize;
        var indirect = _pool.RentIndirect();
        var status = Parse(level, bp, indirect);
        for (int i = 0; status == StorageStatus.Ok && i < Fanout; i++)
            status = SumCommitted(indirect.Pointers[i], level - 1, (index << FanoutShift) + i, ref bytes);
        _pool.ReturnIndirect(indirect);
        return status;
    }

    /// <summary>The first data block at or after from whose committed pointer is not a hole, or -1.</summary>
    private StorageStatus FirstCommitted(in BlockPointer bp, int level, long index, long from, out long found)
    {
        found = -1;
        if (bp.IsHole) return StorageStatus.Ok;
        if (level == 0)
        {
            if (index >= from) found = index;
            return StorageStatus.Ok;
        }
        if (((index + 1) << (FanoutShift * level)) <= from) return StorageStatus.Ok;
        var indirect = _pool.RentIndirect();
        var status = Parse(level, bp, indirect);
        long childBase = index << FanoutShift;
        long start = Math.Max(0, (from >> (FanoutShift * (level - 1))) - childBase);
        for (long c = start; status == StorageStatus.Ok && found < 0 && c < Fanout; c++)
            status = FirstCommitted(indirect.Pointers[c], level - 1, childBase + c, from, out found);
        _pool.ReturnIndirect(indirect);
        return status;
    }
}
