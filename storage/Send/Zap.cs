using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Storage.Send;

/// <summary>One name → 64-bit value pair of a ZAP object (a directory entry, a master-node key).</summary>
public readonly record struct ZapEntry(string Name, ulong Value);

/// <summary>
/// ZAP objects as pool version 23 stores them (zap_micro.c, zap_leaf.c, zap_impl.h): a ZAP is the
/// name/value map behind directories, the master node and the unlinked set.
///
/// Microzap: one block; an 8-word header (mz_block_type ZBT_MICRO, salt, normalisation flags,
/// padding) then 64-byte entries {value, cd, pad, name[50]} with the name NUL-terminated, so a name
/// is at most 49 bytes. The block holds blksz/64 - 1 entries; the DMU allows up to 128 KiB.
///
/// Fat ZAP: 16 KiB blocks (FZAP_BLOCK_SHIFT 14). Block 0 is the header (ZBT_HEADER, ZAP_MAGIC, the
/// pointer table's description, leaf and entry counts, salt); while the pointer table is small it is
/// embedded in the header block's second half: 1024 block numbers indexed by the top 10 bits of a
/// name's hash. Each leaf block has a 48-byte header (ZBT_LEAF, prefix and prefix length: the hash
/// bits every name in it shares, ZAP_LEAF_MAGIC, free and entry counts, free list), 512 hash-bucket
/// heads, and 24-byte chunks: an entry chunk points at array chunks holding the name (bytes with the
/// NUL) and the value (integers stored big-endian, 21 bytes a chunk).
///
/// The hash is CRC-64 (ECMA polynomial reflected, zfs_crc64_table) over the name seeded with the salt,
/// keeping the top 28 bits; names with the same 28 bits get distinct collision differentiators (cd).
/// A directory entry's value is the object number with the file type (IFTODT of the mode) in its top
/// four bits.
/// </summary>
public static class Zap
{
    public const ulong BlockTypeLeaf = 1UL << 63, BlockTypeHeader = (1UL << 63) + 1, BlockTypeMicro = (1UL << 63) + 3;
    public const ulong ZapMagic = 0x2F52AB2AB;
    public const uint LeafMagic = 0x2AB1EAF;
    public const int MicroNameLength = 50, MicroEntrySize = 64, FatBlockSize = 16 * 1024;
    private const int HashBits = 28, ChunkSize = 24, ArrayBytes = 21, LeafHeaderSize = 48;
    private const byte ChunkEntry = 252, ChunkArray = 251, ChunkFree = 253;
    private const ushort ChainEnd = 0xffff;
    private const int EmbeddedPointerShift = 10; // log2(FatBlockSize / 2 / 8)
    private const int LeafHashShift = 9;         // log2(FatBlockSize / 32)
    private static readonly ulong[] s_crc64 = BuildCrc64();

