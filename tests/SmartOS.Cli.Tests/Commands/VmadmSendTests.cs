using System.Text;
using System.Text.Json.Nodes;
using SmartOS.Storage;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// vmadm send and receive (zones/VmMigration.cs, tools/Commands/VmadmMigration.cs) between two hosts of
/// one world, each with a zones pool on a file disk: the round trip, every refusal, and that a refused
/// receive leaves nothing behind.
/// </summary>
public class VmadmSendTests
{
    private const string Uuid = "44444444-4444-4444-8444-444444444444";
    private string _dir = "";
    private World _world = null!;

    [SetUp]
    public void MakeWorld()
    {
        _dir = Directory.CreateTempSubdirectory("smartos-vmsend-").FullName;
        _world = new World();
    }

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private CommandResult Run(Host h, string line, byte[]? stdin = null)
        => Dispatcher.Run(_world, h, CliHost.Split(line), stdin == null ? null : new MemoryStream(stdin), workingDirectory: _dir);

    private string Ok(Host h, string line, byte[]? stdin = null)
    {
        var r = Run(h, line, stdin);
        Assert.That(r.ExitCode, Is.Zero, $"{h.Name}: {line}: {r.Stderr}");
        return r.Stdout;
    }

    private string Fails(Host h, string line, byte[]? stdin = null)
    {
        var r = Run(h, line, stdin);
        Assert.That(r.ExitCode, Is.EqualTo(1), $"{h.Name}: {line} should have failed: {r.Stdout}");
        return r.Stderr;
    }

    /// <summary>A host with nic tag external and a zones pool of <paramref name="size"/> bytes.</summary>
    private Host AddHost(string name, long size = 256L << 20)
    {
        var h = _world.AddHost(name, 1);
        using (var fs = new FileStream(Path.Combine(_dir, name + ".disk"), FileMode.CreateNew)) fs.SetLength(size);
        Ok(h, "nictagadm add external e1000g0");
        Ok(h, $"zpool create zones {name}.disk");
        return h;
    }

    /// <summary>A stopped VM with files in zones/UUID and zones/UUID/data, a snapshot, a quota and a
    /// disk volume with blocks written; what engineer B's vmadm create makes is made here if absent.</summary>
    private static void MakeVm(VmadmSendTests t, Host h, long volsize = 4L << 20)
    {
        t.Ok(h, "vmadm create", Encoding.UTF8.GetBytes(
            $$"""{"uuid": "{{Uuid}}", "alias": "moved", "brand": "joyent", "autoboot": false, "nics": [{"nic_tag": "external", "ips": ["10.0.0.10/24"], "mac": "02:08:20:00:00:10"}]}"""));
        var pool = h.Pools.Find("zones")!;
        if (!pool.Datasets.Exists($"zones/{Uuid}")) t.Ok(h, $"zfs create zones/{Uuid}");
        if (!pool.Datasets.Exists($"zones/{Uuid}/data")) t.Ok(h, $"zfs create zones/{Uuid}/data");
        t.Ok(h, $"zfs set quota=50m zones/{Uuid}/data");
        t.Ok(h, $"mkdir -p /zones/{Uuid}/data/www");
        t.Ok(h, $"dd of=/zones/{Uuid}/data/www/index.html", Encoding.UTF8.GetBytes("<h1>hello</h1>\n"));
        t.Ok(h, $"zfs snapshot zones/{Uuid}/data@one");
        t.Ok(h, $"dd of=/zones/{Uuid}/data/www/more.html", Encoding.UTF8.GetBytes("<p>after the snapshot</p>\n"));
        t.Ok(h, $"zfs create -V {volsize} zones/{Uuid}-disk0");
        var block = new byte[8192];
        for (int i = 0; i < block.Length; i++) block[i] = (byte)(i * 7 + 1);
        Assert.That(pool.Datasets.WriteVolume($"zones/{Uuid}-disk0", 3 * 8192, block).IsOk, Is.True);
    }

    private static byte[] VolumeBytes(Host h)
    {
        var pool = h.Pools.Find("zones")!;
        var bytes = new byte[4 << 20];
        Assert.That(pool.Datasets.ReadVolume($"zones/{Uuid}-disk0", 0, bytes, out int n).IsOk, Is.True);
        return bytes[..n];
    }

    private string Datasets(Host h) => Ok(h, "zfs list -H -o name -t all -r zones");

    private static string WithoutLastModified(string json)
    {
        var o = JsonNode.Parse(json)!.AsObject();
        o.Remove("last_modified");
        return o.ToJsonString();
    }

