using System.Text;

namespace SmartOS.Storage.Tests.Send;

/// <summary>zfs send, receive and diff between datasets of our pools (Dsl.Send.cs): round trips, errors, nothing half-received.</summary>
public class DatasetStreamTests : DatasetStreamFixture
{
    [Test]
    public void A_full_stream_received_holds_every_name_mode_owner_time_and_byte()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        byte[] stream = Send(pool, "tank/src@one");

        Ok(pool.Datasets.Receive(new MemoryStream(stream), "tank/copy", new ReceiveOptions(), out var summary));

        Assert.That(summary!.Snapshot, Is.EqualTo("tank/copy@one"));
        Assert.That(Listing(pool, "tank/copy@one"), Is.EqualTo(Listing(pool, "tank/src@one")));
        Assert.That(Listing(pool, "tank/copy"), Is.EqualTo(Listing(pool, "tank/src@one")));
        byte[] again = Send(pool, "tank/copy@one");
        Assert.That(again[312..^312], Is.EqualTo(stream[312..^312]), "the received snapshot sends the same records (all but BEGIN's name and END's sum)");
        Assert.That(again[..56], Is.EqualTo(stream[..56]), "the same guid and creation time");
    }

    [Test]
    public void An_incremental_stream_brings_adds_removes_renames_and_changed_blocks()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Ok(Receive(pool, Send(pool, "tank/src@one"), "tank/copy"));
        var fs = Mount(pool, "tank/src");
        Ok(fs.Lookup("big.bin", out long big));
        Ok(fs.Write(big, 300_000, Bytes(1000, 2)));
        Ok(fs.Unlink("etc/motd.hard"));
        Ok(fs.Rename("etc/ssh", "ssh"));
        Write(fs, "ssh/new", "fresh"u8.ToArray());
        Ok(fs.ChangeMode("empty", 0x1FF));
        Ok(fs.Truncate("sparse.img", 100));
        Ok(pool.Datasets.Snapshot("tank/src@two"));
        byte[] incremental = Send(pool, "tank/src@two", "@one");

        Ok(pool.Datasets.Receive(new MemoryStream(incremental), "tank/copy", new ReceiveOptions(), out var summary));

        Assert.That(summary!.Incremental, Is.True);
        Assert.That(Listing(pool, "tank/copy@two"), Is.EqualTo(Listing(pool, "tank/src@two")));
        Assert.That(Listing(pool, "tank/copy@one"), Is.EqualTo(Listing(pool, "tank/src@one")));
        Assert.That(Guid(pool, "tank/copy@two"), Is.EqualTo(Guid(pool, "tank/src@two")));
        Assert.That(incremental.Length, Is.LessThan(Send(pool, "tank/src@two").Length / 3), "only what changed is sent");
    }

    [Test]
    public void A_full_stream_onto_an_existing_filesystem_needs_F_and_then_replaces_it()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        byte[] stream = Send(pool, "tank/src@one");
        Ok(pool.Datasets.Create("tank/x", DatasetType.Filesystem));
        Write(Mount(pool, "tank/x"), "old", "old"u8.ToArray());

        Assert.That(Receive(pool, stream, "tank/x").Message,
            Is.EqualTo("cannot receive new filesystem stream: destination 'tank/x' exists\nmust specify -F to overwrite it"));
        Ok(Receive(pool, stream, "tank/x", new ReceiveOptions { Force = true }));
        Assert.That(Listing(pool, "tank/x"), Is.EqualTo(Listing(pool, "tank/src@one")));

        Assert.That(Receive(pool, stream, "tank/x", new ReceiveOptions { Force = true }).Message,
            Is.EqualTo("cannot receive new filesystem stream: destination has snapshots (eg. tank/x@one)\nmust destroy them to overwrite it"));
        Assert.That(Receive(pool, stream, "tank/nope/x").Message,
            Is.EqualTo("cannot receive new filesystem stream: destination 'tank/nope' does not exist"));
    }

    [Test]
    public void An_incremental_stream_for_another_base_is_refused_and_changes_nothing()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Ok(pool.Datasets.Snapshot("tank/src@two"));
        Ok(pool.Datasets.Snapshot("tank/src@three"));
        Ok(Receive(pool, Send(pool, "tank/src@one"), "tank/copy"));
        var before = All(pool);

        Assert.That(Receive(pool, Send(pool, "tank/src@three", "tank/src@two"), "tank/copy").Message,
            Is.EqualTo("cannot receive incremental stream: most recent snapshot of tank/copy does not\nmatch incremental source"));
        Assert.That(Receive(pool, Send(pool, "tank/src@two", "@one"), "tank/none").Message,
            Is.EqualTo("cannot receive incremental stream: destination 'tank/none' does not exist"));
        Assert.That(All(pool), Is.EqualTo(before));
    }

    [Test]
    public void A_modified_destination_is_refused_without_F_and_rolled_back_with_it()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Ok(Receive(pool, Send(pool, "tank/src@one"), "tank/copy"));
        Write(Mount(pool, "tank/src"), "later", "later"u8.ToArray());
        Ok(pool.Datasets.Snapshot("tank/src@two"));
        byte[] incremental = Send(pool, "tank/src@two", "@one");
        Write(Mount(pool, "tank/copy"), "local", "local change"u8.ToArray());
        Ok(pool.Commit());

        Assert.That(Receive(pool, incremental, "tank/copy").Message,
            Is.EqualTo("cannot receive incremental stream: destination tank/copy has been modified\nsince most recent snapshot"));
        Ok(Receive(pool, incremental, "tank/copy", new ReceiveOptions { Force = true }));
        Assert.That(Listing(pool, "tank/copy"), Is.EqualTo(Listing(pool, "tank/src@two")));
    }

    [Test]
    public void With_F_a_base_older_than_the_newest_snapshot_destroys_the_later_ones()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Ok(Receive(pool, Send(pool, "tank/src@one"), "tank/copy"));
        Ok(pool.Datasets.Snapshot("tank/copy@local"));
        Write(Mount(pool, "tank/src"), "later", "later"u8.ToArray());
        Ok(pool.Datasets.Snapshot("tank/src@two"));
        byte[] incremental = Send(pool, "tank/src@two", "@one");

        Assert.That(Receive(pool, incremental, "tank/copy").Message, Does.StartWith("cannot receive incremental stream: most recent snapshot of tank/copy"));
        Ok(Receive(pool, incremental, "tank/copy", new ReceiveOptions { Force = true }));
        Assert.That(pool.Datasets.Exists("tank/copy@local"), Is.False);
        Assert.That(Listing(pool, "tank/copy@two"), Is.EqualTo(Listing(pool, "tank/src@two")));
    }

    [TestCase(0, "cannot receive: failed to read from stream")]
    [TestCase(100, "cannot receive: failed to read from stream")]
    [TestCase(400, "cannot receive new filesystem stream: invalid backup stream")]
    [TestCase(-312, "cannot receive new filesystem stream: invalid backup stream")]
    [TestCase(-1, "cannot receive new filesystem stream: invalid backup stream")]
    public void A_stream_cut_short_is_refused_and_leaves_nothing(int keep, string message)
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        byte[] stream = Send(pool, "tank/src@one");
        var before = All(pool);

        byte[] cut = stream[..(keep >= 0 ? keep : stream.Length + keep)];
        Assert.That(Receive(pool, cut, "tank/copy").Message, Is.EqualTo(message));
        Assert.That(All(pool), Is.EqualTo(before));
    }

    [Test]
    public void An_altered_stream_fails_its_checksum_and_a_foreign_one_its_magic()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        byte[] stream = Send(pool, "tank/src@one");
        var before = All(pool);

        byte[] altered = (byte[])stream.Clone();
        altered[stream.Length / 2] ^= 0x40;
        var result = Receive(pool, altered, "tank/copy");
        Assert.That(result.Message, Is.EqualTo("cannot receive new filesystem stream: invalid stream (checksum mismatch)"));
        Assert.That(result.Status, Is.EqualTo(StorageStatus.ChecksumError));
        Assert.That(Receive(pool, Encoding.ASCII.GetBytes(new string('#', 400)), "tank/copy").Message,
            Is.EqualTo("cannot receive: invalid stream (bad magic number)"));
        Assert.That(All(pool), Is.EqualTo(before));
    }

    [Test]
    public void Dry_run_names_what_it_would_receive_and_creates_nothing()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/backup", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        byte[] stream = Send(pool, "tank/src@one");
        var before = All(pool);

        Ok(pool.Datasets.Receive(new MemoryStream(stream), "tank/backup", new ReceiveOptions { DryRun = true, DiscardFirst = true }, out var summary));

        Assert.That(summary!.Verbose, Is.EqualTo(new[] { "would receive full stream of tank/src@one into tank/backup/src@one" }));
        Assert.That(All(pool), Is.EqualTo(before));
    }

    [TestCase(false, "tank/backup/src@one")]
    [TestCase(true, "tank/backup/src@one")]
    public void Names_come_from_the_stream_with_d_and_e(bool keepLast, string expected)
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Ok(pool.Datasets.Create("tank/backup", DatasetType.Filesystem));
        Ok(pool.Datasets.Snapshot("tank/src@one"));

        Ok(pool.Datasets.Receive(new MemoryStream(Send(pool, "tank/src@one")), "tank/backup",
            new ReceiveOptions { DiscardFirst = !keepLast, KeepLast = keepLast }, out var summary));

        Assert.That(summary!.Snapshot, Is.EqualTo(expected));
        Assert.That(pool.Datasets.Exists(expected), Is.True);
        Assert.That(Receive(pool, Send(pool, "tank/src@one"), "tank/none", new ReceiveOptions { DiscardFirst = true }).Message,
            Is.EqualTo("cannot receive: specified fs (tank/none) does not exist"));
    }

    [Test]
    public void A_snapshot_name_in_the_target_names_the_received_snapshot()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Ok(Receive(pool, Send(pool, "tank/src@one"), "tank/copy@renamed"));
        Assert.That(pool.Datasets.Exists("tank/copy@renamed"), Is.True);
    }

    [Test]
    public void Bad_send_sources_are_refused_by_name()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Assert.That(pool.Datasets.Send("tank/src@one", new SendOptions { Intermediates = true }, Stream.Null).Message,
            Is.EqualTo("cannot send 'tank/src@one': -I needs an incremental source"));
        Assert.That(pool.Datasets.Send("tank/src@two", new SendOptions(), Stream.Null).Message,
            Is.EqualTo("cannot open 'tank/src@two': dataset does not exist"));
        Assert.That(pool.Datasets.Send("tank/src@one", new SendOptions { From = "@zero" }, Stream.Null).Message,
            Is.EqualTo("cannot send 'tank/src@one': incremental source (tank/src@zero) does not exist"));
        Assert.That(pool.Datasets.Exists("tank/copy"), Is.False);
    }

    [Test]
    public void Snapshot_guids_survive_export_and_import()
    {
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
            Ok(pool.Datasets.Snapshot("tank/src@one"));
            Ok(Receive(pool, Send(pool, "tank/src@one"), "tank/copy"));
            Assert.That(Guid(pool, "tank/copy@one"), Is.EqualTo(Guid(pool, "tank/src@one")));
        }
        using var reopened = Open("tank");
        Assert.That(Guid(reopened, "tank/copy@one"), Is.EqualTo(Guid(reopened, "tank/src@one")));
        Assert.That(Guid(reopened, "tank/copy@one"), Is.Not.Zero);
    }

    [Test]
    public void Diff_lists_changes_under_the_mountpoint_as_zfs_diff_does()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        var fs = Mount(pool, "tank/src");
        Write(fs, "etc/new", "n"u8.ToArray());
        Ok(fs.Unlink("long-link"));
        Ok(fs.Rename("big.bin", "etc/big.bin"));
        Ok(pool.Commit());

        Ok(pool.Datasets.Diff("tank/src@one", null, out var lines));

        Assert.That(lines, Is.EqualTo(new[]
        {
            "M\t/tank/src/",
            "R\t/tank/src/big.bin -> /tank/src/etc/big.bin",
            "M\t/tank/src/etc",
            "+\t/tank/src/etc/new",
            "-\t/tank/src/long-link",
        }));
        Ok(pool.Datasets.Snapshot("tank/src@two"));
        Ok(pool.Datasets.Diff("tank/src@one", "tank/src@two", out var between));
        Assert.That(between, Is.EqualTo(lines));
        Ok(pool.Datasets.Diff("tank/src@two", "tank/src", out var none));
        Assert.That(none, Is.Empty);
        Assert.That(pool.Datasets.Diff("tank/src@two", "tank/src@one", out _).Message,
            Is.EqualTo("Unable to obtain diffs: Not an earlier snapshot from the same fs"));
    }

    [Test]
    public void An_intermediates_stream_brings_every_snapshot_between()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@a"));
        Ok(Receive(pool, Send(pool, "tank/src@a"), "tank/copy"));
        var fs = Mount(pool, "tank/src");
        Write(fs, "b-file", "b"u8.ToArray());
        Ok(pool.Datasets.Snapshot("tank/src@b"));
        Ok(fs.Unlink("etc/motd.hard"));
        Ok(pool.Datasets.Snapshot("tank/src@c"));
        var stream = new MemoryStream();
        Ok(pool.Datasets.Send("tank/src@c", new SendOptions { From = "@a", Intermediates = true }, stream));

        Assert.That(pool.Datasets.Receive(new MemoryStream(stream.ToArray()), "tank/copy@x", new ReceiveOptions(), out _).Message,
            Is.EqualTo("cannot receive: cannot specify snapshot name for multi-snapshot stream"));
        Ok(pool.Datasets.Receive(new MemoryStream(stream.ToArray()), "tank/copy", new ReceiveOptions { DryRun = true }, out var dry));
        Assert.That(dry!.Verbose, Is.EqualTo(new[]
        {
            "would receive incremental stream of tank/src@b into tank/copy@b",
            "would receive incremental stream of tank/src@c",
        }));
        Assert.That(pool.Datasets.Exists("tank/copy@b"), Is.False);
        Ok(pool.Datasets.Receive(new MemoryStream(stream.ToArray()), "tank/copy", new ReceiveOptions(), out var summary));

        Assert.That(summary!.Verbose, Has.Count.EqualTo(2));
        Assert.That(summary.Snapshot, Is.EqualTo("tank/copy@c"));
        Assert.That(Listing(pool, "tank/copy@b"), Is.EqualTo(Listing(pool, "tank/src@b")));
        Assert.That(Listing(pool, "tank/copy@c"), Is.EqualTo(Listing(pool, "tank/src@c")));
    }

    [Test]
    public void A_large_directory_changes_incrementally()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        var fs = Mount(pool, "tank/src");
        Ok(fs.MakeDirectory("many", 0x1ED, 0, 0, out _));
        for (int i = 0; i < 3000; i++) Write(fs, $"many/file-{i:D5}-{new string('n', i % 70)}", [(byte)i]);
        Ok(pool.Datasets.Snapshot("tank/src@a"));
        Ok(Receive(pool, Send(pool, "tank/src@a"), "tank/copy"));
        for (int i = 0; i < 3000; i += 97) Ok(fs.Unlink($"many/file-{i:D5}-{new string('n', i % 70)}"));
        Write(fs, "many/added", "new"u8.ToArray());
        Ok(fs.Rename("many/file-00001-n", "many/renamed"));
        Ok(pool.Datasets.Snapshot("tank/src@b"));

        Ok(Receive(pool, Send(pool, "tank/src@b", "@a"), "tank/copy"));

        Assert.That(Listing(pool, "tank/copy@b"), Is.EqualTo(Listing(pool, "tank/src@b")));
    }

    [Test]
    public void A_receive_that_runs_out_of_quota_leaves_no_dataset_and_the_base_as_it_was()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Ok(pool.Datasets.Create("tank/small", DatasetType.Filesystem, new Dictionary<string, string> { ["quota"] = "256K" }));
        var before = All(pool);

        var full = Receive(pool, Send(pool, "tank/src@one"), "tank/small/copy");

        Assert.That(full.Message, Is.EqualTo("cannot receive new filesystem stream: disk quota exceeded"));
        Assert.That(All(pool), Is.EqualTo(before));

        Ok(Receive(pool, Send(pool, "tank/src@one"), "tank/copy"));
        Ok(pool.Datasets.Set("tank/copy", "quota", "2M"));
        var zpl = Mount(pool, "tank/src");
        Write(zpl, "huge", Bytes(3 * 1024 * 1024, 9));
        Ok(pool.Datasets.Snapshot("tank/src@two"));
        var listing = Listing(pool, "tank/copy");
        before = All(pool);

        var incremental = Receive(pool, Send(pool, "tank/src@two", "@one"), "tank/copy");

        Assert.That(incremental.Message, Is.EqualTo("cannot receive incremental stream: disk quota exceeded"));
        Assert.That(All(pool), Is.EqualTo(before));
        Assert.That(Listing(pool, "tank/copy"), Is.EqualTo(listing));
    }
}
