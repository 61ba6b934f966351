using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>zfs(8) on a host whose pool tank is a file under the host's root (Zfs.cs).</summary>
public class ZfsTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zfs-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private static string[] A(string line) => CliHost.Split(line);

    private void Mkfile(string name, long size = 128L << 20)
    {
        using var fs = new FileStream(Path.Combine(_root, name), FileMode.CreateNew);
        fs.SetLength(size);
    }

    /// <summary>A host with pool tank on a 128 MiB file.</summary>
    private CliHost Tank()
    {
        Mkfile("d0");
        var h = new CliHost(store: new FileConfigStore(_root));
        h.Ok(A("zpool create tank d0"));
        return h;
    }

    /// <summary>Everything a refused command must leave as it was: every dataset with its space and properties, and the history.</summary>
    private static string State(CliHost h)
        => h.Ok(A("zfs list -t all -Hp -o name,used,refer,origin,quota,compression")) + h.Ok(A("zpool history tank"));

    private static Pool Pool(CliHost h) => h.Host.Pools.Find("tank")!;

    // ---- list ----

    [Test]
    public void List_prints_name_used_avail_refer_mountpoint_with_sizes_as_zfs_prints_them()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/a"));
        h.Ok(A("zfs create -V 8m tank/vol"));
        Assert.That(h.Ok(A("zfs list")), Is.EqualTo(
            "NAME       USED  AVAIL  REFER  MOUNTPOINT\n" +
            "tank      8.01M  55.7M  3.50K  /tank\n" +   // 3.50K: the mountpoint directory a in tank's file system
            "tank/a    2.50K  55.7M  2.50K  /tank/a\n" +
            "tank/vol     8M  63.7M     1K  -\n"));
        Assert.That(h.Ok(A("zfs list -H -p -o name,used,type tank/a tank/vol")), Is.EqualTo("tank/a\t2560\tfilesystem\ntank/vol\t8388608\tvolume\n"));
    }

    [Test]
    public void List_shows_snapshots_only_with_t_and_honours_r_d_and_sorting()
    {
        var h = Tank();
        h.Ok(A("zfs create -p tank/a/b"));
        h.Ok(A("zfs create tank/c"));
        h.Ok(A("zfs snapshot -r tank@s"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zfs list -H -o name")), Is.EqualTo("tank\ntank/a\ntank/a/b\ntank/c\n"));
            Assert.That(h.Ok(A("zfs list -H -o name -t snapshot")), Is.EqualTo("tank@s\ntank/a@s\ntank/a/b@s\ntank/c@s\n"));
            Assert.That(h.Ok(A("zfs list -H -o name -t all -r tank/a")), Is.EqualTo("tank/a\ntank/a@s\ntank/a/b\ntank/a/b@s\n"));
            Assert.That(h.Ok(A("zfs list -H -o name -d 1 tank")), Is.EqualTo("tank\ntank/a\ntank/c\n"));
            Assert.That(h.Ok(A("zfs list -H -o name tank/a")), Is.EqualTo("tank/a\n"));
            Assert.That(h.Ok(A("zfs list -H -o name tank/a@s")), Is.EqualTo("tank/a@s\n"));
            Assert.That(h.Ok(A("zfs list -H -o name -t snapshot tank/a")), Is.EqualTo("tank/a@s\n"));
            Assert.That(h.Ok(A("zfs list -H -o name -t volume")), Is.Empty);
            Assert.That(h.Ok(A("zfs list -t volume")), Is.EqualTo("no datasets available\n"));
            Assert.That(h.Ok(A("zfs list -H -o name,used -S used -s name")), Is.EqualTo("tank\t12K\ntank/a\t6K\ntank/a/b\t2.50K\ntank/c\t2.50K\n"));
            Assert.That(h.Ok(A("zfs list -H -o name -s used -S name")), Is.EqualTo("tank/c\ntank/a/b\ntank/a\ntank\n"));
            Assert.That(h.Ok(A("zfs list -o space -r tank/a")), Does.StartWith("NAME      AVAIL   USED  USEDSNAP  USEDDS  USEDREFRESERV  USEDCHILD\ntank/a  ").And.Not.Contain("@"));
            Assert.That(h.Ok(A("zfs list -o name,refer,ratio,compress -r tank/a")), Is.EqualTo(
                "NAME      REFER  RATIO  COMPRESS\n" +
                "tank/a    3.50K  1.00x  off\n" +
                "tank/a/b  2.50K  1.00x  off\n"));
        }
    }

    [Test]
    public void List_and_get_refuse_bad_usage_with_exit_2()
    {
        var h = Tank();
        using (Assert.EnterMultipleScope())
        {
            var r = h.Run(A("zfs list -o name,bogus"));
            Assert.That(r.ExitCode, Is.EqualTo(2));
            Assert.That(r.Stderr, Does.StartWith("bad property list: invalid property 'bogus'\nusage:\n\tlist [-Hp]"));
            Assert.That(r.Stderr, Does.Contain("The following properties are supported:"));
            Assert.That(r.Stderr, Does.Contain("\tcompression            YES      YES   on | off | lzjb").And.Contain("\tused                    NO       NO   -\n"));
            Assert.That(h.Run(A("zfs list -t bogus")).Stderr, Does.StartWith("invalid type 'bogus'\nusage:"));
            Assert.That(h.Run(A("zfs list -s bogus")).Stderr, Does.StartWith("invalid property 'bogus'\nusage:"));
            Assert.That(h.Run(A("zfs list -d x")).Stderr, Does.StartWith("x is not an integer\nusage:"));
            Assert.That(h.Run(A("zfs list -d -1")).Stderr, Does.StartWith("Depth can not be negative.\nusage:"));
            Assert.That(h.Run(A("zfs list -Z")).Stderr, Does.StartWith("invalid option 'Z'\nusage:"));
            Assert.That(h.Run(A("zfs get")).Stderr, Does.StartWith("missing property argument\nusage:\n\tget [-rHp]"));
            Assert.That(h.Run(A("zfs get -o bogus used")).Stderr, Does.StartWith("invalid column name 'bogus'\n"));
            Assert.That(h.Run(A("zfs get -s bogus used")).Stderr, Does.StartWith("invalid source 'bogus'\n"));
            Assert.That(h.Run(A("zfs get bogus tank")).ExitCode, Is.EqualTo(2));
            var missing = h.Run(A("zfs list tank/nope tank"));
            Assert.That(missing.ExitCode, Is.EqualTo(1));
            Assert.That(missing.Stderr, Is.EqualTo("cannot open 'tank/nope': dataset does not exist\n"));
            Assert.That(missing.Stdout, Does.Contain("tank "));
        }
    }

    // ---- get ----

    [Test]
    public void Get_prints_name_property_value_source_and_filters_by_source_and_type()
    {
        var h = Tank();
        h.Ok(A("zfs create -o compression=lz4 tank/a"));
        h.Ok(A("zfs create tank/a/b"));
        h.Ok(A("zfs snapshot tank/a@s"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zfs get compression,used tank/a/b")), Is.EqualTo(
                "NAME      PROPERTY     VALUE    SOURCE\n" +
                "tank/a/b  compression  lz4      inherited from tank/a\n" +
                "tank/a/b  used         2K       -\n"));
            Assert.That(h.Ok(A("zfs get -H -p -o value used tank/a/b")), Is.EqualTo("2048\n"));
            Assert.That(h.Ok(A("zfs get -H -o name,value -r compression tank/a")), Is.EqualTo("tank/a\tlz4\ntank/a@s\t-\ntank/a/b\tlz4\n"));
            Assert.That(h.Ok(A("zfs get -H -o name -r -t filesystem compression tank")), Is.EqualTo("tank\ntank/a\ntank/a/b\n"));
            Assert.That(h.Ok(A("zfs get -H -o name,property -s local all")), Is.EqualTo("tank/a\tcompression\n"));
            Assert.That(h.Ok(A("zfs get -H -o property -s none type,compression,atime tank")), Is.EqualTo("type\n"));
            Assert.That(h.Ok(A("zfs get -s temporary all")), Is.Empty);
            Assert.That(h.Ok(A("zfs get -H -o name -d 1 type tank")), Is.EqualTo("tank\ntank/a\n"));
            Assert.That(h.Ok(A("zfs get -H -o all creation tank")), Is.EqualTo("tank\tcreation\tThu Jan  1  0:00 1970\t-\t-\n"));
            Assert.That(h.Ok(A("zfs get -H -p -o value creation tank")), Is.EqualTo("0\n"));
            // `get all` leaves out what does not apply; a property named explicitly shows "-".
            string all = h.Ok(A("zfs get -H -o property all tank/a@s"));
            Assert.That(all, Does.Contain("referenced\n").And.Not.Contain("available").And.Not.Contain("quota"));
            Assert.That(h.Ok(A("zfs get -H -o value,source quota tank/a@s")), Is.EqualTo("-\t-\n"));
        }
    }

    // ---- create ----

    [Test]
    public void Create_makes_filesystems_volumes_and_parents_and_refuses_in_libzfs_words()
    {
        var h = Tank();
        h.Ok(A("zfs create -p -o quota=10m tank/x/y"));
        h.Ok(A("zfs create -s -b 4k -V 1m tank/x/v"));
        Assert.That(h.Ok(A("zfs create -p tank/x/y")), Is.Empty);
        Assert.That(h.Ok(A("zfs get -H -p -o name,value quota,volblocksize,refreservation tank/x/y tank/x/v")), Is.EqualTo(
            "tank/x/v\t-\ntank/x/v\t4096\ntank/x/v\tnone\ntank/x/y\t10485760\ntank/x/y\t-\ntank/x/y\tnone\n"));
        string before = State(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zfs create tank/x/y")).Stderr, Is.EqualTo("cannot create 'tank/x/y': dataset already exists\n"));
            Assert.That(h.Fails(A("zfs create tank/no/such")).Stderr, Is.EqualTo("cannot create 'tank/no/such': parent does not exist\n"));
            Assert.That(h.Fails(A("zfs create pond/a")).Stderr, Is.EqualTo("cannot create 'pond/a': no such pool 'pond'\n"));
            Assert.That(h.Fails(A("zfs create tank/a!")).Stderr, Is.EqualTo("cannot create 'tank/a!': invalid character '!' in name\n"));
            Assert.That(h.Fails(A("zfs create tank/x/v/z")).Stderr, Is.EqualTo("cannot create 'tank/x/v/z': parent is not a filesystem\n"));
            Assert.That(h.Fails(A("zfs create -o compression=bogus tank/c")).Stderr, Does.StartWith("cannot create 'tank/c': 'compression' must be one of"));
            Assert.That(h.Fails(A("zfs create -V 1x tank/v2")).Stderr, Is.EqualTo("bad volume size '1x': invalid numeric suffix 'x'\n"));
            // -p makes the parents, and takes them back when the dataset itself is refused.
            Assert.That(h.Fails(A("zfs create -p -o bogus=1 tank/p/q/r")).Stderr, Is.EqualTo("cannot create 'tank/p/q/r': invalid property 'bogus'\n"));
            var usage = h.Run(A("zfs create -s tank/c"));
            Assert.That(usage.ExitCode, Is.EqualTo(2));
            Assert.That(usage.Stderr, Does.StartWith("'-s' and '-b' can only be used when creating a volume\nusage:\n\tcreate [-p]"));
            Assert.That(h.Run(A("zfs create")).Stderr, Does.StartWith("missing filesystem argument\n"));
            Assert.That(h.Run(A("zfs create -o quota tank/c")).Stderr, Does.StartWith("missing '=' for property=value argument\n"));
            Assert.That(h.Run(A("zfs create -V 1m")).Stderr, Does.StartWith("missing volume argument\n"));
            Assert.That(h.Run(A("zfs create a b")).ExitCode, Is.EqualTo(2));
            Assert.That(State(h), Is.EqualTo(before));
        }
    }

    // ---- destroy ----

    [Test]
    public void Destroy_refuses_children_clones_and_busy_datasets_listing_them_and_changes_nothing()
    {
        var h = Tank();
        h.Ok(A("zfs create -p tank/a/b"));
        h.Ok(A("zfs snapshot tank/a@s"));
        h.Ok(A("zfs clone tank/a@s tank/c"));
        string before = State(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zfs destroy tank/a")).Stderr, Is.EqualTo(
                "cannot destroy 'tank/a': filesystem has children\nuse '-r' to destroy the following datasets:\ntank/a@s\ntank/a/b\n"));
            Assert.That(h.Fails(A("zfs destroy -r tank/a")).Stderr, Is.EqualTo(
                "cannot destroy 'tank/a': filesystem has dependent clones\nuse '-R' to destroy the following datasets:\ntank/c\n"));
            Assert.That(h.Fails(A("zfs destroy tank/a@s")).Stderr, Is.EqualTo(
                "cannot destroy 'tank/a@s': snapshot has dependent clones\nuse '-R' to destroy the following datasets:\ntank/c\n"));
            Assert.That(h.Fails(A("zfs destroy tank")).Stderr, Does.StartWith("cannot destroy 'tank': operation does not apply to pools\n"));
            Assert.That(h.Fails(A("zfs destroy tank/nope")).Stderr, Is.EqualTo("cannot open 'tank/nope': dataset does not exist\n"));
            Assert.That(h.Fails(A("zfs destroy tank/a@nope")).Stderr, Is.EqualTo("could not find any snapshots to destroy; check snapshot names.\n"));
            Assert.That(h.Fails(A("zfs destroy tank/a@s%t")).Stderr, Does.Contain("snapshot ranges and lists are not supported here"));
            Assert.That(h.Ok(A("zfs destroy -nv -R tank/a")), Is.EqualTo(
                "would destroy tank/a/b\nwould destroy tank/c\nwould destroy tank/a@s\nwould destroy tank/a\n"));
            Assert.That(h.Ok(A("zfs destroy -nvp -R tank/a@s")), Is.EqualTo("destroy\ttank/c\ndestroy\ttank/a@s\nreclaim\t0\n"));
            Assert.That(State(h), Is.EqualTo(before));
            Assert.That(Pool(h).Datasets.Hold("tank/c").IsOk, Is.True);
            Assert.That(h.Fails(A("zfs destroy -R tank/a")).Stderr, Is.EqualTo("cannot destroy 'tank/c': dataset is busy\n"));
            Assert.That(State(h), Is.EqualTo(before));
            Assert.That(Pool(h).Datasets.Release("tank/c").IsOk, Is.True);
            Assert.That(h.Run(A("zfs destroy")).ExitCode, Is.EqualTo(2));
        }
        Assert.That(h.Ok(A("zfs destroy -v -R tank/a")), Does.Contain("will destroy tank/c\n"));
        Assert.That(h.Ok(A("zfs list -H -o name -t all")), Is.EqualTo("tank\n"));
        Assert.That(h.Ok(A("zpool history tank")), Does.EndWith("zfs destroy -v -R tank/a\n\n"));
    }

    [Test]
    public void Destroy_r_of_the_pool_takes_everything_below_it()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/a"));
        h.Ok(A("zfs snapshot -r tank@s"));
        Assert.That(h.Ok(A("zfs destroy -rv tank")), Is.EqualTo("will destroy tank/a@s\nwill destroy tank/a\nwill destroy tank@s\n"));
        Assert.That(h.Ok(A("zfs list -H -o name -t all")), Is.EqualTo("tank\n"));
    }

    // ---- snapshot / rollback / clone / promote / rename ----

    [Test]
    public void Snapshot_checks_every_operand_before_taking_any()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/a"));
        h.Ok(A("zfs snap tank/a@one"));
        string before = State(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zfs snapshot tank@new tank/a@one")).Stderr, Is.EqualTo("cannot create snapshot 'tank/a@one': dataset already exists\n"));
            Assert.That(h.Fails(A("zfs snapshot -r tank@one")).Stderr, Is.EqualTo("cannot create snapshot 'tank/a@one': dataset already exists\n"));
            Assert.That(h.Fails(A("zfs snapshot tank/nope@x")).Stderr, Is.EqualTo("cannot create snapshot 'tank/nope@x': dataset does not exist\n"));
            Assert.That(h.Fails(A("zfs snapshot tank/a")).Stderr, Is.EqualTo("cannot create snapshot 'tank/a': missing '@' delimiter in snapshot name\n"));
            Assert.That(h.Fails(A("zfs snapshot -o compression=lz4 tank@x")).Stderr, Is.EqualTo("cannot create snapshot 'tank@x': 'compression' does not apply to datasets of this type\n"));
            Assert.That(h.Run(A("zfs snapshot")).ExitCode, Is.EqualTo(2));
            Assert.That(State(h), Is.EqualTo(before));
        }
        h.Ok(A("zfs snapshot tank@x tank/a@x"));
        Assert.That(h.Ok(A("zfs list -H -o name -t snapshot")), Is.EqualTo("tank@x\ntank/a@one\ntank/a@x\n"));
    }

    [Test]
    public void Rollback_clone_promote_and_rename_work_and_refuse_as_zfs_does()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/a"));
        h.Ok(A("zfs snapshot tank/a@one"));
        h.Ok(A("zfs snapshot tank/a@two"));
        string before = State(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zfs rollback tank/a@one")).Stderr, Is.EqualTo(
                "cannot rollback to 'tank/a@one': more recent snapshots or bookmarks exist\nuse '-r' to force deletion of the following snapshots and bookmarks:\ntank/a@two\n"));
            Assert.That(h.Fails(A("zfs rollback tank/a")).Stderr, Is.EqualTo("cannot open 'tank/a': operation not applicable to datasets of this type\n"));
            Assert.That(h.Fails(A("zfs clone tank/a@nope tank/b")).Stderr, Is.EqualTo("cannot open 'tank/a@nope': dataset does not exist\n"));
            Assert.That(h.Fails(A("zfs clone tank/a@one tank/a")).Stderr, Is.EqualTo("cannot create 'tank/a': dataset already exists\n"));
            Assert.That(h.Fails(A("zfs promote tank/a")).Stderr, Is.EqualTo("cannot promote 'tank/a': not a cloned filesystem\n"));
            Assert.That(h.Fails(A("zfs rename tank/a tank/a/b")).Stderr, Is.EqualTo("cannot rename 'tank/a': New dataset name cannot be a descendant of current dataset name\n"));
            Assert.That(h.Fails(A("zfs rename tank/a@one tank/b@one")).Stderr, Is.EqualTo("cannot rename 'tank/a@one': snapshots must be part of same dataset\n"));
            Assert.That(h.Fails(A("zfs rename tank/a@one two")).Stderr, Is.EqualTo("cannot rename to 'tank/a@two': dataset already exists\n"));
            Assert.That(h.Run(A("zfs rename -r tank/a tank/b")).Stderr, Does.StartWith("source dataset for recursive rename must be a snapshot\nusage:"));
            Assert.That(h.Run(A("zfs rename -rp tank/a@one tank/a@x")).Stderr, Does.StartWith("-p and -r options are mutually exclusive\n"));
            Assert.That(h.Fails(A("zfs clone -p -o bogus=1 tank/a@one tank/p/q")).Stderr, Is.EqualTo("cannot create 'tank/p/q': invalid property 'bogus'\n"));
            Assert.That(State(h), Is.EqualTo(before));
        }
        h.Ok(A("zfs rollback -r tank/a@one"));
        h.Ok(A("zfs clone -p tank/a@one tank/clones/c"));
        Assert.That(h.Ok(A("zfs get -H -o value origin tank/clones/c")), Is.EqualTo("tank/a@one\n"));
        h.Ok(A("zfs promote tank/clones/c"));
        Assert.That(h.Ok(A("zfs get -H -o name,value origin tank/a tank/clones/c")), Is.EqualTo("tank/a\ttank/clones/c@one\ntank/clones/c\t-\n"));
        h.Ok(A("zfs rename -p tank/a tank/old/a"));
        h.Ok(A("zfs snapshot -r tank@snap"));
        h.Ok(A("zfs rename -r tank@snap tank@renamed"));
        h.Ok(A("zfs rename tank/clones/c@one @first"));
        Assert.That(h.Ok(A("zfs list -H -o name -t all")), Is.EqualTo(
            "tank\ntank@renamed\ntank/clones\ntank/clones@renamed\ntank/clones/c\ntank/clones/c@first\ntank/clones/c@renamed\ntank/old\ntank/old@renamed\ntank/old/a\ntank/old/a@renamed\n"));
    }

    // ---- set / inherit ----

    [Test]
    public void Set_and_inherit_change_properties_and_refuse_in_zfs_words()
    {
        var h = Tank();
        h.Ok(A("zfs create -p tank/a/b"));
        h.Ok(A("zfs set compression=lz4 quota=20m tank/a"));
        Assert.That(h.Ok(A("zfs get -H -o name,value,source compression,quota tank/a/b")), Is.EqualTo(
            "tank/a/b\tlz4\tinherited from tank/a\ntank/a/b\tnone\tdefault\n"));
        h.Ok(A("zfs set compression=off tank/a/b"));
        h.Ok(A("zfs inherit -r compression tank/a"));
        Assert.That(h.Ok(A("zfs get -H -o value,source compression tank/a/b")), Is.EqualTo("off\tdefault\n"));
        string before = State(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zfs set used=1 tank/a")).Stderr, Is.EqualTo("cannot set property for 'tank/a': 'used' is readonly\n"));
            Assert.That(h.Fails(A("zfs set bogus=1 tank/a")).Stderr, Is.EqualTo("cannot set property for 'tank/a': invalid property 'bogus'\n"));
            Assert.That(h.Fails(A("zfs set compression=gzip quota=lots tank/a")).Stderr, Is.EqualTo("cannot set property for 'tank/a': bad numeric value 'lots'\n"));
            Assert.That(h.Fails(A("zfs set compression=gzip recordsize=1k tank/a")).Stderr, Does.StartWith("cannot set property for 'tank/a': "));
            Assert.That(h.Fails(A("zfs set quota=1k tank/a")).Stderr, Is.EqualTo("cannot set property for 'tank/a': size is less than current used or reserved space\n"));
            Assert.That(h.Fails(A("zfs set quota=1g tank/nope")).Stderr, Is.EqualTo("cannot open 'tank/nope': dataset does not exist\n"));
            Assert.That(h.Run(A("zfs set quota=1g")).Stderr, Does.StartWith("missing dataset name(s)\nusage:\n\tset"));
            Assert.That(h.Run(A("zfs set tank/a")).Stderr, Does.StartWith("missing property=value argument(s)\n"));
            Assert.That(h.Fails(A("zfs inherit quota tank/a")).Stderr, Is.EqualTo("'quota' property cannot be inherited\nuse 'zfs set quota=none' to clear\n"));
            Assert.That(h.Fails(A("zfs inherit used tank/a")).Stderr, Is.EqualTo("used property is read-only\n"));
            Assert.That(h.Run(A("zfs inherit bogus tank/a")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Fails(A("zfs inherit -S compression tank/a")).Stderr, Does.Contain("-S is not supported here"));
            Assert.That(State(h), Is.EqualTo(before));
        }
    }

    // ---- the command as a whole ----

    [Test]
    public void Each_change_is_logged_in_the_pool_history_and_reads_do_not_log()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/a"));
        h.Ok(A("zfs list"));
        h.Ok(A("zfs snapshot tank/a@s"));
        h.Ok(A("zfs get all tank/a"));
        h.Ok(A("zfs destroy -n tank/a@s"));
        h.Fails(A("zfs create tank/a"));
        h.Ok(A("zfs set compression=lz4 tank/a"));
        Assert.That(h.Ok(A("zpool history tank")), Is.EqualTo(
            "History for 'tank':\n" +
            "1970-01-01.00:00:00 zpool create tank d0\n" +
            "1970-01-01.00:00:00 zfs create tank/a\n" +
            "1970-01-01.00:00:00 zfs snapshot tank/a@s\n" +
            "1970-01-01.00:00:00 zfs set compression=lz4 tank/a\n\n"));
    }

    [Test]
    public void An_unknown_or_missing_subcommand_gets_the_whole_usage_and_exit_2()
    {
        var h = Tank();
        var r = h.Run(A("zfs share tank"));
        Assert.That(r.ExitCode, Is.EqualTo(2));
        Assert.That(r.Stderr, Does.StartWith("unrecognized command 'share'\nusage: zfs command args ...\nwhere 'command' is one of the following:\n\n\tcreate [-p]"));
        Assert.That(r.Stderr, Does.EndWith("For the delegated permission list, run: zfs allow|unallow\n"));
        Assert.That(h.Run(A("zfs")).Stderr, Does.StartWith("missing command\nusage: zfs command args ...\n"));
    }

    [Test]
    public void A_non_global_zone_sees_no_dataset()
    {
        var h = Tank();
        h.Ok(A("zfs create tank/a"));
        h.Ok("zonecfg", "-z", "web", "create; set zonepath=/zones/web");
        h.Ok(A("zoneadm -z web install"));
        h.Ok(A("zoneadm -z web boot"));
        string before = State(h);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Ok(A("zlogin web zfs list")), Is.EqualTo("no datasets available\n"));
            Assert.That(h.Ok(A("zlogin web zfs get all")), Is.Empty);
            Assert.That(h.Fails(A("zlogin web zfs list tank")).Stderr, Is.EqualTo("cannot open 'tank': dataset does not exist\n"));
            Assert.That(h.Fails(A("zlogin web zfs get used tank/a")).Stderr, Is.EqualTo("cannot open 'tank/a': dataset does not exist\n"));
            Assert.That(h.Fails(A("zlogin web zfs destroy tank/a")).Stderr, Is.EqualTo("cannot open 'tank/a': dataset does not exist\n"));
            Assert.That(h.Fails(A("zlogin web zfs snapshot tank/a@s")).Stderr, Is.EqualTo("cannot create snapshot 'tank/a@s': dataset does not exist\n"));
            Assert.That(h.Fails(A("zlogin web zfs set quota=1g tank/a")).Stderr, Is.EqualTo("cannot open 'tank/a': dataset does not exist\n"));
            Assert.That(h.Fails(A("zlogin web zfs create tank/b")).Stderr, Is.EqualTo("cannot create 'tank/b': no such pool 'tank'\n"));
            Assert.That(State(h), Is.EqualTo(before));
        }
    }

    // ---- zpool create -O ----

    [Test]
    public void Zpool_create_O_sets_the_root_dataset_properties_and_a_bad_one_creates_nothing()
    {
        Mkfile("d0");
        Mkfile("d1");
        var h = new CliHost(store: new FileConfigStore(_root));
        h.Ok(A("zpool create -O compression=lz4 -O quota=50m tank d0"));
        Assert.That(h.Ok(A("zfs get -H -o property,value,source compression,quota tank")), Is.EqualTo("compression\tlz4\tlocal\nquota\t50M\tlocal\n"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zpool create -O bogus=1 pond d1")).Stderr, Is.EqualTo("cannot create 'pond': invalid property 'bogus'\n"));
            Assert.That(h.Fails(A("zpool create -O compression=nope pond d1")).Stderr, Does.StartWith("cannot create 'pond': 'compression' must be one of"));
            Assert.That(h.Fails(A("zpool create -O used=1 pond d1")).Stderr, Is.EqualTo("cannot create 'pond': 'used' is readonly\n"));
            Assert.That(h.Fails(A("zpool create -O reservation=1g pond d1")).Stderr, Is.EqualTo("cannot create 'pond': size is greater than available space\n"));
            Assert.That(h.Run(A("zpool create -O quota pond d1")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Ok(A("zpool list -H -o name")), Is.EqualTo("tank\n"));
            Assert.That(Storage.Pool.Import(_root).Pools.Where(p => !p.Config.Exported).Select(p => p.Name), Is.EqualTo(new[] { "tank" }));
        }
    }
}