    [Test]
    public void Send_and_receive_recreate_the_vm_with_its_json_datasets_snapshots_properties_and_disk()
    {
        var h1 = AddHost("h1");
        var h2 = AddHost("h2");
        MakeVm(this, h1);
        string json = Ok(h1, $"vmadm get {Uuid}");
        string sums = Ok(h1, $"digest -a sha1 /zones/{Uuid}/data/www/index.html /zones/{Uuid}/data/www/more.html");
        var sent = Run(h1, $"vmadm send {Uuid}");
        Assert.That(sent.ExitCode, Is.Zero, sent.Stderr);
        Assert.That(sent.Stderr, Is.EqualTo($"Successfully sent VM {Uuid}\n"));
        var received = Run(h2, "vmadm receive", sent.StdoutBytes);
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(received.Stderr, Is.EqualTo($"Successfully received VM {Uuid}\n"));
            Assert.That(WithoutLastModified(Ok(h2, $"vmadm get {Uuid}")), Is.EqualTo(WithoutLastModified(json)));
            Assert.That(Ok(h2, $"digest -a sha1 /zones/{Uuid}/data/www/index.html /zones/{Uuid}/data/www/more.html"), Is.EqualTo(sums));
            Assert.That(Datasets(h2), Is.EqualTo($"zones\nzones/{Uuid}\nzones/{Uuid}-disk0\nzones/{Uuid}/data\nzones/{Uuid}/data@one\n"));
            Assert.That(Datasets(h1), Does.Not.Contain("@sending"));
            Assert.That(Ok(h2, $"zfs get -H -o value quota zones/{Uuid}/data"), Is.EqualTo("50M\n"));
            Assert.That(Ok(h2, $"zfs get -H -o value refreservation zones/{Uuid}-disk0"), Is.EqualTo(Ok(h1, $"zfs get -H -o value refreservation zones/{Uuid}-disk0")));
            Assert.That(VolumeBytes(h2), Is.EqualTo(VolumeBytes(h1)));
            Assert.That(Ok(h2, $"vmadm list -H -o uuid,state"), Does.Contain($"{Uuid}  stopped"));
        }
        // The snapshot came as it was: rolling back takes the later file away.
        Ok(h2, $"zfs rollback zones/{Uuid}/data@one");
        Assert.That(Ok(h2, $"ls /zones/{Uuid}/data/www"), Is.EqualTo("index.html\n"));
    }

    [Test]
    public void Send_to_a_file_stops_a_running_vm_as_vmjs_does()
    {
        var h1 = AddHost("h1");
        MakeVm(this, h1);
        Ok(h1, $"vmadm start {Uuid}");
        Ok(h1, $"vmadm send {Uuid} -f vm.stream");
        Assert.That(Ok(h1, $"vmadm list -H -o state uuid={Uuid}"), Is.EqualTo("stopped\n"));
        Assert.That(File.Exists(Path.Combine(_dir, "vm.stream")), Is.True);
        var h2 = AddHost("h2");
        Ok(h2, "vmadm receive -f vm.stream");
        Ok(h2, $"vmadm start {Uuid}");
        Assert.That(Ok(h2, $"vmadm list -H -o state uuid={Uuid}"), Is.EqualTo("running\n"));
    }

    [Test]
    public void Send_refuses_an_unknown_vm_and_one_without_datasets()
    {
        var h1 = _world.AddHost("h1", 1);
        Ok(h1, "nictagadm add external e1000g0");
        Assert.That(Fails(h1, $"vmadm send {Uuid}"), Is.EqualTo($"Failed to send VM {Uuid}: zoneadm: {Uuid}: No such zone configured\n"));
        Ok(h1, "vmadm create", Encoding.UTF8.GetBytes($$"""{"uuid": "{{Uuid}}", "brand": "joyent", "autoboot": false}"""));
        Assert.That(Fails(h1, $"vmadm send {Uuid} -f x"), Is.EqualTo($"Failed to send VM {Uuid}: VM has no datasets.\n"));
        Assert.That(File.Exists(Path.Combine(_dir, "x")), Is.False);
    }

    private (Host H1, Host H2, byte[] Stream) Sent()
    {
        var h1 = AddHost("h1");
        var h2 = AddHost("h2");
        MakeVm(this, h1);
        return (h1, h2, Run(h1, $"vmadm send {Uuid}").StdoutBytes);
    }

    /// <summary>The receiving host as it was before: only its pool's root dataset, no VM.</summary>
    private void AssertUntouched(Host h2)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Datasets(h2), Is.EqualTo("zones\n"));
            Assert.That(Ok(h2, "vmadm list -H"), Is.Empty);
        }
    }

    [Test]
    public void Receive_of_a_vm_that_exists_is_refused_in_vmjs_words_and_changes_nothing()
    {
        var (h1, _, stream) = Sent();
        string before = Datasets(h1);
        Assert.That(Fails(h1, "vmadm receive", stream), Is.EqualTo($"Failed to receive VM: VM with UUID {Uuid} already exists\n"));
        Assert.That(Datasets(h1), Is.EqualTo(before));
    }

    [TestCase(10, "invalid stream (bad magic number)")]
    [TestCase(100, "invalid stream (truncated)")]
    [TestCase(-1, "invalid stream (truncated)")]
    [TestCase(-40, "invalid stream (truncated)")]
    public void A_truncated_stream_is_refused_and_nothing_is_received(int keep, string why)
    {
        var (_, h2, stream) = Sent();
        byte[] cut = stream[..(keep > 0 ? keep : stream.Length + keep)];
        Assert.That(Fails(h2, "vmadm receive", cut), Is.EqualTo($"Failed to receive VM: {why}\n"));
        AssertUntouched(h2);
    }

    [Test]
    public void A_stream_altered_anywhere_is_refused_and_nothing_is_received()
    {
        var (_, h2, stream) = Sent();
        foreach (int at in (int[])[30, stream.Length / 2, stream.Length - 50, stream.Length - 1])
        {
            byte[] bad = (byte[])stream.Clone();
            bad[at] ^= 0x20;
            Assert.That(Fails(h2, "vmadm receive", bad), Does.StartWith("Failed to receive VM: invalid stream ("), $"byte {at}");
        }
        byte[] version = (byte[])stream.Clone();
        version[19] = 9;
        Assert.That(Fails(h2, "vmadm receive", version), Is.EqualTo("Failed to receive VM: unsupported stream version 9 (this host reads version 1)\n"));
        AssertUntouched(h2);
    }

    /// <summary>The stream with its configuration chunk changed and framed again (checksums right).</summary>
    private static byte[] Reframed(byte[] stream, Func<string, string> config)
    {
        var chunks = VmMigration.Read(stream, out string? error)!;
        Assert.That(error, Is.Null);
        chunks[1] = chunks[1] with { Payload = Encoding.UTF8.GetBytes(config(Encoding.UTF8.GetString(chunks[1].Payload))) };
        using var output = new MemoryStream();
        VmMigration.Write(chunks, output);
        return output.ToArray();
    }

    [Test]
    public void A_vm_of_an_unknown_brand_is_refused_and_nothing_is_received()
    {
        var (_, h2, stream) = Sent();
        byte[] sngl = Reframed(stream, c =>
        {
            var o = JsonNode.Parse(c)!.AsObject();
            string key = o.ContainsKey("Brand") ? "Brand" : "brand";
            Assert.That((string?)o[key], Is.EqualTo("joyent"));
            o[key] = "sngl";
            return o.ToJsonString();
        });
        Assert.That(Fails(h2, "vmadm receive", sngl), Is.EqualTo("Failed to receive VM: unknown brand 'sngl'\n"));
        AssertUntouched(h2);
    }

    [Test]
    public void A_stream_whose_configuration_moves_the_zonepath_is_refused()
    {
        var (_, h2, stream) = Sent();
        byte[] moved = Reframed(stream, c =>
        {
            var o = JsonNode.Parse(c)!.AsObject();
            string key = o.ContainsKey("ZonePath") ? "ZonePath" : "zonepath";
            o[key] = "/etc";
            return o.ToJsonString();
        });
        Assert.That(Fails(h2, "vmadm receive", moved), Is.EqualTo("Failed to receive VM: Invalid value(s) for: zonepath (/etc)\n"));
        AssertUntouched(h2);
    }

    [Test]
    public void A_host_without_the_nic_tag_or_the_pool_refuses_the_vm()
    {
        var (_, _, stream) = Sent();
        var h3 = _world.AddHost("h3", 1);
        Assert.That(Fails(h3, "vmadm receive", stream), Is.EqualTo("Failed to receive VM: cannot open 'zones': no such pool\n"));
        using (var fs = new FileStream(Path.Combine(_dir, "h3.disk"), FileMode.CreateNew)) fs.SetLength(128L << 20);
        Ok(h3, "zpool create zones h3.disk");
        Assert.That(Fails(h3, "vmadm receive", stream), Does.StartWith("Failed to receive VM: ").And.Contain("external"));
        AssertUntouched(h3);
    }

    [Test]
    public void A_pool_too_small_for_the_disk_refuses_the_vm_and_keeps_none_of_its_datasets()
    {
        var h1 = AddHost("h1");
        MakeVm(this, h1, volsize: 96L << 20);
        byte[] stream = Run(h1, $"vmadm send {Uuid}").StdoutBytes;
        var small = AddHost("small", 64L << 20);
        string why = Fails(small, "vmadm receive", stream);
        Assert.That(why, Does.StartWith("Failed to receive VM: ").And.Contain("size is greater than available space"));
        AssertUntouched(small);
    }

    [Test]
    public void Receive_without_a_stream_and_send_with_bad_arguments_are_refused()
    {
        var h1 = AddHost("h1");
        Assert.That(Fails(h1, "vmadm receive"), Is.EqualTo("Failed to receive VM: unable to find JSON in stdin.\n"));
        Assert.That(Fails(h1, "vmadm receive", []), Is.EqualTo("Failed to receive VM: invalid stream (bad magic number)\n"));
        Assert.That(Run(h1, "vmadm send").ExitCode, Is.EqualTo(2));
        Assert.That(Run(h1, "vmadm receive extra").ExitCode, Is.EqualTo(2));
    }
}
