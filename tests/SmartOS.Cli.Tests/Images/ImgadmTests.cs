using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SmartOS.Kernel;
using SmartOS.Zones.Images;

namespace SmartOS.Cli.Tests.Images;

/// <summary>imgadm install, list, get, show, delete, sources, import and vacuum (tools/Commands/Imgadm.cs,
/// zones/Images/ImageStore.cs), on a host whose zones pool is a file under its root.</summary>
public class ImgadmTests
{
    private const string Base = ImgadmHost.Base, Zvol = ImgadmHost.Zvol;

    private static string BaseRecord => ImageStore.RecordName(Base);

    [Test]
    public void Install_receives_the_image_as_its_dataset_and_final_snapshot_and_lists_it()
    {
        using var h = new ImgadmHost();
        string manifest = h.CopyExample("base-1.0.0");
        Assert.That(h.Ok($"imgadm install -m {manifest} -f base-1.0.0.zfs.gz"), Is.EqualTo(
            $"Installing image {Base} (base@1.0.0)\nInstalled image {Base} (base@1.0.0)\n"));
        h.InstallZvol();
        Assert.That(h.Datasets(), Is.EqualTo($"zones\nzones/{Zvol}\nzones/{Zvol}@final\nzones/{Base}\nzones/{Base}@final\n"));
        Assert.That(h.Ok("imgadm list"), Is.EqualTo(
            "UUID                                  NAME           VERSION  OS       TYPE          PUB\n" +
            $"{Base}  base           1.0.0    smartos  zone-dataset  2026-12-01\n" +
            $"{Zvol}  bhyve-pattern  1.0.0    other    zvol          2026-12-01\n"));
        Assert.That(h.Ok($"cat /zones/{Base}/root/var/www/index.html"), Does.Contain("<h1>It works!</h1>"));
        Assert.That(h.Ok($"cat /zones/{Base}/root/etc/passwd"), Does.StartWith("root:x:0:0:Super-User:/root:/usr/bin/bash\n"));
        Assert.That(h.ConfigFiles(), Does.Contain(BaseRecord));
        Assert.That(h.Ok($"imgadm install -m {manifest} -f base-1.0.0.zfs.gz"), Is.EqualTo(
            $"Image {Base} (base 1.0.0) is already installed, skipping\n"));
    }

    [Test]
    public void The_zvol_image_is_a_volume_holding_the_pattern_at_0_64k_and_2m_and_zeros_elsewhere()
    {
        using var h = new ImgadmHost();
        h.InstallZvol();
        Assert.That(h.Ok($"zfs get -H -o value type,volsize zones/{Zvol}"), Is.EqualTo("volume\n4M\n"));
        var pattern = new StringBuilder();
        for (int i = 0; i < 16; i++) pattern.Append($"SmartOS in C# zvol example, block pattern line {i:D2} .............\n");
        byte[] expected = new byte[4 << 20];
        foreach (int at in (int[])[0, 64 << 10, 2 << 20]) Encoding.ASCII.GetBytes(pattern.ToString()).CopyTo(expected, at);
        byte[] disk = new byte[4 << 20];
        Assert.That(h.Zones.Datasets.ReadVolume($"zones/{Zvol}@final", 0, disk, out int read).IsOk, Is.True);
        Assert.That((read, Convert.ToHexStringLower(SHA256.HashData(disk))), Is.EqualTo((4 << 20, Convert.ToHexStringLower(SHA256.HashData(expected)))));
    }

    [Test]
    public void Images_and_sources_survive_a_reboot_from_the_same_store()
    {
        using var h = new ImgadmHost();
        h.InstallBase();
        h.Ok($"imgadm sources -a {ImgadmHost.Examples}");
        string before = h.Ok($"imgadm get {Base}");
        h.Boot();
        Assert.That(h.Ok($"imgadm get {Base}"), Is.EqualTo(before));
        Assert.That(h.Ok("imgadm sources"), Is.EqualTo(ImgadmHost.Examples + "\n"));
        Assert.That(h.Ok($"imgadm import {Zvol}"), Does.EndWith($"Imported image {Zvol} (bhyve-pattern@1.0.0)\n"));
        h.Boot();
        Assert.That(h.Ok("imgadm list -H -o uuid"), Is.EqualTo($"{Base}\n{Zvol}\n"));
    }

