/*
 * SmartOS.Storage: a copy-on-write pool of file vdevs, the foundation of zpool and zfs.
 *
 * This layer sits beside netstack and virt, above the kernel and below zones (../shared/ARCHITECTURE.md).
 * It keeps data the way ZFS does, reduced to what the layers above need first: blocks found through a
 * tree of checksummed block pointers, written copy-on-write and committed in transaction groups, so
 * that whatever the files hold after a crash, the pool opens at a txg that was fully written.
 *
 * Terms
 *   leaf vdev   one file of a fixed size (LeafVdev). Two labels (VdevLabel) hold the pool's name, guid
 *               and vdev tree, and a ring of uberblocks: L0 at the front, L1 at the back.
 *   top vdev    a single leaf, a mirror of leaves or a raidz1 (TopVdev); blocks are allocated in its
 *               data area, the space between the labels, at the same offset on every leaf. A mirror
 *               holds the whole block on each leaf; a raidz1 of n leaves splits it into n-1 data
 *               columns and one XOR parity column, one per leaf (Pool.Raidz.cs).
 *   DVA         a block's address: top vdev id and offset in the data area. A block has up to the
 *               pool's `copies` DVAs, each on another top vdev where there is one.
 *   block ptr   the 128 bytes a parent holds for a child (BlockPointer): DVAs, logical size (lsize),
 *               stored size (psize), compression, checksum kind and value, birth txg. A pointer
 *               without a DVA is a hole (reads as zeros).
 *   txg         a transaction group: the changes since the last commit. Commit writes them as new
 *               blocks and then one uberblock; its number is the birth txg of every block it wrote.
 *   uberblock   the root of one txg: it points (through the meta object's dnode) at the whole tree.
 *   object set  numbered objects of bytes (ObjectSet), each a tree of 128 KiB blocks under indirect
 *               blocks of 1024 pointers; object 0, the meta object, holds the dnodes of the others.
 *   MOS         the pool's own object set (Pool.Objects), rooted in the uberblock; its object 1 is the
 *               dataset directory. Each dataset (filesystem, volume, snapshot) has an object set of its
 *               own, rooted in a block the directory points at (Dsl.cs: Pool.Datasets).
 *   cache       the bounded block cache (BlockCache, ZFS's ARC): logical contents of blocks by DVA
 *               and birth txg.
 *
 * Rules
 *   1. Nothing here reads the wall clock or makes its own randomness: uberblock timestamps come from
 *      the caller's clock and guids from the caller's HostRandom (Kernel.cs rule 1), so the same calls
 *      give the same bytes in every file.
 *   2. Every block is checksummed, with the kind its pointer names (fletcher4 by default, sha256 and
 *      blake3 selectable), over its bytes as stored (compressed, if it is); the value lives in the
 *      parent's pointer, never beside the block, so a block written to the wrong place or left stale
 *      cannot vouch for itself.
 *   3. A read verifies. A copy that fails (short read, I/O error or checksum mismatch) is counted on its
 *      leaf (READ or CKSUM) and the next copy is tried: the other side of a mirror, a raidz1 column
 *      rebuilt from parity, then the next DVA.
 *      When a good copy is found, every bad copy read on the way is rewritten from it (self-healing,
 *      counted as repaired bytes). When none is good the read fails with ECKSUM or EIO and the caller's
 *      buffer is cleared: wrong data is never returned.
 *   4. An import needs nothing but the files: every leaf's labels name the whole tree, so Import(dir)
 *      groups the files it finds by pool guid. A label whose checksum fails is ignored; a file whose
 *      labels all fail is reported as damaged, with the reason.
 *   5. Copy-on-write: a live block (one the last committed uberblock reaches) is never overwritten. A
 *      commit writes data blocks (those its writes did not place already, rule 12), then indirect
 *      blocks bottom-up, then the meta object, flushes every leaf, then writes the uberblock into
 *      slot txg % RingSlots of L0 on every leaf, flushes, and the same into L1, and flushes again.
 *      Open takes the highest txg whose uberblock passes its checksum and matches the pool's guid
 *      sum. A crash before the first uberblock write leaves the previous txg as the newest; a torn
 *      uberblock fails its checksum; so any crash opens at the old or the new txg, complete.
 *   6. Space: each top vdev has a SpaceMap. A pointer replaced or dropped during a txg frees its block
 *      only once that txg has committed (deferred free), so the previous txg stays whole until the new
 *      one is durable; a dataset's block that a snapshot still holds is not freed at all but kept on a
 *      dead list (Dsl.cs rule 1). The maps are not stored: an open rebuilds them by walking the committed tree,
 *      which also checks every indirect block and dnode once.
 *   7. Steady-state block I/O allocates nothing: block buffers come from the pool's own stack of
 *      MaxBlockSize arrays, checksums are computed into structs, pointers are structs, lz4 and zstd
 *      work on spans with contexts kept per pool, and the cache reuses the buffers it evicts. (gzip
 *      allocates its zlib state per block: .NET has only a stream API for zlib.)
 *   8. A commit that fails part-way (no space, every copy of a write failing) suspends the pool: every
 *      later call returns that error, and reopening goes back to the last committed txg.
 *   9. A pool is used from one thread at a time (its world's scheduler thread, Kernel.cs); nothing
 *      here takes a lock. The one exception is inside a commit: the pool's own worker threads
 *      compress and checksum a batch of data blocks, each on buffers of its own, while the calling
 *      thread places the batch before it and then joins them (Pool.Compress.cs rule C3); placing
 *      the blocks stays on the calling thread, and a sync never returns with a batch in flight.
 *  10. Compression, as ZFS decides it (Compression.cs): the caller names it per write (ObjectSet's
 *      Compression, the dataset's `compression` property: off, lz4, gzip-1..9, zstd-1..19); indirect
 *      blocks and dnodes are always lz4, as ZFS compresses metadata whatever the property says. A block
 *      is first trimmed to its last non-zero sector: that is its logical size, and an all-zero block
 *      becomes a hole (ZFS detects zero blocks only with compression on; here it is always so, and
 *      "off" stores the trimmed bytes). It is stored compressed only if the sectors it then takes
 *      save at least an eighth of lsize, else as it is; the pointer records lsize, psize and the
 *      compression function, and a read decompresses by what the pointer says. A block whose checksum
 *      passes but that does not decompress to exactly lsize bytes fails with EIO (counted in
 *      DataErrors): never garbage. LogicalBytes and PhysicalBytes sum lsize and psize over every
 *      block held: compressratio's inputs.
 *  11. The block cache holds the logical contents of data, indirect and dnode blocks, at most
 *      PoolOptions.CacheSize bytes of buffers (BlockCache: MRU/MFU lists without ghosts). A read
 *      that misses reads, verifies and decompresses into a cache buffer; a write puts its block in:
 *      indirect blocks and dnodes always (the next txg reads them), data blocks only into room the
 *      cache has without evicting and as the oldest of MRU (the first evicted), so a long sequential
 *      write goes around a full cache (no copy of each block, nothing read pushed out) and a small
 *      one is still read back from memory.
 *      An object keeps parsed indirect blocks only while its sync changes them; otherwise a lookup
 *      reads the pointer it needs from the cached block, so nothing outside the cache grows with the
 *      number or size of open objects. Entries cannot go stale: a rewritten block has a new birth
 *      txg, a freed block is dropped.
 *  12. Whole blocks are placed as they are written. A write (ObjectSet.Write) that covers whole
 *      128 KiB data blocks, stored uncompressed with fletcher4, trims, checksums and writes each of
 *      them at once, straight from the caller's bytes, as a block of the open txg (born Txg+1, allocated as a commit would:
 *      never over a live block), and keeps only its pointer (PlaceWhole; ObjectTree's _placed); the
 *      next commit links it as if it had written it, before the indirect blocks, so rule 5 holds as it
 *      was: every block an uberblock reaches was written before the flush that precedes it. Until
 *      then no uberblock reaches it, so a crash leaves it as free space (an open rebuilds the maps,
 *      rule 6), and one its own txg takes back (overwritten, freed, truncated, deleted) is freed at
 *      once (Unplace): it was never reachable. Only while the pool is not suspended and every leaf
 *      is online and not resilvering (PlacesAtWrite), so a placed block is on every leaf a commit
 *      would write, and no online resilvers the tree (which it does without a commit) while a block
 *      is placed but not linked; and not while Open replays intent logs, whose chains are claimed
 *      block by block as they are read, so a placed block could take a later log block's space (a
 *      replayed write is split at log block bounds and so is never whole today: this keeps it so if
 *      that changes). A block that cannot be placed (no space, no copy written) stays a dirty buffer
 *      for the commit. Why: the copy into a 128 KiB dirty buffer was a second copy of every byte
 *      beside the host's copy into its page cache (a plain file pays only that one), and every vdev
 *      write of a txg waited for its commit. ZFS copies into the ARC at write and writes at sync,
 *      overlapping the two on its txg threads; here a commit is synchronous (Commit returns with the
 *      txg durable), so nothing overlapped it. Measured (README, issue 12): sequential 256 MiB
 *      incompressible, 346 MB/s against 207 and 1.57 CPU s/GiB against 2.37, medians of 10 runs
 *      alternating at load 10-24; at load 3-4, 541 against 479 and 0.97 CPU s/GiB against 1.85.
 *      Compressed blocks, or those with another checksum, still go through dirty buffers: the commit
 *      prepares them on the workers a batch of 32 ahead of the one it places (Pool.Compress.cs rule
 *      C3), where a write has only its own 8 to prepare and then place; placed at write, lz4 fell
 *      to 396 MB/s against 526 (5 runs alternating, load 3-4). The condition does not depend on
 *      the thread count, so the bytes stored still do not either. The cost: a whole block written
 *      again in the same txg is written again, where a dirty buffer was written once.
 *
 * DTrace (StorageProbes.cs): every leaf read and write of a pool goes through LeafRead/LeafWrite,
 * which fire the io provider's start, wait-start, done and wait-done when one is enabled and cost one
 * test of their Enabled fields when none is; a commit fires zfs's txg-syncing and txg-synced, and
 * ReadCached arc-hit or arc-miss. A pool opened without PoolOptions.Probes fires nothing.
 *
 * fsync without a txg is the intent log's (IntentLog.cs): log blocks are allocated and written
 * outside the tree, verified by their own checksum (BlockType.IntentLog), claimed and replayed at
 * Open before anything else. Leaf states, attach, detach, replace, resilver, the label rewrite they
 * need and the history are in
 * Pool.Admin.cs; a mirror or raidz1 with a leaf offline or missing opens DEGRADED.
 *
 * Not done yet (issue 12): raidz2/3, an adaptive cache (the ARC's ghost lists; the MRU/MFU split is
 * fixed at half) and a cache of compressed blocks (here the cache holds them decompressed), bounding
 * dirty data per txg (the write throttle), an open txg taking writes while the one before syncs (ZFS's
 * open, quiescing and syncing txgs; here Commit is synchronous, rule 12), compressing indirect blocks and the meta object on more
 * than one thread (data blocks are, Pool.Compress.cs), zstd-fast and zle/lzjb, on-disk space maps, send/receive (datasets, snapshots and
 * clones are Dsl.cs's, with what they still lack listed there), the zfs command, reuse of freed object
 * ids, spares and log/cache devices, a resilver that copies only the txgs a leaf missed (its DTL; here
 * it copies every live block) and runs in the background, the last scan's record kept on disk,
 * fragmentation figures, and deferring frees by two txgs as OpenZFS does (TXG_DEFER_SIZE) so that a
 * rewind past the newest txg is safe even after the next one reused its space (here a freed block is
 * reusable once its txg commits).
 */
