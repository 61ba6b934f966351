using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using SmartOS.Kernel;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>vmadm's Linux image ("image": {"kernel", "initrd", "cmdline"}; zones/HvmGuest.cs):
/// checked at create in vmadm's wording, booted by the Linux boot protocol at start.</summary>
public class LinuxGuestTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private string _dir = "";

    [SetUp]
    public void MakeDirectory()
    {
        _dir = Path.Combine(Path.GetTempPath(), "smartos-linuxguest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    /// <summary>A bzImage (protocol 2.15, 64-bit) whose startup_64 prints "L" and powers off with 0.</summary>
    private static byte[] Kernel()
    {
        byte[] code = [0x66, 0xBA, 0xF8, 0x03, 0xB0, 0x4C, 0xEE, 0xB0, 0x0A, 0xEE, 0x66, 0xBA, 0x00, 0x05, 0x31, 0xC0, 0xEF, 0xF4];
        var f = new byte[0x400 + 0x220];
        f[0x1F1] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x1F4), 0x22);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x1FE), 0xAA55);
        f[0x201] = 0x6A;
        Encoding.ASCII.GetBytes("HdrS").CopyTo(f, 0x202);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x206), 0x020F);
        f[0x211] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x22C), 0x7FFF_FFFF);
        f[0x234] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x236), 3);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x238), 255);
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(0x258), 0x100_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x260), 0x10_0000);
        code.CopyTo(f, 0x600);
        return f;
    }

    private string File(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        System.IO.File.WriteAllBytes(path, bytes);
        return path;
    }

    private static string Payload(string image, int ram = 64) => $$"""
        { "alias": "linux", "brand": "bhyve", "ram": {{ram}}, "vcpus": 1, "autoboot": false, "image": {{image}},
          "nics": [ { "nic_tag": "stub0", "model": "virtio", "ips": ["10.0.0.2/24"], "mac": "90:b8:d0:00:00:02" } ] }
        """;

    private CommandResult Create(CliHost h, string payload) => Dispatcher.Run(h.World, h.Host, ["vmadm", "create"], payload, workingDirectory: _dir);

    private static CliHost Stub()
    {
        var h = new CliHost();
        h.Ok(A("nictagadm add -l stub0"));
        return h;
    }

    [Test]
    public void A_linux_image_is_created_shown_and_booted_by_the_boot_protocol()
    {
        string kernel = File("vmlinuz", Kernel()), initrd = File("initrd.img", [1, 2, 3, 4]);
        var h = Stub();
        var r = Create(h, Payload($$"""{ "kernel": "vmlinuz", "initrd": "{{initrd}}", "cmdline": "console=ttyS0" }"""));
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        string uuid = r.Stderr.Split('\n')[0].Split(' ')[^1].Trim();
        var image = JsonNode.Parse(h.Ok("vmadm", "get", uuid))!["image"]!;
        Assert.That(image.ToJsonString(), Is.EqualTo(new JsonObject { ["cmdline"] = "console=ttyS0", ["initrd"] = initrd, ["kernel"] = kernel }.ToJsonString()),
            "a relative kernel path is stored absolute");
        Assert.That(h.Run(A($"vmadm start {uuid}")).Stderr, Is.EqualTo($"Successfully started VM {uuid}\n"));
        h.World.Scheduler.RunFor(10 * Time.Millisecond);
        var j = JsonNode.Parse(h.Ok("vmadm", "get", uuid))!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A($"vmadm console {uuid}")), Is.EqualTo("L\n"), "startup_64 ran");
            Assert.That((string?)j["state"], Is.EqualTo("stopped"));
            Assert.That((string?)j["vm_stop_reason"], Is.EqualTo("powered_off"));
        }
    }

    [TestCase("""{ "kernel": "/nonexistent/vmlinuz" }""", "Invalid value(s) for: image.kernel (no such file: /nonexistent/vmlinuz)")]
    [TestCase("""{ "kernel": 7 }""", "Invalid value(s) for: image.kernel (7: a file name)")]
    [TestCase("""{ "kernel": "vmlinuz", "initrd": "/nonexistent/initrd" }""", "Invalid value(s) for: image.kernel")]
    [TestCase("""{ "kernel": "vmlinuz", "append": "quiet" }""", "Invalid value(s) for: image.append (a Linux image takes kernel, initrd and cmdline)")]
    [TestCase("""{ "kernel": "vmlinuz", "cmdline": ["quiet"] }""", "Invalid value(s) for: image.cmdline ([\"quiet\"]: a string)")]
    [TestCase("""{ "kernel": "junk" }""", "Invalid value(s) for: image.kernel (")]
    public void A_bad_linux_image_is_refused_and_nothing_is_created(string image, string message)
    {
        File("vmlinuz", Kernel());
        File("junk", Encoding.ASCII.GetBytes("#!/bin/sh\necho not a kernel\n"));
        var h = Stub();
        var r = Create(h, Payload(image));
        if (image.Contains("initrd", StringComparison.Ordinal)) message = "Invalid value(s) for: image.initrd (no such file: /nonexistent/initrd)";
        if (image.Contains("junk", StringComparison.Ordinal))
            message += Path.Combine(_dir, "junk") + ": not a bzImage: no Linux boot protocol header (boot flag 0xAA55 and \"HdrS\"))";
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(1));
            Assert.That(r.Stderr, Does.StartWith(message));
            Assert.That(h.Host.Zones.Zones, Is.Empty);
        }
    }

    [Test]
    public void Ram_above_the_pci_hole_is_refused_for_a_linux_guest()
    {
        File("vmlinuz", Kernel());
        var h = Stub();
        var r = Create(h, Payload("""{ "kernel": "vmlinuz" }""", ram: 4096));
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.StartWith("Invalid value(s) for: ram (4096: a Linux guest has at most 3072 MiB, below the PCI hole)"));
    }
}
