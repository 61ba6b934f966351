using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SmartOS.Storage;

namespace SmartOS.Cli.Tests.Images;

/// <summary>imgadm create from a stopped VM's dataset, and the image files it writes installed back
/// (zones/Images/ImageStore.cs rule 4). A VM's dataset is made here when vmadm has not made it.</summary>
public class ImgadmCreateTests
{
    private const string Vm = "0d7e0f6a-1b2c-4d3e-8f40-5a6b7c8d9e0f";

    /// <summary>A stopped joyent VM whose dataset holds root/etc/motd and root/var/www/index.html.</summary>
    private static void JoyentVm(ImgadmHost h, bool autoboot = false)
    {
        h.Ok("vmadm create", $$"""{"uuid": "{{Vm}}", "brand": "joyent", "alias": "proto", "autoboot": {{(autoboot ? "true" : "false")}}}""");
        if (!h.Zones.Datasets.Exists($"zones/{Vm}")) h.Ok($"zfs create -p zones/{Vm}");
        h.Ok($"mkdir -p /zones/{Vm}/root/etc /zones/{Vm}/root/var/www");
        h.Ok($"dd of=/zones/{Vm}/root/etc/motd", "made by imgadm create\n");
        h.Ok($"dd of=/zones/{Vm}/root/var/www/index.html", "<h1>proto</h1>\n");
    }

    /// <summary>A stopped bhyve VM whose first disk, a 1 MiB volume, holds "disk!" at 512 KiB.</summary>
    private static void BhyveVm(ImgadmHost h)
    {
        h.Ok("vmadm create", $$"""{"uuid": "{{Vm}}", "brand": "bhyve", "autoboot": false, "ram": 256, "vcpus": 1}""");
        if (!h.Zones.Datasets.Exists($"zones/{Vm}-disk0")) h.Ok($"zfs create -V 1m zones/{Vm}-disk0");
        h.Ok($"dd of=/dev/zvol/rdsk/zones/{Vm}-disk0 bs=512 seek=1024", "disk!\n");
    }

    private static JsonObject ReadManifest(ImgadmHost h, string path) => JsonNode.Parse(File.ReadAllText(Path.Combine(h.Root, path)))!.AsObject();

