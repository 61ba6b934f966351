namespace SmartOS.Storage.Tests;

/// <summary>Properties as `zfs get/set/inherit` see them (Dsl.Properties.cs), and quota and reservation enforcement (Dsl.cs rule 5).</summary>
public class DatasetPropertyTests : DatasetFixture
{
    private static DatasetProperty Get(Pool pool, string dataset, string property)
    {
        Ok(pool.Datasets.Get(dataset, property, out var value));
        return value;
    }

    [Test]
    public void Inherited_values_name_their_source_and_mountpoints_extend_the_ancestors_path()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/a", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/a/b", DatasetType.Filesystem));
        var atime = Get(pool, "tank/a/b", "atime");
        Assert.That((atime.Value, atime.SourceText), Is.EqualTo(("on", "default")));
        Ok(pool.Datasets.Set("tank", "atime", "off"));
        Ok(pool.Datasets.Set("tank/a", "mountpoint", "/data"));
        using (Assert.EnterMultipleScope())
        {
            atime = Get(pool, "tank/a/b", "atime");
            Assert.That((atime.Value, atime.SourceText), Is.EqualTo(("off", "inherited from tank")));
            var mp = Get(pool, "tank/a/b", "mountpoint");
            Assert.That((mp.Value, mp.SourceText), Is.EqualTo(("/data/b", "inherited from tank/a")));
            mp = Get(pool, "tank/a", "mountpoint");
            Assert.That((mp.Value, mp.SourceText), Is.EqualTo(("/data", "local")));
            var quota = Get(pool, "tank/a", "quota");
            Assert.That((quota.Value, quota.SourceText), Is.EqualTo(("none", "default")));
            var used = Get(pool, "tank/a", "used");
            Assert.That(used.SourceText, Is.EqualTo("-"));
        }
        Ok(pool.Datasets.Inherit("tank/a", "mountpoint"));
        Assert.That(Prop(pool, "tank/a/b", "mountpoint"), Is.EqualTo("/tank/a/b"));
        pool.Export();
        using var reopened = Open("tank");
        var kept = Get(reopened, "tank/a/b", "atime");
        Assert.That((kept.Value, kept.SourceText), Is.EqualTo(("off", "inherited from tank")), "properties are stored in the pool");
    }

    [TestCase("quota", "abc", "bad numeric value 'abc'")]
    [TestCase("quota", "10X", "invalid numeric suffix 'X'")]
    [TestCase("quota", "0", "use 'none' to disable quota/refquota")]
    [TestCase("atime", "maybe", "'atime' must be one of 'on | off'")]
    [TestCase("canmount", "yes", "'canmount' must be one of 'on | off | noauto'")]
    [TestCase("mountpoint", "data", "'mountpoint' must be an absolute path, 'none', or 'legacy'")]
    [TestCase("recordsize", "1000", "'recordsize' must be power of 2 from 512B to 128KB")]
    [TestCase("used", "5", "'used' is readonly")]
    [TestCase("volsize", "1M", "'volsize' does not apply to datasets of this type")]
    [TestCase("colour", "red", "invalid property 'colour'")]
    public void Bad_values_are_refused_in_zfs_words_and_change_nothing(string property, string value, string reason)
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        long txg = pool.Txg;
        Assert.That(pool.Datasets.Set("tank/fs", property, value).Message, Is.EqualTo($"cannot set property for 'tank/fs': {reason}"));
        Assert.That(pool.Txg, Is.EqualTo(txg), "nothing committed");
    }

    [Test]
    public void Sizes_take_zfs_suffixes_and_snapshots_take_no_settings()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/fs", "quota", "1.5G"));
        Assert.That(Num(pool, "tank/fs", "quota"), Is.EqualTo(3L << 29));
        Ok(pool.Datasets.Set("tank/fs", "quota", "none"));
        Assert.That(Prop(pool, "tank/fs", "quota"), Is.EqualTo("none"));
        Ok(pool.Datasets.Snapshot("tank/fs@s"));
        Assert.That(pool.Datasets.Set("tank/fs@s", "atime", "off").Message, Is.EqualTo(
            "cannot set property for 'tank/fs@s': this property can not be modified for snapshots"));
        Assert.That(Prop(pool, "tank/fs@s", "type"), Is.EqualTo("snapshot"));
        Assert.That(Prop(pool, "tank/fs@s", "available"), Is.EqualTo("-"));
        Assert.That(pool.Datasets.Inherit("tank/fs", "quota").Message, Is.EqualTo("cannot inherit quota for 'tank/fs': 'quota' property cannot be inherited"));
    }

    [Test]
    public void Creation_comes_from_the_pools_clock()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        long before = Num(pool, "tank", "creation");
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        Ok(pool.Datasets.Snapshot("tank/fs@s"));
        Assert.That(Num(pool, "tank/fs", "creation"), Is.GreaterThan(before));
        Assert.That(Num(pool, "tank/fs@s", "creation"), Is.GreaterThan(Num(pool, "tank/fs", "creation")));
    }

    [Test]
    public void Room_held_by_the_open_txg_is_in_flight_until_a_commit_frees_it()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/q", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/q", "quota", "1M"));
        var objects = Objects(pool, "tank/q");
        Assert.That(objects.RoomIsInFlight(600_000), Is.False, "room free, nothing pending");
        long id = NewFile(pool, "tank/q", Bytes(600_000, 1));
        Ok(pool.Commit());
        Assert.That(objects.RoomIsInFlight(600_000), Is.False, "over quota with nothing in flight: EDQUOT, no commit helps");
        long second = NewFile(pool, "tank/q", Bytes(300_000, 2));
        Assert.That(objects.RoomIsInFlight(600_000), Is.True, "the open txg holds room");
        Assert.That(objects.Write(second, 300_000, Bytes(600_000, 3)).Status, Is.EqualTo(StorageStatus.QuotaExceeded));
        Ok(objects.Delete(id));
        Ok(objects.Delete(second));
        Ok(pool.Commit());
        Assert.That(objects.RoomIsInFlight(600_000), Is.False, "committed: the room is free again");
        Ok(Objects(pool, "tank/q").Create(out long third));
        Ok(Objects(pool, "tank/q").Write(third, 0, Bytes(600_000, 4)));
    }

    [Test]
    public void A_write_past_the_quota_fails_with_EDQUOT_and_writes_nothing()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/q", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/q/child", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/q", "quota", "1M"));
        long id = NewFile(pool, "tank/q/child", Bytes(600_000, 1));
        Ok(pool.Commit());
        var objects = Objects(pool, "tank/q/child");
        var refused = objects.Write(id, 600_000, Bytes(600_000, 2));
        Assert.That(refused.Message, Is.EqualTo("tank/q/child: disk quota exceeded"));
        Ok(objects.GetLength(id, out long length));
        Assert.That(length, Is.EqualTo(600_000), "nothing half-written");
        Assert.That(pool.Datasets.Set("tank/q", "quota", "100K").Message, Is.EqualTo(
            "cannot set property for 'tank/q': size is less than current used or reserved space"));
        Ok(pool.Datasets.Set("tank/q/child", "refquota", "700K"));
        Assert.That(objects.Write(id, 600_000, Bytes(200_000, 3)).Status, Is.EqualTo(StorageStatus.QuotaExceeded));
        AuditSpace(pool);
    }

    [Test]
    public void A_reservation_keeps_space_for_its_dataset_and_refuses_others_with_ENOSPC()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/r", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/other", DatasetType.Filesystem));
        long avail = Num(pool, "tank", "available");
        long reserve = avail - (4L << 20);
        Assert.That(pool.Datasets.Set("tank/r", "reservation", (avail + (1 << 20)).ToString()).Message, Is.EqualTo(
            "cannot set property for 'tank/r': size is greater than available space"));
        Ok(pool.Datasets.Set("tank/r", "reservation", reserve.ToString()));
        Assert.That(Num(pool, "tank/other", "available"), Is.LessThanOrEqualTo((4L << 20) + 4096));
        Assert.That(Num(pool, "tank/r", "available"), Is.GreaterThanOrEqualTo(reserve));
        var other = Objects(pool, "tank/other");
        Ok(other.Create(out long id));
        var refused = other.Write(id, 0, new byte[5 << 20]);
        Assert.That(refused.Message, Is.EqualTo("tank/other: out of space"));
        NewFile(pool, "tank/r", Bytes(8 << 20, 1));
        AuditSpace(pool);
    }

    [Test]
    public void A_readonly_dataset_and_its_children_refuse_writes()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/ro", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/ro/child", DatasetType.Filesystem));
        long id = NewFile(pool, "tank/ro/child", Bytes(1000, 1));
        Ok(pool.Datasets.Set("tank/ro", "readonly", "on"));
        Assert.That(Objects(pool, "tank/ro/child").Write(id, 0, [1]).Message, Is.EqualTo("tank/ro/child: read-only file system"));
        Ok(pool.Datasets.Inherit("tank/ro", "readonly"));
        Ok(Objects(pool, "tank/ro/child").Write(id, 0, [1]));
    }

    [Test]
    public void A_dataset_checksum_is_what_its_blocks_carry()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/s", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/s", "checksum", "sha256"));
        long id = NewFile(pool, "tank/s", Bytes(1000, 1));
        Ok(pool.Commit());
        Ok(Objects(pool, "tank/s").Locate(id, 0, out var bp));
        Assert.That(bp.ChecksumKind, Is.EqualTo(ChecksumKind.Sha256));
    }

    private static double Ratio(string text) => double.Parse(text.TrimEnd('x'), System.Globalization.CultureInfo.InvariantCulture);

    [Test]
    public void A_dataset_compression_is_how_its_blocks_are_stored_and_compressratio_measures_it()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/c", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/c/child", DatasetType.Filesystem));
        Ok(pool.Datasets.Set("tank/c", "compression", "lz4"));
        var text = new byte[512 * 1024];
        for (int i = 0; i < text.Length; i++) text[i] = (byte)('a' + i % 7);
        long id = NewFile(pool, "tank/c/child", text);
        long plain = NewFile(pool, "tank", Bytes(256 * 1024, 3));
        Ok(pool.Commit());
        Ok(Objects(pool, "tank/c/child").Locate(id, 0, out var bp));
        Assert.That((bp.Compression, bp.LogicalSize), Is.EqualTo((CompressionSetting.FunctionLz4, 128 * 1024)));
        Assert.That(bp.PhysicalSize, Is.LessThan(bp.LogicalSize / 8));
        Ok(Objects(pool, "tank").Locate(plain, 0, out bp));
        Assert.That(bp.Compression, Is.EqualTo(CompressionSetting.FunctionOff));
        var child = Prop(pool, "tank/c/child", "compressratio");
        Assert.That(Ratio(child), Is.GreaterThan(8));
        Assert.That(Prop(pool, "tank/c/child", "refcompressratio"), Is.EqualTo(child), "no snapshots or children: the same blocks");
        // tank/c's own blocks are a little metadata; its compressratio counts its child's data too.
        Assert.That(Ratio(Prop(pool, "tank/c", "refcompressratio")), Is.LessThan(8));
        Assert.That(Ratio(Prop(pool, "tank/c", "compressratio")), Is.GreaterThan(8));
        Ok(pool.Datasets.Snapshot("tank/c/child@s"));
        Assert.That(Prop(pool, "tank/c/child@s", "compressratio"), Is.EqualTo(child));
        Assert.That(pool.Datasets.Set("tank/c", "compression", "lzjb").Message, Is.EqualTo(
            "cannot set property for 'tank/c': compression 'lzjb' is not supported yet"));
        Ok(pool.Datasets.Set("tank/c", "compression", "zstd-19"));
        Assert.That(Prop(pool, "tank/c/child", "compression"), Is.EqualTo("zstd-19"));
    }

    [Test]
    public void Get_all_lists_every_property_in_zfs_order_with_dashes_where_they_do_not_apply()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Snapshot("tank@s"));
        Ok(pool.Datasets.GetAll("tank@s", out var values));
        var names = new List<string>();
        foreach (var v in values) names.Add(v.Name);
        Assert.That(names, Is.EqualTo(DatasetTree.PropertyNames));
        Assert.That(names[..6], Is.EqualTo(new[] { "type", "creation", "used", "available", "referenced", "compressratio" }));
        var quota = values[names.IndexOf("quota")];
        Assert.That((quota.Value, quota.SourceText), Is.EqualTo(("-", "-")));
        Assert.That(values[names.IndexOf("compressratio")].Value, Is.EqualTo("1.00x"));
    }

    [Test]
    public void Filling_the_pool_stops_at_the_slop_space_with_ENOSPC_and_the_pool_still_commits()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/fs", DatasetType.Filesystem));
        var objects = Objects(pool, "tank/fs");
        Ok(objects.Create(out long id));
        var chunk = Bytes(1 << 20, 1);
        long written = 0;
        StorageResult last = StorageResult.Success;
        for (int i = 0; i < 200 && last.IsOk; i++)
        {
            last = objects.Write(id, written, chunk);
            if (last.IsOk) written += chunk.Length;
            if (i % 8 == 7) Ok(pool.Commit());
        }
        Assert.That(last.Message, Is.EqualTo("tank/fs: out of space"));
        Ok(pool.Commit());
        Assert.That(pool.Suspended.IsOk, Is.True);
        Ok(objects.GetLength(id, out long length));
        Assert.That(length, Is.EqualTo(written));
        Assert.That(pool.Size - pool.Allocated, Is.GreaterThanOrEqualTo(pool.Datasets.SlopSpace - (1 << 20)));
        AuditSpace(pool);
    }
}
