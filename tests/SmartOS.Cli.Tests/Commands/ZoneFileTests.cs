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

    [Test]
    public void Nothing_outside_the_zones_root_is_reachable_by_dotdot_or_links()
    {
        var h = Web();
        h.WithStdin("zonepath secret\n", "dd", "of=/zones/web/secret");
        h.WithStdin("global secret\n", "dd", "of=/zones/gsecret");
        h.Ok(A("mkdir /zones/web/root/etc"));
        h.WithStdin("zone motd\n", "dd", "of=/zones/web/root/etc/motd");
        // Links made by the global zone inside the root, aiming out of it.
        h.Ok(A("ln -s ../secret /zones/web/root/up"));
        h.Ok(A("ln -s ../../../../zones/gsecret /zones/web/root/far"));
        h.Ok(A("ln -s /zones/web/secret /zones/web/root/abs"));
        h.Ok(A("ln -s /etc/motd /zones/web/root/motd"));
        h.Ok(A("ln -s loop2 /zones/web/root/loop1"));
        h.Ok(A("ln -s loop1 /zones/web/root/loop2"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Line("zlogin web cat /../secret").Stderr, Is.EqualTo("cat: cannot open /../secret: No such file or directory\n"));
            Assert.That(h.Line("zlogin web cat ../../../zones/gsecret").Stderr, Is.EqualTo("cat: cannot open ../../../zones/gsecret: No such file or directory\n"));
            Assert.That(h.Line("zlogin web cat /up").Stderr, Is.EqualTo("cat: cannot open /up: No such file or directory\n"));
            Assert.That(h.Line("zlogin web cat /far").Stderr, Is.EqualTo("cat: cannot open /far: No such file or directory\n"));
            Assert.That(h.Line("zlogin web cat /abs").Stderr, Is.EqualTo("cat: cannot open /abs: No such file or directory\n"));
            Assert.That(h.Line("zlogin web cat /loop1").Stderr, Does.EndWith("Number of symbolic links encountered during path name traversal exceeds MAXSYMLINKS\n"));
            Assert.That(h.Ok(A("zlogin web cat /motd")), Is.EqualTo("zone motd\n"), "an absolute target is taken from the zone's root");
            Assert.That(h.Ok(A("zlogin web ls /..")), Is.EqualTo(h.Ok(A("zlogin web ls /"))), ".. of the root is the root");
            Assert.That(h.Ok(A("zlogin web ls /etc/../../..")), Is.EqualTo("abs\netc\nfar\nloop1\nloop2\nmotd\nup\n"));
        }
        // A write through a link that aims out lands inside the root, never outside it.
        h.Ok(A("zlogin web mkdir -p /zones/web"));
        h.WithStdin("overwritten\n", "zlogin", "web", "dd", "of=/abs");
        h.Ok(A("zlogin web cp /etc/motd /up"));
        h.Ok(A("zlogin web rm -r /etc"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("cat /zones/web/secret")), Is.EqualTo("zonepath secret\n"));
            Assert.That(h.Ok(A("cat /zones/gsecret")), Is.EqualTo("global secret\n"));
            Assert.That(h.Ok(A("cat /zones/web/root/zones/web/secret")), Is.EqualTo("overwritten\n"));
            Assert.That(h.Ok(A("cat /zones/web/root/secret")), Is.EqualTo("zone motd\n"));
        }
    }

    [Test]
    public void Df_in_a_zone_shows_its_root_at_slash_sized_by_its_quota()
    {
        var h = Web();
        h.Ok(A("zfs set quota=16m zones/web"));
        var data = new byte[1 << 20];
        new Random(7).NextBytes(data);
        Assert.That(Dispatcher.Run(h.World, h.Host, A("zlogin web dd of=/big bs=128k"), new MemoryStream(data)).ExitCode, Is.Zero);
        string df = h.Ok(A("zlogin web df -h"));
        var lines = df.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(lines, Has.Length.EqualTo(2), df);
            Assert.That(lines[0], Is.EqualTo("Filesystem             size   used  avail capacity  Mounted on"));
            Assert.That(lines[1], Is.EqualTo("zones/web               16M   1.0M    15M     7%    /"));
            Assert.That(h.Ok(A("zlogin web df -h /big")), Is.EqualTo(df));
            Assert.That(h.Ok(A("zlogin web df -k")).Split('\n')[1], Does.StartWith("zones/web              16384    1028   15355     7%    /"));
            // The global zone's df shows the dataset at its zonepath.
            Assert.That(h.Ok(A("df -h /zones/web/root/big")), Does.Match(@"\nzones/web\s.*%\s+/zones/web\n$"));
        }
        h.Ok(A("zfs set quota=none zones/web"));
        Assert.That(h.Ok(A("zlogin web df -h")).Split('\n')[1], Does.Not.Contain(" 16M "));
    }

    [Test]
    public void A_zone_without_a_dataset_keeps_a_clear_refusal_and_changes_nothing()
    {
        var h = new CliHost();
        h.Ok(A("dladm create-vnic -l e1000g0 web0"));
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add net; set physical=web0; end");
        h.Ok(A("zoneadm -z web install"));
        h.Ok(A("zoneadm -z web boot"));
        foreach (string command in new[] { "ls /", "mkdir /x", "df", "cat /etc/motd" })
        {
            var r = h.Line("zlogin web " + command);
            string name = command.Split(' ')[0];
            Assert.That((r.ExitCode, r.Stdout, r.Stderr), Is.EqualTo((1, "", $"{name}: zone 'web' has no dataset: its zonepath /zones/web is on no mounted file system\n")));
        }
    }

    /// <summary>The zone web with /zones/shared (a dataset of the global zone) seen at /data, and
    /// /zones/ro at /ro read-only.</summary>
    private CliHost WebWithLofs()
    {
        var h = Pool();
        h.Ok(A("zfs create zones/shared"));
        h.Ok(A("mkdir -p /zones/ro/docs"));
        h.WithStdin("shared\n", "dd", "of=/zones/shared/note");
        h.WithStdin("read only\n", "dd", "of=/zones/ro/docs/page");
        Zone(h, "web", "; add fs; set dir=/data; set special=/zones/shared; set type=lofs; end"
            + "; add fs; set dir=/ro; set special=/zones/ro; set type=lofs; add options [ro]; end");
        return h;
    }

    [Test]
    public void Lofs_mounts_show_a_global_path_inside_the_zone_rw_and_ro()
    {
        var h = WebWithLofs();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zlogin web cat /data/note")), Is.EqualTo("shared\n"));
            Assert.That(h.Ok(A("zlogin web cat /ro/docs/page")), Is.EqualTo("read only\n"));
            Assert.That(h.Ok(A("zlogin web ls /ro")), Is.EqualTo("docs\n"));
        }
        // rw: the zone's writes are the global zone's files.
        h.WithStdin("from the zone\n", "zlogin", "web", "dd", "of=/data/reply");
        Assert.That(h.Ok(A("cat /zones/shared/reply")), Is.EqualTo("from the zone\n"));
        // ro: every change is EROFS and nothing changes.
        var touch = h.Line("zlogin web touch /ro/docs/new");
        var rm = h.Line("zlogin web rm /ro/docs/page");
        var mkdir = h.Line("zlogin web mkdir /ro/d");
        var dd = h.WithStdin("x\n", "zlogin", "web", "dd", "of=/ro/docs/page");
        var mv = h.Line("zlogin web mv /ro/docs/page /page");
        var cp = h.Line("zlogin web cp /data/note /ro/docs/note");
        using (Assert.EnterMultipleScope())
        {
            Assert.That((touch.ExitCode, touch.Stderr), Is.EqualTo((2, "touch: /ro/docs/new: Read-only file system\n")));
            Assert.That(rm.ExitCode, Is.Not.Zero);
            Assert.That(rm.Stderr, Does.Contain("Read-only file system"));
            Assert.That(mkdir.Stderr, Does.Contain("Read-only file system"));
            Assert.That(dd.Stderr, Does.Contain("Read-only file system"));
            Assert.That(mv.Stderr, Does.Contain("Read-only file system"));
            Assert.That(cp.Stderr, Does.Contain("Read-only file system"));
            Assert.That(h.Ok(A("ls /zones/ro/docs")), Is.EqualTo("page\n"));
            Assert.That(h.Ok(A("cat /zones/ro/docs/page")), Is.EqualTo("read only\n"));
            Assert.That(h.Ok(A("zlogin web ls /")), Is.Empty, "the mv left nothing behind");
            // The global zone still writes there: read-only is the zone's view only.
            Assert.That(h.Run(A("touch /zones/ro/docs/new")).ExitCode, Is.Zero);
            // rmdir of a lofs dir is busy, as for any mountpoint.
            Assert.That(h.Line("zlogin web rmdir /data").Stderr, Does.Contain("Directory is a mount point or in use"));
        }
        // df shows the lofs mounts with their special paths.
        string df = h.Ok(A("zlogin web df -h"));
        Assert.That(df.Split('\n')[2..4], Has.Some.Match(@"^/zones/shared\s.*\s/data$"));
        Assert.That(df.Split('\n')[2..4], Has.Some.Match(@"^/zones/ro\s.*\s/ro$"));
        Assert.That(h.Ok(A("zlogin web df -F lofs -h")).Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(3));
    }

    [Test]
    public void Lofs_mounts_apply_while_the_zone_runs_and_a_missing_special_stops_the_boot()
    {
        var h = WebWithLofs();
        h.Ok(A("zoneadm -z web halt"));
        h.Ok("zonecfg", "-z", "web", "add fs; set dir=/gone; set special=/zones/nothing; set type=lofs; end");
        var boot = h.Line("zoneadm -z web boot");
        Assert.That(boot.ExitCode, Is.Not.Zero);
        Assert.That(boot.Stderr, Does.Contain("could not verify fs /gone: could not access /zones/nothing: No such file or directory"));
        h.Ok("zonecfg", "-z", "web", "remove fs dir=/gone");
        h.Ok(A("zoneadm -z web boot"));
        Assert.That(h.Ok(A("zlogin web cat /data/note")), Is.EqualTo("shared\n"));
        // Committed while the zone runs: applies at the next boot, as zoneadmd mounts at ready.
        h.Ok(A("mkdir /zones/later"));
        h.Ok("zonecfg", "-z", "web", "add fs; set dir=/later; set special=/zones/later; set type=lofs; end");
        Assert.That(h.Line("zlogin web ls /later").ExitCode, Is.Not.Zero);
        h.Ok(A("zoneadm -z web reboot"));
        Assert.That(h.Line("zlogin web ls /later").ExitCode, Is.Zero);
    }

    [Test]
    public void Zonecfg_fs_is_shown_by_info_and_export_and_validated_as_zonecfg_does()
    {
        var h = Pool();
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web; add fs; set dir=/data; set special=/zones/shared; set type=lofs; add options ro; end");
        Assert.That(h.Ok("zonecfg", "-z", "web", "info fs"), Is.EqualTo(
            "fs:\n\tdir: /data\n\tspecial: /zones/shared\n\traw not specified\n\ttype: lofs\n\toptions: [ro]\n"));
        string export = h.Ok("zonecfg", "-z", "web", "export");
        Assert.That(export, Does.Contain("add fs\nset dir=/data\nset special=/zones/shared\nset type=lofs\nadd options [ro]\nend\n"));
        // What export prints recreates the same configuration.
        h.Ok("zonecfg", "-z", "copy", export.Replace("set zonepath=/zones/web", "set zonepath=/zones/copy"));
        Assert.That(h.Ok("zonecfg", "-z", "copy", "info fs"), Is.EqualTo(h.Ok("zonecfg", "-z", "web", "info fs")));
        string Error(string commands) => h.Run("zonecfg", "-z", "web", commands).Stderr;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Error("add fs; set special=/a; set type=lofs; end"), Does.EndWith("dir not specified\n"));
            Assert.That(Error("add fs; set dir=x; set special=/a; set type=lofs; end"), Does.EndWith("dir x is not an absolute path.\n"));
            Assert.That(Error("add fs; set dir=/x; set type=lofs; end"), Does.EndWith("special not specified\n"));
            Assert.That(Error("add fs; set dir=/x; set special=/a; end"), Does.EndWith("type not specified\n"));
            Assert.That(Error("add fs; set dir=/data; set special=/a; set type=lofs; end"), Does.EndWith("A fs resource with the dir '/data' already exists.\n"));
            Assert.That(Error("add fs; set type=zfs"), Does.EndWith("type: 'zfs' is not supported yet: only lofs mounts are made\n"));
            Assert.That(Error("add fs; add options nodevices"), Does.EndWith("options: 'nodevices' is not supported yet: only ro and rw are enforced\n"));
            Assert.That(Error("add fs; set options=[ro,rw]"), Does.EndWith("options: ro and rw are mutually exclusive\n"));
            Assert.That(Error("add fs; set raw=/dev/x"), Does.EndWith("raw: not supported: a lofs mount has no raw device\n"));
            Assert.That(Error("remove fs dir=/nope"), Does.EndWith("fs: no resource with dir=/nope\n"));
        }
        Assert.That(h.Ok("zonecfg", "-z", "web", "info fs"), Does.StartWith("fs:\n\tdir: /data\n"), "nothing changed");
        h.Ok("zonecfg", "-z", "web", "remove fs dir=/data");
        Assert.That(h.Ok("zonecfg", "-z", "web", "info fs"), Is.Empty);
    }

    [Test]
    public void Zone_files_and_fs_resources_persist_across_a_host_restart()
    {
        var h = WebWithLofs();
        h.WithStdin("kept\n", "zlogin", "web", "dd", "of=/kept");
        h.Ok(A("zoneadm -z web halt"));
        h.Ok(A("zpool export zones"));
        var again = new CliHost(store: new FileConfigStore(_root));
        again.Ok(A("zpool import zones"));
        again.Ok(A("zoneadm -z web boot"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(again.Ok(A("zlogin web cat /kept")), Is.EqualTo("kept\n"));
            Assert.That(again.Ok(A("zlogin web cat /data/note")), Is.EqualTo("shared\n"));
            Assert.That(again.Ok("zonecfg", "-z", "web", "info fs"), Does.Contain("\tdir: /ro\n"));
        }
    }

    /// <summary>Starts a command and leaves it running (a server).</summary>
    private static Task<int> Background(CliHost h, params string[] argv)
    {
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = Stream.Null, StderrBytes = Stream.Null };
        return Dispatcher.StartAsync(ctx, argv);
    }

    [Test]
    public void Httpd_in_a_zone_serves_the_zones_var_www_to_another_zone()
    {
        var h = Pool();
        Zone(h, "web", address: "10.0.0.2/24");
        Zone(h, "client", address: "10.0.0.1/24");
        h.Ok(A("zlogin web mkdir -p /var/www/docs /srv"));
        h.WithStdin("<h1>web zone</h1>\n", "zlogin", "web", "dd", "of=/var/www/index.html");
        h.WithStdin("notes\n", "zlogin", "web", "dd", "of=/var/www/docs/notes.txt");
        h.WithStdin("other root\n", "zlogin", "web", "dd", "of=/srv/index.html");
        h.WithStdin("zonepath secret\n", "dd", "of=/zones/web/secret");
        h.Ok(A("ln -s /zones/web/secret /zones/web/root/var/www/escape"));
        h.Ok(A("ln -s ../../../secret /zones/web/root/var/www/up"));
        h.World.Scheduler.RunFor(2 * Time.Second);
        var server = Background(h, "zlogin", "web", "httpd", "-p", "80", "-c", "6");
        string Get(string path) => h.Ok("zlogin", "client", "curl", "-s", "http://10.0.0.2" + path);
        string Code(string path) => h.Ok("zlogin", "client", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://10.0.0.2" + path);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Get("/"), Is.EqualTo("<h1>web zone</h1>\n"));
            Assert.That(Get("/docs/notes.txt"), Is.EqualTo("notes\n"));
            Assert.That(Code("/escape"), Is.EqualTo("404"), "an absolute link is taken from the zone's root");
            Assert.That(Code("/up"), Is.EqualTo("404"), "a relative link stops at the zone's root");
            Assert.That(Code("/../secret"), Is.Not.EqualTo("200"));
            Assert.That(Code("/nothing"), Is.EqualTo("404"));
        }
        h.World.Scheduler.RunFor(Time.Second);
        Assert.That(server.IsCompleted, Is.True, "httpd -c 6 exits after six requests");
        // -d names a directory of the zone's tree.
        server = Background(h, "zlogin", "web", "httpd", "-p", "80", "-d", "/srv", "-c", "1");
        Assert.That(Get("/"), Is.EqualTo("other root\n"));
        h.World.Scheduler.RunFor(Time.Second);
        Assert.That(server.IsCompleted, Is.True);
        var missing = h.Line("zlogin web httpd -d /nowhere");
        Assert.That((missing.ExitCode, missing.Stderr), Is.EqualTo((1, "httpd: /nowhere: No such file or directory\n")));
        // A zone whose tree has no /var/www gets the built-in page.
        _ = Background(h, "zlogin", "client", "httpd", "-p", "80", "-c", "1");
        Assert.That(h.Ok("zlogin", "web", "curl", "-s", "http://10.0.0.1/"), Is.EqualTo(SmartOS.Netstack.Httpd.IndexPage));
    }

    [Test]
    public void Chmod_changes_modes_in_the_zone_and_is_refused_under_a_read_only_lofs()
    {
        var h = WebWithLofs();
        h.Ok(A("zlogin web mkdir -p /bin/sub"));
        h.Ok(A("zlogin web touch /bin/tool /bin/sub/inner"));
        h.Ok(A("zlogin web chmod 755 /bin/tool"));
        Assert.That(h.Ok(A("zlogin web ls -l /bin/tool")), Does.StartWith("-rwxr-xr-x "));
        h.Ok(A("zlogin web chmod go-rx,u=rw /bin/tool"));
        Assert.That(h.Ok(A("zlogin web ls -l /bin/tool")), Does.StartWith("-rw------- "));
        h.Ok(A("zlogin web chmod +x /bin/tool"));
        Assert.That(h.Ok(A("zlogin web ls -l /bin/tool")), Does.StartWith("-rwx--x--x "));
        h.Ok(A("zlogin web chmod -R 700 /bin/sub"));
        Assert.That(h.Ok(A("ls -l /zones/web/root/bin/sub/inner")), Does.StartWith("-rwx------ "));
        var bad = h.Line("zlogin web chmod u+s /bin/tool");
        var missing = h.Line("zlogin web chmod 644 /nope");
        var ro = h.Line("zlogin web chmod 777 /ro/docs/page");
        using (Assert.EnterMultipleScope())
        {
            Assert.That((bad.ExitCode, bad.Stderr), Is.EqualTo((2, "chmod: ERROR: invalid mode: u+s\n")));
            Assert.That((missing.ExitCode, missing.Stderr), Is.EqualTo((1, "chmod: WARNING: can't access /nope\n")));
            Assert.That((ro.ExitCode, ro.Stderr), Is.EqualTo((1, "chmod: WARNING: can't change /ro/docs/page: Read-only file system\n")));
            Assert.That(h.Ok(A("ls -l /zones/ro/docs/page")), Does.StartWith("-rw-r--r-- "));
        }
    }

    [Test]
    public void A_writer_in_a_zone_meets_its_quota_with_EDQUOT_and_the_zone_goes_on()
    {
        var h = Web();
        h.Ok(A("zfs set quota=8m zones/web"));
        var data = new byte[16 << 20];
        new Random(3).NextBytes(data);
        var r = Dispatcher.Run(h.World, h.Host, A("zlogin web dd of=/big bs=128k"), new MemoryStream(data));
        Assert.That(r.ExitCode, Is.Not.Zero);
        Assert.That(r.Stderr, Does.Contain("Disc quota exceeded"));
        h.Ok(A("zlogin web rm /big"));
        h.WithStdin("small\n", "zlogin", "web", "dd", "of=/small");
        Assert.That(h.Ok(A("zlogin web cat /small")), Is.EqualTo("small\n"));
    }
}
