using System.Text;

namespace SmartOS.Storage;

/// <summary>Committing and loading the dataset directory (Dsl.cs: object 1 of the MOS and one MOS object per dead list).</summary>
public sealed partial class DatasetTree
{
    /// <summary>At pool create: the dataset directory and the pool's root filesystem, named as the pool.</summary>
    internal void CreateRoot()
    {
        // 4 KiB blocks: a commit rewrites the header's block and the new slot's, not a 128 KiB block
        // whose used part grows with the number of datasets (pools made before keep 128 KiB blocks).
        var made = _pool.Objects.Create(out long id, DirectoryDataShift);
        System.Diagnostics.Debug.Assert(made.IsOk && id == DirectoryObject, "the dataset directory is the MOS's first object");
        _root = NewDir(null, _pool.Name, DatasetType.Filesystem, _pool.Txg + 1);
        var formatted = ZplFileSystem.Format(_root.Head.Objects!, _pool.Now());
        System.Diagnostics.Debug.Assert(formatted.IsOk, "an empty object set in memory takes a file system");
        Touch(_root);
    }

    private DslDir NewDir(DslDir? parent, string name, DatasetType type, long txg)
    {
        var dir = new DslDir { Id = _nextId++, Parent = parent, Name = name, Type = type, CreateTxg = txg };
        dir.Head = new DslDataset(this) { Id = _nextId++, Dir = dir, SnapName = "", Creation = _pool.Now(), RootDirty = true };
        dir.Head.Objects = new ObjectSet(_pool, dir.Head);
        parent?.Children.Add(dir);
        _dirs.Add(dir);
        _byName[dir.FullName] = dir;
        QueueHead(dir);
        return dir;
    }

    /// <summary>dir's head has changed: the next commit syncs it (if it is still dirty then).</summary>
    internal void QueueHead(DslDir dir)
    {
        if (dir.HeadQueued) return;
        dir.HeadQueued = true;
        _queuedHeads.Add(dir);
    }

    private void QueuePending(DslDir dir)
    {
        if (dir.PendingQueued) return;
        dir.PendingQueued = true;
        _queuedPending.Add(dir);
    }

    /// <summary>
    /// Writes each dirty head (its objects, then its root block), takes the snapshots asked for in
    /// this txg, appends the dead lists and rewrites the records of the dirs that changed; the MOS is synced after this.
    /// </summary>
    internal StorageResult Sync(long txg)
    {
        // Only the heads queued since the last commit can be dirty; a destroyed dir (Slot == DeadSlot)
        // is no longer in the tree. The order is the order they changed: deterministic (Pool.cs rule 1).
        for (int i = 0; i < _queuedHeads.Count; i++)
        {
            var dir = _queuedHeads[i];
            var head = dir.Head;
            if (dir.Slot == DeadSlot || !head.RootDirty && head.Objects is not { IsDirty: true }) continue;
            var result = SyncHead(head, txg);
            if (!result.IsOk) return result;
            Touch(dir);
        }
        foreach (var dir in _queuedHeads) dir.HeadQueued = false;
        _queuedHeads.Clear();
        foreach (var (head, snap) in _pendingSnapshots) TakeSnapshot(head, snap, txg);
        _pendingSnapshots.Clear();
        foreach (var dir in _queuedPending)
        {
            dir.Pending = 0;
            dir.Head.PendingOwn = 0;
            dir.PendingQueued = false;
        }
        _queuedPending.Clear();
        if (_changed.Count == 0 && _forgotten.Count == 0) return StorageResult.Success;
        // A dead list changes only with its dir's record (which counts its entries): the changed dirs' lists are the ones to append.
        foreach (var dir in _changed)
        {
            if (dir.Slot == DeadSlot) continue;
            foreach (var ds in Lineage(dir))
            {
                var result = SyncDeadlist(ds.Deadlist);
                if (!result.IsOk) return result;
            }
        }
        return WriteDirectory();
    }

    private StorageResult SyncHead(DslDataset head, long txg)
    {
        head.Objects ??= new ObjectSet(_pool, head);
        var synced = head.Objects.Sync(txg, out Dnode meta);
        if (!synced.IsOk) return synced;
        byte[] buffer = _pool.RentBuffer();
        try
        {
            var block = buffer.AsSpan(0, Pool.SectorSize);
            block.Clear();
            meta.WriteTo(block);
            // The intent log's header (IntentLog.cs L3): the chain's next unwritten block, or a hole.
            var header = head.Log!.Synced(txg);
            header.WriteTo(block[Dnode.Size..]);
            head.LogHeader = header;
            var written = _pool.WriteBlock(block, BlockType.ObjectSetRoot, 0, txg, CompressionSetting.Lz4, out var bp);
            if (!written.IsOk) return written;
            head.Born(bp);
            if (!head.Root.IsHole) head.Kill(head.Root);
            head.Root = bp;
            head.RootDirty = false;
            return StorageResult.Success;
        }
        finally
        {
            _pool.ReturnBuffer(buffer);
        }
    }

