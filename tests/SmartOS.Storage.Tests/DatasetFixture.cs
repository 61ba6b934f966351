namespace SmartOS.Storage.Tests;

/// <summary>Helpers for dataset tests: files as objects of a dataset, property reads, and the space audit.</summary>
public abstract class DatasetFixture : PoolFixture
{
    protected static void Ok(StorageResult result) => Assert.That(result.Message, Is.EqualTo("ok"));

    protected static ObjectSet Objects(Pool pool, string dataset)
    {
        Ok(pool.Datasets.Open(dataset, out var objects));
        return objects;
    }

    protected static long NewFile(Pool pool, string dataset, byte[] content)
    {
        var objects = Objects(pool, dataset);
        Ok(objects.Create(out long id));
        Ok(objects.Write(id, 0, content));
        return id;
    }

    protected static byte[] ReadFile(Pool pool, string dataset, long id)
    {
        var objects = Objects(pool, dataset);
        Ok(objects.GetLength(id, out long n));
        var data = new byte[n];
        Ok(objects.Read(id, 0, data, out int got));
        Assert.That(got, Is.EqualTo(n));
        return data;
    }

    protected static string Prop(Pool pool, string dataset, string property)
    {
        Ok(pool.Datasets.Get(dataset, property, out var value));
        return value.Value;
    }

    protected static long Num(Pool pool, string dataset, string property)
    {
        Ok(pool.Datasets.Get(dataset, property, out var value));
        Assert.That(value.Number, Is.Not.Null, property);
        return value.Number!.Value;
    }

    private static Dictionary<Dva, long> Blocks(Pool pool, string dataset)
    {
        var list = new List<BlockPointer>();
        Ok(pool.Datasets.Walk(dataset, list));
        var blocks = new Dictionary<Dva, long>();
        foreach (var bp in list)
        {
            Assert.That(blocks.TryAdd(bp.Dva0, bp.PhysicalSize), Is.True, $"{dataset} reaches {bp} twice");
        }
        return blocks;
    }

    private static long Sum(Dictionary<Dva, long> blocks, params Dictionary<Dva, long>?[] except)
    {
        long n = 0;
        foreach (var (dva, size) in blocks)
        {
            bool shared = false;
            foreach (var other in except) shared |= other is not null && other.ContainsKey(dva);
            if (!shared) n += size;
        }
        return n;
    }

    /// <summary>
    /// Commits, then holds every dataset's space properties against walks of the blocks actually
    /// held (single-disk pools with one copy, where a block takes its stored size): referenced,
    /// written, usedbydataset, usedbysnapshots, a snapshot's used, usedbychildren, used, and the
    /// pool's allocated bytes against the union of every dataset's blocks plus the MOS.
    /// </summary>
    protected static void AuditSpace(Pool pool)
    {
        Ok(pool.Commit());
        Ok(pool.Datasets.List(null, -1, DatasetKinds.All, out var names));
        var blocks = new Dictionary<string, Dictionary<Dva, long>>();
        var union = new Dictionary<Dva, long>();
        foreach (var name in names)
        {
            blocks[name] = Blocks(pool, name);
            foreach (var (dva, size) in blocks[name]) union[dva] = size;
        }
        long charged = 0;
        using (Assert.EnterMultipleScope())
        {
            foreach (var name in names)
            {
                Assert.That(Num(pool, name, "referenced"), Is.EqualTo(Sum(blocks[name])), $"{name} referenced");
                if (name.Contains('@')) continue;
                Ok(pool.Datasets.List(name, 1, DatasetKinds.Snapshot, out var snaps));
                string origin = Prop(pool, name, "origin");
                var originBlocks = origin == "-" ? null : blocks[origin];
                var lineage = new List<string>(snaps) { name };
                for (int i = 0; i < lineage.Count; i++)
                {
                    var prev = i == 0 ? originBlocks : blocks[lineage[i - 1]];
                    Assert.That(Num(pool, lineage[i], "written"), Is.EqualTo(Sum(blocks[lineage[i]], prev)), $"{lineage[i]} written");
                    if (i < lineage.Count - 1)
                        Assert.That(Num(pool, lineage[i], "used"), Is.EqualTo(Sum(blocks[lineage[i]], prev, blocks[lineage[i + 1]])), $"{lineage[i]} used");
                }
                var snapshotOnly = new Dictionary<Dva, long>();
                foreach (var s in snaps) foreach (var (dva, size) in blocks[s]) snapshotOnly[dva] = size;
                long byDataset = Sum(blocks[name], originBlocks);
                long bySnapshots = Sum(snapshotOnly, blocks[name], originBlocks);
                Assert.That(Num(pool, name, "usedbydataset"), Is.EqualTo(byDataset), $"{name} usedbydataset");
                Assert.That(Num(pool, name, "usedbysnapshots"), Is.EqualTo(bySnapshots), $"{name} usedbysnapshots");
                charged += byDataset + bySnapshots;
                Ok(pool.Datasets.List(name, 1, DatasetKinds.Filesystem | DatasetKinds.Volume, out var children));
                long byChildren = 0;
                foreach (var child in children)
                {
                    if (child == name) continue;
                    byChildren += Math.Max(Num(pool, child, "used"), Num(pool, child, "reservation"));
                }
                Assert.That(Num(pool, name, "usedbychildren"), Is.EqualTo(byChildren), $"{name} usedbychildren");
                Assert.That(Num(pool, name, "used"), Is.EqualTo(byDataset + bySnapshots + byChildren + Num(pool, name, "usedbyrefreservation")), $"{name} used");
            }
            Assert.That(charged, Is.EqualTo(Sum(union)), "every block is charged to exactly one dataset");
            Assert.That(pool.Allocated, Is.EqualTo(Sum(union) + pool.Datasets.MetaAllocated), "allocated = datasets' blocks + the MOS: nothing leaked");
            Assert.That(Num(pool, pool.Name, "available"),
                        Is.EqualTo(pool.Size - pool.Datasets.SlopSpace - pool.Datasets.MetaAllocated - Num(pool, pool.Name, "used")), "available");
        }
    }
}