    /// <summary>The entries of a ZAP object (micro or fat), or a reason it cannot be read.</summary>
    public static bool TryDecode(ObjectImage zap, out List<ZapEntry> entries, out string? problem)
    {
        entries = [];
        problem = null;
        byte[] first = zap.FirstBlock();
        if (first.Length < 16) { problem = "ZAP block too small"; return false; }
        ulong blockType = BinaryPrimitives.ReadUInt64LittleEndian(first);
        if (blockType == BlockTypeMicro)
        {
            for (int off = MicroEntrySize; off + MicroEntrySize <= first.Length; off += MicroEntrySize)
            {
                ReadOnlySpan<byte> e = first.AsSpan(off, MicroEntrySize);
                if (e[14] == 0) continue; // an unused slot
                entries.Add(new ZapEntry(RecordLayout.Name(e.Slice(14, MicroNameLength)), BinaryPrimitives.ReadUInt64LittleEndian(e)));
            }
            return true;
        }
        if (blockType != BlockTypeHeader || BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(8)) != ZapMagic)
        {
            problem = $"bad ZAP block type {blockType:x}";
            return false;
        }
        // The pointer table names the leaves (one leaf once per hash prefix it covers); each leaf
        // is read once. The table, every leaf's prefix and every entry's hash must agree and the
        // entries add up to the header's count: an incremental stream that rewrote only some blocks
        // of a ZAP laid out differently by the receiver (ZplFileSystem.Streams.cs) fails here
        // instead of decoding to a directory with names missing.
        ulong tableBlock = BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(16));
        ulong tableBlocks = BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(24));
        int shift = (int)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(32)), 32);
        ulong expected = BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(72));
        ulong pointers = 1UL << shift;
        byte[] table;
        if (tableBlocks == 0)
        {
            if (shift != EmbeddedPointerShift || zap.BlockSize != FatBlockSize) { problem = "ZAP pointer table does not fit its header"; return false; }
            table = first.AsSpan(FatBlockSize / 2, FatBlockSize / 2).ToArray();
        }
        else
        {
            if (pointers * 8 > tableBlocks * zap.BlockSize || pointers > 1 << 24) { problem = "ZAP pointer table is damaged"; return false; }
            table = zap.Read(tableBlock * zap.BlockSize, (int)(pointers * 8));
        }
        var seen = new HashSet<ulong>();
        ulong counted = 0;
        for (ulong i = 0; i < pointers; i++)
        {
            ulong id = BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan((int)(i * 8)));
            if (!zap.Blocks.TryGetValue(id, out byte[]? block) || id == 0 || BinaryPrimitives.ReadUInt64LittleEndian(block) != BlockTypeLeaf
                || BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(24)) != LeafMagic)
            {
                problem = $"ZAP pointer {i} names block {id}, which is not a leaf";
                return false;
            }
            int prefixLength = BinaryPrimitives.ReadUInt16LittleEndian(block.AsSpan(32));
            ulong prefix = BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(16));
            if (prefixLength > shift || (i >> (shift - prefixLength)) != prefix)
            {
                problem = $"ZAP leaf {id} (prefix {prefix}/{prefixLength}) is not the leaf of pointer {i}";
                return false;
            }
            if (!seen.Add(id)) continue;
            int before = entries.Count;
            if (!DecodeLeaf(block, entries, out problem, prefix, prefixLength)) return false;
            counted += (ulong)(entries.Count - before);
        }
        if (counted != expected)
        {
            problem = $"ZAP holds {counted} entries, its header {expected}";
            return false;
        }
        return true;
    }

    /// <summary>
    /// An incremental stream's fat ZAP laid over a base the receiver laid out differently (a directory
    /// received earlier and stored as names, re-encoded here with our salt and leaves): the stream
    /// rewrote the header (block 0, with the sender's salt and pointer table) and the leaves that
    /// changed; every other leaf of the sender's is as it was, so its entries are the base's names
    /// whose hash (with the sender's salt) the new pointer table sends to it. The result is re-encoded
    /// into <paramref name="merged"/> in our layout. False, with <paramref name="merged"/> untouched,
    /// when the header or the pointer table was not rewritten or the counts disagree.
    /// </summary>
    public static bool TryMergeIncremental(ObjectImage merged, ObjectImage baseObject, IReadOnlySet<ulong> written, ulong salt, out string? problem)
    {
        problem = null;
        byte[] first = merged.FirstBlock();
        if (!written.Contains(0) || first.Length < FatBlockSize || BinaryPrimitives.ReadUInt64LittleEndian(first) != BlockTypeHeader
            || BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(8)) != ZapMagic
            || BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(24)) != 0
            || BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(32)) != EmbeddedPointerShift)
        {
            problem = "a fat ZAP changed without its header and embedded pointer table";
            return false;
        }
        if (!TryDecode(baseObject, out var baseEntries, out problem)) return false;
        ulong theirSalt = BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(80));
        ulong expected = BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(72));
        int pointers = 1 << EmbeddedPointerShift;
        var table = new ulong[pointers];
        for (int i = 0; i < pointers; i++) table[i] = BinaryPrimitives.ReadUInt64LittleEndian(first.AsSpan(FatBlockSize / 2 + 8 * i));
        var entries = new List<ZapEntry>();
        var decoded = new HashSet<ulong>();
        for (int i = 0; i < pointers; i++)
        {
            ulong id = table[i];
            if (!written.Contains(id) || !decoded.Add(id)) continue;
            if (!merged.Blocks.TryGetValue(id, out byte[]? block) || id == 0 || BinaryPrimitives.ReadUInt64LittleEndian(block) != BlockTypeLeaf
                || BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(24)) != LeafMagic)
            {
                problem = $"ZAP pointer {i} names block {id}, which is not a leaf";
                return false;
            }
            int prefixLength = BinaryPrimitives.ReadUInt16LittleEndian(block.AsSpan(32));
            ulong prefix = BinaryPrimitives.ReadUInt64LittleEndian(block.AsSpan(16));
            if (prefixLength > EmbeddedPointerShift || (ulong)(i >> (EmbeddedPointerShift - prefixLength)) != prefix)
            {
                problem = $"ZAP leaf {id} is not the leaf of pointer {i}";
                return false;
            }
            if (!DecodeLeaf(block, entries, out problem, prefix, prefixLength)) return false;
        }
        foreach (ZapEntry e in baseEntries)
            if (!written.Contains(table[Hash(e.Name, theirSalt) >> (64 - EmbeddedPointerShift)])) entries.Add(e);
        if ((ulong)entries.Count != expected)
        {
            problem = $"ZAP holds {entries.Count} entries, its header {expected}";
            return false;
        }
        var rebuilt = new ObjectImage { Type = merged.Type, BonusType = merged.BonusType, BlockSize = merged.BlockSize, Bonus = merged.Bonus };
        try
        {
            Encode(rebuilt, entries, salt);
        }
        catch (ArgumentException e)
        {
            problem = e.Message;
            return false;
        }
        merged.Blocks.Clear();
        merged.BlockSize = rebuilt.BlockSize;
        foreach (var (id, block) in rebuilt.Blocks) merged.Blocks[id] = block;
        return true;
    }

    private static bool DecodeLeaf(byte[] leaf, List<ZapEntry> entries, out string? problem, ulong prefix, int prefixLength)
    {
        problem = null;
        int hashEntries = leaf.Length / 32;
        int chunkBase = LeafHeaderSize + 2 * hashEntries;
        int chunks = (leaf.Length - chunkBase) / ChunkSize;
        for (int i = 0; i < chunks; i++)
        {
            ReadOnlySpan<byte> c = leaf.AsSpan(chunkBase + i * ChunkSize, ChunkSize);
            if (c[0] != ChunkEntry) continue;
            int valueIntLen = c[1];
            ushort nameChunk = BinaryPrimitives.ReadUInt16LittleEndian(c[4..]), nameInts = BinaryPrimitives.ReadUInt16LittleEndian(c[6..]);
            ushort valueChunk = BinaryPrimitives.ReadUInt16LittleEndian(c[8..]), valueInts = BinaryPrimitives.ReadUInt16LittleEndian(c[10..]);
            byte[]? name = ReadArray(leaf, chunkBase, chunks, nameChunk, nameInts);
            byte[]? value = ReadArray(leaf, chunkBase, chunks, valueChunk, valueIntLen * valueInts);
            ulong hash = BinaryPrimitives.ReadUInt64LittleEndian(c[16..]);
            if (prefixLength > 0 && hash >> (64 - prefixLength) != prefix)
            {
                problem = $"ZAP entry hash {hash:x} is outside its leaf's prefix";
                return false;
            }
            if (name is null || value is null || valueIntLen != 8 || valueInts != 1)
            {
                problem = "ZAP leaf entry is damaged or not a single 64-bit value";
                return false;
            }
            int nul = Array.IndexOf(name, (byte)0);
            entries.Add(new ZapEntry(Encoding.UTF8.GetString(name, 0, nul < 0 ? name.Length : nul), BinaryPrimitives.ReadUInt64BigEndian(value)));
        }
        return true;
    }

    private static byte[]? ReadArray(byte[] leaf, int chunkBase, int chunks, ushort chunk, int length)
    {
        byte[] result = new byte[length];
        int done = 0;
        for (int hops = 0; done < length; hops++)
        {
            if (chunk >= chunks || hops > chunks) return null;
            ReadOnlySpan<byte> c = leaf.AsSpan(chunkBase + chunk * ChunkSize, ChunkSize);
            if (c[0] != ChunkArray) return null;
            int n = Math.Min(ArrayBytes, length - done);
            c.Slice(1, n).CopyTo(result.AsSpan(done));
            done += n;
            chunk = BinaryPrimitives.ReadUInt16LittleEndian(c[22..]);
        }
        return result;
    }

    /// <summary>Whether these entries fit a microzap (every name under 50 bytes, at most 2047 entries).</summary>
    public static bool FitsMicro(IReadOnlyList<ZapEntry> entries)
    {
        if (entries.Count > SendFormat.MaxBlockSize / MicroEntrySize - 1) return false;
        foreach (ZapEntry e in entries)
            if (Encoding.UTF8.GetByteCount(e.Name) >= MicroNameLength) return false;
        return true;
    }

    /// <summary>Lays the entries out as a microzap where they fit and as a fat ZAP beyond, into
    /// the object's blocks and block size.</summary>
    public static void Encode(ObjectImage target, IReadOnlyList<ZapEntry> entries, ulong salt)
    {
        target.Blocks.Clear();
        if (FitsMicro(entries)) EncodeMicro(target, entries, salt);
        else EncodeFat(target, entries, salt);
    }

    private static void EncodeMicro(ObjectImage target, IReadOnlyList<ZapEntry> entries, ulong salt)
    {
        int size = SendFormat.MinBlockSize;
        while (size / MicroEntrySize - 1 < entries.Count) size *= 2;
        byte[] block = new byte[size];
        BinaryPrimitives.WriteUInt64LittleEndian(block, BlockTypeMicro);
        BinaryPrimitives.WriteUInt64LittleEndian(block.AsSpan(8), salt);
        uint[] cds = CollisionDifferentiators(entries, salt);
        for (int i = 0; i < entries.Count; i++)
        {
            Span<byte> e = block.AsSpan(MicroEntrySize * (i + 1), MicroEntrySize);
            BinaryPrimitives.WriteUInt64LittleEndian(e, entries[i].Value);
            BinaryPrimitives.WriteUInt32LittleEndian(e[8..], cds[i]);
            Encoding.UTF8.GetBytes(entries[i].Name, e[14..]);
        }
        target.BlockSize = (uint)size;
        target.Blocks[0] = block;
    }

    private static void EncodeFat(ObjectImage target, IReadOnlyList<ZapEntry> entries, ulong salt)
    {
        uint[] cds = CollisionDifferentiators(entries, salt);
        ulong[] hashes = new ulong[entries.Count];
        for (int i = 0; i < entries.Count; i++) hashes[i] = Hash(entries[i].Name, salt);
        int chunkBase = LeafHeaderSize + 2 * (1 << LeafHashShift);
        int chunksPerLeaf = (FatBlockSize - chunkBase) / ChunkSize;
        // The smallest prefix length whose leaves all fit; the embedded table indexes 2^10 leaves.
        int prefixLength = 0;
        for (; ; prefixLength++)
        {
            if (prefixLength > EmbeddedPointerShift)
                throw new ArgumentException($"{entries.Count} entries do not fit a fat ZAP with an embedded pointer table", nameof(entries));
            int[] used = new int[1 << prefixLength];
            bool fits = true;
            for (int i = 0; i < entries.Count && fits; i++)
            {
                int leaf = prefixLength == 0 ? 0 : (int)(hashes[i] >> (64 - prefixLength));
                used[leaf] += ChunksFor(entries[i].Name);
                fits = used[leaf] <= chunksPerLeaf;
            }
            if (fits) break;
        }
        int leaves = 1 << prefixLength;
        byte[] header = new byte[FatBlockSize];
        BinaryPrimitives.WriteUInt64LittleEndian(header, BlockTypeHeader);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(8), ZapMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(32), EmbeddedPointerShift); // zt_shift; zt_blk = zt_numblks = 0
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(56), (ulong)leaves + 1);   // zap_freeblk
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(64), (ulong)leaves);       // zap_num_leafs
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(72), (ulong)entries.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(80), salt);
        for (int i = 0; i < 1 << EmbeddedPointerShift; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(FatBlockSize / 2 + 8 * i), 1 + (ulong)(i >> (EmbeddedPointerShift - prefixLength)));
        target.BlockSize = FatBlockSize;
        target.Blocks[0] = header;
        var byLeaf = new List<int>[leaves];
        for (int l = 0; l < leaves; l++) byLeaf[l] = [];
        // Sorted by (hash, cd) so that every bucket chain lists a hash's entries in cd order.
        int[] order = Enumerable.Range(0, entries.Count).OrderBy(i => hashes[i]).ThenBy(i => cds[i]).ToArray();
        foreach (int i in order) byLeaf[prefixLength == 0 ? 0 : (int)(hashes[i] >> (64 - prefixLength))].Add(i);
        for (int l = 0; l < leaves; l++)
            target.Blocks[(ulong)l + 1] = BuildLeaf(byLeaf[l], entries, hashes, cds, (ulong)l, prefixLength, chunkBase, chunksPerLeaf);
    }

    private static byte[] BuildLeaf(List<int> members, IReadOnlyList<ZapEntry> entries, ulong[] hashes, uint[] cds,
        ulong prefix, int prefixLength, int chunkBase, int chunks)
    {
        byte[] leaf = new byte[FatBlockSize];
        ushort[] heads = new ushort[1 << LeafHashShift];
        ushort[] tails = new ushort[1 << LeafHashShift];
        Array.Fill(heads, ChainEnd);
        int next = 0;
        Span<byte> Chunk(int i) => leaf.AsSpan(chunkBase + i * ChunkSize, ChunkSize);
        ushort WriteArray(ReadOnlySpan<byte> bytes)
        {
            int first = next;
            for (int done = 0; done < bytes.Length; done += ArrayBytes)
            {
                Span<byte> c = Chunk(next++);
                c[0] = ChunkArray;
                bytes.Slice(done, Math.Min(ArrayBytes, bytes.Length - done)).CopyTo(c[1..]);
                BinaryPrimitives.WriteUInt16LittleEndian(c[22..], done + ArrayBytes < bytes.Length ? (ushort)next : ChainEnd);
            }
            return (ushort)first;
        }
        foreach (int i in members)
        {
            int entryChunk = next++;
            byte[] name = Encoding.UTF8.GetBytes(entries[i].Name + "\0");
            ushort nameChunk = WriteArray(name);
            byte[] value = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(value, entries[i].Value);
            ushort valueChunk = WriteArray(value);
            Span<byte> e = Chunk(entryChunk);
            e[0] = ChunkEntry;
            e[1] = 8;
            BinaryPrimitives.WriteUInt16LittleEndian(e[2..], ChainEnd);
            BinaryPrimitives.WriteUInt16LittleEndian(e[4..], nameChunk);
            BinaryPrimitives.WriteUInt16LittleEndian(e[6..], (ushort)name.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(e[8..], valueChunk);
            BinaryPrimitives.WriteUInt16LittleEndian(e[10..], 1);
            BinaryPrimitives.WriteUInt32LittleEndian(e[12..], cds[i]);
            BinaryPrimitives.WriteUInt64LittleEndian(e[16..], hashes[i]);
            int bucket = (int)((hashes[i] >> (64 - LeafHashShift - prefixLength)) & ((1 << LeafHashShift) - 1));
            if (heads[bucket] == ChainEnd) heads[bucket] = (ushort)entryChunk;
            else BinaryPrimitives.WriteUInt16LittleEndian(Chunk(tails[bucket])[2..], (ushort)entryChunk);
            tails[bucket] = (ushort)entryChunk;
        }
        for (int i = next; i < chunks; i++)
        {
            Span<byte> c = Chunk(i);
            c[0] = ChunkFree;
            BinaryPrimitives.WriteUInt16LittleEndian(c[22..], i + 1 < chunks ? (ushort)(i + 1) : ChainEnd);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(leaf, BlockTypeLeaf);
        BinaryPrimitives.WriteUInt64LittleEndian(leaf.AsSpan(16), prefix);
        BinaryPrimitives.WriteUInt32LittleEndian(leaf.AsSpan(24), LeafMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(leaf.AsSpan(28), (ushort)(chunks - next));
        BinaryPrimitives.WriteUInt16LittleEndian(leaf.AsSpan(30), (ushort)members.Count);
        BinaryPrimitives.WriteUInt16LittleEndian(leaf.AsSpan(32), (ushort)prefixLength);
        BinaryPrimitives.WriteUInt16LittleEndian(leaf.AsSpan(34), next < chunks ? (ushort)next : ChainEnd);
        leaf[36] = 1; // ZLF_ENTRIES_CDSORTED
        for (int b = 0; b < heads.Length; b++) BinaryPrimitives.WriteUInt16LittleEndian(leaf.AsSpan(LeafHeaderSize + 2 * b), heads[b]);
        return leaf;
    }

    private static int ChunksFor(string name) =>
        1 + (Encoding.UTF8.GetByteCount(name) + 1 + ArrayBytes - 1) / ArrayBytes + 1;

    private static uint[] CollisionDifferentiators(IReadOnlyList<ZapEntry> entries, ulong salt)
    {
        var seen = new Dictionary<ulong, uint>();
        uint[] cds = new uint[entries.Count];
        for (int i = 0; i < entries.Count; i++)
        {
            ulong h = Hash(entries[i].Name, salt);
            seen.TryGetValue(h, out uint cd);
            cds[i] = cd;
            seen[h] = cd + 1;
        }
        return cds;
    }

    /// <summary>zap_hash: CRC-64 of the name seeded with the salt, top 28 bits kept.</summary>
    public static ulong Hash(string name, ulong salt)
    {
        ulong crc = salt;
        foreach (byte c in Encoding.UTF8.GetBytes(name))
            crc = (crc >> 8) ^ s_crc64[(crc ^ c) & 0xff];
        return crc & ~((1UL << (64 - HashBits)) - 1);
    }

    private static ulong[] BuildCrc64()
    {
        const ulong poly = 0xC96C5795D7870F42; // ZFS_CRC64_POLY
        ulong[] table = new ulong[256];
        for (int i = 0; i < 256; i++)
        {
            ulong crc = (ulong)i;
            for (int j = 0; j < 8; j++) crc = (crc >> 1) ^ (0 - (crc & 1) & poly);
            table[i] = crc;
        }
        return table;
    }
}