    /// <summary>Dsl.cs rule 1: the snapshot takes the head's root, referenced bytes and dead list as of this txg.</summary>
    private void TakeSnapshot(DslDataset head, string name, long txg)
    {
        var dir = head.Dir;
        var snap = new DslDataset(this)
        {
            Id = _nextId++, Dir = dir, SnapName = name, Txg = txg, Creation = _pool.Now(), Prev = head.Prev,
            Root = head.Root, Referenced = head.Referenced, Written = head.Unique, Deadlist = head.Deadlist,
        };
        snap.Guid = DerivedGuid(snap.Id);
        dir.Snapshots.Add(snap);
        long before = dir.Charged;
        head.Prev = snap;
        head.Unique = 0;
        head.Deadlist = new Deadlist();
        Propagate(dir, dir.Charged - before);
        Touch(dir);
    }

    /// <summary>A snapshot's guid when taken here: the pool's guid and the dataset's id mixed
    /// (splitmix64's finaliser), deterministic (Pool.cs rule 1) and distinct between pools.</summary>
    private ulong DerivedGuid(long id)
    {
        ulong z = _pool.Guid + 0x9E3779B97F4A7C15UL * (ulong)id;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return z == 0 ? 1 : z;
    }

    private StorageResult SyncDeadlist(Deadlist list)
    {
        if (list.Persisted == list.Entries.Count) return StorageResult.Success;
        if (list.ObjectId == 0)
        {
            var made = _pool.Objects.Create(out list.ObjectId);
            if (!made.IsOk) return made;
        }
        int from = list.Persisted;   // entries are only ever appended; a dropped list loses its object
        byte[] buffer = _pool.RentBuffer();
        try
        {
            int perChunk = buffer.Length / BlockPointer.Size;
            for (int i = from; i < list.Entries.Count; i += perChunk)
            {
                int n = Math.Min(perChunk, list.Entries.Count - i);
                for (int k = 0; k < n; k++) list.Entries[i + k].WriteTo(buffer.AsSpan(k * BlockPointer.Size));
                var written = _pool.Objects.Write(list.ObjectId, (long)i * BlockPointer.Size, buffer.AsSpan(0, n * BlockPointer.Size));
                if (!written.IsOk) return written;
            }
        }
        finally
        {
            _pool.ReturnBuffer(buffer);
        }
        list.Persisted = list.Entries.Count;
        return StorageResult.Success;
    }

    private void DropDeadlist(Deadlist list)
    {
        if (list.ObjectId != 0) _pool.Objects.Delete(list.ObjectId);
        list.ObjectId = 0;
        list.Entries.Clear();
        list.Persisted = 0;
    }

    // ---- the directory object: a header and a slot table; each dir's record in an object of its own ----
    //
    // Object 1 holds a header (a -1 where the first format kept its length, the magic, the next
    // dataset id, the number of slots) and from SlotsOffset one 8-byte slot per filesystem or volume:
    // the MOS object holding its record, or 0 for a free slot. A record is the dir (name, parent's id,
    // type, origin's id, space, local properties) and its lineage (each snapshot, then the head: root
    // block, counters, dead list, guid). A commit rewrites the header, the records of the dirs it
    // changed (Touch) and the slots it filled or emptied: the blocks it writes do not grow with the
    // number of datasets, so creating or cloning the Nth dataset costs what the first did. The first
    // format (all datasets in one stream rewritten at every commit) is still read, and is replaced by
    // this one at the first commit after such a pool is opened.

    private const uint LegacyMagic = 0x44534C31;   // "DSL1": the whole directory in object 1
    private const uint Magic = 0x44534C32;         // "DSL2": header and slot table
    private const uint RecordMagic = 0x44535231;   // "DSR1"
    private const int SlotsOffset = 64;
    private const int DeadSlot = -2;
    private const byte DirectoryDataShift = 12;

