using System.Text.Json.Nodes;

namespace SmartOS.Cli.Tests.Images;

/// <summary>
/// Volumes in send streams (storage/Send/ZvolStream.cs): zfs send -i between two snapshots of a
/// volume and from a volume clone's origin, received onto the volume or as a new clone of the
/// origin; what is refused leaves nothing behind; incremental zvol images (imgadm create -i).
/// </summary>
public class ZvolStreamTests
{
    private const string Vm = "0d7e0f6a-1b2c-4d3e-8f40-5a6b7c8d9e0f";

    private static CommandResult Receive(ImgadmHost h, string target, byte[] stream, string options = "")
    {
        string[] argv = ["zfs", "receive", .. options.Split(' ', StringSplitOptions.RemoveEmptyEntries), target];
        return Dispatcher.Run(h.World, h.Host, argv, new MemoryStream(stream), workingDirectory: h.Root);
    }

    private static byte[] Send(ImgadmHost h, string line)
    {
        var sent = h.Line(line);
        Assert.That(sent.ExitCode, Is.Zero, sent.Stderr);
        return sent.StdoutBytes;
    }

    private static byte[] Volume(ImgadmHost h, string volume)
    {
        var data = new byte[1 << 20];
        Assert.That(h.Zones.Datasets.ReadVolume(volume, 0, data, out _).Message, Is.EqualTo("ok"));
        return data;
    }

    [Test]
    public void An_incremental_volume_stream_carries_the_changed_blocks_and_lands_on_the_received_volume()
    {
        using var h = new ImgadmHost();
        h.Ok("zfs create -V 1m zones/vol");
        h.Ok("dd of=/dev/zvol/rdsk/zones/vol bs=512 seek=16", "first\n");
        h.Ok("dd of=/dev/zvol/rdsk/zones/vol bs=512 seek=1024", "kept\n");
        h.Ok("zfs snapshot zones/vol@a");
        byte[] full = Send(h, "zfs send zones/vol@a");
        h.Ok("dd of=/dev/zvol/rdsk/zones/vol bs=512 seek=2000", "second\n");
        h.Ok("dd of=/dev/zvol/rdsk/zones/vol bs=512 seek=16 count=1", new string('\0', 512));
        h.Ok("zfs snapshot zones/vol@b");
        byte[] incremental = Send(h, "zfs send -i @a zones/vol@b");
        Assert.That(incremental.Length, Is.LessThan(full.Length + 4096).And.LessThan(200_000));
        Assert.That(Send(h, "zfs send -i zones/vol@a zones/vol@b"), Is.EqualTo(incremental));

        Assert.That(Receive(h, "zones/copy", full).ExitCode, Is.Zero);
        var received = Receive(h, "zones/copy", incremental);
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(h.Ok("zfs list -H -o name -t snapshot -r zones/copy"), Is.EqualTo("zones/copy@a\nzones/copy@b\n"));
        Assert.That(Volume(h, "zones/copy"), Is.EqualTo(Volume(h, "zones/vol@b")));
        Assert.That(Volume(h, "zones/copy@a"), Is.EqualTo(Volume(h, "zones/vol@a")));
        Assert.That(h.Zones.Datasets.SnapshotGuid("zones/copy@b", out ulong copied).IsOk && h.Zones.Datasets.SnapshotGuid("zones/vol@b", out ulong sent).IsOk && copied == sent, Is.True, "the received snapshot keeps the stream's guid");

        // Again: the base is no longer the newest snapshot; then a stream whose base is not there.
        Assert.That(Receive(h, "zones/copy", incremental).Stderr,
            Is.EqualTo("cannot receive incremental stream: most recent snapshot of zones/copy does not\nmatch incremental source\n"));
        Assert.That(Receive(h, "zones/other", incremental).Stderr, Is.EqualTo("cannot receive incremental stream: destination 'zones/other' does not exist\n"));
    }

    [Test]
    public void A_volume_clones_changes_against_its_origin_are_received_as_a_clone_of_that_origin()
    {
        using var h = new ImgadmHost();
        h.Ok("zfs create -V 1m zones/base");
        h.Ok("dd of=/dev/zvol/rdsk/zones/base bs=512 seek=8", "base\n");
        h.Ok("zfs snapshot zones/base@final");
        byte[] baseStream = Send(h, "zfs send zones/base@final");
        h.Ok("zfs clone zones/base@final zones/vm-disk0");
        h.Ok("dd of=/dev/zvol/rdsk/zones/vm-disk0 bs=512 seek=100", "vm\n");
        h.Ok("zfs snapshot zones/vm-disk0@s");
        byte[] changes = Send(h, "zfs send -i zones/base@final zones/vm-disk0@s");

        // Another host: without the origin refused (nothing made); with it, a clone of it.
        using var other = new ImgadmHost();
        Assert.That(Receive(other, "zones/copy", changes).Stderr, Is.EqualTo("cannot receive incremental stream: destination 'zones/copy' does not exist\n"));
        Assert.That(other.Datasets(), Is.EqualTo("zones\n"));
        Assert.That(Receive(other, "zones/base", baseStream).ExitCode, Is.Zero);
        var received = Receive(other, "zones/copy", changes);
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(other.Ok("zfs get -H -o value origin zones/copy"), Is.EqualTo("zones/base@final\n"));
        Assert.That(Volume(other, "zones/copy"), Is.EqualTo(Volume(h, "zones/vm-disk0@s")));
        Assert.That(other.Fails("zfs destroy zones/base").Stderr, Does.Contain("has children").Or.Contain("dependent clones"));
        Assert.That(other.Fails("zfs destroy -r zones/base").Stderr, Does.Contain("dependent clones"));
        other.Ok("zfs destroy -R zones/base");
        Assert.That(other.Datasets(), Is.EqualTo("zones\n"));
    }

