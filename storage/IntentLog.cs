/*
 * The intent log (ZFS's ZIL): what fsync makes durable without committing a txg.
 *
 * A txg commit writes every dirty block of the pool and an uberblock: far too much to do for each
 * fsync. Instead each filesystem or volume (a head dataset) keeps, in memory, a record of every change
 * made to its object set since its last commit, and fsync writes those records to a chain of log
 * blocks and flushes the leaves; the data blocks themselves wait for the next commit. After a crash,
 * import replays the chain into the dataset before anything else and commits the result.
 *
 * Terms
 *   itx        one in-memory intent record: create (with the object's number), remove, write,
 *              truncate or free of one object of the set. They are kept at the object layer
 *              (ObjectSet), beneath the ZPL: a ZPL create, rename or write is the writes it makes to
 *              the directory, znode table and file objects, so replay needs no file system code and
 *              covers volumes too (ZFS logs ZPL operations: TX_CREATE, TX_RENAME, ...).
 *              A write's itx holds no data: its bytes are read from the object when fsync writes the
 *              record (ZFS's WR_NEED_COPY), so a later write to the same range is logged with the
 *              newer bytes, which the records after it leave as they are.
 *   log block  lsize = psize bytes at a DVA of its own (BlockType.IntentLog), outside every object
 *              set: a 256-byte header (magic, bytes of records used, flags, the next block's pointer,
 *              the checksum), then records, each a 40-byte header (type, length, object, offset,
 *              length, extra) and for a write its bytes.
 *   chain      the blocks of one head's log, each pointing at the next, which is allocated (never
 *              written) when the one before it is written: the last block's next pointer is where
 *              the following fsync will write. The head's root block (ZFS's objset_phys_t) carries
 *              the log header (ZFS's zil_header_t) after the meta dnode: the pointer to the first
 *              block not yet covered by a commit.
 *   verifier   a log block checksums itself, as ZFS's ZIO_CHECKSUM_ZILOG: the checksum field holds,
 *              while the checksum is computed, the value its pointer expects (the dataset's id, the
 *              chain's id, 0, the block's sequence number), then the computed checksum. A block
 *              verifies only if its pointer expects exactly what it was written with: the unwritten
 *              end of the chain, a stale block of an older chain or another dataset, or a torn or
 *              damaged block all end the chain.
 *
 * Rules
 *   L1. A head records itxs only while its log is open and the header it committed is the one its
 *       root holds (the root block is its own, born after its newest snapshot or origin): then the
 *       records since its last commit, replayed on its committed tree, give its present state. The
 *       first fsync of a closed log commits a txg instead (ZFS's zil_create waits for one too), and
 *       that commit opens the log: the header gets a freshly allocated first block (chain id = the
 *       txg). A snapshot or rollback leaves the head on a shared root, so the next fsync commits again.
 *   L2. fsync (Commit) writes every itx recorded since the last fsync, in order, into as many blocks
 *       as they take (a write split across blocks), marks the last block as the end of a commit,
 *       writes each block to every copy, and flushes every leaf before it returns. A block's size is
 *       chosen when it is allocated: what the rest of this commit needs, or for the block after the
 *       last, what this whole commit took (ZFS's lwb sizing from the previous commit), rounded up to
 *       a power of two between 4 KiB and 128 KiB.
 *   L3. A txg commit (Dsl.Sync.cs SyncHead) covers every itx: they are dropped, and the blocks written
 *       since the head's last commit are freed once this txg is on disk (Pool.cs rule 6); the new
 *       header points at the chain's next unwritten block. Once open, a log stays open (as a ZFS
 *       zilog does while its dataset is in use); it is closed (its header a hole, its allocated next
 *       block freed) when its head is destroyed, and at import after its replay.
 *   L4. Import (Pool.Open) replays before anything else: for each head whose own root carries a
 *       header, it reads the chain from the header, claims every block that verifies in the space
 *       maps (so nothing is allocated over them until the replay's txg is durable), and applies the
 *       records of each complete commit (a block flagged as a commit's end) in order through the
 *       object set; a block that does not verify, a record that does not parse or a commit whose
 *       end never arrived ends the replay at the last good commit, as ZFS's zil_parse stops at the
 *       first bad block. Reading the chain's end is speculative: it counts no read or checksum
 *       error. Then every such head is committed, with its header a hole, in one txg; the chain's
 *       blocks are freed once it is durable. A crash during that txg replays the same chain again.
 *   L5. Log blocks are not charged to the dataset (used, referenced), nor to the pool's logical and
 *       physical byte counts: they live for a txg or two.
 *
 * Not done yet (issue 12): separate log devices (slog), writes logged by reference to a block written
 * at once (WR_INDIRECT, for large synchronous writes), per-file fsync (every fsync here writes the
 * whole head's records, as a sync of namespace changes does in ZFS), the ZPL-level record types
 * (TX_RENAME and the rest; here records are object changes), sync=always/disabled, and zil_claim's
 * separate claim txg (here the replay itself is the claim, committed at import).
 */