using System.Diagnostics;
using SmartOS.Kernel;

namespace SmartOS.Storage;

/// <summary>The caller's choices for creating or opening a pool (rule 1: clock and randomness come from here).</summary>
public sealed record PoolOptions
{
    /// <summary>Time for uberblock timestamps, in the caller's units (the scheduler's nanoseconds).</summary>
    public required Func<long> Clock { get; init; }

    /// <summary>Source of pool and vdev guids at create.</summary>
    public IIdentitySource? Random { get; init; }

    public ChecksumKind Checksum { get; init; } = ChecksumKind.Fletcher4;

    /// <summary>DVAs per block (ZFS's `copies`), 1 to 3.</summary>
    public int Copies { get; init; } = 1;

    /// <summary>How leaf files are opened; tests wrap it to inject crashes and faults.</summary>
    public VdevOpener Opener { get; init; } = FileVdevIo.Opener;

    /// <summary>The compression Objects starts with (ObjectSet.Compression; rule 10).</summary>
    public CompressionSetting Compression { get; init; } = CompressionSetting.Off;

    /// <summary>The most the block cache may hold, in bytes (rule 11; ZFS's arc_max). 0 turns it off.</summary>
    public long CacheSize { get; init; } = DefaultCacheSize;

    public const long DefaultCacheSize = 64L * 1024 * 1024;

    /// <summary>The host's probe registry: the pool fires its io and zfs probes there (StorageProbes.cs); null: none.</summary>
    public SmartOS.Kernel.Trace.ProbeRegistry? Probes { get; init; }

    /// <summary>Threads that compress and checksum a txg's data blocks (Pool.Compress.cs; ZFS's zio
    /// write taskq), 1 to Pool.MaxCompressionThreads; 0 for one per processor. The bytes on disk are the
    /// same whatever the number.</summary>
    public int CompressionThreads { get; init; }
}

/// <summary>What a walk of the whole tree found (Scrub).</summary>
public readonly record struct ScrubResult(long BlocksExamined, long BytesExamined, long Errors);

