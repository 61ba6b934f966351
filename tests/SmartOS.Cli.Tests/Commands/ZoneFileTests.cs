using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>The file commands run in a zone through zlogin, resolved in the zone's root (zones/FileView.cs,
/// tools/Commands/Files.cs): the zone web on the host's zones pool, its root dataset zones/web mounted at
/// its zonepath /zones/web, root/ in it.</summary>
public class ZoneFileTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zonefiles-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>A host on the root with the zones pool on one sparse 64 MiB file (no zone yet).</summary>
    private CliHost Pool()
    {
        string disk = Path.Combine(_root, "d0");
        if (!File.Exists(disk))
            using (var fs = new FileStream(disk, FileMode.CreateNew)) fs.SetLength(SmartOS.Storage.Pool.MinVdevSize);
        var h = new CliHost(store: new FileConfigStore(_root));
        if (h.Host.Pools.Find("zones") is null) h.Ok(A("zpool create zones d0"));
        return h;
    }

    /// <summary>
    /// Configures, installs and boots zone NAME with zonepath /zones/NAME and the extra zonecfg commands
    /// given; its dataset zones/NAME and root/ in it are made if the install did not make them (the
    /// contract with vmadm create and zoneadm install on datasets).
    /// </summary>
    internal static void Zone(CliHost h, string name, string extra = "", string? address = null)
    {
        h.Ok(A($"dladm create-vnic -l e1000g0 {name}0"));
        string net = address is null ? "" : $"; set allowed-address={address}";
        h.Ok("zonecfg", "-z", name, $"create; set zonepath=/zones/{name}; add net; set physical={name}0{net}; end{extra}");
        h.Ok(A($"zoneadm -z {name} install"));
        var pool = h.Host.Pools.Find("zones")!;
        if (!pool.Datasets.Exists($"zones/{name}"))
        {
            Assert.That(pool.Datasets.Create($"zones/{name}", DatasetType.Filesystem).IsOk);
            Assert.That(h.Host.Mounts.Mount($"zones/{name}").IsOk);
        }
        h.Ok(A($"mkdir -p /zones/{name}/root"));
        h.Ok(A($"zoneadm -z {name} boot"));
    }

    private CliHost Web(string extra = "")
    {
        var h = Pool();
        Zone(h, "web", extra);
        return h;
    }

    [Test]
    public void File_commands_in_a_zone_work_in_its_root()
    {
        var h = Web();
        h.Ok(A("zlogin web mkdir -p /etc/app"));
        h.WithStdin("hello\n", "zlogin", "web", "dd", "of=/etc/motd");
        h.Ok(A("zlogin web cp /etc/motd /etc/app/motd.orig"));
        h.Ok(A("zlogin web mv /etc/app/motd.orig /etc/app/saved"));
        h.Ok(A("zlogin web ln -s /etc/motd /motd"));
        h.Ok(A("zlogin web touch /etc/app/empty"));
        h.Ok(A("zlogin web mkfile 4k /etc/app/blob"));
        h.Ok(A("zlogin web rm /etc/app/empty"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zlogin web ls /")), Is.EqualTo("etc\nmotd\n"));
            Assert.That(h.Ok(A("zlogin web ls /etc/app")), Is.EqualTo("blob\nsaved\n"));
            Assert.That(h.Ok(A("zlogin web cat /motd")), Is.EqualTo("hello\n"), "an absolute link target is taken from the zone's root");
            Assert.That(h.Ok(A("zlogin web cat /etc/app/saved")), Is.EqualTo("hello\n"));
            Assert.That(h.Ok(A("zlogin web digest -a md5 /etc/motd")), Is.EqualTo("b1946ac92492d2347c6235b4d2611184\n"));
            Assert.That(h.Ok(A("zlogin web du -s /etc")), Does.EndWith("\t/etc\n"));
            // The global zone sees the same files under the zonepath's root/.
            Assert.That(h.Ok(A("ls /zones/web/root/etc")), Is.EqualTo("app\nmotd\n"));
            Assert.That(h.Ok(A("cat /zones/web/root/etc/app/saved")), Is.EqualTo("hello\n"));
            Assert.That(h.Ok(A("ls /zones/web")), Is.EqualTo("root\n"));
        }
        h.Ok(A("zlogin web rm -r /etc/app"));
        Assert.That(h.Ok(A("ls /zones/web/root/etc")), Is.EqualTo("motd\n"));
    }
}