using System.Buffers.Binary;
using System.Diagnostics;

namespace SmartOS.Storage;

/// <summary>What import's replay of one head's intent log did (IntentLog.cs L4): complete commits and
/// records applied, log blocks read, and why it stopped ("end of chain" when nothing was wrong).</summary>
public readonly record struct LogReplay(string Dataset, int Commits, int Records, int Blocks, string Stopped);

/// <summary>One head dataset's intent log (the theory statement above).</summary>
internal sealed class IntentLog
{
    public const ulong BlockMagic = 0x4B434F4C42_4C495A;   // "ZILBLOCK" read little-endian
    public const int HeaderSize = 256;
    public const int RecordHeaderSize = 40;
    public const int MinBlockSize = 4096;
    private const int NextOffset = 16, ChecksumOffset = 144;
    private const uint EndOfCommit = 1;

    internal enum RecordType : byte { Create = 1, Remove = 3, Write = 4, Truncate = 5, Free = 6 }

    private readonly record struct Itx(RecordType Type, long Object, long Offset, long Length, long Extra);

    private readonly Pool _pool;
    private readonly DslDataset _head;
    private readonly List<Itx> _itxs = [];
    private readonly List<BlockPointer> _written = [];
    private BlockPointer _next;        // allocated, unwritten: where the next fsync writes (L1)
    private long _chainId, _headerTxg;
    private int _hint = MinBlockSize;
    private bool _used, _wantOpen;

    public IntentLog(Pool pool, DslDataset head) { _pool = pool; _head = head; }

    /// <summary>Blocks written since the head's last commit, in chain order (a test's window on L3).</summary>
    public IReadOnlyList<BlockPointer> BlocksSinceCommit => _written;

    /// <summary>Whether changes are recorded now (rule L1).</summary>
    public bool Recording => !_next.IsHole && _headerTxg != 0 && _head.Root.BirthTxg == _headerTxg && _head.Root.BirthTxg > _head.PrevTxg;

    /// <summary>True while import replays into this head: its own changes are not logged again.</summary>
    public bool Replaying { get; set; }

    // ---- recording (L1) ----

    public void LogCreate(long id, byte dataShift) => Add(new Itx(RecordType.Create, id, 0, 0, dataShift));

    public void LogRemove(long id) => Add(new Itx(RecordType.Remove, id, 0, 0, 0));

    public void LogTruncate(long id, long length) => Add(new Itx(RecordType.Truncate, id, length, 0, 0));

    public void LogFree(long id, long offset, long length) => Add(new Itx(RecordType.Free, id, offset, length, 0));

    public void LogWrite(long id, long offset, int length, CompressionSetting compression)
    {
        if (length == 0 || !Recording || Replaying) return;
        long extra = (long)compression.Algorithm | ((long)compression.Level << 8);
        // Consecutive writes to one object that continue each other make one record.
        if (_itxs.Count > 0 && _itxs[^1] is { Type: RecordType.Write } last && last.Object == id && last.Extra == extra
            && last.Offset + last.Length == offset && last.Length + length <= int.MaxValue)
        {
            _itxs[^1] = last with { Length = last.Length + length };
            return;
        }
        _itxs.Add(new Itx(RecordType.Write, id, offset, length, extra));
    }

