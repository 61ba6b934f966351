using SmartOS.Storage.Send;

namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// Resumable receive of incremental streams (Dsl.SendResume.cs rule 5): an incremental stream cut
/// short and received with -s keeps what arrived in the hidden clone fs/%recv of its base, the token
/// on fs carries the fromguid, zfs send -t sends the rest from the base, and the finished receive
/// makes the snapshot on fs and drops the clone; and what zfs refuses meanwhile.
/// </summary>
public class ResumableIncrementalTests : DatasetStreamFixture
{
    private static readonly ReceiveOptions s_resumable = new() { Resumable = true };

    /// <summary>tank/src@one (populated) and @two (a new large file, one replaced, a link removed, a directory gone).</summary>
    private (byte[] Full, byte[] Incremental) Source(Pool pool)
    {
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        var fs = Mount(pool, "tank/src");
        Write(fs, "new.bin", Bytes(600_000, 7));
        Ok(fs.Unlink("etc/motd"));
        Write(fs, "etc/motd", "changed\n"u8.ToArray(), 0x1A0, 0, 3);
        Ok(fs.Unlink("long-link"));
        Ok(fs.RemoveDirectory("empty"));
        Ok(pool.Commit());
        Ok(pool.Datasets.Snapshot("tank/src@two"));
        return (Send(pool, "tank/src@one"), Send(pool, "tank/src@two", "@one"));
    }

    private static string TokenOf(StorageResult refused)
    {
        string message = refused.Message;
        Assert.That(message, Does.StartWith("cannot receive incremental stream: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n"
                                            + "A resuming stream can be generated on the sending system by running:\n    zfs send -t 1-"));
        return message[(message.LastIndexOf(' ') + 1)..];
    }

    private static byte[] Rest(Pool pool, string token)
    {
        var rest = new MemoryStream();
        Ok(pool.Datasets.SendResume(token, rest));
        return rest.ToArray();
    }

    [TestCase(1, 20)]
    [TestCase(1, 3)]
    [TestCase(1, 2)]
    [TestCase(9, 10)]
    public void A_cut_incremental_stream_resumes_into_the_snapshot_on_fs(int numerator, int denominator)
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var (full, incremental) = Source(pool);
        Ok(Receive(pool, full, "tank/copy"));
        var listingBefore = Listing(pool, "tank/copy");

        string token = TokenOf(Receive(pool, incremental[..(incremental.Length * numerator / denominator)], "tank/copy", s_resumable));
        Assert.That(Prop(pool, "tank/copy", "receive_resume_token"), Is.EqualTo(token));
        Assert.That(ResumeToken.TryDecode(token, out var contents, out _), Is.True);
        Assert.That(contents!.Pairs.Select(p => p.Key), Is.EqualTo(new[] { "fromguid", "object", "offset", "bytes", "toguid", "toname" }));
        Assert.That(contents.TryGetUInt64("fromguid", out ulong fromguid) && fromguid == Guid(pool, "tank/src@one"));
        Assert.That(contents.TryGet<string>("toname", out var toname) && toname == "tank/src@two");
        Assert.That(pool.Datasets.Exists("tank/copy@two"), Is.False);
        Assert.That(Listing(pool, "tank/copy"), Is.EqualTo(listingBefore), "fs itself is untouched while the state is kept");
        Assert.That(All(pool).Where(n => n.Contains('%')), Is.Empty, "zfs list does not show tank/copy/%recv");

