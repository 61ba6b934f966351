using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Images;

/// <summary>
/// examples/images: the checked-in images are what build.scn makes (rebuilt here, byte for byte),
/// their manifests carry the sha1 and size of the checked-in files, and they install.
/// </summary>
public class ImageExampleTests
{
    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-imgbuild-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    [TestCase("base-1.0.0", ImgadmHost.Base, "zone-dataset")]
    [TestCase("bhyve-pattern-1.0.0", ImgadmHost.Zvol, "zvol")]
    public void The_checked_in_image_is_what_the_build_scenario_makes_and_its_manifest_matches_its_file(string name, string uuid, string type)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = new ScenarioRunner(o, e, _dir, 1).Run(File.ReadAllText(Path.Combine(ImgadmHost.Examples, "build.scn")), "build.scn");
        Assert.That(code, Is.Zero, e.ToString());
        byte[] rebuilt = File.ReadAllBytes(Path.Combine(_dir, name + ".zfs"));
        byte[] file = File.ReadAllBytes(Path.Combine(ImgadmHost.Examples, name + ".zfs.gz"));
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(ImgadmHost.Examples, name + ".imgmanifest")))!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ImgadmTests.Gunzip(file), Is.EqualTo(rebuilt), "the checked-in stream is the rebuilt one");
            Assert.That(manifest["uuid"]!.GetValue<string>(), Is.EqualTo(uuid));
            Assert.That(manifest["type"]!.GetValue<string>(), Is.EqualTo(type));
            Assert.That(manifest["files"]![0]!["sha1"]!.GetValue<string>(), Is.EqualTo(Convert.ToHexStringLower(SHA1.HashData(file))));
            Assert.That(manifest["files"]![0]!["size"]!.GetValue<long>(), Is.EqualTo(file.LongLength));
            Assert.That(file.LongLength, Is.LessThan(4096), "the example images stay small");
        }
    }

    [Test]
    public void The_examples_directory_is_an_image_source_both_images_import_from()
    {
        using var h = new ImgadmHost();
        h.Ok($"imgadm sources -a {ImgadmHost.Examples}");
        h.Ok($"imgadm import {ImgadmHost.Base}");
        h.Ok($"imgadm import {ImgadmHost.Zvol}");
        Assert.That(h.Ok("imgadm list -H -o name,version,type"), Is.EqualTo("base           1.0.0  zone-dataset\nbhyve-pattern  1.0.0  zvol\n"));
        Assert.That(h.Ok($"ls /zones/{ImgadmHost.Base}/root/etc"), Is.EqualTo("group\nhosts\nmotd\npasswd\nresolv.conf\n"));
    }
}
