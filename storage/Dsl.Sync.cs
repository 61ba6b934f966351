using System.Text;

namespace SmartOS.Storage;

/// <summary>Committing and loading the dataset directory (Dsl.cs: object 1 of the MOS and one MOS object per dead list).</summary>
public sealed partial class DatasetTree
{
    private const uint Magic = 0x44534C31;   // "DSL1"

    /// <summary>At pool create: the dataset directory and the pool's root filesystem, named as the pool.</summary>
    internal void CreateRoot()
    {
        var made = _pool.Objects.Create(out long id);
        System.Diagnostics.Debug.Assert(made.IsOk && id == DirectoryObject, "the dataset directory is the MOS's first object");
        _root = NewDir(null, _pool.Name, DatasetType.Filesystem, _pool.Txg + 1);
        var formatted = ZplFileSystem.Format(_root.Head.Objects!, _pool.Now());
        System.Diagnostics.Debug.Assert(formatted.IsOk, "an empty object set in memory takes a file system");
        _dirty = true;
    }

    private DslDir NewDir(DslDir? parent, string name, DatasetType type, long txg)
    {
        var dir = new DslDir { Id = _nextId++, Parent = parent, Name = name, Type = type, CreateTxg = txg };
        dir.Head = new DslDataset(this) { Id = _nextId++, Dir = dir, SnapName = "", Creation = _pool.Now(), RootDirty = true };
        dir.Head.Objects = new ObjectSet(_pool, dir.Head);
        parent?.Children.Add(dir);
        _dirs.Add(dir);
        _byName[dir.FullName] = dir;
        return dir;
    }

    /// <summary>
    /// Writes each dirty head (its objects, then its root block), takes the snapshots asked for in
    /// this txg, appends the dead lists and rewrites the directory; the MOS is synced after this.
    /// </summary>
    internal StorageResult Sync(long txg)
    {
        foreach (var dir in _dirs)
        {
            var head = dir.Head;
            if (!head.RootDirty && head.Objects is not { IsDirty: true }) continue;
            var result = SyncHead(head, txg);
            if (!result.IsOk) return result;
            _dirty = true;
        }
        foreach (var (head, snap) in _pendingSnapshots) TakeSnapshot(head, snap, txg);
        _pendingSnapshots.Clear();
        foreach (var dir in _dirs)
        {
            dir.Pending = 0;
            dir.Head.PendingOwn = 0;
        }
        if (!_dirty) return StorageResult.Success;
        foreach (var dir in _dirs)
            foreach (var ds in Lineage(dir))
            {
                var result = SyncDeadlist(ds.Deadlist);
                if (!result.IsOk) return result;
            }
        _dirty = false;
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
        _dirty = true;
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

    // ---- the directory object: a length, then the datasets, parents before children ----

    private StorageResult WriteDirectory()
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(0);
            w.Write(Magic);
            w.Write(_nextId);
            var order = new List<DslDir>();
            AddInTreeOrder(_root, order);
            w.Write(order.Count);
            Span<byte> bp = stackalloc byte[BlockPointer.Size];
            foreach (var dir in order)
            {
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
                }
            }
            // Snapshot guids follow the datasets, so that a directory written before they were
            // kept still reads (its snapshots then get derived guids).
            foreach (var dir in order)
                foreach (var s in dir.Snapshots) { w.Write(s.Id); w.Write(s.Guid); }
            w.Write(0L);
        }
        var bytes = stream.GetBuffer().AsSpan(0, (int)stream.Length);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes, bytes.Length - 4);
        return _pool.Objects.Write(DirectoryObject, 0, bytes);
    }

    private static void AddInTreeOrder(DslDir dir, List<DslDir> order)
    {
        order.Add(dir);
        foreach (var child in dir.Children) AddInTreeOrder(child, order);
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

    private static void ComputeChildrenUsed(DslDir dir)
    {
        dir.ChildrenUsed = 0;
        foreach (var child in dir.Children)
        {
            ComputeChildrenUsed(child);
            dir.ChildrenUsed += child.Charged;
        }
    }

    private StorageResult ReadDirectory()
    {
        var length = _pool.Objects.GetLength(DirectoryObject, out long total);
        if (!length.IsOk) return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
        var bytes = new byte[total];
        var read = _pool.Objects.Read(DirectoryObject, 0, bytes, out _);
        if (!read.IsOk) return new StorageResult(read.Status, "dataset directory");
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        int used = r.ReadInt32();
        if (used < 0 || used > total - 4 || r.ReadUInt32() != Magic) return new StorageResult(StorageStatus.MetadataCorrupted, "dataset directory");
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