    private void Add(in Itx itx)
    {
        if (Recording && !Replaying) _itxs.Add(itx);
    }

    // ---- fsync (L2) ----

    /// <summary>Makes every change of the head durable: its records to the chain, or a txg when the log is closed (L1).</summary>
    public StorageResult Commit()
    {
        if (!_pool.Suspended.IsOk) return _pool.Suspended;
        if (!Recording)
        {
            _wantOpen = true;
            _head.RootDirty = true;
            _pool.Datasets.QueueHead(_head.Dir);
            return _pool.Commit();
        }
        if (_itxs.Count == 0) return StorageResult.Success;
        _used = true;
        var objects = _head.Objects!;
        byte[] block = _pool.RentBuffer();
        try
        {
            long total = 0;
            int used = HeaderSize;
            int size = _next.PhysicalSize;
            block.AsSpan(0, size).Clear();
            for (int i = 0; i < _itxs.Count; i++)
            {
                var itx = _itxs[i];
                long done = 0;
                do
                {
                    if (size - used < RecordHeaderSize + (itx.Type == RecordType.Write ? Pool.SectorSize : 0))
                    {
                        var flushed = WriteBlock(block, used, size, NeededAfter(i, done), last: false);
                        if (!flushed.IsOk) return flushed;
                        total += used;
                        used = HeaderSize;
                        size = _next.PhysicalSize;
                        block.AsSpan(0, size).Clear();
                    }
                    var record = block.AsSpan(used, size - used);
                    int data = 0;
                    if (itx.Type == RecordType.Write)
                    {
                        data = (int)Math.Min(itx.Length - done, record.Length - RecordHeaderSize);
                        var bytes = record.Slice(RecordHeaderSize, data);
                        var read = objects.Read(itx.Object, itx.Offset + done, bytes, out int n);
                        // An object removed since is written by no one (its remove record follows); bytes
                        // past a shortened end are zeros (its truncate record follows).
                        if (!read.IsOk) { data = 0; done = itx.Length; continue; }
                        bytes[n..].Clear();
                    }
                    record[0] = (byte)itx.Type;
                    BinaryPrimitives.WriteInt32LittleEndian(record[4..], RecordHeaderSize + data);
                    BinaryPrimitives.WriteInt64LittleEndian(record[8..], itx.Object);
                    BinaryPrimitives.WriteInt64LittleEndian(record[16..], itx.Offset + done);
                    BinaryPrimitives.WriteInt64LittleEndian(record[24..], itx.Type == RecordType.Write ? data : itx.Length);
                    BinaryPrimitives.WriteInt64LittleEndian(record[32..], itx.Extra);
                    used += (RecordHeaderSize + data + 7) & ~7;
                    done += data;
                } while (done < itx.Length);
            }
            total += used;
            _hint = SizeFor(total);
            var written = WriteBlock(block, used, size, _hint, last: true);
            if (!written.IsOk) return written;
        }
        finally
        {
            _pool.ReturnBuffer(block);
        }
        _itxs.Clear();
        return _pool.FlushLeaves()
            ? StorageResult.Success
            : new StorageResult(StorageStatus.IoError, $"pool '{_pool.Name}': flush failed on every vdev");
    }

    /// <summary>Bytes the records from itx i (done bytes of it written already) still take: the next block's size.</summary>
    private int NeededAfter(int i, long done)
    {
        long bytes = HeaderSize;
        for (int j = i; j < _itxs.Count && bytes < Pool.MaxBlockSize; j++)
            bytes += RecordHeaderSize + (_itxs[j].Type == RecordType.Write ? _itxs[j].Length - (j == i ? done : 0) : 0);
        return SizeFor(bytes);
    }