public sealed partial class Pool : IDisposable
{
    public const int SectorSize = 512;
    public const int MaxBlockSize = 128 * 1024;
    public const long MinVdevSize = 64L * 1024 * 1024;   // SPA_MINDEVSIZE

    private PoolConfig _config;
    private readonly TopVdev[] _tops;
    private readonly Func<long> _clock;
    private readonly List<(int Vdev, long Offset, int Size)> _pendingFrees = [];
    private readonly Stack<byte[]> _buffers = new();
    private readonly byte[] _uberblockSlot = new byte[VdevLabel.UberblockSize];
    // A raidz1 block's data columns side by side: up to one sector per column more than a block.
    private readonly byte[] _raidzColumns = new byte[MaxBlockSize + 16 * SectorSize];
    private readonly BlockCompressor _compressor = new();
    private readonly byte[] _compressed = new byte[MaxBlockSize];   // a block being written compressed
    private readonly byte[] _physical = new byte[MaxBlockSize];     // a compressed block being read
    private readonly byte[] _uncached = new byte[MaxBlockSize];     // a block read when the cache cannot hold it
    private readonly Stack<ObjectTree.Indirect> _indirects = new();
    private int _rotor;
    private StorageResult _suspended = StorageResult.Success;
    private bool _disposed;
    private bool _replayingLogs;   // Open is replaying intent logs: nothing is placed at write (rule 12)
    private readonly BlockPointer[] _placedWhole = new BlockPointer[BatchSize];   // PlaceWhole's pointers, one array per pool, not per object

    private Pool(PoolConfig config, TopVdev[] tops, PoolOptions options, long txg)
    {
        _config = config; _tops = tops; _clock = options.Clock; Txg = txg;
        OpenedAt = _clock();
        Cache = new BlockCache(options.CacheSize);
        _compressionThreads = options.CompressionThreads == 0 ? Math.Min(Environment.ProcessorCount, MaxCompressionThreads) : options.CompressionThreads;
        MosOwner = new MosOwner(this);
        Objects = new ObjectSet(this, MosOwner) { Compression = options.Compression };
        Datasets = new DatasetTree(this);
        Probes = options.Probes is null ? StorageProbes.None : StorageProbes.For(options.Probes);
    }

    /// <summary>The io and zfs probes this pool fires (StorageProbes.cs).</summary>
    internal StorageProbes Probes { get; }

    /// <summary>A leaf read at an offset of its file, through the io probes when one is enabled.</summary>
    internal int LeafRead(LeafVdev leaf, long offset, Span<byte> destination) =>
        Probes.IoEnabled ? Probes.Read(this, leaf, offset, destination) : leaf.Io.Read(offset, destination);

    /// <summary>A leaf write at an offset of its file, through the io probes when one is enabled.</summary>
    internal void LeafWrite(LeafVdev leaf, long offset, ReadOnlySpan<byte> source)
    {
        if (Probes.IoEnabled) Probes.Write(this, leaf, offset, source);
        else leaf.Io.Write(offset, source);
    }

    public string Name => _config.PoolName;
    public ulong Guid => _config.PoolGuid;
    public ChecksumKind Checksum => _config.Checksum;
    public int Copies => _config.Copies;
    public IReadOnlyList<TopVdev> Vdevs => _tops;
    /// <summary>The vdev tree and settings the labels carry (Pool.Admin.cs rewrites it).</summary>
    public PoolConfig Config => _config;

    /// <summary>The pool-wide meta object set (MOS): pool-level objects, the dataset directory and dead lists.</summary>
    public ObjectSet Objects { get; }

    /// <summary>The datasets of the pool: filesystems, volumes, snapshots and clones (Dsl.cs).</summary>
    public DatasetTree Datasets { get; }

    internal BlockOwner MosOwner { get; }

    /// <summary>The block cache (rule 11); its counters are the arcstats kstat's.</summary>
    public BlockCache Cache { get; }

    /// <summary>Logical bytes of every block the pool holds (lsize summed; compressratio's numerator, rule 10).</summary>
    public long LogicalBytes { get; private set; }

    /// <summary>Physical bytes of every block the pool holds (psize summed, one copy; compressratio's denominator).</summary>
    public long PhysicalBytes { get; private set; }

    /// <summary>Blocks written since open: by commits, and by writes that place whole blocks (rule 12).</summary>
    public long BlocksWritten { get; private set; }

    /// <summary>When the pool was created or opened, by the caller's clock (`zpool iostat` averages since).</summary>
    public long OpenedAt { get; }

    /// <summary>The last committed txg.</summary>
    public long Txg { get; private set; }

    /// <summary>Reads that failed on every copy (the "errors:" line of `zpool status`).</summary>
    public long DataErrors { get; private set; }

    /// <summary>Why the pool is suspended (rule 8), or Success.</summary>
    public StorageResult Suspended => _suspended;

    public long Allocated { get { long n = 0; foreach (var t in _tops) n += t.Space.Allocated; return n; } }

    public long Size { get { long n = 0; foreach (var t in _tops) n += t.Space.Capacity; return n; } }

    /// <summary>
    /// Creates the files of a new pool in dir (each of vdevSize bytes; none may exist yet), writes
    /// their labels and commits txg 1, an empty object set.
    /// </summary>
    public static StorageResult Create(string dir, string name, IReadOnlyList<VdevSpec> layout, long vdevSize,
                                       PoolOptions options, out Pool? pool)
        => CreateCore(dir, name, layout, vdevSize, existing: false, options, out pool);

    /// <summary>
    /// Creates a pool on files that exist already in dir, as `zpool create` does on files made by
    /// mkfile: the smallest file sets the data area of every top vdev; each file keeps its size, its
    /// back label at its end. Whether a file belongs to another pool is the caller's question (the
    /// command refuses an active pool's vdev, and an exported one's without -f).
    /// </summary>
    public static StorageResult CreateOnFiles(string dir, string name, IReadOnlyList<VdevSpec> layout, PoolOptions options, out Pool? pool)
    {
        long smallest = long.MaxValue;
        foreach (var spec in layout)
            foreach (var file in spec.Files)
            {
                var info = new FileInfo(Path.Combine(dir, file));
                if (!info.Exists) { pool = null; return new StorageResult(StorageStatus.NoSuchObject, $"cannot open '{Path.Combine(dir, file)}'"); }
                smallest = Math.Min(smallest, info.Length);
            }
        return CreateCore(dir, name, layout, smallest == long.MaxValue ? 0 : smallest, existing: true, options, out pool);
    }

