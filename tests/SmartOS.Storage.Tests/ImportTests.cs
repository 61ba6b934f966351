namespace SmartOS.Storage.Tests;

/// <summary>Finding pools by their labels (Pool.cs rule 4), and refusing damaged labels and uberblocks.</summary>
public class ImportTests : PoolFixture
{
    [Test]
    public void Import_finds_every_pool_in_a_directory_by_its_labels()
    {
        Create("tank", VdevSpec.Mirror("a0", "a1")).Dispose();
        Create("data", VdevSpec.Disk("b0"), VdevSpec.Disk("b1")).Dispose();
        File.WriteAllText(Path.Combine(Dir, "notes.txt"), "not a vdev");
        var scan = Pool.Import(Dir);
        Assert.That(scan.Pools.Select(p => (p.Name, p.State, p.Txg)), Is.EquivalentTo(new[] { ("tank", "ONLINE", 1L), ("data", "ONLINE", 1L) }));
        Assert.That(scan.Damaged, Is.Empty);
        var tank = scan.Pools.Single(p => p.Name == "tank");
        Assert.That(tank.Config.Tops.Single().Kind, Is.EqualTo(VdevKind.Mirror));
    }

    [Test]
    public void Renamed_vdev_files_are_found_by_guid()
    {
        long id;
        using (var pool = Create("tank", VdevSpec.Mirror("a0", "a1")))
        {
            id = NewObject(pool, Bytes(1000, 1));
            pool.Commit();
        }
        File.Move(Path.Combine(Dir, "a0"), Path.Combine(Dir, "z9"));
        using var reopened = Open("tank");
        Assert.That(ReadAll(reopened, id), Is.EqualTo(Bytes(1000, 1)));
    }

    [Test]
    public void A_missing_vdev_makes_the_pool_unavailable()
    {
        Create("tank", VdevSpec.Disk("a0"), VdevSpec.Disk("a1")).Dispose();
        File.Delete(Path.Combine(Dir, "a1"));
        var scan = Pool.Import(Dir);
        Assert.That(scan.Pools.Single().State, Is.EqualTo("UNAVAIL"));
        var result = Pool.Open(Dir, "tank", Options(), out _);
        Assert.That(result.Message, Is.EqualTo("cannot import 'tank': missing a1: one or more devices is currently unavailable"));
    }

    [Test]
    public void An_unknown_pool_name_is_no_such_pool()
    {
        var result = Pool.Open(Dir, "nope", Options(), out _);
        Assert.That(result.Message, Is.EqualTo("cannot import 'nope': no such pool available"));
    }

    [Test]
    public void One_damaged_label_is_survived_through_the_other()
    {
        Create("tank", VdevSpec.Disk("d0")).Dispose();
        Damage("d0", 100, [1, 2, 3]);
        using var pool = Open("tank");
        Assert.That(pool.Name, Is.EqualTo("tank"));
    }

    [Test]
    public void A_vdev_whose_labels_are_all_damaged_is_reported_with_the_reason()
    {
        Create("tank", VdevSpec.Disk("d0")).Dispose();
        Damage("d0", 100, [1, 2, 3]);
        Damage("d0", VdevSize - VdevLabel.LabelSize + 100, [1, 2, 3]);
        var scan = Pool.Import(Dir);
        Assert.That(scan.Pools, Is.Empty);
        Assert.That(scan.Damaged.Single().Problem, Is.EqualTo("label 1: label checksum mismatch"));
        var result = Pool.Open(Dir, "tank", Options(), out _);
        Assert.That(result.Status, Is.EqualTo(StorageStatus.LabelDamaged));
        Assert.That(result.Message, Is.EqualTo("cannot import 'tank': no such pool available (d0: label 1: label checksum mismatch): invalid vdev label"));
    }

    [Test]
    public void A_damaged_newest_uberblock_opens_the_txg_before_it()
    {
        long id;
        long txg;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            id = NewObject(pool, Bytes(1000, 1));
            pool.Commit();
            pool.Objects.Write(id, 0, Bytes(1000, 2));
            pool.Commit();
            txg = pool.Txg;
        }
        long slot = VdevLabel.RingOffset + txg % VdevLabel.RingSlots * VdevLabel.UberblockSize;
        Damage("d0", slot + 20, [0xff]);
        Damage("d0", VdevSize - VdevLabel.LabelSize + slot + 20, [0xff]);
        using var reopened = Open("tank");
        Assert.That(reopened.Txg, Is.EqualTo(txg - 1));
        Assert.That(ReadAll(reopened, id), Is.EqualTo(Bytes(1000, 1)));
    }

    [Test]
    public void A_pool_without_a_valid_uberblock_is_refused()
    {
        Create("tank", VdevSpec.Disk("d0")).Dispose();
        var ring = new byte[VdevLabel.LabelSize - VdevLabel.RingOffset];
        Array.Fill(ring, (byte)0xa5);
        Damage("d0", VdevLabel.RingOffset, ring);
        Damage("d0", VdevSize - VdevLabel.LabelSize + VdevLabel.RingOffset, ring);
        var result = Pool.Open(Dir, "tank", Options(), out _);
        Assert.That(result.Message, Is.EqualTo("cannot import 'tank': no valid uberblock found"));
    }

    [Test]
    public void The_same_calls_write_the_same_bytes()
    {
        byte[] Run(string sub)
        {
            string dir = Path.Combine(Dir, sub);
            long now = 0;
            var options = new PoolOptions { Clock = () => now += 1000, Random = new Kernel.HostRandom(7) };
            Pool.Create(dir, "tank", [VdevSpec.Disk("d0")], VdevSize, options, out var created);
            using (var pool = created!)
            {
                NewObject(pool, Bytes(300_000, 1));
                pool.Commit();
            }
            return File.ReadAllBytes(Path.Combine(dir, "d0"));
        }
        Assert.That(Run("one").SequenceEqual(Run("two")), Is.True);
    }
}