    private static int SizeFor(long bytes) => (int)Math.Clamp(System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(bytes, 1)), MinBlockSize, Pool.MaxBlockSize);

    /// <summary>Allocates the block after _next, seals _next (header, verifier checksum) and writes it.</summary>
    private StorageResult WriteBlock(byte[] block, int used, int size, int nextSize, bool last)
    {
        var allocated = _pool.AllocateLogBlock(nextSize, Verifier((long)_next.Checksum.W3 + 1), out var after);
        if (!allocated.IsOk) return allocated;
        var span = block.AsSpan(0, size);
        BinaryPrimitives.WriteUInt64LittleEndian(span, BlockMagic);
        BinaryPrimitives.WriteInt32LittleEndian(span[8..], used - HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], last ? EndOfCommit : 0);
        after.WriteTo(span[NextOffset..]);
        Seal(_next, span);
        var written = _pool.WriteLogBlock(_next, span);
        if (!written.IsOk)
        {
            _pool.FreeLogBlock(after, now: true);
            return written;
        }
        _written.Add(_next);
        _next = after;
        return StorageResult.Success;
    }

    private BlockChecksum Verifier(long sequence) => new((ulong)_head.Id, (ulong)_chainId, 0, (ulong)sequence);

    /// <summary>Puts the verifier the pointer expects in the checksum field, checksums the block, stores the sum there.</summary>
    private static void Seal(in BlockPointer bp, Span<byte> block)
    {
        bp.Checksum.WriteTo(block[ChecksumOffset..]);
        Checksum.Compute(bp.ChecksumKind, block).WriteTo(block[ChecksumOffset..]);
    }

    /// <summary>ZILOG verification (the theory statement's verifier): the block's sum, computed with the
    /// expected verifier in its place, must be the sum it holds. The block is left as it was.</summary>
    internal static bool Verifies(in BlockPointer bp, Span<byte> block)
    {
        if (block.Length < HeaderSize || BinaryPrimitives.ReadUInt64LittleEndian(block) != BlockMagic) return false;
        var field = block.Slice(ChecksumOffset, 32);
        var stored = BlockChecksum.ReadFrom(field);
        bp.Checksum.WriteTo(field);
        bool good = Checksum.Compute(bp.ChecksumKind, block) == stored;
        stored.WriteTo(field);
        return good;
    }

    // ---- txg commit (L3) ----

    /// <summary>At the head's commit (SyncHead): drops the itxs, frees the blocks they were written to once
    /// this txg is durable, opens or closes the chain, and returns the header to store in the root block.</summary>
    public BlockPointer Synced(long txg)
    {
        _itxs.Clear();
        foreach (var bp in _written) _pool.FreeLogBlock(bp, now: false);
        _written.Clear();
        bool keep = _used || _wantOpen || !_next.IsHole;   // once open, it stays open (ZFS's zilog lives while mounted)
        _used = _wantOpen = false;
        if (!keep)
        {
            Close();
            return default;
        }
        if (_next.IsHole)
        {
            _chainId = txg;
            if (!_pool.AllocateLogBlock(_hint, Verifier(1), out _next).IsOk) { _next = default; _headerTxg = 0; return default; }
        }
        _headerTxg = txg;
        return _next;
    }

    /// <summary>The head is destroyed, or its log is closed: the allocated next block goes back (after the txg).</summary>
    public void Close()
    {
        _itxs.Clear();
        foreach (var bp in _written) _pool.FreeLogBlock(bp, now: false);
        _written.Clear();
        if (!_next.IsHole) _pool.FreeLogBlock(_next, now: false);
        _next = default;
        _headerTxg = 0;
    }

    /// <summary>At import (L4): the replayed chain's blocks, freed when the replay's txg is durable.</summary>
    public void Replayed(List<BlockPointer> blocks)
    {
        _written.AddRange(blocks);
        _head.RootDirty = true;
    }

    // ---- replay (L4) ----

    /// <summary>What a replay found: commits applied, records applied, blocks read, and why it stopped.</summary>
    public readonly record struct ReplayResult(int Commits, int Records, int Blocks, string Stopped);

    /// <summary>
    /// Reads the chain from first, claims each block that verifies (into claimed), and applies the
    /// records of every complete commit to objects, in order (L4).
    /// </summary>
    public static ReplayResult Replay(Pool pool, BlockPointer first, ObjectSet objects, List<BlockPointer> claimed)
    {
        var pending = new List<(RecordType Type, long Object, long Offset, long Length, long Extra, byte[]? Data)>();
        int commits = 0, records = 0, blocks = 0;
        byte[] block = pool.RentBuffer();
        try
        {
            for (var bp = first; ; )
            {
                if (bp.IsHole || bp.Type != BlockType.IntentLog) return new(commits, records, blocks, "end of chain");
                if (pool.ReadLogBlock(bp, block) != StorageStatus.Ok) return new(commits, records, blocks, $"block {blocks + 1} does not verify (the end of the chain)");
                if (!pool.ClaimLogBlock(bp)) return new(commits, records, blocks, $"block {blocks + 1} overlaps a live block");
                claimed.Add(bp);
                blocks++;
                int used = BinaryPrimitives.ReadInt32LittleEndian(block.AsSpan(8));
                uint flags = BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(12));
                if (used < 0 || used > bp.PhysicalSize - HeaderSize || !BlockPointer.TryRead(block.AsSpan(NextOffset), out var next))
                    return new(commits, records, blocks, $"block {blocks} is malformed");
                for (int at = HeaderSize; at < HeaderSize + used;)
                {
                    var r = block.AsSpan(at, HeaderSize + used - at);
                    if (r.Length < RecordHeaderSize) return new(commits, records, blocks, $"block {blocks} has a cut record");
                    int length = BinaryPrimitives.ReadInt32LittleEndian(r[4..]);
                    var type = (RecordType)r[0];
                    long id = BinaryPrimitives.ReadInt64LittleEndian(r[8..]), offset = BinaryPrimitives.ReadInt64LittleEndian(r[16..]);
                    long count = BinaryPrimitives.ReadInt64LittleEndian(r[24..]), extra = BinaryPrimitives.ReadInt64LittleEndian(r[32..]);
                    int data = type == RecordType.Write ? (int)count : 0;
                    if (length != RecordHeaderSize + data || length > r.Length || type is < RecordType.Create or > RecordType.Free)
                        return new(commits, records, blocks, $"block {blocks} has a malformed record");
                    pending.Add((type, id, offset, count, extra, data > 0 ? r.Slice(RecordHeaderSize, data).ToArray() : null));
                    at += (length + 7) & ~7;
                }
                if ((flags & EndOfCommit) != 0)
                {
                    foreach (var p in pending)
                    {
                        var applied = Apply(objects, p.Type, p.Object, p.Offset, p.Length, p.Extra, p.Data);
                        if (!applied.IsOk) return new(commits, records, blocks, $"record {records + 1}: {applied.Message}");
                        records++;
                    }
                    pending.Clear();
                    commits++;
                }
                bp = next;
            }
        }
        finally
        {
            pool.ReturnBuffer(block);
        }
    }

    private static StorageResult Apply(ObjectSet objects, RecordType type, long id, long offset, long length, long extra, byte[]? data)
    {
        switch (type)
        {
            case RecordType.Create: return objects.CreateAt(id, (byte)extra);
            case RecordType.Remove: return objects.Delete(id);
            case RecordType.Truncate: return objects.Truncate(id, offset);
            case RecordType.Free: return objects.FreeRange(id, offset, length);
            default:
                var compression = new CompressionSetting((CompressionAlgorithm)(extra & 0xFF), (int)(extra >> 8));
                if (!compression.IsValid) return new StorageResult(StorageStatus.InvalidArgument, "bad compression");
                return objects.Write(id, offset, data ?? [], compression);
        }
    }
}

