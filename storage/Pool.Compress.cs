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
 *   C2. A batch is at most BatchSize blocks, in one of two sets of slots (4 MiB of outputs each, kept by
 *       the pool and reused: nothing is allocated per batch in steady state). The workers are threads
 *       of the pool's own, started by the first batch that runs in parallel when more than one is
 *       asked for, parked on a semaphore between batches and ended at Dispose. A batch runs in
 *       parallel only where there is work worth sharing: a compressed block, or a checksum other than
 *       fletcher4.
 *   C3. Pipelined: StartBatch hands a batch to the workers and returns; the pool's thread places the
 *       batch before it (in the other set of slots) meanwhile, then FinishBatch has it work on what is
 *       left of the new batch and wait until every block of it is prepared. A batch is placed only
 *       after its FinishBatch; at most one batch is with the workers; whoever starts one finishes it
 *       on every path, errors included (ObjectTree.Sync's finally), so no worker touches a buffer
 *       after the sync that lent it returns. The workers read only their batch's inputs (dirty
 *       buffers not yet placed, so not yet returned) and write only its outputs; placing reads only
 *       the other set's: no two threads touch the same bytes, and the bytes stored are the same.
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
    // Two sets of BatchSize slots (rule C3): set s is slots s*BatchSize .. s*BatchSize+BatchSize-1.
    private readonly byte[]?[] _batchInput = new byte[2 * BatchSize][];
    private readonly int[] _batchLength = new int[2 * BatchSize];
    private readonly CompressionSetting[] _batchSetting = new CompressionSetting[2 * BatchSize];
    private readonly PreparedBlock[] _batchPrepared = new PreparedBlock[2 * BatchSize];
    private readonly byte[]?[] _batchOutput = new byte[2 * BatchSize][];
    private readonly ChecksumKind[] _batchKind = new ChecksumKind[2 * BatchSize];

    /// <summary>Whether blocks written with compression and checksum are worth preparing on several threads (rule C2).</summary>
    internal bool PreparesInParallel(CompressionSetting compression, ChecksumKind? checksum) =>
        _compressionThreads > 1 && (compression.Algorithm != CompressionAlgorithm.Off || (checksum ?? _config.Checksum) != ChecksumKind.Fletcher4);

    /// <summary>Names slot i (of 2 * BatchSize) for the next batch: the first length bytes of block, stored with compression and checksum.</summary>
    internal void SetBatchBlock(int i, byte[] block, int length, CompressionSetting compression, ChecksumKind? checksum)
    {
        Debug.Assert(length <= MaxBlockSize && compression.IsValid && _workers?.Busy != true);
        _batchInput[i] = block;
        _batchLength[i] = length;
        _batchSetting[i] = compression;
        _batchKind[i] = checksum ?? _config.Checksum;
        _batchOutput[i] ??= new byte[MaxBlockSize];
    }

    /// <summary>Hands slots first..first+count-1 to the workers and returns at once (rule C3); FinishBatch must follow.</summary>
    internal void StartBatch(int first, int count)
    {
        Debug.Assert(count <= BatchSize && first + count <= 2 * BatchSize && _compressionThreads > 1);
        _workers ??= new CompressionWorkers(_compressionThreads);
        _workers.Start(this, first, count);
    }

    /// <summary>Works on what is left of the started batch on this thread and waits until all of it is prepared (rule C3).</summary>
    internal void FinishBatch() => _workers!.Finish();

    /// <summary>Whether a started batch has not been finished yet.</summary>
    internal bool BatchRunning => _workers?.Busy == true;

    /// <summary>One worker's share: slot i with that worker's compressor (called on any thread).</summary>
    internal void PrepareBatchBlock(int i, BlockCompressor compressor) =>
        _batchPrepared[i] = Prepare(_batchInput[i].AsSpan(0, _batchLength[i]), _batchSetting[i], _batchKind[i], compressor, _batchOutput[i]!);

    /// <summary>Places slot i of a finished batch (in the caller's order, on the pool's thread).</summary>
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
        private int _end, _next, _running;
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

        /// <summary>True from Start until Finish returns.</summary>
        public bool Busy { get; private set; }

        public void Start(Pool pool, int first, int count)
        {
            Debug.Assert(!Busy);
            Busy = true;
            _pool = pool; _end = first + count; _next = first; _failure = null;
            _running = _threads.Length;
            _done.Reset();
            _start.Release(_threads.Length);
        }

        public void Finish()
        {
            Debug.Assert(Busy);
            try
            {
                try { Work(_compressors[0]); }
                finally { _done.Wait(); }   // never leave a worker on the batch, even if this thread's share threw
            }
            finally
            {
                _pool = null;
                Busy = false;
            }
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
            var pool = _pool!;
            for (int i = Interlocked.Increment(ref _next) - 1; i < _end; i = Interlocked.Increment(ref _next) - 1)
                pool.PrepareBatchBlock(i, compressor);
        }

        public void Dispose()
        {
            _stopping = true;
            _start.Release(_threads.Length);
            foreach (var thread in _threads) thread.Join();
        }
    }
}
