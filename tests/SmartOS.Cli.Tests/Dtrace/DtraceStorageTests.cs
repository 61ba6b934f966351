namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// The io and zfs providers (storage/StorageProbes.cs) in one `smartos run` scenario: a file of
/// 39600 bytes is written to a mirror, the pool is exported and imported (a cold cache) and the file
/// is read twice, while the Dynamic Tracing Guide's io one-liners and the zfs SDT probes watch.
/// 39600 bytes are 78 sectors, so the file is one data block of 39936 bytes (Pool.cs rule 10).
/// </summary>
public class DtraceStorageTests
{
    private const int FileBlock = 39936;

    private static readonly string s_text = string.Concat(Enumerable.Range(0, 600).Select(i => $"line {i:D5} of the file that dtrace watches being written and read\n"));

    private static readonly Lazy<(int Code, string Out, string Err)> s_run = new(() => DtraceCommandTests.Scenario($$"""
        host h1
        disk d0 64m
        disk d1 64m
        zpool create tank mirror d0 d1
        dtrace -q -n 'io:::start { @[args[1]->dev_statname, args[0]->b_flags & B_READ ? "read" : "write"] = sum(args[0]->b_bcount); }' &
        dtrace -q -n 'io:::start /args[0]->b_flags & B_WRITE/ { @[args[1]->dev_statname, args[0]->b_bcount] = count(); }' &
        dtrace -q -n 'zfs:::txg-synced { printf("%s %d\n", stringof(arg0), arg1); }' &
        dtrace -q -n 'io:::done /args[0]->b_flags & B_READ/ { @["read", args[1]->dev_statname, args[0]->b_bcount] = count(); } zfs:::arc-miss /args[0]->b_size == {{FileBlock}}/ { @["miss", "", 0] = count(); } zfs:::arc-hit /args[0]->b_size == {{FileBlock}}/ { @["hit", "", 0] = count(); }' &
        dtrace -q -n 'io:::start, io:::wait-start, io:::done, io:::wait-done { @[probename, args[2]->fi_pathname] = count(); }' &
        dd of=/tank/f <<EOF
        {{s_text}}EOF
        zpool export tank
        zpool import tank
        digest -a md5 /tank/f
        digest -a md5 /tank/f
        dtrace -l -P io
        dtrace -l -n 'zfs:::'
        vmadm create <<JSON
        { "alias": "z", "brand": "joyent", "max_physical_memory": 128 }
        JSON
        zlogin z dtrace -l -P io
        ! zlogin z dtrace -n 'io:::start'
        sleep 1s
        """));

    private static (int Code, string Out, string Err) Run()
    {
        var run = s_run.Value;
        Assert.That(run.Code, Is.Zero, run.Out + run.Err);
        return run;
    }

    /// <summary>The output of the background dtrace started on the scenario's line.</summary>
    private static string Output(int line)
    {
        string o = Run().Out;
        string mark = $"[background, line {line}] h1# ";
        int at = o.IndexOf(mark, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), o);
        int start = o.IndexOf('\n', at) + 1;
        int end = o.IndexOf("\n[background", start, StringComparison.Ordinal);
        return o[start..(end < 0 ? o.IndexOf("# end of scenario", start, StringComparison.Ordinal) : end + 1)];
    }

    /// <summary>An aggregation's rows, each split on its blanks.</summary>
    private static List<string[]> Rows(int line) =>
        [.. Output(line).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))];

    [Test]
    public void Io_start_sums_bytes_per_vdev_and_both_sides_of_the_mirror_are_written_alike()
    {
        var rows = Rows(5).ToDictionary(r => $"{r[0]} {r[1]}", r => long.Parse(r[2], System.Globalization.CultureInfo.InvariantCulture));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rows["d0 write"], Is.EqualTo(rows["d1 write"]));
            Assert.That(rows["d0 write"], Is.GreaterThan(FileBlock));
            // A mirror's reads go to its first readable side: d1 is never read.
            Assert.That(rows.ContainsKey("d1 read"), Is.False);
            Assert.That(rows["d0 read"], Is.GreaterThanOrEqualTo(FileBlock));
        }
    }

    [Test]
    public void The_files_one_data_block_is_written_once_on_each_side()
    {
        var rows = Rows(6);
        Assert.That(rows.Where(r => r[1] == $"{FileBlock}").Select(r => $"{r[0]} {r[2]}"), Is.EquivalentTo(new[] { "d0 1", "d1 1" }));
        // Every other write is metadata, uberblocks or labels, and the mirror writes each on both sides.
        var d0 = rows.Where(r => r[0] == "d0").Select(r => $"{r[1]} {r[2]}");
        var d1 = rows.Where(r => r[0] == "d1").Select(r => $"{r[1]} {r[2]}");
        Assert.That(d0, Is.EqualTo(d1));
    }

    [Test]
    public void Txg_synced_names_the_pool_and_each_committed_txg_in_order()
    {
        var lines = Output(7).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Is.Not.Empty);
        var txgs = lines.Select(l => l.Split(' ')).ToList();
        Assert.That(txgs.All(t => t[0] == "tank"), Is.True, string.Join("\n", lines));
        var numbers = txgs.Select(t => long.Parse(t[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        for (int i = 1; i < numbers.Count; i++) Assert.That(numbers[i], Is.EqualTo(numbers[i - 1] + 1));
    }

    [Test]
    public void A_cold_read_misses_once_reads_the_block_from_one_side_and_the_second_read_hits()
    {
        var rows = Rows(8).Select(r => string.Join(' ', r)).ToList();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rows, Has.Member("miss 0 1"));
            Assert.That(rows.Any(r => r.StartsWith("hit 0 ", StringComparison.Ordinal)), Is.True, string.Join("\n", rows));
            Assert.That(rows, Has.Member($"read d0 {FileBlock} 1"));
            Assert.That(rows.Any(r => r.StartsWith("read d1 ", StringComparison.Ordinal)), Is.False);
        }
    }

    [Test]
    public void Each_request_fires_start_wait_start_done_and_wait_done_with_no_file()
    {
        var rows = Rows(9);
        Assert.That(rows.Select(r => r[1]).Distinct(), Is.EqualTo(new[] { "<none>" }));
        Assert.That(rows.Select(r => r[0]), Is.EquivalentTo(new[] { "start", "wait-start", "done", "wait-done" }));
        Assert.That(rows.Select(r => r[2]).Distinct().Count(), Is.EqualTo(1), "as many of each");
    }

    [Test]
    public void Dtrace_l_lists_the_io_and_zfs_probes_as_illumos_names_them()
    {
        string o = Run().Out;
        Assert.That(o, Does.Match(@"io +genunix +bdev_strategy start\n +\d+ +io +genunix +biodone done\n +\d+ +io +genunix +biowait wait-start\n +\d+ +io +genunix +biowait wait-done\n"));
        Assert.That(o, Does.Match(@"zfs +zfs +txg_sync_thread txg-syncing\n +\d+ +zfs +zfs +txg_sync_thread txg-synced\n +\d+ +zfs +zfs +arc_read arc-hit\n +\d+ +zfs +zfs +arc_read arc-miss\n"));
    }

    [Test]
    public void A_zones_dtrace_sees_no_io_probe()
    {
        string o = Run().Out;
        Assert.That(o, Does.Contain("h1# zlogin z dtrace -l -P io\n   ID   PROVIDER            MODULE                          FUNCTION NAME\nh1#"));
        Assert.That(o, Does.Contain("dtrace: invalid probe specifier io:::start: probe description io:::start does not match any probes"));
    }
}