        byte[] rest = Rest(pool, token);
        Assert.That(BitConverter.ToUInt64(rest, 16) >> 2 & SendFormat.FeatureResuming, Is.Not.Zero, "BEGIN flagged DMU_BACKUP_FEATURE_RESUMING");
        if (numerator * 2 >= denominator) Assert.That(rest.Length, Is.LessThan(incremental.Length * 3 / 4), "only what did not arrive travels again");
        Ok(Receive(pool, rest, "tank/copy", s_resumable));
        Assert.That(Listing(pool, "tank/copy@two"), Is.EqualTo(Listing(pool, "tank/src@two")));
        Assert.That(Guid(pool, "tank/copy@two"), Is.EqualTo(Guid(pool, "tank/src@two")));
        Assert.That(Prop(pool, "tank/copy", "receive_resume_token"), Is.EqualTo("-"));
        Assert.That(pool.Datasets.HasPartialReceive("tank/copy"), Is.False);
        Assert.That(pool.Datasets.Exists("tank/copy/%recv"), Is.False, "the hidden clone is gone");
        Ok(pool.Datasets.Destroy("tank/copy@one"));
    }

    [Test]
    public void Cut_twice_the_kept_state_grows_and_survives_export_and_import()
    {
        byte[] second;
        string token;
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            var (full, incremental) = Source(pool);
            Ok(Receive(pool, full, "tank/copy"));
            string first = TokenOf(Receive(pool, incremental[..(incremental.Length / 4)], "tank/copy", s_resumable));
            byte[] rest = Rest(pool, first);
            token = TokenOf(Receive(pool, rest[..(rest.Length / 2)], "tank/copy", s_resumable));
            Assert.That(ResumeToken.TryDecode(first, out var c1, out _) && ResumeToken.TryDecode(token, out var c2, out _)
                        && c1!.TryGetUInt64("bytes", out ulong b1) && c2!.TryGetUInt64("bytes", out ulong b2) && b2 > b1, Is.True);
            second = Rest(pool, token);
        }
        using var again = Open("tank");
        Assert.That(Prop(again, "tank/copy", "receive_resume_token"), Is.EqualTo(token));
        Ok(Receive(again, second, "tank/copy"));
        Assert.That(Listing(again, "tank/copy@two"), Is.EqualTo(Listing(again, "tank/src@two")));
    }

    [Test]
    public void While_the_state_is_kept_zfs_refuses_what_it_refuses_and_receive_A_leaves_fs_as_it_was()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var (full, incremental) = Source(pool);
        Ok(Receive(pool, full, "tank/copy"));
        var listing = Listing(pool, "tank/copy");
        string token = TokenOf(Receive(pool, incremental[..(incremental.Length / 2)], "tank/copy", s_resumable));

        Assert.That(Receive(pool, incremental, "tank/copy").Message,
            Is.EqualTo("cannot receive incremental stream: destination tank/copy contains partially-complete state from \"zfs receive -s\"."));
        Assert.That(Receive(pool, incremental, "tank/copy", new ReceiveOptions { Force = true, Resumable = true }).Message,
            Is.EqualTo("cannot receive incremental stream: destination tank/copy contains partially-complete state from \"zfs receive -s\"."));
        Assert.That(pool.Datasets.Destroy("tank/copy@one").Message, Does.StartWith("cannot destroy 'tank/copy@one': snapshot has dependent clones"),
            "the base is pinned by the hidden clone");
        Ok(pool.Datasets.Snapshot("tank@r", recursive: true));
        Assert.That(pool.Datasets.Exists("tank/copy/%recv@r"), Is.False, "a recursive snapshot passes the hidden clone by");
        Ok(pool.Datasets.Destroy("tank@r", DestroyFlags.Recursive));

        Assert.That(Receive(pool, Rest(pool, token), "tank/src").Message,
            Is.EqualTo("cannot receive resume stream: destination 'tank/src' does not hold a partially received stream"));

        Ok(pool.Datasets.AbortReceive("tank/copy"));
        Assert.That(Prop(pool, "tank/copy", "receive_resume_token"), Is.EqualTo("-"));
        Assert.That(pool.Datasets.Exists("tank/copy/%recv"), Is.False);
        Assert.That(Listing(pool, "tank/copy"), Is.EqualTo(listing));
        Assert.That(pool.Datasets.AbortReceive("tank/copy").Message, Is.EqualTo("'tank/copy' does not have any resumable receive state to abort"));
        Ok(Receive(pool, incremental, "tank/copy"));
        Assert.That(Listing(pool, "tank/copy@two"), Is.EqualTo(Listing(pool, "tank/src@two")));
    }

    [Test]
    public void A_changed_base_is_refused_on_either_side_and_destroy_r_takes_the_state_along()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        var (full, incremental) = Source(pool);
        Ok(Receive(pool, full, "tank/copy"));
        string token = TokenOf(Receive(pool, incremental[..(incremental.Length / 2)], "tank/copy", s_resumable));
        byte[] rest = Rest(pool, token);

        // The copy written to since its base: the resumed stream is refused and the state stays.
        Write(Mount(pool, "tank/copy"), "local", "here\n"u8.ToArray());
        Ok(pool.Commit());
        Assert.That(Receive(pool, rest, "tank/copy").Message,
            Is.EqualTo("cannot receive incremental stream: destination tank/copy has been modified\nsince most recent snapshot"));
        Assert.That(Prop(pool, "tank/copy", "receive_resume_token"), Is.EqualTo(token));

        // The sender lost the base: send -t says so, in libzfs's words.
        ulong fromguid = Guid(pool, "tank/src@one");
        Ok(pool.Datasets.Destroy("tank/src@one"));
        Assert.That(pool.Datasets.SendResume(token, new MemoryStream()).Message,
            Is.EqualTo($"cannot resume send: incremental source 0x{fromguid:x} no longer exists"));

        Assert.That(pool.Datasets.Destroy("tank/copy").Message, Does.StartWith("cannot destroy 'tank/copy': filesystem has children"));
        Ok(pool.Datasets.Destroy("tank/copy", DestroyFlags.Recursive));
        Assert.That(pool.Datasets.Exists("tank/copy/%recv"), Is.False);
        Assert.That(All(pool).Where(n => n.StartsWith("tank/copy", StringComparison.Ordinal)), Is.Empty);
    }
}