    [Test]
    public void Volume_streams_refuse_what_does_not_fit_and_leave_nothing_behind()
    {
        using var h = new ImgadmHost();
        h.Ok("zfs create -V 1m zones/vol");
        h.Ok("zfs snapshot zones/vol@a");
        h.Ok("dd of=/dev/zvol/rdsk/zones/vol bs=512 seek=3", "x\n");
        h.Ok("zfs snapshot zones/vol@b");
        h.Ok("zfs create zones/fs");
        h.Ok("zfs snapshot zones/fs@a");
        Assert.That(h.Fails("zfs send -i @b zones/vol@a").Stderr, Is.EqualTo("cannot send 'zones/vol@a': incremental source must be an earlier snapshot\n"));
        Assert.That(h.Fails("zfs send -i zones/fs@a zones/vol@b").Stderr, Is.EqualTo("cannot send 'zones/vol@b': incremental source must be in same filesystem\n"));
        Assert.That(h.Fails("zfs send -i @nope zones/vol@b").Stderr, Is.EqualTo("cannot send 'zones/vol@b': incremental source (zones/vol@nope) does not exist\n"));
        Assert.That(h.Fails("zfs send -I @a zones/vol@b").Stderr, Is.EqualTo("cannot send 'zones/vol@b': -I of a volume is not supported here\n"));
        byte[] incremental = Send(h, "zfs send -i @a zones/vol@b");
        string before = h.Datasets();

        // The stream onto a filesystem whose newest snapshot it is not; cut short; with a damaged byte.
        Assert.That(Receive(h, "zones/fs", incremental).Stderr, Is.EqualTo("cannot receive incremental stream: destination 'zones/fs' is not a volume\n"));
        Assert.That(Receive(h, "zones/copy", incremental[..(incremental.Length / 2)]).ExitCode, Is.Not.Zero);
        byte[] damaged = (byte[])incremental.Clone();
        damaged[damaged.Length / 2] ^= 0x55;
        Assert.That(Receive(h, "zones/copy", damaged).ExitCode, Is.Not.Zero);
        Assert.That(h.Datasets(), Is.EqualTo(before));
    }

    [Test]
    public void An_incremental_zvol_image_installs_as_a_clone_of_its_origins_final()
    {
        using var h = new ImgadmHost();
        h.InstallZvol();
        h.Ok("vmadm create", $$"""{"uuid": "{{Vm}}", "brand": "bhyve", "autoboot": false, "ram": 256, "vcpus": 1, "disks": [{"boot": true, "model": "virtio", "image_uuid": "{{ImgadmHost.Zvol}}"}]}""");
        Assert.That(h.Ok($"zfs get -H -o value origin zones/{Vm}-disk0"), Is.EqualTo($"zones/{ImgadmHost.Zvol}@final\n"));
        h.Ok($"dd of=/dev/zvol/rdsk/zones/{Vm}-disk0 bs=512 seek=40", "changed by the vm\n");
        h.Ok($"imgadm create -i -c gzip {Vm} name=child version=1 os=other");
        var m = JsonNode.Parse(File.ReadAllText(Path.Combine(h.Root, "child-1.imgmanifest")))!.AsObject();
        string child = m["uuid"]!.GetValue<string>();
        Assert.That((m["origin"]!.GetValue<string>(), m["type"]!.GetValue<string>()), Is.EqualTo((ImgadmHost.Zvol, "zvol")));
        long whole = new FileInfo(Path.Combine(h.Root, "bhyve-pattern-1.0.0.zfs.gz")).Length;
        Assert.That(new FileInfo(Path.Combine(h.Root, "child-1.zfs.gz")).Length, Is.LessThan(whole));

        using var other = new ImgadmHost();
        foreach (string f in (string[])["child-1.imgmanifest", "child-1.zfs.gz"]) File.Copy(Path.Combine(h.Root, f), Path.Combine(other.Root, f));
        Assert.That(other.Fails("imgadm install -m child-1.imgmanifest -f child-1.zfs.gz").Stderr,
            Is.EqualTo($"imgadm install: error (OriginNotInstalled): origin image \"{ImgadmHost.Zvol}\" was not found on zpool \"zones\"\n"));
        other.InstallZvol();
        other.Ok("imgadm install -m child-1.imgmanifest -f child-1.zfs.gz");
        Assert.That(other.Ok($"zfs get -H -o value origin zones/{child}"), Is.EqualTo($"zones/{ImgadmHost.Zvol}@final\n"));
        Assert.That(other.Zones.Datasets.Get($"zones/{child}", "volsize", out var volsize).IsOk, Is.True);
        var back = new byte[volsize.Number!.Value];
        var original = new byte[back.Length];
        Assert.That(other.Zones.Datasets.ReadVolume($"zones/{child}@final", 0, back, out _).IsOk, Is.True);
        Assert.That(h.Zones.Datasets.ReadVolume($"zones/{Vm}-disk0", 0, original, out _).IsOk, Is.True);
        Assert.That(back, Is.EqualTo(original));
        Assert.That(other.Fails($"imgadm delete {ImgadmHost.Zvol}").Stderr, Does.Contain($"has dependent clones: zones/{child}"));
    }
}