    // ---- refusals: nothing left behind ----

    private static void AssertNothingInstalled(ImgadmHost h, string uuid)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Datasets(), Is.EqualTo("zones\n"));
            Assert.That(h.ConfigFiles(), Does.Not.Contain(ImageStore.RecordName(uuid)));
            Assert.That(h.Ok("imgadm list -H"), Is.Empty);
        }
    }

    /// <summary>Writes the base example's manifest changed by edit, next to its file; returns the install line.</summary>
    private static string Edited(ImgadmHost h, Action<JsonObject> edit)
    {
        h.CopyExample("base-1.0.0");
        var m = JsonNode.Parse(File.ReadAllText(Path.Combine(h.Root, "base-1.0.0.imgmanifest")))!.AsObject();
        edit(m);
        File.WriteAllText(Path.Combine(h.Root, "edited.json"), m.ToJsonString());
        return "imgadm install -m edited.json -f base-1.0.0.zfs.gz";
    }

    [TestCase("type", "\"zone\"", "invalid manifest: type (invalid image type, \"zone\", must be one of: zone-dataset, zvol, lx-dataset, docker, other)")]
    [TestCase("os", "\"plan9\"", "invalid manifest: os (invalid image os, \"plan9\", must be one of: smartos, linux, windows, bsd, illumos, other)")]
    [TestCase("name", null, "invalid manifest: name (MissingParameter)")]
    [TestCase("version", "\"1.0 beta\"", "invalid manifest: version (image version has invalid characters (only alpha-numeric characters and \".\", \"-\", \"_\" and \"/\" are allowed))")]
    [TestCase("v", "-1", "invalid manifest: v (\"v\" must be a positive integer)")]
    public void A_manifest_that_fails_imgadms_checks_is_refused_in_its_words(string field, string? value, string message)
    {
        using var h = new ImgadmHost();
        var r = h.Fails(Edited(h, m => m[field] = value is null ? null : JsonNode.Parse(value)));
        if (value is null) r = h.Fails(Edited(h, m => m.Remove(field)));
        Assert.That((r.ExitCode, r.Stderr), Is.EqualTo((1, $"imgadm install: error (ManifestValidation): {message}\n")));
        AssertNothingInstalled(h, Base);
    }

    [Test]
    public void Every_missing_required_field_is_named_in_order()
    {
        using var h = new ImgadmHost();
        File.WriteAllText(Path.Combine(h.Root, "m.json"), $$"""{"uuid": "{{Base}}"}""");
        h.CopyExample("base-1.0.0");
        Assert.That(h.Fails("imgadm install -m m.json -f base-1.0.0.zfs.gz").Stderr, Is.EqualTo(
            "imgadm install: error (ManifestValidation): invalid manifest: v (MissingParameter), name (MissingParameter), " +
            "version (MissingParameter), type (MissingParameter), os (MissingParameter)\n"));
    }

    [Test]
    public void A_file_whose_size_or_sha1_does_not_match_the_manifest_is_refused()
    {
        using var h = new ImgadmHost();
        var r = h.Fails(Edited(h, m => m["files"]![0]!["size"] = 1296));
        Assert.That(r.Stderr, Is.EqualTo($"imgadm install: error (DownloadError): image file size error: manifest says 1296 bytes, {h.Root}/base-1.0.0.zfs.gz is 1295 bytes\n"));
        string sha1 = Convert.ToHexStringLower(SHA1.HashData(File.ReadAllBytes(Path.Combine(h.Root, "base-1.0.0.zfs.gz"))));
        r = h.Fails(Edited(h, m => m["files"]![0]!["sha1"] = new string('0', 40)));
        Assert.That(r.Stderr, Is.EqualTo(
            $"imgadm install: error (DownloadError): image file checksum (sha1) error: manifest says \"{new string('0', 40)}\", {h.Root}/base-1.0.0.zfs.gz is \"{sha1}\"\n"));
        AssertNothingInstalled(h, Base);
    }

    [Test]
    public void A_stream_that_does_not_receive_whole_leaves_no_dataset_and_no_record()
    {
        using var h = new ImgadmHost();
        h.CopyExample("base-1.0.0");
        byte[] stream = Gunzip(File.ReadAllBytes(Path.Combine(h.Root, "base-1.0.0.zfs.gz")));
        stream[stream.Length / 2] ^= 0x55;   // the END checksum no longer adds up
        File.WriteAllBytes(Path.Combine(h.Root, "bad.zfs"), stream);
        var r = h.Fails(Edited(h, m => m.Remove("files")).Replace("base-1.0.0.zfs.gz", "bad.zfs"));
        Assert.That(r.Stderr, Does.StartWith("imgadm install: error (InternalError): zfs receive error while installing: cannot receive"));
        File.WriteAllBytes(Path.Combine(h.Root, "cut.zfs.gz"), File.ReadAllBytes(Path.Combine(h.Root, "base-1.0.0.zfs.gz"))[..600]);
        r = h.Fails(Edited(h, m => m.Remove("files")).Replace("base-1.0.0.zfs.gz", "cut.zfs.gz"));
        Assert.That(r.Stderr, Does.StartWith($"imgadm install: error (UncompressionError): error uncompressing gzip image file {h.Root}/cut.zfs.gz: "));
        AssertNothingInstalled(h, Base);
    }

    [Test]
    public void A_record_that_cannot_be_written_takes_the_received_dataset_away_again()
    {
        using var h = new ImgadmHost();
        h.CopyExample("base-1.0.0");
        // The store writes NAME.tmp and renames it: a directory in that place makes the write fail.
        Directory.CreateDirectory(Path.Combine(h.Root, "etc", BaseRecord + ".tmp"));
        var r = h.Fails("imgadm install -m base-1.0.0.imgmanifest -f base-1.0.0.zfs.gz");
        Assert.That(r.Stderr, Does.StartWith("imgadm install: error (InternalError): error saving image manifest: "));
        Assert.That(h.Datasets(), Is.EqualTo("zones\n"));
        Assert.That(h.Ok("zfs mount"), Does.Not.Contain(Base));
    }

    [Test]
    public void A_type_that_does_not_fit_the_stream_is_refused()
    {
        using var h = new ImgadmHost();
        var r = h.Fails(Edited(h, m => m["type"] = "zvol"));
        Assert.That(r.Stderr, Is.EqualTo(
            $"imgadm install: error (InvalidManifest): manifest is invalid: type is \"zvol\" but {h.Root}/base-1.0.0.zfs.gz holds the stream of a filesystem\n"));
        AssertNothingInstalled(h, Base);
    }

    [Test]
    public void Install_usage_errors_are_imgadms()
    {
        using var h = new ImgadmHost();
        h.CopyExample("base-1.0.0");
        Assert.That(h.Fails("imgadm install -f base-1.0.0.zfs.gz").Stderr, Is.EqualTo("imgadm install: error (Usage): -m <manifest> (string) is required\n"));
        Assert.That(h.Fails("imgadm install -m nosuch.json -f base-1.0.0.zfs.gz").Stderr, Is.EqualTo("imgadm install: error (Usage): manifest path does not exist: \"nosuch.json\"\n"));
        Assert.That(h.Fails("imgadm install -m base-1.0.0.imgmanifest -f nosuch").Stderr, Is.EqualTo("imgadm install: error (Usage): file path does not exist: \"nosuch\"\n"));
        File.WriteAllText(Path.Combine(h.Root, "junk.json"), "{ not json");
        Assert.That(h.Fails("imgadm install -m junk.json -f base-1.0.0.zfs.gz").Stderr, Does.StartWith("imgadm install: error (InvalidManifest): manifest is invalid: "));
        Assert.That(h.Fails(Edited(h, m => m["uuid"] = "nope")).Stderr, Is.EqualTo("imgadm install: error (InvalidUUID): invalid uuid: \"nope\"\n"));
        Assert.That(h.Fails("imgadm install -m base-1.0.0.imgmanifest -f base-1.0.0.zfs.gz -P tank").Stderr,
            Is.EqualTo("imgadm install: error (Usage): -P tank: images are kept on the \"zones\" pool only here\n"));
        Assert.That(h.Fails("imgadm install -x").Stderr, Is.EqualTo("imgadm install: error (Usage): unknown option: \"-x\"\n"));
        AssertNothingInstalled(h, Base);
    }

    [Test]
    public void An_incremental_image_needs_its_origin_installed()
    {
        using var h = new ImgadmHost();
        string origin = "11111111-2222-4333-8444-555555555555";
        var r = h.Fails(Edited(h, m => m["origin"] = origin));
        Assert.That(r.Stderr, Is.EqualTo($"imgadm install: error (OriginNotInstalled): origin image \"{origin}\" was not found on zpool \"zones\"\n"));
        AssertNothingInstalled(h, Base);
    }

    [Test]
    public void Without_a_zones_pool_install_says_so_and_list_is_empty()
    {
        using var h = new ImgadmHost(pool: false);
        h.CopyExample("base-1.0.0");
        Assert.That(h.Fails("imgadm install -m base-1.0.0.imgmanifest -f base-1.0.0.zfs.gz").Stderr,
            Does.EndWith("error (InternalError): zpool \"zones\" does not exist: create it first (zpool create zones DEVICE)\n"));
        Assert.That(h.Ok("imgadm list"), Is.EqualTo("UUID  NAME  VERSION  OS  TYPE  PUB\n"));
    }

    // ---- list, get, show ----

    [Test]
    public void List_takes_columns_filters_no_header_json_and_sorting()
    {
        using var h = new ImgadmHost();
        h.InstallBase();
        h.InstallZvol();
        Assert.That(h.Ok("imgadm list -H -o uuid,name,size,clones,zpool type=zvol"), Is.EqualTo($"{Zvol}  bhyve-pattern  443  0  zones\n"));
        Assert.That(h.Ok("imgadm list -H -o name name=~pat"), Is.EqualTo("bhyve-pattern\n"));
        Assert.That(h.Ok("imgadm list -H -o name requirements.brand=bhyve"), Is.EqualTo("bhyve-pattern\n"));
        Assert.That(h.Ok("imgadm list -H -o name public=true -s -name"), Is.EqualTo("bhyve-pattern\nbase\n"));
        Assert.That(h.Ok("imgadm list -H nosuchfield=1"), Is.Empty);
        Assert.That(h.Ok("imgadm list -H -o name,nic_driver"), Is.EqualTo("base           -\nbhyve-pattern  virtio\n"));
        var json = JsonNode.Parse(h.Ok("imgadm list -j os=smartos"))!.AsArray();
        Assert.That(json.Select(i => (string?)i!["manifest"]!["uuid"]), Is.EqualTo(new[] { Base }));
        Assert.That(json[0]!["zpool"]!.GetValue<string>(), Is.EqualTo("zones"));
        Assert.That(h.Fails("imgadm list name").Stderr, Is.EqualTo("imgadm list: error (Usage): invalid filter: \"name\" (must be of the form \"field=value\")\n"));
        Assert.That(h.Fails("imgadm list --docker").Stderr, Does.Contain("not supported here"));
    }

    [Test]
    public void Get_prints_the_image_and_its_clones_and_refuses_what_is_not_installed()
    {
        using var h = new ImgadmHost();
        h.InstallBase();
        h.Ok($"zfs clone zones/{Base}@final zones/vm1");
        var info = JsonNode.Parse(h.Ok($"imgadm get {Base}"))!;
        Assert.That(info["manifest"]!.ToJsonString(), Does.Contain("\"files\":[{\"sha1\""));
        Assert.That(info["cloneNames"]!.ToJsonString(), Is.EqualTo("[\"zones/vm1\"]"));
        Assert.That(info["clones"]!.GetValue<int>(), Is.EqualTo(1));
        Assert.That(h.Ok($"imgadm info {Base}"), Is.EqualTo(h.Ok($"imgadm get {Base}")));
        Assert.That(h.Fails($"imgadm get {Zvol}").Stderr, Is.EqualTo($"imgadm get: error (ImageNotInstalled): image \"{Zvol}\" was not found on zpool \"zones\"\n"));
        Assert.That(h.Fails("imgadm get nope").Stderr, Is.EqualTo("imgadm get: error (InvalidUUID): invalid uuid: \"nope\"\n"));
        Assert.That(h.Fails("imgadm get").Stderr, Is.EqualTo("imgadm get: error (Usage): incorrect number of args (0): \"\"\n"));
        // A VM's dataset with an @final of its own is not an image: the record decides.
        h.Ok($"zfs create zones/{Zvol}");
        h.Ok($"zfs snapshot zones/{Zvol}@final");
        Assert.That(h.Ok("imgadm list -H -o uuid"), Is.EqualTo($"{Base}\n"));
    }

    [Test]
    public void Show_prints_a_sources_manifest_without_installing_it()
    {
        using var h = new ImgadmHost();
        Assert.That(h.Fails($"imgadm show {Base}").Stderr, Is.EqualTo("imgadm show: error (NoSources): imgadm has no configured sources\n"));
        h.Ok($"imgadm sources -a {ImgadmHost.Examples}");
        Assert.That(h.Ok($"imgadm show {Zvol}"), Is.EqualTo(File.ReadAllText(Path.Combine(ImgadmHost.Examples, "bhyve-pattern-1.0.0.imgmanifest"))));
        Assert.That(h.Fails("imgadm show 11111111-2222-4333-8444-555555555555").Stderr,
            Is.EqualTo("imgadm show: error (ImageNotFound): image \"11111111-2222-4333-8444-555555555555\" was not found\n"));
        Assert.That(h.Datasets(), Is.EqualTo("zones\n"));
    }

    // ---- delete, vacuum ----

    [Test]
    public void Delete_destroys_the_dataset_and_the_record_and_is_refused_while_a_clone_depends_on_it()
    {
        using var h = new ImgadmHost();
        h.InstallBase();
        h.Ok($"zfs clone zones/{Base}@final zones/vm1");
        h.Ok($"zfs clone zones/{Base}@final zones/vm2");
        Assert.That(h.Host.Images.HasDependents(Base), Is.True);
        Assert.That(h.Fails($"imgadm delete {Base}").Stderr, Is.EqualTo(
            $"imgadm delete: error (ImageHasDependentClones): image \"{Base}\" has dependent clones: zones/vm1 and 1 others...\n"));
        Assert.That(h.Ok($"imgadm get {Base}"), Does.Contain("\"clones\": 2"));
        h.Ok("zfs destroy zones/vm1");
        h.Ok("zfs destroy zones/vm2");
        Assert.That(h.Ok($"imgadm destroy {Base}"), Is.EqualTo($"Deleted image {Base}\n"));
        Assert.That(h.Datasets(), Is.EqualTo("zones\n"));
        Assert.That(h.ConfigFiles(), Does.Not.Contain(BaseRecord));
        Assert.That(h.Fails($"imgadm delete {Base}").Stderr, Is.EqualTo($"imgadm delete: error (ImageNotInstalled): image \"{Base}\" was not found on zpool \"zones\"\n"));
    }

    [Test]
    public void Vacuum_deletes_the_images_nothing_is_cloned_from_after_asking()
    {
        using var h = new ImgadmHost();
        h.InstallBase();
        h.InstallZvol();
        h.Ok($"zfs clone zones/{Base}@final zones/vm1");
        Assert.That(h.Ok("imgadm vacuum -n -f"), Is.EqualTo($"[dry-run] Deleted image {Zvol} (bhyve-pattern@1.0.0)\n"));
        Assert.That(h.Ok("imgadm vacuum", "n\n"), Is.EqualTo(
            $"This will delete the following images:\n    {Zvol} (bhyve-pattern@1.0.0)\nDelete this image? [y/N] Aborting\n"));
        Assert.That(h.Ok("imgadm list -H -o name"), Is.EqualTo("base\nbhyve-pattern\n"));
        Assert.That(h.Ok("imgadm vacuum", "y\n"), Does.EndWith($"[y/N] \nDeleted image {Zvol} (bhyve-pattern@1.0.0)\n"));
        h.Ok("zfs destroy zones/vm1");
        Assert.That(h.Ok("imgadm vacuum -f"), Is.EqualTo($"Deleted image {Base} (base@1.0.0)\n"));
        Assert.That(h.Ok("imgadm vacuum -f"), Is.Empty);
        Assert.That(h.Datasets(), Is.EqualTo("zones\n"));
    }

    // ---- sources, import ----

    [Test]
    public void Sources_are_added_listed_checked_and_deleted_and_http_is_refused()
    {
        using var h = new ImgadmHost();
        Directory.CreateDirectory(Path.Combine(h.Root, "repo"));
        Assert.That(h.Ok("imgadm sources -a repo"), Is.EqualTo($"Added \"imgapi\" image source \"{h.Root}/repo\"\n"));
        Assert.That(h.Ok($"imgadm sources -a file://{h.Root}/repo"), Is.EqualTo($"Already have \"imgapi\" image source \"{h.Root}/repo\", no change\n"));
        Assert.That(h.Fails("imgadm sources -a https://images.smartos.org").Stderr, Is.EqualTo(
            "imgadm sources: error (NotSupported): source \"https://images.smartos.org\": http(s) sources are not supported here: nothing reaches the network; give a local directory\n"));
        Assert.That(h.Fails("imgadm sources -a nosuch").Stderr, Does.Contain("error (SourcePing)"));
        h.Ok("imgadm sources -f -a nosuch");
        Assert.That(h.Ok("imgadm sources"), Is.EqualTo($"{h.Root}/repo\n{h.Root}/nosuch\n"));
        Assert.That(h.Ok("imgadm sources -j"), Is.EqualTo(
            $"[\n  {{\n    \"url\": \"{h.Root}/repo\",\n    \"type\": \"imgapi\"\n  }},\n  {{\n    \"url\": \"{h.Root}/nosuch\",\n    \"type\": \"imgapi\"\n  }}\n]\n"));
        Assert.That(h.Ok("imgadm sources -c"), Does.Contain($"{h.Root}/nosuch  imgapi  false  no such directory"));
        Assert.That(h.Ok("imgadm sources -d nosuch"), Is.EqualTo($"Deleted \"imgapi\" image source \"{h.Root}/nosuch\"\n"));
        Assert.That(h.Ok("imgadm sources -d nosuch"), Is.EqualTo("Do not have image source \"nosuch\", no change\n"));
        Assert.That(h.Fails("imgadm sources -e").Stderr, Does.Contain("imgadm sources -e is not supported here"));
        Assert.That(h.Fails("imgadm sources -a repo -d repo").Stderr, Does.Contain("cannot specify more than one of"));
        Assert.That(h.Fails("imgadm sources -a repo -t docker").Stderr, Does.Contain("source type \"docker\" is not supported here"));
        Assert.That(h.Ok("imgadm sources -v"), Is.EqualTo($"URL{new string(' ', h.Root.Length + 2)}  TYPE    INSECURE\n{h.Root}/repo  imgapi  -\n"));
    }

    [Test]
    public void Import_finds_an_image_in_a_served_layout_or_among_manifest_and_file_pairs()
    {
        using var h = new ImgadmHost();
        Assert.That(h.Fails($"imgadm import {Base}").Stderr, Is.EqualTo("imgadm import: error (NoSources): imgadm has no configured sources\n"));
        string served = Path.Combine(h.Root, "served", "images", Base);
        Directory.CreateDirectory(served);
        File.Copy(Path.Combine(ImgadmHost.Examples, "base-1.0.0.imgmanifest"), Path.Combine(served, "manifest"));
        File.Copy(Path.Combine(ImgadmHost.Examples, "base-1.0.0.zfs.gz"), Path.Combine(served, "file"));
        h.Ok("imgadm sources -a served");
        h.Ok($"imgadm sources -a {ImgadmHost.Examples}");
        Assert.That(h.Ok($"imgadm import {Base}"), Is.EqualTo(
            $"Importing {Base} (base@1.0.0) from \"{h.Root}/served\"\nMust download and install 1 image (1.2 KiB)\nImported image {Base} (base@1.0.0)\n"));
        Assert.That(h.Ok($"imgadm import {Zvol}"), Does.StartWith($"Importing {Zvol} (bhyve-pattern@1.0.0) from \"{ImgadmHost.Examples}\""));
        Assert.That(JsonNode.Parse(h.Ok($"imgadm get {Base}"))!["source"]!.GetValue<string>(), Is.EqualTo($"{h.Root}/served"));
        Assert.That(h.Ok($"imgadm import {Base}"), Is.EqualTo($"Image {Base} (base 1.0.0) is already installed, skipping\n"));
        string missing = "11111111-2222-4333-8444-555555555555";
        Assert.That(h.Fails($"imgadm import {missing}").Stderr, Is.EqualTo(
            $"imgadm import: error (ActiveImageNotFound): an active image \"{missing}\" was not found in image sources\n"));
        Assert.That(h.Fails("imgadm import base").Stderr, Is.EqualTo("imgadm import: error (Usage): invalid image-id arg: \"base\"\n"));
    }

    [Test]
    public void Import_with_S_uses_only_the_sources_given_and_skips_images_that_are_not_active()
    {
        using var h = new ImgadmHost();
        string pairs = Path.Combine(h.Root, "pairs");
        Directory.CreateDirectory(pairs);
        File.Copy(Path.Combine(ImgadmHost.Examples, "base-1.0.0.zfs.gz"), Path.Combine(pairs, "base-1.0.0.zfs.gz"));
        var m = JsonNode.Parse(File.ReadAllText(Path.Combine(ImgadmHost.Examples, "base-1.0.0.imgmanifest")))!.AsObject();
        m["state"] = "disabled";
        File.WriteAllText(Path.Combine(pairs, "base-1.0.0.imgmanifest"), m.ToJsonString());
        Assert.That(h.Fails($"imgadm import -S pairs {Base}").Stderr, Does.Contain("(ActiveImageNotFound)"));
        Assert.That(h.Ok($"imgadm import -S {ImgadmHost.Examples} {Base}"), Does.EndWith($"Imported image {Base} (base@1.0.0)\n"));
        Assert.That(h.Ok("imgadm sources"), Is.Empty, "-S does not add a source");
    }

    // ---- the contract for vmadm ----

    [Test]
    public void Find_and_CheckForBrand_tell_vmadm_whether_an_image_fits_a_brand()
    {
        using var h = new ImgadmHost();
        h.InstallBase();
        h.InstallZvol();
        var images = h.Host.Images;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(images.Find(Base)!.Type, Is.EqualTo("zone-dataset"));
            Assert.That(images.Find("11111111-2222-4333-8444-555555555555"), Is.Null);
            Assert.That(images.CheckForBrand(Base, "joyent"), Is.Null);
            Assert.That(images.CheckForBrand(Base, "joyent-minimal"), Is.Null);
            Assert.That(images.CheckForBrand(Zvol, "bhyve"), Is.Null);
            Assert.That(images.CheckForBrand(Zvol, "kvm"), Is.Null);
            Assert.That(images.CheckForBrand(Zvol, "joyent"), Is.EqualTo($"image {Zvol} is type zvol, but must be one of: [\"zone-dataset\"]"));
            Assert.That(images.CheckForBrand(Base, "bhyve"), Is.EqualTo($"image {Base} is type zone-dataset, but must be one of: [\"zvol\"]"));
            Assert.That(images.CheckForBrand(Base, "lx"), Is.EqualTo($"image {Base} is type zone-dataset, but must be one of: [\"docker\",\"lx-dataset\"]"));
            Assert.That(images.CheckForBrand("11111111-2222-4333-8444-555555555555", "joyent"),
                Is.EqualTo("image \"11111111-2222-4333-8444-555555555555\" was not found on zpool \"zones\""));
            Assert.That(images.HasDependents(Base), Is.False);
        }
    }

    [Test]
    public void Imgadm_refuses_to_run_in_a_zone_and_names_unknown_and_network_commands()
    {
        using var h = new ImgadmHost();
        Assert.That(h.Fails("imgadm frobnicate").Stderr, Is.EqualTo("imgadm: error (UnknownCommand): unknown command: \"frobnicate\"\n"));
        Assert.That(h.Fails("imgadm avail").Stderr, Does.Contain("error (NotSupported): imgadm avail is not supported here"));
        Assert.That(h.Ok("imgadm help"), Does.Contain("import              Import an image"));
        Assert.That(h.Fails("imgadm").ExitCode, Is.EqualTo(1));
    }

    internal static byte[] Gunzip(byte[] gz)
    {
        using var input = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }
}
