using System.Buffers.Binary;
using System.IO.Compression;
using SmartOS.Storage.Send;

namespace SmartOS.Storage.Tests.Send;

/// <summary>
/// Resumable receive (Dsl.SendResume.cs): a full stream cut short and received with -s keeps what
/// arrived, zfs send -t sends the rest, receive -A drops it; and the token (Send/ResumeToken.cs)
/// against OpenZFS's layout: a token OpenZFS printed for a cut receive (toname
/// tmpzfs@repli-2020-05-06, object 0x23, offset 0, bytes 0x2ab0, from a public nvlist parser's test
/// data) decodes, and its payload is byte for byte the native nvlist we pack for the same values.
/// </summary>
public class ResumableStreamTests : DatasetStreamFixture
{
    private const string OpenZfsToken = "1-badbdec4c-c0-789c636064000310a500c4ec50360710e72765a52697303028439460caa7a515a79630c001489e0d493ea9b224b518486fd0c2aebf243fbd343305a86edbd65e4f45a6650648f29c60f9bcc4dc54209d5b509556ec50945a9093a96b646064a06b60aa6b6006361300c1bf18b7";

    private static NvList OpenZfsContents() => new NvList().Add("object", 0x23UL).Add("offset", 0UL).Add("bytes", 0x2ab0UL)
        .Add("toguid", 0xa60221498db5b662UL).Add("toname", "tmpzfs@repli-2020-05-06");

    [Test]
    public void An_openzfs_token_decodes_and_its_payload_is_the_native_nvlist_we_pack()
    {
        Assert.That(ResumeToken.TryDecode(OpenZfsToken, out var contents, out string? error), Is.True, error);
        Assert.That(contents!.Pairs.Select(p => $"{p.Key}={p.Value}"), Is.EqualTo(new[]
        {
            "object=35", "offset=0", "bytes=10928", $"toguid={0xa60221498db5b662UL}", "toname=tmpzfs@repli-2020-05-06",
        }));
        byte[] compressed = Convert.FromHexString(OpenZfsToken.Split('-')[3]);
        using var z = new ZLibStream(new MemoryStream(compressed), CompressionMode.Decompress);
        var packed = new MemoryStream();
        z.CopyTo(packed);
        Assert.That(OpenZfsContents().PackNative(), Is.EqualTo(packed.ToArray()));

        string ours = ResumeToken.Encode(OpenZfsContents());
        Assert.That(ours, Does.StartWith("1-").And.Contains("-c0-789c"), "version 1, packed length 0xc0, a zlib stream");
        Assert.That(ResumeToken.TryDecode(ours, out var again, out _), Is.True);
        Assert.That(again!.PackNative(), Is.EqualTo(packed.ToArray()));
    }

