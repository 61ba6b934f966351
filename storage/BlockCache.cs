using System.Diagnostics;
using System.Numerics;

namespace SmartOS.Storage;

/// <summary>Which block a cache entry holds: its first DVA and its birth txg (as the ARC's hash key).</summary>
internal readonly record struct BlockKey(int Vdev, long Offset, long Birth)
{
    public static BlockKey Of(in BlockPointer bp) => new(bp.Dva0.Vdev, bp.Dva0.Offset, bp.BirthTxg);
}

/// <summary>
/// The pool's bounded block cache (Pool.cs rule 11), a reduced ARC: the logical (decompressed,
/// verified) contents of data, indirect and dnode blocks, found by DVA and birth txg. A block read
/// once goes to the head of the MRU list; read again, to the head of the MFU list. To make room the
/// tail of MRU is evicted while MRU holds more than half the cache (or MFU is empty), else the tail of
/// MFU, so one pass over a large file cannot push out the indirect blocks and dnodes in use. Unlike
/// the ARC there are no ghost lists, so the split does not adapt.
///
/// Memory: every buffer is a power of two from 512 bytes to 128 KiB; Held counts every buffer the
/// cache keeps, in entries or waiting for reuse, and never exceeds MaxSize. An evicted entry keeps its
/// buffer for the next block of the same size, so a steady stream of same-sized blocks allocates
/// nothing. Entries are never stale: a block rewritten anywhere has a new birth txg, and a freed block
/// is dropped at once.
///
/// Writes: a data block just written enters only into room the cache has (ReserveFree: a kept buffer
/// of its size, or space under MaxSize), never by evicting, and as the oldest of MRU, so it is the
/// first to go when a read or a metadata block needs room; its first hit counts as its first read
/// (to the head of MRU, not MFU), so reading back what was just written does not make it look hot
/// and push out the blocks read twice. Indirect blocks and dnodes written enter
/// as a read does, since the next txg reads them back. So a long sequential write fills an empty
/// cache and then goes around it: it costs no copy per block and pushes out nothing that was read.
/// </summary>
public sealed class BlockCache
{
    private const int Buckets = 9;   // 512 B .. 128 KiB

    internal sealed class Entry
    {
        public BlockKey Key;
        public readonly byte[] Buffer;
        public int Length;
        public bool Frequent;
        public bool Written;   // put in by a write and not read since: its first hit is its first read
        public Entry? Prev, Next;

        public Entry(int size) => Buffer = new byte[size];
    }

    private readonly Dictionary<BlockKey, Entry> _map = [];
    private readonly Stack<Entry>[] _free = new Stack<Entry>[Buckets];
    private readonly Entry _mru = new(0), _mfu = new(0);   // list heads: Next is the newest, Prev the oldest

    internal BlockCache(long maxSize)
    {
        Debug.Assert(maxSize >= 0);
        MaxSize = maxSize;
        for (int b = 0; b < Buckets; b++) _free[b] = new Stack<Entry>();
        _mru.Next = _mru.Prev = _mru;
        _mfu.Next = _mfu.Prev = _mfu;
    }

    /// <summary>The most the cache may hold, in bytes (PoolOptions.CacheSize).</summary>
    public long MaxSize { get; }

    /// <summary>Bytes of buffers the cache holds, in entries or kept for reuse; never more than MaxSize.</summary>
    public long Held { get; private set; }

    /// <summary>Bytes of buffers holding cached blocks (the ARC's size).</summary>
    public long Size { get; private set; }

    public long MruSize { get; private set; }
    public long MfuSize { get; private set; }
    public int Count => _map.Count;
    public long Hits { get; private set; }
    public long Misses { get; private set; }
    public long Evictions { get; private set; }

    private static int Bucket(int length) => BitOperations.Log2((uint)Math.Max(length, Pool.SectorSize) - 1) - 8;