public sealed partial class Pool
{
    /// <summary>Allocates a log block of size bytes on Copies top vdevs (IntentLog L2): its pointer
    /// carries the verifier the block must be written with, in its checksum field.</summary>
    internal StorageResult AllocateLogBlock(int size, BlockChecksum verifier, out BlockPointer bp)
    {
        bp = default;
        Span<Dva> dvas = stackalloc Dva[BlockPointer.MaxCopies];
        int copies = _config.Copies;
        if (!PlaceCopies(size, dvas[..copies])) return new StorageResult(StorageStatus.NoSpace, $"pool '{Name}'");
        bp = new BlockPointer(dvas[0], dvas[1], dvas[2], (byte)copies, size, size, CompressionSetting.FunctionOff, _config.Checksum,
                              BlockType.IntentLog, 0, Txg + 1, verifier);
        return StorageResult.Success;
    }

    /// <summary>Writes a sealed log block to every copy; it fails only if no copy could be written.</summary>
    internal StorageResult WriteLogBlock(in BlockPointer bp, ReadOnlySpan<byte> block)
    {
        int good = 0;
        for (int c = 0; c < bp.Copies; c++)
            if (WriteCopy(_tops[bp.GetDva(c).Vdev], bp.GetDva(c).Offset, block, -1, repair: false)) good++;
        LogBlocksWritten++;
        return good > 0 ? StorageResult.Success : new StorageResult(StorageStatus.IoError, $"pool '{Name}': no copy of a log block could be written");
    }

