namespace SmartOS.Storage.Tests;

/// <summary>Dsl.cs rule 4: used, referenced and the usedby* split equal what walks of the trees find, after every kind of change.</summary>
public class DatasetSpaceTests : DatasetFixture
{
    [Test]
    public void Space_matches_the_blocks_held_after_every_kind_of_change()
    {
        var pool = Create("tank", VdevSpec.Disk("d0"));
        try
        {
            Ok(pool.Datasets.Create("tank/a", DatasetType.Filesystem));
            long big = NewFile(pool, "tank/a", Bytes(1_000_000, 1));
            long small = NewFile(pool, "tank/a", Bytes(300_000, 2));
            AuditSpace(pool);                                            // write

            Ok(Objects(pool, "tank/a").Write(big, 200_000, Bytes(150_000, 3)));
            AuditSpace(pool);                                            // overwrite, no snapshot: old blocks freed

            Ok(pool.Datasets.Snapshot("tank/a@1"));
            AuditSpace(pool);                                            // snapshot

            Ok(Objects(pool, "tank/a").Write(big, 0, Bytes(400_000, 4)));
            Ok(Objects(pool, "tank/a").Delete(small));
            AuditSpace(pool);                                            // overwrite and delete under a snapshot: dead list
            Assert.That(Num(pool, "tank/a", "usedbysnapshots"), Is.GreaterThan(300_000), "the deleted object is held by @1 alone");
            Assert.That(Num(pool, "tank/a@1", "used"), Is.EqualTo(Num(pool, "tank/a", "usedbysnapshots")));

            Ok(pool.Datasets.Snapshot("tank/a@2"));
            NewFile(pool, "tank/a", Bytes(500_000, 5));
            Ok(Objects(pool, "tank/a").Write(big, 600_000, Bytes(200_000, 6)));
            AuditSpace(pool);

            Ok(pool.Datasets.Clone("tank/a@1", "tank/c"));
            NewFile(pool, "tank/c", Bytes(250_000, 7));
            Ok(Objects(pool, "tank/c").Write(big, 100_000, Bytes(300_000, 8)));
            AuditSpace(pool);                                            // clone, and writes to it

            Ok(pool.Datasets.Snapshot("tank/c@x"));
            Ok(Objects(pool, "tank/c").Delete(big));
            AuditSpace(pool);

            Ok(pool.Datasets.Destroy("tank/a@2"));
            AuditSpace(pool);                                            // destroy a snapshot

            Ok(pool.Datasets.Promote("tank/c"));
            Assert.That(Prop(pool, "tank/a", "origin"), Is.EqualTo("tank/c@1"));
            AuditSpace(pool);                                            // promote

            Ok(Objects(pool, "tank/c").Delete(small));
            AuditSpace(pool);

            Ok(pool.Datasets.Rollback("tank/c@x"));
            AuditSpace(pool);                                            // rollback

            Ok(pool.Datasets.Destroy("tank/a"));
            Ok(pool.Datasets.Destroy("tank/c@1"));
            AuditSpace(pool);                                            // destroy a clone, then its origin

            Ok(pool.Export());
            pool = Open("tank");
            AuditSpace(pool);                                            // the counters survive export and import
            Assert.That(pool.Scrub().Errors, Is.Zero);
            Ok(pool.Datasets.Destroy("tank/c", DestroyFlags.Recursive));
            AuditSpace(pool);
            Assert.That(Num(pool, "tank", "used"), Is.LessThan(4096), "only the root's empty object set is left");
        }
        finally
        {
            pool.Dispose();
        }
    }
}