    /// <summary>The dir's record is rewritten at the next commit.</summary>
    private void Touch(DslDir dir)
    {
        if (dir.RecordDirty || dir.Slot == DeadSlot) return;
        dir.RecordDirty = true;
        _changed.Add(dir);
    }

    /// <summary>Every record is rewritten (promote moves snapshots between lineages: rare, so simplest whole).</summary>
    private void TouchAll()
    {
        foreach (var dir in _dirs) Touch(dir);
    }

    /// <summary>A destroyed dir: its slot is emptied and its record object deleted at the next commit.</summary>
    private void Forget(DslDir dir)
    {
        if (dir.Slot >= 0) _forgotten.Add((dir.Slot, dir.RecordObject));
        dir.Slot = DeadSlot;
        dir.RecordObject = 0;
    }

    /// <summary>Bytes the directory's commits have handed to the MOS (header, slots, records) since open: what a
    /// commit of the directory costs, before the MOS's own blocks.</summary>
    internal long DirectoryBytesWritten { get; private set; }

    private StorageResult WriteDirectory()
    {
        if (_legacyDirectory)
        {
            // The first commit after opening a pool of the first format: object 1 starts again empty.
            var cleared = _pool.Objects.Truncate(DirectoryObject, 0);
            if (!cleared.IsOk) return cleared;
            _legacyDirectory = false;
        }
        Span<byte> entry = stackalloc byte[8];
        foreach (var (slot, record) in _forgotten)
        {
            if (record != 0) _pool.Objects.Delete(record);
            entry.Clear();
            DirectoryBytesWritten += entry.Length;
            var emptied = _pool.Objects.Write(DirectoryObject, SlotsOffset + 8L * slot, entry);
            if (!emptied.IsOk) return emptied;
            _freeSlots.Add(slot);
        }
        _forgotten.Clear();
        foreach (var dir in _changed)
        {
            if (dir.Slot == DeadSlot) continue;
            var written = WriteRecord(dir, entry);
            if (!written.IsOk) return written;
            dir.RecordDirty = false;
        }
        _changed.Clear();
        Span<byte> header = stackalloc byte[SlotsOffset];
        header.Clear();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(header, -1);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Magic);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(header[8..], _nextId);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(header[16..], _slotCount);
        DirectoryBytesWritten += header.Length;
        return _pool.Objects.Write(DirectoryObject, 0, header);
    }

    /// <summary>Writes one dir's record to its object, giving it a slot and an object if it has none.</summary>
    private StorageResult WriteRecord(DslDir dir, Span<byte> entry)
    {
        bool placed = dir.Slot < 0;
        if (dir.RecordObject == 0)
        {
            var made = _pool.Objects.Create(out dir.RecordObject);
            if (!made.IsOk) return made;
        }
        var stream = _record;
        stream.SetLength(0);
        SerializeRecord(dir, stream);
        var bytes = stream.GetBuffer().AsSpan(0, (int)stream.Length);
        DirectoryBytesWritten += bytes.Length;
        var written = _pool.Objects.Write(dir.RecordObject, 0, bytes);
        if (!written.IsOk) return written;
        var length = _pool.Objects.GetLength(dir.RecordObject, out long old);
        if (length.IsOk && old > bytes.Length) length = _pool.Objects.Truncate(dir.RecordObject, bytes.Length);
        if (!length.IsOk) return length;
        if (!placed) return StorageResult.Success;
        if (_freeSlots.Count > 0)
        {
            dir.Slot = _freeSlots.Min;
            _freeSlots.Remove(dir.Slot);
        }
        else
        {
            dir.Slot = _slotCount++;
        }
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(entry, dir.RecordObject);
        DirectoryBytesWritten += entry.Length;
        return _pool.Objects.Write(DirectoryObject, SlotsOffset + 8L * dir.Slot, entry);
    }

    private void SerializeRecord(DslDir dir, MemoryStream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(RecordMagic);
        w.Write(dir.Id);
        w.Write(dir.Parent?.Id ?? 0);
        w.Write(dir.Name);
        w.Write((byte)dir.Type);
        w.Write(dir.Origin?.Id ?? 0);
        w.Write(dir.VolBlockSize);
        w.Write(dir.CreateTxg);
        w.Write(dir.HeadUsed);
        w.Write(dir.SnapUsed);
        w.Write(dir.Local.Count);
        foreach (var (key, value) in dir.Local) { w.Write(key); w.Write(value); }
        w.Write(dir.Snapshots.Count);
        Span<byte> bp = stackalloc byte[BlockPointer.Size];
        foreach (var ds in Lineage(dir))
        {
            w.Write(ds.Id);
            w.Write(ds.SnapName);
            w.Write(ds.Txg);
            w.Write(ds.Creation);
            w.Write(ds.Prev?.Id ?? 0);
            ds.Root.WriteTo(bp);
            w.Write(bp);
            w.Write(ds.Referenced);
            w.Write(ds.Unique);
            w.Write(ds.Written);
            w.Write(ds.Deadlist.ObjectId);
            w.Write(ds.Deadlist.Entries.Count);
            w.Write(ds.Guid);
        }
    }

    /// <summary>Reads object 1 in either format (the first format's pools still open).</summary>
    private StorageResult ReadDirectory()
    {
        var corrupt = new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
        var length = _pool.Objects.GetLength(DirectoryObject, out long total);
        if (!length.IsOk || total < 8) return corrupt;
        Span<byte> header = stackalloc byte[SlotsOffset];
        header.Clear();
        var read = _pool.Objects.Read(DirectoryObject, 0, header, out _);
        if (!read.IsOk) return new StorageResult(read.Status, "dataset directory");
        uint magic = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        if (magic == LegacyMagic)
        {
            var bytes = new byte[total];
            read = _pool.Objects.Read(DirectoryObject, 0, bytes, out _);
            if (!read.IsOk) return new StorageResult(read.Status, "dataset directory");
            var legacy = ReadLegacyDirectory(bytes);
            if (!legacy.IsOk) return legacy;
            _legacyDirectory = true;
            TouchAll();
            return legacy;
        }
        if (magic != Magic || System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(header) != -1) return corrupt;
        _nextId = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        _slotCount = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        if (_slotCount < 0 || SlotsOffset + 8L * _slotCount > total) return corrupt;
        var slots = new byte[8L * _slotCount];
        read = _pool.Objects.Read(DirectoryObject, SlotsOffset, slots, out int n);
        if (!read.IsOk) return new StorageResult(read.Status, "dataset directory");
        if (n != slots.Length) return corrupt;
        var byId = new Dictionary<long, DslDataset>();
        var dirsById = new Dictionary<long, DslDir>();
        var parents = new List<(DslDir Dir, long Parent)>();
        var links = new List<(DslDataset Ds, long Prev)>();
        var origins = new List<(DslDir Dir, long Origin)>();
        for (int slot = 0; slot < _slotCount; slot++)
        {
            long record = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(slots.AsSpan(8 * slot));
            if (record == 0) { _freeSlots.Add(slot); continue; }
            var got = ReadRecord(record, out var dir, out long parentId, out long originId, links, byId);
            if (!got.IsOk) return got;
            dir.Slot = slot;
            dir.RecordObject = record;
            if (!dirsById.TryAdd(dir.Id, dir)) return corrupt;
            parents.Add((dir, parentId));
            origins.Add((dir, originId));
            _dirs.Add(dir);
        }
        foreach (var (dir, parentId) in parents)
        {
            if (parentId == 0)
            {
                if (_root is not null) return corrupt;
                _root = dir;
                continue;
            }
            if (!dirsById.TryGetValue(parentId, out dir.Parent)) return corrupt;
            dir.Parent.Children.Add(dir);
        }
        foreach (var (ds, prev) in links)
            if (prev != 0 && !byId.TryGetValue(prev, out ds.Prev)) return corrupt;
        foreach (var (dir, origin) in origins)
            if (origin != 0 && !byId.TryGetValue(origin, out dir.Origin)) return corrupt;
        if (_root is null) return corrupt;
        // A record whose parent chain does not reach the root (a loop) is damage, not a dataset.
        foreach (var dir in _dirs)
        {
            int depth = 0;
            for (var d = dir; d.Parent is not null; d = d.Parent)
                if (++depth > _dirs.Count) return corrupt;
        }
        foreach (var dir in _dirs) _byName[dir.FullName] = dir;
        return StorageResult.Success;
    }

    private StorageResult ReadRecord(long record, out DslDir dir, out long parentId, out long originId,
        List<(DslDataset Ds, long Prev)> links, Dictionary<long, DslDataset> byId)
    {
        dir = null!;
        parentId = originId = 0;
        var corrupt = new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
        var length = _pool.Objects.GetLength(record, out long total);
        if (!length.IsOk || total > int.MaxValue) return corrupt;
        var bytes = new byte[total];
        var read = _pool.Objects.Read(record, 0, bytes, out int n);
        if (!read.IsOk) return new StorageResult(read.Status, "dataset directory");
        if (n != bytes.Length) return corrupt;
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        if (r.ReadUInt32() != RecordMagic) return corrupt;
        long id = r.ReadInt64();
        parentId = r.ReadInt64();
        string name = r.ReadString();
        var type = (DatasetType)r.ReadByte();
        if (type is not (DatasetType.Filesystem or DatasetType.Volume)) return corrupt;
        dir = new DslDir { Id = id, Name = name, Type = type };
        originId = r.ReadInt64();
        dir.VolBlockSize = r.ReadInt64();
        dir.CreateTxg = r.ReadInt64();
        dir.HeadUsed = r.ReadInt64();
        dir.SnapUsed = r.ReadInt64();
        int props = r.ReadInt32();
        if (props < 0) return corrupt;
        for (int p = 0; p < props; p++) dir.Local[r.ReadString()] = r.ReadString();
        int snaps = r.ReadInt32();
        if (snaps < 0) return corrupt;
        for (int s = 0; s <= snaps; s++)
        {
            var ds = new DslDataset(this) { Id = r.ReadInt64(), Dir = dir, SnapName = r.ReadString() };
            ds.Txg = r.ReadInt64();
            ds.Creation = r.ReadInt64();
            links.Add((ds, r.ReadInt64()));
            if (!BlockPointer.TryRead(r.ReadBytes(BlockPointer.Size), out ds.Root)) return corrupt;
            ds.Referenced = r.ReadInt64();
            ds.Unique = r.ReadInt64();
            ds.Written = r.ReadInt64();
            ds.Deadlist.ObjectId = r.ReadInt64();
            ds.Deadlist.Persisted = r.ReadInt32();
            ds.Guid = r.ReadUInt64();
            if (!byId.TryAdd(ds.Id, ds)) return corrupt;
            if (s < snaps) dir.Snapshots.Add(ds); else dir.Head = ds;
        }
        RefreshProperties(dir);
        return StorageResult.Success;
    }

    /// <summary>At open: reads the directory and the dead lists, then claims every dataset's blocks (rule 3).</summary>
    internal StorageResult Load()
    {
        ((MosOwner)_pool.MosOwner).Bytes = _pool.Allocated;
        try
        {
            var result = ReadDirectory();
            if (!result.IsOk) return result;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or ArgumentException or InvalidDataException)
        {
            return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
        }
        foreach (var dir in _dirs)
            foreach (var ds in Lineage(dir))
            {
                var read = ReadDeadlist(ds.Deadlist);
                if (!read.IsOk) return new StorageResult(read.Status, ds.Name + " dead list");
                var claimed = WalkDataset(ds, ds.PrevTxg, bp => _pool.ClaimBlock(bp));
                if (!claimed.IsOk) return new StorageResult(claimed.Status, ds.Name);
            }
        ComputeChildrenUsed(_root);
        return StorageResult.Success;
    }

    /// <summary>The intent log of a filesystem or volume (tests look at its blocks); null for none.</summary>
    internal IntentLog? LogOf(string name) => _byName.TryGetValue(name, out var dir) ? dir.Head.Log : null;

    /// <summary>What import's replay of each head's intent log did (IntentLog.cs L4), in dataset order.</summary>
    public IReadOnlyList<LogReplay> Replays => _replays;

    private readonly List<LogReplay> _replays = [];

    /// <summary>
    /// At import, before anything else (IntentLog.cs L4): replays the log of every head whose root of
    /// its own carries a header, and queues each head with a header, so that the next commit writes
    /// it with the header a hole and frees the chain. False when no head had a header.
    /// </summary>
    internal StorageResult ReplayLogs(out bool any)
    {
        any = false;
        foreach (var dir in _dirs)
        {
            var head = dir.Head;
            if (head.LogHeader.IsHole) continue;
            any = true;
            var claimed = new List<BlockPointer>();
            if (head.Root.BirthTxg > head.PrevTxg)
            {
                var opened = ObjectsOf(head, out var objects);
                if (!opened.IsOk) return opened;
                var log = head.Log!;
                log.Replaying = true;
                var result = IntentLog.Replay(_pool, head.LogHeader, objects, claimed);
                log.Replaying = false;
                _replays.Add(new LogReplay(dir.FullName, result.Commits, result.Records, result.Blocks, result.Stopped));
            }
            head.Log!.Replayed(claimed);
            head.LogHeader = default;
            QueueHead(dir);
        }
        return StorageResult.Success;
    }

    private static void ComputeChildrenUsed(DslDir dir)
    {
        dir.ChildrenUsed = 0;
        foreach (var child in dir.Children)
        {
            ComputeChildrenUsed(child);
            dir.ChildrenUsed += child.Charged;
        }
    }

    /// <summary>The first format: every dir and its lineage in one stream, parents before children, then the snapshot guids.</summary>
    private StorageResult ReadLegacyDirectory(byte[] bytes)
    {
        long total = bytes.Length;
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        int used = r.ReadInt32();
        if (used < 0 || used > total - 4 || r.ReadUInt32() != LegacyMagic) return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
        _nextId = r.ReadInt64();
        int count = r.ReadInt32();
        var byId = new Dictionary<long, DslDataset>();
        var dirsById = new Dictionary<long, DslDir>();
        var links = new List<(DslDataset Ds, long Prev)>();
        var origins = new List<(DslDir Dir, long Origin)>();
        for (int i = 0; i < count; i++)
        {
            long id = r.ReadInt64(), parentId = r.ReadInt64();
            string name = r.ReadString();
            var type = (DatasetType)r.ReadByte();
            DslDir? parent = null;
            if (parentId != 0 && !dirsById.TryGetValue(parentId, out parent)) return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
            var dir = new DslDir { Id = id, Parent = parent, Name = name, Type = type };
            origins.Add((dir, r.ReadInt64()));
            dir.VolBlockSize = r.ReadInt64();
            dir.CreateTxg = r.ReadInt64();
            dir.HeadUsed = r.ReadInt64();
            dir.SnapUsed = r.ReadInt64();
            int props = r.ReadInt32();
            for (int p = 0; p < props; p++) dir.Local[r.ReadString()] = r.ReadString();
            int snaps = r.ReadInt32();
            for (int s = 0; s <= snaps; s++)
            {
                var ds = new DslDataset(this) { Id = r.ReadInt64(), Dir = dir, SnapName = r.ReadString() };
                ds.Txg = r.ReadInt64();
                ds.Creation = r.ReadInt64();
                links.Add((ds, r.ReadInt64()));
                if (!BlockPointer.TryRead(r.ReadBytes(BlockPointer.Size), out ds.Root)) return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
                ds.Referenced = r.ReadInt64();
                ds.Unique = r.ReadInt64();
                ds.Written = r.ReadInt64();
                ds.Deadlist.ObjectId = r.ReadInt64();
                ds.Deadlist.Persisted = r.ReadInt32();
                byId[ds.Id] = ds;
                if (s < snaps) dir.Snapshots.Add(ds); else dir.Head = ds;
            }
            parent?.Children.Add(dir);
            dirsById[id] = dir;
            _dirs.Add(dir);
            if (parent is null) _root = dir;
            RefreshProperties(dir);
        }
        foreach (var (ds, prev) in links)
        {
            if (prev == 0) continue;
            if (!byId.TryGetValue(prev, out ds.Prev)) return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
        }
        foreach (var (dir, origin) in origins)
        {
            if (origin == 0) continue;
            if (!byId.TryGetValue(origin, out dir.Origin)) return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
        }
        foreach (var dir in _dirs)
            foreach (var s in dir.Snapshots) s.Guid = DerivedGuid(s.Id);
        if (r.BaseStream.Position < 4 + used)
            for (long id = r.ReadInt64(); id != 0; id = r.ReadInt64())
            {
                ulong guid = r.ReadUInt64();
                if (byId.TryGetValue(id, out var snap)) snap.Guid = guid;
            }
        foreach (var dir in _dirs) _byName[dir.FullName] = dir;
        return _root is null ? new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory") : StorageResult.Success;
    }

    private StorageResult ReadDeadlist(Deadlist list)
    {
        if (list.Persisted == 0) return StorageResult.Success;
        var bytes = new byte[(long)list.Persisted * BlockPointer.Size];
        var read = _pool.Objects.Read(list.ObjectId, 0, bytes, out int n);
        if (!read.IsOk) return read;
        if (n != bytes.Length) return new StorageResult(StorageStatus.MetadataCorrupted, "");
        for (int i = 0; i < list.Persisted; i++)
        {
            if (!BlockPointer.TryRead(bytes.AsSpan(i * BlockPointer.Size), out var bp)) return new StorageResult(StorageStatus.MetadataCorrupted, "");
            list.Entries.Add(bp);
        }
        return StorageResult.Success;
    }
}