    /// <summary>Log blocks written since open (fsyncs that did not commit a txg write these instead).</summary>
    public long LogBlocksWritten { get; private set; }

    /// <summary>Frees a log block: now (never written, never referenced) or once the current txg commits.</summary>
    internal void FreeLogBlock(in BlockPointer bp, bool now)
    {
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            int size = _tops[dva.Vdev].AllocSize(bp.PhysicalSize);
            if (now) _tops[dva.Vdev].Space.Free(dva.Offset, size);
            else _pendingFrees.Add((dva.Vdev, dva.Offset, size));
        }
    }

    /// <summary>Marks a replayed log block allocated (IntentLog L4); false if it overlaps a claimed block.</summary>
    internal bool ClaimLogBlock(in BlockPointer bp)
    {
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            if ((uint)dva.Vdev >= (uint)_tops.Length || !_tops[dva.Vdev].Space.Claim(dva.Offset, _tops[dva.Vdev].AllocSize(bp.PhysicalSize)))
            {
                for (int u = 0; u < c; u++) _tops[bp.GetDva(u).Vdev].Space.Free(bp.GetDva(u).Offset, _tops[bp.GetDva(u).Vdev].AllocSize(bp.PhysicalSize));
                return false;
            }
        }
        return true;
    }

    /// <summary>Reads a log block speculatively (IntentLog L4): a block that does not verify is the end of
    /// the chain, so the errors the read counted are taken back unless a good copy was found.</summary>
    internal StorageStatus ReadLogBlock(in BlockPointer bp, Span<byte> destination)
    {
        var saved = new List<(LeafVdev Leaf, long Read, long Checksum)>();
        foreach (var top in _tops) foreach (var leaf in top.Leaves) saved.Add((leaf, leaf.ReadErrors, leaf.ChecksumErrors));
        long dataErrors = DataErrors;
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            if ((uint)dva.Vdev >= (uint)_tops.Length || dva.Offset + _tops[dva.Vdev].AllocSize(bp.PhysicalSize) > _tops[dva.Vdev].DataSize)
                return StorageStatus.ChecksumError;
        }
        var status = ReadBlock(bp, destination);
        if (status != StorageStatus.Ok)
        {
            foreach (var (leaf, read, checksum) in saved) { leaf.ReadErrors = read; leaf.ChecksumErrors = checksum; }
            DataErrors = dataErrors;
        }
        return status;
    }

    /// <summary>Flushes every writable leaf; false if none could be (an fsync's last step, IntentLog L2).</summary>
    internal bool FlushLeaves() => FlushAll();

    /// <summary>The verification a read applies to a block's bytes as stored: its checksum, or for a
    /// log block the self-checksum with its verifier (IntentLog).</summary>
    private static bool Verifies(in BlockPointer bp, Span<byte> data) =>
        bp.Type == BlockType.IntentLog
            ? IntentLog.Verifies(bp, data[..bp.PhysicalSize])
            : Storage.Checksum.Compute(bp.ChecksumKind, data[..bp.PhysicalSize]) == bp.Checksum;
}