    internal bool TryGet(in BlockPointer bp, out byte[] buffer)
    {
        if (_map.TryGetValue(BlockKey.Of(bp), out var entry))
        {
            Hits++;
            Unlink(entry);
            // A block written and then read has been read once: MRU, as a read that missed would put it.
            entry.Frequent = !entry.Written;
            entry.Written = false;
            LinkHead(entry.Frequent ? _mfu : _mru, entry);
            buffer = entry.Buffer;
            return true;
        }
        Misses++;
        buffer = null!;
        return false;
    }

    /// <summary>A buffer for a block of length bytes, evicting as needed; null if the cache cannot hold one.</summary>
    internal Entry? Reserve(int length)
    {
        Debug.Assert(length > 0 && length <= Pool.MaxBlockSize);
        int bucket = Bucket(length);
        int size = Pool.SectorSize << bucket;
        while (true)
        {
            if (_free[bucket].Count > 0) return _free[bucket].Pop();
            if (Held + size <= MaxSize)
            {
                Held += size;
                return new Entry(size);
            }
            if (DropFreeBuffer()) continue;
            if (!EvictOne()) return null;
        }
    }

    /// <summary>
    /// A buffer for a block of length bytes only if the cache has room for it without evicting
    /// anything (a kept buffer of its size, or Held under MaxSize); else null. For data blocks just
    /// written (Pool.cs rule 11): a stream of writes fills free room but never pushes out what was read.
    /// </summary>
    internal Entry? ReserveFree(int length)
    {
        Debug.Assert(length > 0 && length <= Pool.MaxBlockSize);
        int bucket = Bucket(length);
        int size = Pool.SectorSize << bucket;
        if (_free[bucket].Count > 0) return _free[bucket].Pop();
        if (Held + size > MaxSize) return null;
        Held += size;
        return new Entry(size);
    }

    /// <summary>Adds a reserved entry, filled with the block's length bytes, as the newest of MRU (or,
    /// with oldest, a data block just written: as its oldest, the first to go when room is needed,
    /// and not yet read).</summary>
    internal void Insert(in BlockPointer bp, Entry entry, int length, bool oldest = false)
    {
        entry.Key = BlockKey.Of(bp);
        entry.Length = length;
        entry.Frequent = false;
        entry.Written = oldest;
        if (!_map.TryAdd(entry.Key, entry)) { Release(entry); return; }
        LinkHead(oldest ? _mru.Prev! : _mru, entry);
    }

    /// <summary>Gives back a reserved entry that was not inserted.</summary>
    internal void Release(Entry entry) => _free[Bucket(entry.Buffer.Length)].Push(entry);

    /// <summary>Drops a block (it was freed).</summary>
    internal void Remove(in BlockPointer bp)
    {
        if (!_map.Remove(BlockKey.Of(bp), out var entry)) return;
        Unlink(entry);
        Release(entry);
    }

    private bool DropFreeBuffer()
    {
        for (int b = 0; b < Buckets; b++)
        {
            if (_free[b].Count == 0) continue;
            Held -= _free[b].Pop().Buffer.Length;
            return true;
        }
        return false;
    }

    private bool EvictOne()
    {
        Entry victim;
        if (_mru.Prev != _mru && (MruSize > MaxSize / 2 || _mfu.Prev == _mfu)) victim = _mru.Prev!;
        else if (_mfu.Prev != _mfu) victim = _mfu.Prev!;
        else return false;
        Unlink(victim);
        _map.Remove(victim.Key);
        Release(victim);
        Evictions++;
        return true;
    }

    private void LinkHead(Entry head, Entry entry)
    {
        entry.Prev = head;
        entry.Next = head.Next;
        head.Next!.Prev = entry;
        head.Next = entry;
        long size = entry.Buffer.Length;
        Size += size;
        if (entry.Frequent) MfuSize += size; else MruSize += size;
    }

    private void Unlink(Entry entry)
    {
        entry.Prev!.Next = entry.Next;
        entry.Next!.Prev = entry.Prev;
        entry.Prev = entry.Next = null;
        long size = entry.Buffer.Length;
        Size -= size;
        if (entry.Frequent) MfuSize -= size; else MruSize -= size;
    }
}
