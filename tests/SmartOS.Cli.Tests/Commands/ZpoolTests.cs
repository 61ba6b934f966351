using SmartOS.Kernel;
using SmartOS.Storage;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>zpool(8) on a host with a root directory: vdev files resolve under the root (Zpool.cs rule 1).</summary>
public class ZpoolTests
{
    private string _root = "";

    [SetUp]
    public void MakeRoot() => _root = Directory.CreateTempSubdirectory("smartos-zpool-").FullName;

    [TearDown]
    public void RemoveRoot() => Directory.Delete(_root, recursive: true);

    private CliHost Boot() => new(store: new FileConfigStore(_root));

    private static string[] A(string line) => CliHost.Split(line);

    /// <summary>mkfile -n: a sparse file under the root.</summary>
    private string Mkfile(string name, long size = Pool.MinVdevSize)
    {
        string path = Path.Combine(_root, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var fs = new FileStream(path, FileMode.CreateNew);
        fs.SetLength(size);
        return path;
    }

    private CliHost Mirror()
    {
        Mkfile("a"); Mkfile("b");
        var h = Boot();
        h.Ok(A("zpool create tank mirror a b"));
        return h;
    }

    [Test]
    public void Create_then_list_prints_illumos_columns()
    {
        var h = Mirror();
        Assert.That(h.Ok(A("zpool list")), Is.EqualTo(
            "NAME   SIZE  ALLOC   FREE  CKPOINT  EXPANDSZ   FRAG    CAP  DEDUP  HEALTH  ALTROOT\n" +
            "tank  63.5M  4.50K  63.5M        -         -      -     0%  1.00x  ONLINE  -\n"));
        Assert.That(h.Ok(A("zpool list -H -p -o name,size,cap,health")), Is.EqualTo("tank\t66584576\t0\tONLINE\n"));
    }

    [Test]
    public void Status_of_a_mirror_prints_the_config_table()
    {
        var h = Mirror();
        Assert.That(h.Ok(A("zpool status tank")), Is.EqualTo(
            "  pool: tank\n" +
            " state: ONLINE\n" +
            "  scan: none requested\n" +
            "config:\n\n" +
            "\tNAME        STATE     READ WRITE CKSUM\n" +
            "\ttank        ONLINE       0     0     0\n" +
            "\t  mirror-0  ONLINE       0     0     0\n" +
            "\t    a       ONLINE       0     0     0\n" +
            "\t    b       ONLINE       0     0     0\n" +
            "\nerrors: No known data errors\n"));
        Assert.That(h.Ok(A("zpool status -x")), Is.EqualTo("all pools are healthy\n"));
    }

    [Test]
    public void Scrub_result_shows_on_the_scan_line()
    {
        var h = Mirror();
        h.Ok(A("zpool scrub tank"));
        Assert.That(h.Ok(A("zpool status tank")), Does.Contain("  scan: scrub repaired 0 in 0 days 00:00:00 with 0 errors on Thu Jan  1 00:00:00 1970\n"));
        var r = h.Fails(A("zpool scrub -s tank"));
        Assert.That(r.Stderr, Is.EqualTo("cannot cancel scrubbing tank: there is no active scrub\n"));
    }

    [Test]
    public void The_pool_is_imported_again_by_the_next_boot_of_the_host()
    {
        Mirror();
        var again = Boot();
        Assert.That(again.Ok(A("zpool list -H -o name,health")), Is.EqualTo("tank\tONLINE\n"));
    }

    [Test]
    public void Bad_input_gets_illumos_wording_a_failure_status_and_changes_nothing()
    {
        Mkfile("a"); Mkfile("b"); Mkfile("small", 32L << 20);
        var h = Boot();
        h.Ok(A("zpool create tank a"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h.Fails(A("zpool status nope")).Stderr, Is.EqualTo("cannot open 'nope': no such pool\n"));
            Assert.That(h.Fails(A("zpool destroy nope")).Stderr, Is.EqualTo("cannot open 'nope': no such pool\n"));
            Assert.That(h.Fails(A("zpool create 1x b")).Stderr, Is.EqualTo("cannot create '1x': name must begin with a letter\n"));
            Assert.That(h.Fails(A("zpool create mirror1 b")).Stderr, Is.EqualTo("cannot create 'mirror1': name is reserved\n"));
            Assert.That(h.Fails(A("zpool create x/y b")).Stderr, Is.EqualTo("cannot create 'x/y': invalid character '/' in pool name\n"));
            Assert.That(h.Fails(A("zpool create sm small")).Stderr, Is.EqualTo("cannot create 'sm': one or more devices is less than the minimum size (64M)\n"));
            Assert.That(h.Fails(A("zpool create t2 nofile")).Stderr, Is.EqualTo($"cannot open '{Path.Combine(_root, "nofile")}': No such file or directory\n"));
            Assert.That(h.Fails(A("zpool create t2 a")).Stderr, Is.EqualTo($"invalid vdev specification\nthe following errors must be manually repaired:\n{Path.Combine(_root, "a")} is part of active pool 'tank'\n"));
            Assert.That(h.Fails(A("zpool create tank b")).Stderr, Is.EqualTo("cannot create 'tank': pool already exists\n"));
            Assert.That(h.Fails(A("zpool create t2 mirror b")).Stderr, Is.EqualTo("invalid vdev specification: mirror requires at least 2 devices\n"));
            Assert.That(h.Fails(A("zpool create -O bogus=1 t2 b")).Stderr, Is.EqualTo("cannot create 't2': invalid property 'bogus'\n"));
            Assert.That(h.Fails(A("zpool create -o cachefile=none t2 b")).Stderr, Does.Contain("'cachefile' is not supported here"));
            Assert.That(h.Fails(A("zpool list -o name,bogus")).Stderr, Does.StartWith("property 'bogus' is not a valid pool property\n"));
            Assert.That(h.Fails(A("zpool get bogus tank")).Stderr, Does.StartWith("bad property list: invalid property 'bogus'\n"));
            Assert.That(h.Fails(A("zpool set size=1G tank")).Stderr, Is.EqualTo("cannot set property for 'tank': 'size' is readonly\n"));
            Assert.That(h.Fails(A("zpool set bogus=1 tank")).Stderr, Is.EqualTo("cannot set property for 'tank': invalid property 'bogus'\n"));
            Assert.That(h.Fails(A("zpool set autoexpand=on tank")).Stderr, Does.Contain("'autoexpand' is not supported here"));
            Assert.That(h.Fails(A("zpool set comment=" + new string('x', 33) + " tank")).Stderr, Is.EqualTo("cannot set property for 'tank': comment must not exceed 32 characters\n"));
            Assert.That(h.Run(A("zpool frobnicate")).ExitCode, Is.EqualTo(2));
            Assert.That(h.Ok(A("zpool list -H -o name")), Is.EqualTo("tank\n"));
            Assert.That(new FileInfo(Path.Combine(_root, "b")).Length, Is.EqualTo(Pool.MinVdevSize));
            Assert.That(Pool.Import(_root).Pools.Select(p => p.Name), Is.EqualTo(new[] { "tank" }));
        }
    }

    [Test]
    public void Get_prints_values_with_their_source_and_set_changes_the_comment()
    {
        var h = Mirror();
        h.Ok(A("zpool set comment=lab tank"));
        Assert.That(h.Ok(A("zpool get size,capacity,health,comment,cachefile tank")), Is.EqualTo(
            "NAME  PROPERTY   VALUE   SOURCE\n" +
            "tank  size       63.5M   -\n" +
            "tank  capacity   0%      -\n" +
            "tank  health     ONLINE  -\n" +
            "tank  comment    lab     local\n" +
            "tank  cachefile  -       default\n"));
        string guid = h.Ok(A("zpool get -H -o value guid tank")).Trim();
        Assert.That(guid, Is.EqualTo(h.Host.Pools.Find("tank")!.Guid.ToString()));
        Assert.That(Boot().Ok(A("zpool get -H -o value comment tank")), Is.EqualTo("lab\n"));
    }

    [Test]
    public void Export_then_import_lists_the_candidate_and_imports_it_by_name()
    {
        var h = Mirror();
        h.Ok(A("zpool export tank"));
        Assert.That(h.Ok(A("zpool list")), Is.EqualTo("no pools available\n"));
        string id = Pool.Import(_root).Pools[0].Guid.ToString();
        Assert.That(h.Ok(A("zpool import")), Is.EqualTo(
            "   pool: tank\n" +
            $"     id: {id}\n" +
            "  state: ONLINE\n" +
            " action: The pool can be imported using its name or numeric identifier.\n" +
            " config:\n\n" +
            "\ttank        ONLINE\n" +
            "\t  mirror-0  ONLINE\n" +
            "\t    a       ONLINE\n" +
            "\t    b       ONLINE\n"));
        Assert.That(h.Fails(A("zpool import nope")).Stderr, Is.EqualTo("cannot import 'nope': no such pool available\n"));
        h.Ok(A("zpool import " + id));
        Assert.That(h.Ok(A("zpool list -H -o name,health")), Is.EqualTo("tank\tONLINE\n"));
        Assert.That(h.Fails(A("zpool import tank")).Stderr, Does.StartWith("cannot import 'tank': a pool with that name is already created/imported,"));
    }

    [Test]
    public void Files_of_an_exported_pool_need_f_to_be_used_by_a_new_one()
    {
        var h = Mirror();
        h.Ok(A("zpool export tank"));
        var r = h.Fails(A("zpool create other a"));
        Assert.That(r.Stderr, Is.EqualTo($"invalid vdev specification\nuse '-f' to override the following errors:\n{Path.Combine(_root, "a")} is part of exported pool 'tank'\n"));
        h.Ok(A("zpool create -f other a"));
        Assert.That(h.Ok(A("zpool list -H -o name")), Is.EqualTo("other\n"));
    }

    [Test]
    public void Offline_degrades_the_pool_and_online_resilvers_it()
    {
        var h = Mirror();
        h.Ok(A("zpool offline tank b"));
        Assert.That(h.Ok(A("zpool status tank")), Is.EqualTo(
            "  pool: tank\n" +
            " state: DEGRADED\n" +
            "status: One or more devices has been taken offline by the administrator.\n" +
            "\tSufficient replicas exist for the pool to continue functioning in a\n" +
            "\tdegraded state.\n" +
            "action: Online the device using 'zpool online' or replace the device with\n" +
            "\t'zpool replace'.\n" +
            "  scan: none requested\n" +
            "config:\n\n" +
            "\tNAME        STATE     READ WRITE CKSUM\n" +
            "\ttank        DEGRADED     0     0     0\n" +
            "\t  mirror-0  DEGRADED     0     0     0\n" +
            "\t    a       ONLINE       0     0     0\n" +
            "\t    b       OFFLINE      0     0     0\n" +
            "\nerrors: No known data errors\n"));
        Assert.That(h.Fails(A("zpool offline tank a")).Stderr, Is.EqualTo("cannot offline a: no valid replicas\n"));
        Assert.That(h.Fails(A("zpool offline tank zz")).Stderr, Is.EqualTo("cannot offline zz: no such device in pool\n"));
        h.Ok(A("zpool online tank b"));
        string status = h.Ok(A("zpool status tank"));
        Assert.That(status, Does.Contain(" state: ONLINE\n").And.Contain("  scan: resilvered "));
    }

    [Test]
    public void Attach_detach_and_replace_change_the_config_and_keep_the_pool_online()
    {
        Mkfile("a"); Mkfile("b"); Mkfile("c");
        var h = Boot();
        h.Ok(A("zpool create tank a"));
        h.Ok(A("zpool attach tank a b"));
        Assert.That(h.Ok(A("zpool status tank")), Does.Contain("\t  mirror-0  ONLINE       0     0     0\n\t    a       ONLINE").And.Contain("\t    b       ONLINE"));
        h.Ok(A("zpool replace tank a c"));
        Assert.That(h.Ok(A("zpool status tank")), Does.Contain("\t    c       ONLINE       0     0     0\n\t    b       ONLINE"));
        h.Ok(A("zpool detach tank b"));
        Assert.That(h.Ok(A("zpool status tank")), Does.Contain("\ttank        ONLINE       0     0     0\n\t  c         ONLINE       0     0     0\n"));
        Assert.That(h.Fails(A("zpool detach tank c")).Stderr, Is.EqualTo("cannot detach c: only applicable to mirror and replacing vdevs\n"));
        Assert.That(h.Fails(A("zpool attach tank c zz")).Stderr, Is.EqualTo($"cannot open '{Path.Combine(_root, "zz")}': No such file or directory\n"));
        // The layout survives the next boot, from the labels.
        Assert.That(Boot().Ok(A("zpool list -H -o name,health")), Is.EqualTo("tank\tONLINE\n"));
    }

    [Test]
    public void A_mirror_with_a_missing_file_is_listed_and_imported_degraded()
    {
        var h = Mirror();
        h.Ok(A("zpool export tank"));
        File.Delete(Path.Combine(_root, "b"));
        string list = h.Ok(A("zpool import"));
        Assert.That(list, Does.Contain("  state: DEGRADED\n status: One or more devices are missing from the system.\n")
                              .And.Contain("\t    b       UNAVAIL  cannot open\n"));
        h.Ok(A("zpool import tank"));
        Assert.That(h.Ok(A("zpool status tank")), Does.Contain(" state: DEGRADED\n").And.Contain("\t    b       UNAVAIL      0     0     0  cannot open\n"));
        Mkfile("b");
        h.Ok(A("zpool online tank b"));
        Assert.That(h.Ok(A("zpool list -H -o health tank")), Is.EqualTo("ONLINE\n"));
    }

    [Test]
    public void A_cached_pool_whose_files_are_gone_is_reported_and_leaves_the_cache_on_export()
    {
        Mkfile("a");
        Boot().Ok(A("zpool create tank a"));
        File.Delete(Path.Combine(_root, "a"));
        var h = Boot();
        var list = h.Run(A("zpool list"));
        Assert.That(list.Stdout, Is.EqualTo("no pools available\n"));
        Assert.That(list.Stderr, Does.StartWith("zpool: zpool.cache: pool 'tank': "));
        Mkfile("b");
        Assert.That(h.Fails(A("zpool create tank b")).Stderr, Is.EqualTo("cannot create 'tank': pool already exists\n"));
        h.Ok(A("zpool export tank"));
        Assert.That(Boot().Run(A("zpool list")).Stderr, Is.Empty);
    }

    [Test]
    public void History_lists_the_commands_with_host_clock_times()
    {
        var h = Mirror();
        h.World.Scheduler.RunFor(90 * Time.Second);
        h.Ok(A("zpool scrub tank"));
        Assert.That(h.Ok(A("zpool history tank")), Is.EqualTo(
            "History for 'tank':\n" +
            "1970-01-01.00:00:00 zpool create tank mirror a b\n" +
            "1970-01-01.00:01:30 zpool scrub tank\n\n"));
        Assert.That(h.Ok(A("zpool history -il tank")), Does.Contain("[internal scan done txg:").And.Contain(" [user 0 (root) on h1:global]"));
    }

    [Test]
    public void Iostat_prints_one_report_and_destroy_removes_the_pool()
    {
        var h = Mirror();
        string io = h.Ok(A("zpool iostat -v tank"));
        Assert.That(io, Does.StartWith(
            "               capacity     operations    bandwidth\n" +
            "pool        alloc   free   read  write   read  write\n" +
            "----------  -----  -----  -----  -----  -----  -----\n" +
            "tank  "));
        Assert.That(io, Does.Contain("\n  mirror-0 ").And.Contain("\n    a           -      -  "));
        // An interval and a count: reports over each interval of the host's clock.
        string twice = h.Ok(A("zpool iostat tank 5 2"));
        Assert.That(twice.Split("pool        alloc").Length - 1, Is.EqualTo(2));
        Assert.That(h.World.Scheduler.Now, Is.GreaterThanOrEqualTo(5 * Time.Second));
        h.Ok(A("zpool destroy tank"));
        Assert.That(h.Ok(A("zpool list")), Is.EqualTo("no pools available\n"));
        Assert.That(Pool.Import(_root).Pools, Is.Empty);
        Assert.That(Boot().Ok(A("zpool list")), Is.EqualTo("no pools available\n"));
    }

    /// <summary>Writes an object of data through the engine (no datasets yet) and returns where its first block is in the file.</summary>
    private static (long Id, long FileOffset) WriteObject(Pool pool, byte[] data)
    {
        Assert.That(pool.Objects.Create(out long id).IsOk, Is.True);
        Assert.That(pool.Objects.Write(id, 0, data).IsOk, Is.True);
        Assert.That(pool.Commit().IsOk, Is.True);
        Assert.That(pool.Objects.Locate(id, 0, out var bp).IsOk, Is.True);
        return (id, VdevLabel.LabelSize + bp.GetDva(0).Offset);
    }

    private void Corrupt(string file, long offset)
    {
        using var fs = new FileStream(Path.Combine(_root, file), FileMode.Open, FileAccess.Write);
        fs.Position = offset;
        fs.Write(new byte[4096].Select(_ => (byte)0x5a).ToArray());
    }

    [Test]
    public void A_scrub_repairs_a_damaged_mirror_side_and_status_counts_it()
    {
        var h = Mirror();
        var data = new byte[128 * 1024];
        new HostRandom(3).NextBytes(data);
        var (_, offset) = WriteObject(h.Host.Pools.Find("tank")!, data);
        Corrupt("a", offset);
        h.Ok(A("zpool scrub tank"));
        string status = h.Ok(A("zpool status tank"));
        Assert.That(status, Does.Contain(
            "status: One or more devices has experienced an unrecoverable error.  An\n" +
            "\tattempt was made to correct the error.  Applications are unaffected.\n" +
            "action: Determine if the device needs to be replaced, and clear the errors\n" +
            "\tusing 'zpool clear' or replace the device with 'zpool replace'.\n" +
            "   see: http://illumos.org/msg/ZFS-8000-9P\n" +
            "  scan: scrub repaired 128K in 0 days 00:00:00 with 0 errors on Thu Jan  1 00:00:00 1970\n"));
        Assert.That(status, Does.Contain("\t    a       ONLINE       0     0     1\n"));
        h.Ok(A("zpool clear tank"));
        Assert.That(h.Ok(A("zpool status -x")), Is.EqualTo("all pools are healthy\n"));
    }

    [Test]
    public void Status_v_names_an_object_that_no_copy_could_repair()
    {
        Mkfile("a");
        var h = Boot();
        h.Ok(A("zpool create tank a"));
        var pool = h.Host.Pools.Find("tank")!;
        var data = new byte[64 * 1024];
        new HostRandom(4).NextBytes(data);
        var (id, offset) = WriteObject(pool, data);
        Corrupt("a", offset);
        // The block cache still holds the block as written (as the ARC would): reopen to read the disk.
        h.Ok(A("zpool export tank"));
        h.Ok(A("zpool import tank"));
        pool = h.Host.Pools.Find("tank")!;
        Assert.That(pool.Objects.Read(id, 0, new byte[data.Length], out _).Status, Is.EqualTo(StorageStatus.ChecksumError));
        string status = h.Ok(A("zpool status tank"));
        Assert.That(status, Does.Contain(" state: ONLINE\nstatus: One or more devices has experienced an error resulting in data\n")
                                .And.EndWith("errors: 1 data errors, use '-v' for a list\n"));
        Assert.That(h.Ok(A("zpool status -v tank")), Does.EndWith(
            $"errors: Permanent errors have been detected in the following files:\n\n        <metadata>:<0x{id:x}>\n"));
    }

    [Test]
    public void Create_n_prints_the_layout_and_creates_nothing()
    {
        Mkfile("a"); Mkfile("b"); Mkfile("c");
        var h = Boot();
        Assert.That(h.Ok(A("zpool create -n tank raidz a b c")), Is.EqualTo(
            "would create 'tank' with the following layout:\n\n\ttank\n\t  raidz1\n\t    a\n\t    b\n\t    c\n"));
        Assert.That(h.Ok(A("zpool list")), Is.EqualTo("no pools available\n"));
    }
}
