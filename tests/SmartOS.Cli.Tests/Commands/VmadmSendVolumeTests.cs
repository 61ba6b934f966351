using System.Text;
using SmartOS.Zones;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// vmadm send and receive of a VM whose disk volume has snapshots (zones/VmMigration.cs): the
/// volume's snapshots travel as streams, the first full and each later one incremental
/// (storage/Send/ZvolStream.cs), and arrive with their contents.
/// </summary>
public class VmadmSendVolumeTests
{
    private const string Uuid = "45454545-4545-4545-8545-454545454545";
    private string _dir = "";
    private World _world = null!;

    [SetUp]
    public void MakeWorld()
    {
        _dir = Directory.CreateTempSubdirectory("smartos-vmsendvol-").FullName;
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

    private Host AddHost(string name)
    {
        var h = _world.AddHost(name, 1);
        using (var fs = new FileStream(Path.Combine(_dir, name + ".disk"), FileMode.CreateNew)) fs.SetLength(256L << 20);
        Ok(h, $"zpool create zones {name}.disk");
        return h;
    }

    private static byte[] Read(Host h, string volume)
    {
        var bytes = new byte[4 << 20];
        Assert.That(h.Pools.Find("zones")!.Datasets.ReadVolume(volume, 0, bytes, out _).Message, Is.EqualTo("ok"));
        return bytes;
    }

    [Test]
    public void A_disks_snapshots_travel_with_the_vm_and_keep_their_contents()
    {
        var h1 = AddHost("h1");
        var h2 = AddHost("h2");
        Ok(h1, "vmadm create", Encoding.UTF8.GetBytes($$"""{"uuid": "{{Uuid}}", "brand": "joyent", "autoboot": false}"""));
        var pool = h1.Pools.Find("zones")!;
        if (!pool.Datasets.Exists($"zones/{Uuid}")) Ok(h1, $"zfs create zones/{Uuid}");
        string disk = $"zones/{Uuid}-disk0";
        Ok(h1, $"zfs create -V 4m {disk}");
        Assert.That(pool.Datasets.WriteVolume(disk, 8192, Encoding.ASCII.GetBytes("one")).IsOk, Is.True);
        Ok(h1, $"zfs snapshot {disk}@one");
        Assert.That(pool.Datasets.WriteVolume(disk, 8192, new byte[3]).IsOk, Is.True);
        Assert.That(pool.Datasets.WriteVolume(disk, 3L << 20, Encoding.ASCII.GetBytes("two")).IsOk, Is.True);
        Ok(h1, $"zfs snapshot {disk}@two");
        Assert.That(pool.Datasets.WriteVolume(disk, 1L << 20, Encoding.ASCII.GetBytes("head")).IsOk, Is.True);

        var sent = Run(h1, $"vmadm send {Uuid}");
        Assert.That(sent.ExitCode, Is.Zero, sent.Stderr);
        var received = Run(h2, "vmadm receive", sent.StdoutBytes);
        Assert.That(received.ExitCode, Is.Zero, received.Stderr);
        Assert.That(Ok(h2, $"zfs list -H -o name -t snapshot -r {disk}"), Is.EqualTo($"{disk}@one\n{disk}@two\n"));
        foreach (string name in (string[])[$"{disk}@one", $"{disk}@two", disk])
            Assert.That(Read(h2, name), Is.EqualTo(Read(h1, name)), name);
        Assert.That(Ok(h1, "zfs list -H -o name -t snapshot -r zones") + Ok(h2, "zfs list -H -o name -t snapshot -r zones"), Does.Not.Contain("@sending"));
    }
}