    private static StorageResult CreateCore(string dir, string name, IReadOnlyList<VdevSpec> layout, long vdevSize, bool existing,
                                            PoolOptions options, out Pool? pool)
    {
        pool = null;
        string what = $"cannot create '{name}'";
        if (!IsValidName(name)) return new StorageResult(StorageStatus.InvalidArgument, what + ": invalid pool name");
        if (options.Copies is < 1 or > BlockPointer.MaxCopies) return new StorageResult(StorageStatus.InvalidArgument, what + ": copies must be 1, 2 or 3");
        if (!Enum.IsDefined(options.Checksum)) return new StorageResult(StorageStatus.InvalidArgument, what + ": unknown checksum");
        if (options.Random is null) return new StorageResult(StorageStatus.InvalidArgument, what + ": no random source for guids");
        if (CheckOptions(options, what) is { IsOk: false } bad) return bad;
        if (layout.Count == 0) return new StorageResult(StorageStatus.InvalidConfig, what + ": no vdevs given");
        if (vdevSize < MinVdevSize) return new StorageResult(StorageStatus.InvalidConfig, $"{what}: one or more devices is less than the minimum size ({MinVdevSize / (1024 * 1024)}M)");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var spec in layout)
        {
            if (spec.Kind == VdevKind.Disk && spec.Files.Count != 1) return new StorageResult(StorageStatus.InvalidConfig, what + ": a disk vdev is one file");
            if (spec.Kind == VdevKind.Mirror && spec.Files.Count < 2) return new StorageResult(StorageStatus.InvalidConfig, what + ": a mirror needs at least two files");
            if (spec.Kind == VdevKind.Raidz1 && spec.Files.Count < 2) return new StorageResult(StorageStatus.InvalidConfig, what + ": a raidz1 needs at least two files");
            if (spec.Files.Count > 16) return new StorageResult(StorageStatus.InvalidConfig, what + ": too many files in one vdev");
            foreach (var file in spec.Files)
            {
                if (file.Length == 0 || file != Path.GetFileName(file)) return new StorageResult(StorageStatus.InvalidConfig, $"{what}: '{file}' is not a file name in the pool directory");
                if (!names.Add(file)) return new StorageResult(StorageStatus.InvalidConfig, $"{what}: '{file}' is named twice");
                if (!existing && File.Exists(Path.Combine(dir, file))) return new StorageResult(StorageStatus.PoolExists, $"{what}: '{file}' already exists");
            }
        }
        if (!existing)
        {
            var found = Import(dir, options.Opener);
            foreach (var candidate in found.Pools)
                if (candidate.Name == name) return new StorageResult(StorageStatus.PoolExists, what);
        }