    [TestCase("gzip", ".zfs.gz")]
    [TestCase("bzip2", ".zfs.bz2")]
    [TestCase("none", ".zfs")]
    [TestCase("xz", ".zfs.xz")]
    public void Create_writes_a_stream_and_a_v2_manifest_with_its_sha1_and_size_that_install_takes_back(string compression, string extension)
    {
        if (compression == "xz" && !File.Exists("/usr/lib/x86_64-linux-gnu/liblzma.so.5") && !File.Exists("/lib/x86_64-linux-gnu/liblzma.so.5"))
            Assert.Ignore("liblzma.so.5 (Debian's liblzma5) is not installed: imgadm writes xz through it");
        using var h = new ImgadmHost();
        JoyentVm(h);
        Directory.CreateDirectory(Path.Combine(h.Root, "out"));
        string output = h.Ok($"imgadm create -c {compression} -o out {Vm} name=proto version=2.0 type=zone-dataset os=smartos");
        string prefix = $"{h.Root}/out/proto-2.0";
        Assert.That(output, Does.StartWith("Manifest:\n    {\n      \"v\": 2,\n      \"uuid\": \""));
        Assert.That(output, Does.EndWith(
            $"Snapshotting to \"zones/{Vm}@final\"\nSending image file to \"{prefix}{extension}\"\nSaving manifest to \"{prefix}.imgmanifest\"\n"));
        var m = ReadManifest(h, "out/proto-2.0.imgmanifest");
        byte[] file = File.ReadAllBytes(prefix + extension);
        var files = m["files"]![0]!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Select(kv => kv.Key), Is.EqualTo(new[] { "v", "uuid", "name", "version", "type", "os", "files" }));
            Assert.That(files["size"]!.GetValue<long>(), Is.EqualTo(file.LongLength));
            Assert.That(files["sha1"]!.GetValue<string>(), Is.EqualTo(Convert.ToHexStringLower(SHA1.HashData(file))));
            Assert.That(files["compression"]!.GetValue<string>(), Is.EqualTo(compression));
            Assert.That(h.Datasets(), Does.Not.Contain("@final"), "create destroys the VM's @final after sending it");
        }
        string uuid = m["uuid"]!.GetValue<string>();
        Assert.That(h.Ok($"imgadm install -m out/proto-2.0.imgmanifest -f out/proto-2.0{extension}"), Does.EndWith($"Installed image {uuid} (proto@2.0)\n"));
        Assert.That(h.Ok($"cat /zones/{uuid}/root/var/www/index.html"), Is.EqualTo("<h1>proto</h1>\n"));
    }

    [Test]
    public void The_same_vm_makes_the_same_image_bytes_every_time()
    {
        byte[] Make()
        {
            using var h = new ImgadmHost();
            JoyentVm(h);
            h.Ok($"imgadm create -c gzip {Vm} name=proto version=2.0 type=zone-dataset os=smartos");
            return File.ReadAllBytes(Path.Combine(h.Root, "proto-2.0.zfs.gz"));
        }
        byte[] first = Make(), second = Make();
        Assert.That(second, Is.EqualTo(first));
    }

    [Test]
    public void A_bhyve_vm_makes_a_zvol_image_of_its_first_disk_with_its_brand_required()
    {
        using var h = new ImgadmHost();
        BhyveVm(h);
        h.Ok($"imgadm create -c gzip {Vm} name=disk version=1 type=zvol os=other nic_driver=virtio disk_driver=virtio");
        var m = ReadManifest(h, "disk-1.imgmanifest");
        Assert.That(m["requirements"]!.ToJsonString(), Is.EqualTo("{\"brand\":\"bhyve\"}"));
        string uuid = m["uuid"]!.GetValue<string>();
        h.Ok("imgadm install -m disk-1.imgmanifest -f disk-1.zfs.gz");
        byte[] back = new byte[1 << 20], original = new byte[1 << 20];
        Assert.That(h.Zones.Datasets.ReadVolume($"zones/{uuid}", 0, back, out _).IsOk, Is.True);
        Assert.That(h.Zones.Datasets.ReadVolume($"zones/{Vm}-disk0", 0, original, out _).IsOk, Is.True);
        Assert.That((back.AsSpan(512 * 1024, 6).ToArray(), back), Is.EqualTo((original.AsSpan(512 * 1024, 6).ToArray(), original)));
        Assert.That(h.Host.Images.CheckForBrand(uuid, "bhyve"), Is.Null);
    }

    [Test]
    public void An_existing_final_snapshot_is_moved_out_of_the_way_and_kept()
    {
        using var h = new ImgadmHost();
        JoyentVm(h);
        h.Ok($"zfs snapshot zones/{Vm}@final");
        string output = h.Ok($"imgadm create {Vm} name=proto version=2.0 type=zone-dataset os=smartos");
        Assert.That(output, Does.Contain($"Moving existing @final snapshot out of the way to \"zones/{Vm}@final-0\"\n"));
        Assert.That(h.Ok("zfs list -H -o name -t snapshot"), Is.EqualTo($"zones/{Vm}@final-0\n"));
    }

    [Test]
    public void Create_refuses_in_imgadms_words_and_leaves_no_snapshot_and_no_file()
    {
        using var h = new ImgadmHost();
        string missing = "11111111-2222-4333-8444-555555555555";
        Assert.That(h.Fails($"imgadm create {missing} name=a version=1").Stderr, Is.EqualTo($"imgadm create: error (VmNotFound): vm \"{missing}\" was not found\n"));
        JoyentVm(h);
        Assert.That(h.Fails($"imgadm create {Vm} name=a version=1 type=zone-dataset").Stderr,
            Is.EqualTo("imgadm create: error (ManifestValidation): invalid manifest: os (MissingParameter)\n"));
        Assert.That(h.Fails($"imgadm create -c lzma {Vm} name=a version=1").Stderr,
            Is.EqualTo("imgadm create: error (Usage): invalid -c,--compression \"lzma\": must be one of \"none\", \"bzip2\", \"gzip\", \"xz\"\n"));
        Assert.That(h.Fails($"imgadm create -i {Vm} name=a version=1 type=zone-dataset os=smartos").Stderr,
            Is.EqualTo($"imgadm create: error (VmHasNoOrigin): cannot create an incremental image: vm \"{Vm}\" has no origin\n"));
        Assert.That(h.Fails($"imgadm create -s prep.sh {Vm} name=a version=1").Stderr, Does.Contain("imgadm create -s is not supported here"));
        Assert.That(h.Fails($"imgadm create -p http://images {Vm} name=a version=1").Stderr, Does.Contain("imgadm create -p is not supported here"));
        Assert.That(h.Fails($"imgadm create {Vm} name").Stderr,
            Is.EqualTo("imgadm create: error (Usage): invalid manifest field arg \"name\": must match \"<field>=<value>\"\n"));
        Assert.That(h.Fails("imgadm create").Stderr, Is.EqualTo("imgadm create: error (Usage): incorrect number of args (0): \"\"\n"));
        Assert.That(h.Datasets(), Does.Not.Contain("@"));
        Assert.That(Directory.GetFiles(h.Root, "a-1*"), Is.Empty);
    }

    [Test]
    public void Create_needs_a_stopped_vm()
    {
        using var h = new ImgadmHost();
        JoyentVm(h);
        h.Ok($"vmadm start {Vm}");
        Assert.That(h.Fails($"imgadm create {Vm} name=a version=1 type=zone-dataset os=smartos").Stderr,
            Is.EqualTo($"imgadm create: error (VmNotStopped): vm \"{Vm}\" is not stopped\n"));
    }

    /// <summary>A stopped joyent VM cloned from the example base, with its motd changed and a file added.</summary>
    private static void ChildVm(ImgadmHost h)
    {
        h.InstallBase();
        h.Ok("vmadm create", $$"""{"uuid": "{{Vm}}", "brand": "joyent", "autoboot": false, "image_uuid": "{{ImgadmHost.Base}}"}""");
        if (!h.Zones.Datasets.Exists($"zones/{Vm}")) h.Ok($"zfs clone zones/{ImgadmHost.Base}@final zones/{Vm}");
        h.Ok($"dd of=/zones/{Vm}/root/etc/motd", "changed\n");
        h.Ok($"dd of=/zones/{Vm}/root/var/www/new.html", "<p>new</p>\n");
    }

    [Test]
    public void A_vm_cloned_from_an_image_inherits_its_type_and_os()
    {
        using var h = new ImgadmHost();
        ChildVm(h);
        string output = h.Ok($"imgadm create {Vm} name=child version=1");
        Assert.That(output, Does.Contain($"Inheriting from origin image {ImgadmHost.Base} (base 1.0.0)\n"));
        var m = ReadManifest(h, "child-1.imgmanifest");
        Assert.That((m["type"]!.GetValue<string>(), m["os"]!.GetValue<string>(), m.ContainsKey("origin")), Is.EqualTo(("zone-dataset", "smartos", false)));
    }

    [Test]
    public void An_incremental_image_carries_only_the_changes_and_installs_as_a_clone_of_its_origin()
    {
        using var h = new ImgadmHost();
        ChildVm(h);
        h.Ok($"imgadm create -i -c gzip {Vm} name=child version=1");
        h.Ok($"imgadm create -c gzip {Vm} name=whole version=1");
        var m = ReadManifest(h, "child-1.imgmanifest");
        string child = m["uuid"]!.GetValue<string>();
        Assert.That(m["origin"]!.GetValue<string>(), Is.EqualTo(ImgadmHost.Base));
        Assert.That(new FileInfo(Path.Combine(h.Root, "child-1.zfs.gz")).Length, Is.LessThan(new FileInfo(Path.Combine(h.Root, "whole-1.zfs.gz")).Length));

        // On another host: refused without its origin; with it, a clone of it holding the changes.
        using var other = new ImgadmHost();
        foreach (string f in (string[])["child-1.imgmanifest", "child-1.zfs.gz"]) File.Copy(Path.Combine(h.Root, f), Path.Combine(other.Root, f));
        Assert.That(other.Fails("imgadm install -m child-1.imgmanifest -f child-1.zfs.gz").Stderr,
            Is.EqualTo($"imgadm install: error (OriginNotInstalled): origin image \"{ImgadmHost.Base}\" was not found on zpool \"zones\"\n"));
        Assert.That(other.Datasets(), Is.EqualTo("zones\n"));
        other.InstallBase();
        other.Ok("imgadm install -m child-1.imgmanifest -f child-1.zfs.gz");
        Assert.That(other.Ok($"zfs get -H -o value origin zones/{child}"), Is.EqualTo($"zones/{ImgadmHost.Base}@final\n"));
        Assert.That(other.Ok($"cat /zones/{child}/root/etc/motd /zones/{child}/root/var/www/new.html"), Is.EqualTo("changed\n<p>new</p>\n"));
        Assert.That(other.Ok($"cat /zones/{ImgadmHost.Base}/root/etc/motd"), Does.StartWith("SmartOS in C#: example base image"));
        Assert.That(other.Fails($"imgadm delete {ImgadmHost.Base}").Stderr, Does.Contain($"has dependent clones: zones/{child}"));
        Assert.That(other.Ok("imgadm vacuum -f"), Is.EqualTo($"Deleted image {child} (child@1)\nDeleted image {ImgadmHost.Base} (base@1.0.0)\n"));
        Assert.That(other.Datasets(), Is.EqualTo("zones\n"));
    }

    [Test]
    public void Zfs_sends_a_clones_changes_against_its_origin_and_receives_them_as_a_new_clone()
    {
        using var h = new ImgadmHost();
        ChildVm(h);
        h.Ok($"zfs snapshot zones/{Vm}@s");
        var sent = h.Line($"zfs send -i zones/{ImgadmHost.Base}@final zones/{Vm}@s");
        Assert.That(sent.ExitCode, Is.Zero, sent.Stderr);
        Assert.That(h.Fails($"zfs send -I zones/{ImgadmHost.Base}@final zones/{Vm}@s").Stderr, Does.Contain("incremental source must be in same filesystem"));
        var received = Dispatcher.Run(h.World, h.Host, ["zfs", "receive", "zones/copy"], new MemoryStream(sent.StdoutBytes), workingDirectory: h.Root);
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(h.Ok("zfs get -H -o value origin zones/copy"), Is.EqualTo($"zones/{ImgadmHost.Base}@final\n"));
        Assert.That(h.Ok("cat /zones/copy/root/etc/motd"), Is.EqualTo("changed\n"));
        var bad = Dispatcher.Run(h.World, h.Host, ["zfs", "receive", "nosuch/copy"], new MemoryStream(sent.StdoutBytes), workingDirectory: h.Root);
        Assert.That(bad.ExitCode, Is.Not.Zero);
    }

    [Test]
    public void An_xz_image_file_installs()
    {
        if (!File.Exists("/usr/bin/xz")) Assert.Ignore("xz is not installed (apt-get install xz-utils)");
        using var h = new ImgadmHost();
        JoyentVm(h);
        h.Ok($"imgadm create {Vm} name=proto version=2.0 type=zone-dataset os=smartos");
        var psi = new ProcessStartInfo("/usr/bin/xz", ["-k", "-q", Path.Combine(h.Root, "proto-2.0.zfs")]);
        using (var p = Process.Start(psi)!)
            Assert.That(p.WaitForExit(30_000) && p.ExitCode == 0, Is.True, "xz failed");
        var m = ReadManifest(h, "proto-2.0.imgmanifest");
        m.Remove("files");
        File.WriteAllText(Path.Combine(h.Root, "xz.json"), m.ToJsonString());
        Assert.That(h.Ok("imgadm install -m xz.json -f proto-2.0.zfs.xz"), Does.EndWith("(proto@2.0)\n"));
        Assert.That(h.Ok($"cat /zones/{m["uuid"]!.GetValue<string>()}/root/etc/motd"), Is.EqualTo("made by imgadm create\n"));
    }

    [Test]
    public void Dd_writes_a_volume_through_its_raw_device_and_zfs_sends_and_receives_it()
    {
        using var h = new ImgadmHost();
        h.Ok("zfs create -V 64k zones/vol");
        Assert.That(h.Line("dd of=/dev/zvol/rdsk/zones/vol bs=1k seek=8", "hello\n").Stderr, Is.EqualTo("0+1 records in\n0+1 records out\n"));
        var past = h.Fails("dd of=/dev/zvol/dsk/zones/vol bs=1k seek=64", "x\n");
        Assert.That(past.Stderr, Does.StartWith("dd: /dev/zvol/dsk/zones/vol: write error: No space left on device"));
        Assert.That(h.Fails("dd of=/dev/zvol/rdsk/zones/nosuch", "x\n").Stderr, Is.EqualTo("dd: /dev/zvol/rdsk/zones/nosuch: open: No such file or directory\n"));
        h.Ok("zfs snapshot zones/vol@s");
        var sent = h.Line("zfs send zones/vol@s");
        Assert.That(sent.ExitCode, Is.Zero, sent.Stderr);
        var received = Dispatcher.Run(h.World, h.Host, ["zfs", "receive", "zones/copy"], new MemoryStream(sent.StdoutBytes), workingDirectory: h.Root);
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(h.Ok("zfs list -H -o name,volsize -t all -r zones/copy"), Is.EqualTo("zones/copy\t64K\nzones/copy@s\t-\n"));
        byte[] back = new byte[6];
        Assert.That(h.Zones.Datasets.ReadVolume("zones/copy", 8192, back, out _).IsOk, Is.True);
        Assert.That(back, Is.EqualTo("hello\n"u8.ToArray()));
        received = Dispatcher.Run(h.World, h.Host, ["zfs", "receive", "zones/copy"], new MemoryStream(sent.StdoutBytes), workingDirectory: h.Root);
        Assert.That(received.Stderr, Is.EqualTo("cannot receive new volume stream: destination 'zones/copy' exists\n"));
    }
}
