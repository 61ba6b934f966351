/*
 * Compressing a txg's blocks on several threads (ZFS's zio write taskqs: compression and checksums
 * run in parallel in the pipeline's issue stage, allocation and I/O in order).
 *
 * Rules
 *   C1. Only the pure part of a write runs off the pool's thread: trimming, compressing and
 *       checksumming a block (Pool.Prepare), each on its own input and output buffer, with a
 *       compressor (lz4/zstd/gzip state) per worker. Placing (allocation, the rotor, the writes to
 *       the leaves, the cache, the counters) stays on the pool's thread, in the order the caller gives
 *       (ObjectTree.Sync: block id order), so Pool.cs rules 1 and 9 hold: the same calls give the same
 *       bytes in every file, whatever the number of threads (PoolOptions.CompressionThreads; a test
 *       compares the vdev files written with 1 and with 4).
 *   C2. A batch is at most BatchSize blocks (4 MiB of outputs, kept by the pool and reused: nothing is
 *       allocated per batch in steady state). The workers are threads of the pool's own, started by
 *       the first batch that runs in parallel when more than one is asked for, parked on a semaphore between batches and ended at
 *       Dispose; the pool's thread works on the batch too and returns only when every block of it is
 *       prepared. A batch runs in parallel only where there is work worth sharing: a compressed
 *       block, or a checksum other than fletcher4.
 */
using System.Diagnostics;

namespace SmartOS.Storage;

public sealed partial class Pool
{
    /// <summary>The most compression threads a pool takes (PoolOptions.CompressionThreads).</summary>
    public const int MaxCompressionThreads = 64;

    /// <summary>Blocks prepared together (rule C2).</summary>
    internal const int BatchSize = 32;

    private readonly int _compressionThreads;
    private CompressionWorkers? _workers;   // started by the first batch that runs in parallel
    private readonly byte[]?[] _batchInput = new byte[BatchSize][];
    private readonly int[] _batchLength = new int[BatchSize];
    private readonly CompressionSetting[] _batchSetting = new CompressionSetting[BatchSize];
    private readonly PreparedBlock[] _batchPrepared = new PreparedBlock[BatchSize];
    private readonly byte[]?[] _batchOutput = new byte[BatchSize][];
    private ChecksumKind _batchKind;

    /// <summary>Whether blocks written with compression and checksum are worth preparing on several threads (rule C2).</summary>
    internal bool PreparesInParallel(CompressionSetting compression, ChecksumKind? checksum) =>
        _compressionThreads > 1 && (compression.Algorithm != CompressionAlgorithm.Off || (checksum ?? _config.Checksum) != ChecksumKind.Fletcher4);

    /// <summary>Names block i of the next batch: its first length bytes, stored with compression.</summary>
    internal void SetBatchBlock(int i, byte[] block, int length, CompressionSetting compression)
    {
        Debug.Assert(length <= MaxBlockSize && compression.IsValid);
        _batchInput[i] = block;
        _batchLength[i] = length;
        _batchSetting[i] = compression;
    }

    /// <summary>Prepares blocks 0..count-1 of the batch on the workers and this thread (rule C1).</summary>
    internal void PrepareBatch(int count, ChecksumKind? checksum)
    {
        Debug.Assert(count <= BatchSize && _compressionThreads > 1);
        _workers ??= new CompressionWorkers(_compressionThreads);
        _batchKind = checksum ?? _config.Checksum;
        for (int i = 0; i < count; i++) _batchOutput[i] ??= new byte[MaxBlockSize];
        _workers!.Run(this, count);
    }

    /// <summary>One worker's share: block i with that worker's compressor (called on any thread).</summary>
    internal void PrepareBatchBlock(int i, BlockCompressor compressor) =>
        _batchPrepared[i] = Prepare(_batchInput[i].AsSpan(0, _batchLength[i]), _batchSetting[i], _batchKind, compressor, _batchOutput[i]!);

    /// <summary>Places block i of the prepared batch (in the caller's order, on the pool's thread).</summary>
    internal StorageResult WritePrepared(int i, BlockType type, byte level, long txg, out BlockPointer bp)
    {
        var result = Place(_batchInput[i].AsSpan(0, _batchLength[i]), _batchPrepared[i], _batchOutput[i]!, type, level, txg, out bp);
        _batchInput[i] = null;
        return result;
    }

    /// <summary>The pool's worker threads (rule C2): each with a compressor of its own.</summary>
    private sealed class CompressionWorkers : IDisposable
    {
        private readonly Thread[] _threads;
        private readonly BlockCompressor[] _compressors;
        private readonly SemaphoreSlim _start = new(0);
        private readonly ManualResetEventSlim _done = new(false);
        private Pool? _pool;
        private int _count, _next, _running;
        private Exception? _failure;
        private volatile bool _stopping;

        public CompressionWorkers(int threads)
        {
            _compressors = new BlockCompressor[threads];
            for (int i = 0; i < threads; i++) _compressors[i] = new BlockCompressor();
            _threads = new Thread[threads - 1];
            for (int i = 0; i < _threads.Length; i++)
            {
                int worker = i + 1;
                _threads[i] = new Thread(() => Loop(worker)) { IsBackground = true, Name = "pool compression " + worker };
                _threads[i].Start();
            }
        }

        public void Run(Pool pool, int count)
        {
            _pool = pool; _count = count; _next = 0; _failure = null;
            _running = _threads.Length;
            _done.Reset();
            _start.Release(_threads.Length);
            Work(_compressors[0]);
            _done.Wait();
            _pool = null;
            if (_failure is not null) throw new InvalidOperationException("a compression worker failed", _failure);
        }

        private void Loop(int worker)
        {
            while (true)
            {
                _start.Wait();
                if (_stopping) return;
                try { Work(_compressors[worker]); }
                catch (Exception e) { _failure = e; }
                if (Interlocked.Decrement(ref _running) == 0) _done.Set();
            }
        }

        private void Work(BlockCompressor compressor)
        {
            for (int i = Interlocked.Increment(ref _next) - 1; i < _count; i = Interlocked.Increment(ref _next) - 1)
                _pool!.PrepareBatchBlock(i, compressor);
        }

        public void Dispose()
        {
            _stopping = true;
            _start.Release(_threads.Length);
            foreach (var thread in _threads) thread.Join();
        }
    }
}