        long dataSize = (vdevSize - 2L * VdevLabel.LabelSize) / SectorSize * SectorSize;
        ulong poolGuid = options.Random.NextUInt64();
        var topConfigs = new List<TopConfig>();
        foreach (var spec in layout)
        {
            var leaves = new List<LeafConfig>();
            foreach (var file in spec.Files) leaves.Add(new LeafConfig(options.Random.NextUInt64(), file));
            topConfigs.Add(new TopConfig(spec.Kind, options.Random.NextUInt64(), dataSize, leaves));
        }
        var config = new PoolConfig(name, poolGuid, 1, 0, options.Copies, options.Checksum, topConfigs);
        var created = new List<string>();
        var tops = new List<TopVdev>();
        try
        {
            Directory.CreateDirectory(dir);
            if (!existing)
                foreach (var top in topConfigs)
                    foreach (var leaf in top.Leaves)
                    {
                        string path = Path.Combine(dir, leaf.FileName);
                        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write)) fs.SetLength(dataSize + 2L * VdevLabel.LabelSize);
                        created.Add(path);
                    }
            tops = OpenTops(dir, config, null, options.Opener);
            var newPool = new Pool(config, [.. tops], options, 0);
            newPool.WriteLabels(config);
            newPool.Datasets.CreateRoot();
            var result = newPool.CommitTxg(force: true);
            if (!result.IsOk)
            {
                if (existing) newPool.ClearLabels();
                newPool.Dispose();
                DeleteAll(created);
                return result;
            }
            pool = newPool;
            return StorageResult.Success;
        }
        catch (IOException e)
        {
            foreach (var top in tops) foreach (var leaf in top.Leaves) leaf.Io.Dispose();
            DeleteAll(created);
            return new StorageResult(StorageStatus.IoError, $"{what}: {e.Message}");
        }
    }

    /// <summary>
    /// Opens the pool called name from the files in dir at its newest valid uberblock, and rebuilds
    /// the space maps by walking its tree (rule 6).
    /// </summary>
    public static StorageResult Open(string dir, string name, PoolOptions options, out Pool? pool)
    {
        pool = null;
        string what = $"cannot import '{name}'";
        if (CheckOptions(options, what) is { IsOk: false } bad) return bad;
        var scan = Import(dir, options.Opener);
        ImportCandidate? candidate = null;
        foreach (var found in scan.Pools)
        {
            if (found.Name != name) continue;
            if (candidate is not null) return new StorageResult(StorageStatus.InvalidArgument, $"{what}: more than one matching pool");
            candidate = found;
        }
        if (candidate is null)
        {
            foreach (var (file, problem) in scan.Damaged)
                return new StorageResult(StorageStatus.LabelDamaged, $"{what}: no such pool available ({Path.GetFileName(file)}: {problem})");
            return new StorageResult(StorageStatus.NoSuchPool, what);
        }
        // A leaf may be missing while its top vdev still holds every block (DEGRADED, Pool.Admin.cs).
        if (candidate.State == "UNAVAIL" && candidate.Missing.Count > 0)
            return new StorageResult(StorageStatus.DeviceUnavailable, $"{what}: missing {string.Join(", ", candidate.Missing)}");
        if (candidate.Uberblock is not Uberblock ub)
            return new StorageResult(StorageStatus.NoValidUberblock, what);

        List<TopVdev> tops;
        try { tops = OpenTops(dir, candidate.Config, candidate.Paths, options.Opener); }
        catch (IOException e) { return new StorageResult(StorageStatus.IoError, $"{what}: {e.Message}"); }
        var opened = new Pool(candidate.Config with { LeafGuid = 0 }, [.. tops], options, ub.Txg);
        var load = opened.Objects.Load(ub.MetaDnode);
        if (load.IsOk) load = opened.Datasets.Load();
        bool replayed = false;
        // Nothing is placed while logs replay (rule 12): a later block of a chain is not claimed yet.
        opened._replayingLogs = true;
        if (load.IsOk) load = opened.Datasets.ReplayLogs(out replayed);
        opened._replayingLogs = false;
        if (!load.IsOk)
        {
            opened.Dispose();
            return new StorageResult(StorageStatus.MetadataCorrupted, $"{what}: {load.Message}");
        }
        if (replayed)
        {
            // The replayed changes, the headers emptied and the chains freed, in one txg (IntentLog.cs L4).
            var committed = opened.Commit();
            if (!committed.IsOk) { opened.Dispose(); return new StorageResult(committed.Status, $"{what}: {committed.Message}"); }
        }
        if (opened._config.Exported)
        {
            // Imported again: active from now on, in the labels too.
            opened._config = opened._config with { Exported = false };
            var rewrite = opened.RewriteTree();
            if (!rewrite.IsOk) { opened.Dispose(); return rewrite; }
        }
        pool = opened;
        return StorageResult.Success;
    }

    /// <summary>Commits the changes since the last commit as txg Txg+1 (rule 5); nothing to do if clean.</summary>
    public StorageResult Commit() => CommitTxg(force: false);

    /// <summary>Commits, marks the labels exported, then closes the files (`zpool export`).</summary>
    public StorageResult Export()
    {
        var result = Commit();
        if (result.IsOk)
        {
            _config = _config with { Exported = true };
            result = RewriteTree();
        }
        Dispose();
        return result;
    }

    /// <summary>`zpool destroy`: clears every leaf's labels, so no import finds the pool, and closes the files.</summary>
    public void Destroy()
    {
        foreach (var top in _tops) foreach (var leaf in top.Leaves) ClearLabels(leaf);
        Dispose();
    }

    /// <summary>Sets the `comment` property, kept in the labels.</summary>
    public StorageResult SetComment(string comment)
    {
        var result = Commit();
        if (!result.IsOk) return result;
        _config = _config with { Comment = comment };
        return RewriteTree();
    }

    /// <summary>False once exported, destroyed or disposed: its files are closed.</summary>
    public bool IsOpen => !_disposed;

    /// <summary>Closes the files without committing: uncommitted changes are lost, as in a crash.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _workers?.Dispose();
        foreach (var top in _tops) foreach (var leaf in top.Leaves) leaf.Io.Dispose();
    }

    /// <summary>Reads every block of the committed tree and the uncommitted one, verifying and repairing (rule 3).</summary>
    public ScrubResult Scrub()
    {
        long start = _clock(), before = RepairedBytes();
        var result = ScrubAll();
        LastScan = new ScanRecord(ScanKind.Scrub, start, _clock(), RepairedBytes() - before, result.Errors);
        return result;
    }

    /// <summary>Reads every block the pool holds: the MOS's, then every dataset's (a scrub, and a resilver's walk).</summary>
    private ScrubResult ScrubAll()
    {
        var mos = Objects.Scrub();
        var datasets = Datasets.Scrub();
        return new ScrubResult(mos.BlocksExamined + datasets.BlocksExamined, mos.BytesExamined + datasets.BytesExamined,
                               mos.Errors + datasets.Errors);
    }

    private long RepairedBytes()
    {
        long n = 0;
        foreach (var top in _tops) foreach (var leaf in top.Leaves) n += leaf.RepairedBytes;
        return n;
    }

    internal StorageResult CommitTxg(bool force)
    {
        Dnode meta;
        if (!_suspended.IsOk) return _suspended;
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!force && !Objects.IsDirty && !Datasets.IsDirty) return StorageResult.Success;
        long txg = Txg + 1;
        if (Probes.TxgSyncing.Enabled) Probes.FireTxg(Probes.TxgSyncing, this, txg);
        // Datasets first: their root blocks, dead lists and directory are objects of the MOS.
        var synced = Datasets.Sync(txg);
        if (synced.IsOk) synced = Objects.Sync(txg, out meta);
        else meta = default;
        if (!synced.IsOk) return Suspend(synced);
        if (!FlushAll()) return Suspend(new StorageResult(StorageStatus.IoError, $"pool '{Name}': flush failed on every vdev"));
        var ub = new Uberblock(txg, _config.GuidSum(), _clock(), Guid, meta);
        VdevLabel.EncodeUberblock(ub, _uberblockSlot);
        long slotOffset = VdevLabel.RingOffset + (txg % VdevLabel.RingSlots) * VdevLabel.UberblockSize;
        int written = 0;
        for (int label = 0; label < 2; label++)
        {
            foreach (var top in _tops)
                foreach (var leaf in top.Leaves)
                {
                    if (!leaf.Writable) continue;
                    try { LeafWrite(leaf, VdevLabel.LabelOffset(label, leaf.Length) + slotOffset, _uberblockSlot); written++; }
                    catch (IOException) { leaf.WriteErrors++; }
                }
            if (!FlushAll()) return Suspend(new StorageResult(StorageStatus.IoError, $"pool '{Name}': flush failed on every vdev"));
        }
        if (written == 0) return Suspend(new StorageResult(StorageStatus.IoError, $"pool '{Name}': no uberblock could be written"));
        Txg = txg;
        if (Probes.TxgSynced.Enabled) Probes.FireTxg(Probes.TxgSynced, this, txg);
        foreach (var (vdev, offset, size) in _pendingFrees) _tops[vdev].Space.Free(offset, size);
        _pendingFrees.Clear();
        return StorageResult.Success;
    }

    private StorageResult Suspend(StorageResult why)
    {
        _suspended = why;
        return why;
    }

    private bool FlushAll()
    {
        bool any = false;
        foreach (var top in _tops)
            foreach (var leaf in top.Leaves)
            {
                if (!leaf.Writable) continue;
                try { leaf.Io.Flush(); any = true; }
                catch (IOException) { leaf.WriteErrors++; }
            }
        return any;
    }

    private static StorageResult CheckOptions(PoolOptions options, string what)
    {
        if (!options.Compression.IsValid) return new StorageResult(StorageStatus.InvalidArgument, what + ": invalid compression");
        if (options.CacheSize < 0) return new StorageResult(StorageStatus.InvalidArgument, what + ": cache size must not be negative");
        if (options.CompressionThreads is < 0 or > MaxCompressionThreads)
            return new StorageResult(StorageStatus.InvalidArgument, $"{what}: compression threads must be 0 to {MaxCompressionThreads}");
        return StorageResult.Success;
    }


    private static List<TopVdev> OpenTops(string dir, PoolConfig config, IReadOnlyDictionary<ulong, string>? paths, VdevOpener opener)
    {
        var tops = new List<TopVdev>();
        try
        {
            for (int t = 0; t < config.Tops.Count; t++)
            {
                var tc = config.Tops[t];
                var leaves = new LeafVdev[tc.Leaves.Count];
                for (int l = 0; l < leaves.Length; l++)
                {
                    var lc = tc.Leaves[l];
                    string? path = paths is null ? Path.Combine(dir, lc.FileName) : paths.GetValueOrDefault(lc.Guid);
                    if (path is null)
                    {
                        // Missing at import: UNAVAIL, its place kept so an online can bring it back.
                        leaves[l] = new LeafVdev(lc.Guid, Path.Combine(dir, lc.FileName), MissingVdevIo.Instance, tc.DataSize + 2L * VdevLabel.LabelSize, LeafState.Unavail);
                        continue;
                    }
                    leaves[l] = new LeafVdev(lc.Guid, path, opener(path, writable: true), new FileInfo(path).Length,
                                             lc.Offline ? LeafState.Offline : LeafState.Online);
                }
                tops.Add(new TopVdev(t, tc.Guid, tc.Kind, tc.DataSize, leaves));
            }
            return tops;
        }
        catch (IOException)
        {
            foreach (var top in tops) foreach (var leaf in top.Leaves) leaf.Io.Dispose();
            throw;
        }
    }

    private static void DeleteAll(List<string> files)
    {
        foreach (var f in files) File.Delete(f);
    }

    /// <summary>zpool's name rule: a letter first, then letters, digits, '_', '-', '.', ':'; not a vdev type.</summary>
    public static bool IsValidName(string name)
    {
        if (name.Length is 0 or > 255 || !char.IsAsciiLetter(name[0])) return false;
        foreach (char c in name)
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '-' or '.' or ':')) return false;
        if (name is "mirror" or "raidz" or "draid" or "spare" or "log") return false;
        return !(name.StartsWith("mirror", StringComparison.Ordinal) || name.StartsWith("raidz", StringComparison.Ordinal)
                 || name.StartsWith("draid", StringComparison.Ordinal) || name.StartsWith("spare", StringComparison.Ordinal));
    }

    // ---- block I/O (rules 2, 3, 7) ----

    internal byte[] RentBuffer() => _buffers.Count > 0 ? _buffers.Pop() : new byte[MaxBlockSize];

    internal void ReturnBuffer(byte[] buffer)
    {
        Debug.Assert(buffer.Length == MaxBlockSize);
        _buffers.Push(buffer);
    }

    /// <summary>
    /// The size a block is stored with: its contents up to the last non-zero byte, rounded up to a
    /// sector (trailing zeros read back as zeros). 0 means all zeros: the block becomes a hole.
    /// </summary>
    internal static int StoredSize(ReadOnlySpan<byte> block)
    {
        int last = block.LastIndexOfAnyExcept((byte)0);
        return last < 0 ? 0 : (last + SectorSize) / SectorSize * SectorSize;
    }

    /// <summary>
    /// Writes block as a new block to Copies DVAs, never over a live block: trimmed to its last non-zero
    /// sector (its logical size), compressed when that saves an eighth (rule 10), checksummed as stored
    /// (with checksum, the dataset's property, or the pool's). An all-zero block is not written: bp is a hole.
    /// </summary>
    internal StorageResult WriteBlock(ReadOnlySpan<byte> block, BlockType type, byte level, long txg, CompressionSetting compression,
                                      out BlockPointer bp, ChecksumKind? checksum = null)
    {
        Debug.Assert(block.Length <= MaxBlockSize && compression.IsValid);
        var kind = checksum ?? _config.Checksum;
        var prepared = Prepare(block, compression, kind, _compressor, _compressed);
        return Place(block, prepared, _compressed, type, level, txg, out bp);
    }

    /// <summary>
    /// Whether whole data blocks written with compression and checksum are placed as they are written
    /// (rule 12): stored uncompressed with fletcher4 (whatever the thread count, so the bytes do not
    /// depend on it), the pool not suspended nor replaying logs, and every leaf online and not
    /// resilvering, so a block written now reaches every leaf a commit would write it to, and no
    /// resilver or online walks the tree before it is linked.
    /// </summary>
    internal bool PlacesAtWrite(CompressionSetting compression, ChecksumKind? checksum)
    {
        if (compression.Algorithm != CompressionAlgorithm.Off || (checksum ?? _config.Checksum) != ChecksumKind.Fletcher4) return false;
        if (!_suspended.IsOk || _disposed || _replayingLogs) return false;
        foreach (var top in _tops)
            for (int l = 0; l < top.Leaves.Count; l++)   // indexed: an interface's enumerator is an allocation (rule 7)
                if (top.Leaves[l] is { State: not LeafState.Online } or { Resilvering: true }) return false;
        return true;
    }

    /// <summary>
    /// Places whole data blocks at once (rule 12): blocks holds up to BatchSize blocks of MaxBlockSize
    /// bytes, each trimmed and checksummed and written as a block of the open txg, its pointer in
    /// placed (the pool's, valid until the next call). Returns how many were placed, in order: fewer
    /// when one could not be (no space, no copy written), which the caller then keeps as a dirty
    /// block for the commit, as it would have without this.
    /// </summary>
    internal int PlaceWhole(ReadOnlySpan<byte> blocks, CompressionSetting compression, ChecksumKind? checksum, out ReadOnlySpan<BlockPointer> placed)
    {
        int count = blocks.Length / MaxBlockSize;
        Debug.Assert(count <= BatchSize && blocks.Length == count * MaxBlockSize && !BatchRunning);
        placed = _placedWhole;
        Span<BlockPointer> bps = _placedWhole;
        long txg = Txg + 1;
        for (int i = 0; i < count; i++)
            if (!WriteBlock(blocks.Slice(i * MaxBlockSize, MaxBlockSize), BlockType.Data, 0, txg, compression, out bps[i], checksum).IsOk) return i;
        return count;
    }

    /// <summary>
    /// Frees at once a block PlaceWhole placed that no pointer has taken (rule 12: it was overwritten,
    /// freed or deleted in the txg that wrote it): no uberblock reaches it, so its space is free now,
    /// not after a commit as a replaced committed block's is (rule 6).
    /// </summary>
    internal void Unplace(in BlockPointer bp)
    {
        if (bp.IsHole) return;
        Debug.Assert(bp.BirthTxg == Txg + 1, "only a block of the open txg can be taken back");
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            _tops[dva.Vdev].Space.Free(dva.Offset, _tops[dva.Vdev].AllocSize(bp.PhysicalSize));
        }
        LogicalBytes -= bp.LogicalSize;
        PhysicalBytes -= bp.PhysicalSize;
        // Its address and birth may be placed again in this txg: no cache entry may answer for both.
        Cache.Remove(bp);
    }

    /// <summary>What a block becomes before it is placed (rule 10): its trimmed logical size, the bytes
    /// it is stored as (the logical bytes, or compressed ones in the caller's output buffer) and their checksum.</summary>
    internal struct PreparedBlock
    {
        public int LogicalSize;
        public int DataLength;
        public byte Function;
        public bool Compressed;
        public ChecksumKind Kind;
        public BlockChecksum Sum;
    }

    /// <summary>
    /// Trims, compresses and checksums a block (rule 10) with the compressor and output buffer given:
    /// a pure function of its inputs, so that several threads may prepare a txg's blocks at once
    /// (Pool.Compress.cs) and the bytes stored do not depend on which thread did it.
    /// </summary>
    internal static PreparedBlock Prepare(ReadOnlySpan<byte> block, CompressionSetting compression, ChecksumKind kind,
                                          BlockCompressor compressor, byte[] output)
    {
        var p = new PreparedBlock { Kind = kind, Function = CompressionSetting.FunctionOff };
        int lsize = StoredSize(block);
        p.LogicalSize = lsize;
        if (lsize == 0) return p;
        var logical = block[..lsize];
        ReadOnlySpan<byte> data = logical;
        if (compression.Algorithm != CompressionAlgorithm.Off)
        {
            // ZFS's rule: stored compressed only if the sectors it takes save at least one eighth.
            int limit = lsize - lsize / 8;
            int n = compressor.Compress(compression, logical, output, limit);
            int psize = (n + SectorSize - 1) / SectorSize * SectorSize;
            if (n > 0 && psize <= limit)
            {
                output.AsSpan(n, psize - n).Clear();
                data = output.AsSpan(0, psize);
                p.Function = compression.Function;
                p.Compressed = true;
            }
        }
        p.DataLength = data.Length;
        p.Sum = Storage.Checksum.Compute(kind, data);
        return p;
    }

    /// <summary>Allocates and writes a prepared block (its logical bytes in block, its compressed ones in
    /// compressed when it is stored so): the order of calls decides where blocks land, one thread only.</summary>
    private StorageResult Place(ReadOnlySpan<byte> block, in PreparedBlock prepared, byte[] compressed, BlockType type, byte level, long txg,
                                out BlockPointer bp)
    {
        bp = default;
        int lsize = prepared.LogicalSize;
        if (lsize == 0) return StorageResult.Success;
        var logical = block[..lsize];
        ReadOnlySpan<byte> data = prepared.Compressed ? compressed.AsSpan(0, prepared.DataLength) : logical;
        byte function = prepared.Function;
        var kind = prepared.Kind;
        var sum = prepared.Sum;
        Span<Dva> dvas = stackalloc Dva[BlockPointer.MaxCopies];
        int copies = _config.Copies;
        if (!PlaceCopies(data.Length, dvas[..copies])) return new StorageResult(StorageStatus.NoSpace, $"pool '{Name}'");
        int good = 0;
        for (int c = 0; c < copies; c++)
            if (WriteCopy(_tops[dvas[c].Vdev], dvas[c].Offset, data, -1, repair: false)) good++;
        if (good == 0)
        {
            for (int c = 0; c < copies; c++) _tops[dvas[c].Vdev].Space.Free(dvas[c].Offset, _tops[dvas[c].Vdev].AllocSize(data.Length));
            return new StorageResult(StorageStatus.IoError, $"pool '{Name}': no copy of a block could be written");
        }
        bp = new BlockPointer(dvas[0], dvas[1], dvas[2], (byte)copies, data.Length, lsize, function, kind, type, level, txg, sum);
        LogicalBytes += lsize;
        PhysicalBytes += data.Length;
        BlocksWritten++;
        // Written blocks go to the cache, as in the ARC: the next txg's indirect blocks come from here.
        // Data blocks only into room the cache has, never by evicting, and first in line to be evicted
        // (rule 11): a long write goes around a full cache instead of copying every block into it and
        // pushing out what was read.
        bool dataBlock = type == BlockType.Data;
        if ((dataBlock ? Cache.ReserveFree(lsize) : Cache.Reserve(lsize)) is { } entry)
        {
            logical.CopyTo(entry.Buffer);
            Cache.Insert(bp, entry, lsize, oldest: dataBlock);
        }
        return StorageResult.Success;
    }

    /// <summary>
    /// Writes one copy of a block at offset of a top vdev, to the leaves in leafMask: the same bytes to
    /// every leaf of a disk or mirror, columns and parity to a raidz1. False if no leaf took it.
    /// </summary>
    private bool WriteCopy(TopVdev top, long offset, ReadOnlySpan<byte> data, int leafMask, bool repair)
    {
        if (top.Kind == VdevKind.Raidz1) return WriteRaidz(top, offset, data, leafMask, repair);
        bool any = false;
        for (int l = 0; l < top.Leaves.Count; l++)
        {
            if ((leafMask & (1 << l)) == 0) continue;
            var leaf = top.Leaves[l];
            if (!leaf.Writable) continue;
            try
            {
                LeafWrite(leaf, VdevLabel.LabelSize + offset, data);
                leaf.WriteOps++; leaf.WriteBytes += data.Length;
                if (repair && leaf.Resilvering) leaf.ResilveredBytes += data.Length;
                else if (repair) leaf.RepairedBytes += data.Length;
                any = true;
            }
            catch (IOException) { leaf.WriteErrors++; }
        }
        return any;
    }

    /// <summary>
    /// A block's logical contents (bp.LogicalSize bytes) through the cache (rule 11): block is the
    /// cache's buffer, or the pool's scratch one when the cache cannot hold it, valid until the next
    /// call into the pool. Verified and decompressed; on failure the status says why.
    /// </summary>
    internal StorageStatus ReadCached(in BlockPointer bp, out byte[] block)
    {
        Debug.Assert(!bp.IsHole);
        if (Cache.TryGet(bp, out block))
        {
            if (Probes.ArcHit.Enabled) Probes.FireArc(Probes.ArcHit, this, bp);
            return StorageStatus.Ok;
        }
        if (Probes.ArcMiss.Enabled) Probes.FireArc(Probes.ArcMiss, this, bp);
        var entry = Cache.Reserve(bp.LogicalSize);
        block = entry?.Buffer ?? _uncached;
        var status = ReadLogical(bp, block);
        if (entry is null) return status;
        if (status == StorageStatus.Ok) Cache.Insert(bp, entry, bp.LogicalSize);
        else Cache.Release(entry);
        return status;
    }

    /// <summary>Reads a block's logical contents into destination (at least LogicalSize bytes): verified, healed, decompressed.</summary>
    internal StorageStatus ReadLogical(in BlockPointer bp, Span<byte> destination)
    {
        if (!bp.IsCompressed) return ReadBlock(bp, destination);
        var status = ReadBlock(bp, _physical);
        if (status != StorageStatus.Ok) { destination.Clear(); return status; }
        return Decompress(bp, _physical, destination);
    }

    /// <summary>
    /// Decompresses a verified block (rule 10). A block whose checksum passed but that does not
    /// decompress to its logical size is an I/O error, counted like a read that failed on every copy.
    /// </summary>
    internal StorageStatus Decompress(in BlockPointer bp, byte[] physical, Span<byte> destination)
    {
        if (_compressor.Decompress(bp.Compression, physical, bp.PhysicalSize, destination[..bp.LogicalSize])) return StorageStatus.Ok;
        destination.Clear();
        DataErrors++;
        return StorageStatus.IoError;
    }

    internal ObjectTree.Indirect RentIndirect()
    {
        if (_indirects.Count == 0) return new ObjectTree.Indirect();
        var indirect = _indirects.Pop();
        Array.Clear(indirect.Pointers);
        indirect.Dirty = false;
        return indirect;
    }

    /// <summary>Keeps a few parsed indirect blocks for reuse; the rest go (their contents stay in the cache).</summary>
    internal void ReturnIndirect(ObjectTree.Indirect indirect)
    {
        if (_indirects.Count < 16) _indirects.Push(indirect);
    }

    /// <summary>
    /// Reads a block as stored into destination (at least PhysicalSize bytes), verifying it and healing
    /// bad copies (rule 3). On failure destination is cleared.
    /// </summary>
    internal StorageStatus ReadBlock(in BlockPointer bp, Span<byte> destination)
    {
        if (bp.IsHole) { destination.Clear(); return StorageStatus.Ok; }
        var block = destination[..bp.PhysicalSize];
        // Bad copies seen before the good one: bit l of badLeaves[c] is leaf l of DVA c.
        Span<int> badLeaves = stackalloc int[BlockPointer.MaxCopies];
        bool sawChecksum = false;
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            if ((uint)dva.Vdev >= (uint)_tops.Length) continue;
            var top = _tops[dva.Vdev];
            if (dva.Offset + top.AllocSize(bp.PhysicalSize) > top.DataSize) continue;
            if (top.Kind == VdevKind.Raidz1)
            {
                var status = ReadRaidz(top, dva.Offset, bp, block, verifyParity: false);
                if (status == StorageStatus.Ok) { Heal(bp, block, badLeaves); return StorageStatus.Ok; }
                badLeaves[c] = -1;
                sawChecksum |= status == StorageStatus.ChecksumError;
                continue;
            }
            for (int l = 0; l < top.Leaves.Count; l++)
            {
                if (!top.Leaves[l].Readable) continue;   // healed by a resilver or an online, not here
                var status = ReadLeafCopy(top.Leaves[l], dva.Offset, bp, block);
                if (status != StorageStatus.Ok)
                {
                    badLeaves[c] |= 1 << l;
                    sawChecksum |= status == StorageStatus.ChecksumError;
                    continue;
                }
                Heal(bp, block, badLeaves);
                return StorageStatus.Ok;
            }
        }
        destination.Clear();
        DataErrors++;
        return sawChecksum ? StorageStatus.ChecksumError : StorageStatus.IoError;
    }

    /// <summary>Allocates one copy of a block of <paramref name="size"/> bytes per entry of
    /// <paramref name="dvas"/>, each on the next top-level vdev from the rotor that has room, and moves
    /// the rotor on; false, with nothing kept allocated, if some copy finds no room.</summary>
    internal bool PlaceCopies(int size, Span<Dva> dvas)
    {
        for (int c = 0; c < dvas.Length; c++)
        {
            bool placed = false;
            for (int k = 0; k < _tops.Length && !placed; k++)
            {
                int t = (_rotor + c + k) % _tops.Length;
                if (_tops[t].Space.TryAllocate(_tops[t].AllocSize(size), out long offset)) { dvas[c] = new Dva(t, offset); placed = true; }
            }
            if (!placed)
            {
                for (int u = 0; u < c; u++) _tops[dvas[u].Vdev].Space.Free(dvas[u].Offset, _tops[dvas[u].Vdev].AllocSize(size));
                return false;
            }
        }
        _rotor = (_rotor + 1) % _tops.Length;
        return true;
    }

    /// <summary>Reads one leaf's copy of a block and verifies it against the block pointer: a short
    /// or failed read counts READ on the leaf, a wrong checksum counts CKSUM.</summary>
    private StorageStatus ReadLeafCopy(LeafVdev leaf, long offset, in BlockPointer bp, Span<byte> block)
    {
        int n;
        try { n = LeafRead(leaf, VdevLabel.LabelSize + offset, block); leaf.ReadOps++; leaf.ReadBytes += Math.Max(n, 0); }
        catch (IOException) { n = -1; }
        if (n != block.Length) { leaf.ReadErrors++; return StorageStatus.IoError; }
        if (!Verifies(bp, block)) { leaf.ChecksumErrors++; return StorageStatus.ChecksumError; }
        return StorageStatus.Ok;
    }

    /// <summary>
    /// Reads every copy of a block (every DVA, every side of a mirror), as a scrub must: a side that a
    /// normal read would never reach is still verified, and rewritten from a good copy when bad.
    /// </summary>
    internal StorageStatus ScrubBlock(in BlockPointer bp, byte[] good, byte[] scratch)
    {
        var status = ReadBlock(bp, good);
        if (status != StorageStatus.Ok || bp.IsHole) return status;
        var block = scratch.AsSpan(0, bp.PhysicalSize);
        Span<int> badLeaves = stackalloc int[BlockPointer.MaxCopies];
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            if ((uint)dva.Vdev >= (uint)_tops.Length) continue;
            var top = _tops[dva.Vdev];
            if (top.Kind == VdevKind.Raidz1)
            {
                if (ReadRaidz(top, dva.Offset, bp, block, verifyParity: true) != StorageStatus.Ok) badLeaves[c] = -1;
                continue;
            }
            for (int l = 0; l < top.Leaves.Count; l++)
            {
                var leaf = top.Leaves[l];
                if (leaf.Resilvering) { badLeaves[c] |= 1 << l; continue; }   // its copy is rebuilt, not judged
                if (!leaf.Readable) continue;
                if (ReadLeafCopy(leaf, dva.Offset, bp, block) != StorageStatus.Ok) badLeaves[c] |= 1 << l;
            }
        }
        Heal(bp, good.AsSpan(0, bp.PhysicalSize), badLeaves);
        return StorageStatus.Ok;
    }

    private void Heal(in BlockPointer bp, ReadOnlySpan<byte> good, ReadOnlySpan<int> badLeaves)
    {
        for (int c = 0; c < bp.Copies; c++)
        {
            if (badLeaves[c] == 0) continue;
            Dva dva = bp.GetDva(c);
            WriteCopy(_tops[dva.Vdev], dva.Offset, good, badLeaves[c], repair: true);
        }
    }

    /// <summary>The pool's clock (rule 1): dataset creation times come from here.</summary>
    internal long Now() => _clock();

    /// <summary>Space a block takes in the space maps: every copy's allocation (what `used` counts).</summary>
    internal long AllocatedSize(in BlockPointer bp)
    {
        long n = 0;
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            n += _tops[dva.Vdev].AllocSize(bp.PhysicalSize);
        }
        return n;
    }

    /// <summary>Frees a block once the current txg commits (rule 6).</summary>
    internal void FreeBlock(in BlockPointer bp)
    {
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            int size = _tops[dva.Vdev].AllocSize(bp.PhysicalSize);
            Debug.Assert(_tops[dva.Vdev].Space.IsAllocated(dva.Offset, size), "freeing a block that is not allocated");
            _pendingFrees.Add((dva.Vdev, dva.Offset, size));
        }
        LogicalBytes -= bp.LogicalSize;
        PhysicalBytes -= bp.PhysicalSize;
        Cache.Remove(bp);
    }

    /// <summary>Marks a committed block allocated while Open walks the tree; false if it is out of range or overlaps another.</summary>
    internal bool ClaimBlock(in BlockPointer bp)
    {
        for (int c = 0; c < bp.Copies; c++)
        {
            Dva dva = bp.GetDva(c);
            if ((uint)dva.Vdev >= (uint)_tops.Length || !_tops[dva.Vdev].Space.Claim(dva.Offset, _tops[dva.Vdev].AllocSize(bp.PhysicalSize))) return false;
        }
        LogicalBytes += bp.LogicalSize;
        PhysicalBytes += bp.PhysicalSize;
        return true;
    }
}