    [Test]
    public void Bad_tokens_are_refused_with_libzfs_words()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        string Refused(string token) => pool.Datasets.SendResume(token, new MemoryStream()).Message;
        Assert.That(Refused("garbage"), Is.EqualTo("cannot resume send: resume token is corrupt (invalid format)"));
        Assert.That(Refused("2" + OpenZfsToken[1..]), Is.EqualTo("cannot resume send: resume token is corrupt (invalid version 2)"));
        Assert.That(Refused(OpenZfsToken[..^4] + "zz00"), Is.EqualTo("cannot resume send: resume token is corrupt (payload is not hex-encoded)"));
        int at = OpenZfsToken.LastIndexOf('-') + 20;   // a byte inside the payload's whole words
        Assert.That(Refused(OpenZfsToken[..at] + (OpenZfsToken[at] == '0' ? '1' : '0') + OpenZfsToken[(at + 1)..]), Is.EqualTo("cannot resume send: resume token is corrupt (incorrect checksum)"));
        Assert.That(Refused(OpenZfsToken.Replace("-c0-", "-c1-")), Is.EqualTo("cannot resume send: resume token is corrupt (decompression failed)"));
        Assert.That(Refused(Token(new byte[] { 0, 1, 0, 0, 9, 9 })), Is.EqualTo("cannot resume send: resume token is corrupt (nvlist_unpack failed)"));
        Assert.That(Refused(ResumeToken.Encode(new NvList().Add("object", 1UL))), Is.EqualTo("cannot resume send: resume token is corrupt"));
        Assert.That(Refused(OpenZfsToken), Is.EqualTo("cannot resume send: 'tmpzfs@repli-2020-05-06' used in the initial send no longer exists"));
    }

    /// <summary>A well-formed token around arbitrary packed bytes.</summary>
    private static string Token(byte[] packed)
    {
        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) z.Write(packed);
        byte[] bytes = compressed.ToArray();
        ulong a = 0;
        for (int i = 0; i + 4 <= bytes.Length; i += 4) a += BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i));
        return $"1-{a:x}-{packed.Length:x}-{Convert.ToHexString(bytes).ToLowerInvariant()}";
    }

    private static string TokenOf(StorageResult refused)
    {
        string message = refused.Message;
        Assert.That(message, Does.StartWith("cannot receive new filesystem stream: checksum mismatch or incomplete stream.\nPartially received snapshot is saved.\n"
                                            + "A resuming stream can be generated on the sending system by running:\n    zfs send -t 1-"));
        return message[(message.LastIndexOf(' ') + 1)..];
    }

    [Test]
    public void A_cut_stream_received_with_s_resumes_with_send_t_until_whole()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        byte[] full = Send(pool, "tank/src@one");
        var resumable = new ReceiveOptions { Resumable = true };

        string token = TokenOf(Receive(pool, full[..(full.Length * 2 / 5)], "tank/copy", resumable));
        Assert.That(Prop(pool, "tank/copy", "receive_resume_token"), Is.EqualTo(token));
        Assert.That(pool.Datasets.Exists("tank/copy@one"), Is.False);
        Assert.That(ResumeToken.TryDecode(token, out var contents, out _), Is.True);
        Assert.That(contents!.Pairs.Select(p => p.Key), Is.EqualTo(new[] { "object", "offset", "bytes", "toguid", "toname" }));
        Assert.That(contents.TryGetUInt64("toguid", out ulong toguid) && toguid == Guid(pool, "tank/src@one"));
        Assert.That(contents.TryGet<string>("toname", out var toname) && toname == "tank/src@one");
        Assert.That(contents.TryGetUInt64("object", out ulong obj) && obj > 0, "past the first objects");

        var rest = new MemoryStream();
        Ok(pool.Datasets.SendResume(token, rest));
        Assert.That(rest.Length, Is.LessThan(full.Length * 4 / 5), "only what did not arrive travels again");
        // Cut again: the kept state grows, a new token goes on from further.
        byte[] second = rest.ToArray();
        string token2 = TokenOf(Receive(pool, second[..(second.Length / 2)], "tank/copy", resumable));
        Assert.That(token2, Is.Not.EqualTo(token));
        Assert.That(ResumeToken.TryDecode(token2, out var contents2, out _) && contents2!.TryGetUInt64("bytes", out ulong bytes2)
                    && contents.TryGetUInt64("bytes", out ulong bytes1) && bytes2 > bytes1);

        var last = new MemoryStream();
        Ok(pool.Datasets.SendResume(token2, last));
        Ok(Receive(pool, last.ToArray(), "tank/copy", resumable));
        Assert.That(Listing(pool, "tank/copy@one"), Is.EqualTo(Listing(pool, "tank/src@one")));
        Assert.That(Guid(pool, "tank/copy@one"), Is.EqualTo(Guid(pool, "tank/src@one")));
        Assert.That(Prop(pool, "tank/copy", "receive_resume_token"), Is.EqualTo("-"));
        Assert.That(pool.Datasets.HasPartialReceive("tank/copy"), Is.False);
    }

    [Test]
    public void Partial_state_is_kept_across_export_and_import_and_a_resumed_stream_must_continue_it()
    {
        using (var pool = Create("tank", VdevSpec.Disk("d0")))
        {
            Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
            Populate(pool, "tank/src");
            Ok(pool.Datasets.Snapshot("tank/src@one"));
            Ok(pool.Datasets.Snapshot("tank/src@two"));
            byte[] full = Send(pool, "tank/src@one");
            TokenOf(Receive(pool, full[..(full.Length / 2)], "tank/copy", new ReceiveOptions { Resumable = true }));
        }
        using var again = Open("tank");
        string token = Prop(again, "tank/copy", "receive_resume_token");
        Assert.That(token, Does.StartWith("1-"));
        Assert.That(Receive(again, Send(again, "tank/src@two"), "tank/copy", new ReceiveOptions { Force = true }).Message,
            Is.EqualTo("cannot receive new filesystem stream: destination tank/copy contains partially-complete state from \"zfs receive -s\"."));
        Assert.That(Receive(again, Send(again, "tank/src@one"), "tank/other").IsOk, Is.True);
        var rest = new MemoryStream();
        Ok(again.Datasets.SendResume(token, rest));
        Assert.That(Receive(again, rest.ToArray(), "tank/other").Message,
            Is.EqualTo("cannot receive resume stream: destination 'tank/other' does not hold a partially received stream"));
        Ok(Receive(again, rest.ToArray(), "tank/copy"));
        Assert.That(Listing(again, "tank/copy@one"), Is.EqualTo(Listing(again, "tank/src@one")));
    }

    [Test]
    public void Receive_A_drops_the_partial_state_and_send_t_refuses_a_snapshot_that_changed()
    {
        using var pool = Create("tank", VdevSpec.Disk("d0"));
        Ok(pool.Datasets.Create("tank/src", DatasetType.Filesystem));
        Populate(pool, "tank/src");
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        byte[] full = Send(pool, "tank/src@one");
        string token = TokenOf(Receive(pool, full[..(full.Length / 3)], "tank/copy", new ReceiveOptions { Resumable = true }));
        Assert.That(Receive(pool, full[..(full.Length / 3)], "tank/cut").Message, Is.EqualTo("cannot receive new filesystem stream: invalid backup stream"));
        Assert.That(pool.Datasets.Exists("tank/cut"), Is.False, "without -s nothing is kept");

        Assert.That(pool.Datasets.AbortReceive("tank/src").Message, Is.EqualTo("'tank/src' does not have any resumable receive state to abort"));
        Ok(pool.Datasets.AbortReceive("tank/copy"));
        Assert.That(pool.Datasets.Exists("tank/copy"), Is.False);

        Ok(pool.Datasets.Destroy("tank/src@one"));
        Ok(pool.Datasets.Snapshot("tank/src@one"));
        Assert.That(pool.Datasets.SendResume(token, new MemoryStream()).Message,
            Is.EqualTo("cannot resume send: 'tank/src@one' is no longer the same snapshot used in the initial send"));
    }
}
