using SmartOS.Cli.Tests.Commands;
using SmartOS.Kernel.Trace;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// Programs as processes (kernel/Trace/TraceProcess.cs): execname, pid, ppid, uid, gid, tid,
/// curthread, curpsinfo and curlwpsinfo in a program's context and in the kernel's; proc:::create's
/// psinfo_t; the sched provider's on-cpu and off-cpu (kernel/Trace/SchedProbes.cs).
/// </summary>
public class DtraceProcessTests
{
    private const string A = "cc741433-1d1a-48c8-a8c9-ab064ae789a4";


    private static string Begin(string format, string args)
    {
        var h = CliHost.TwoVnicsOnAStub();
        var r = h.Run("dtrace", "-q", "-n", $"BEGIN {{ printf(\"{format}\", {args}); exit(0); }}");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stdout;
    }

    [Test]
    public void In_BEGIN_the_process_is_dtrace_itself_as_on_illumos()
    {
        // BEGIN fires in the dtrace command's own process; the front end started it, so it has no
        // parent program (ppid 0), and it runs as root in the global zone.
        string o = Begin("%s %d %d %d %d %d %s %d\\n", "execname, pid >= 100, ppid, uid, gid, tid, zonename, curpsinfo->pr_zoneid");
        Assert.That(o, Is.EqualTo("dtrace 1 0 0 0 1 global 0\n\n"));
    }

    [Test]
    public void Each_program_gets_the_next_pid_of_its_host()
    {
        var h = CliHost.TwoVnicsOnAStub();
        string first = h.Ok("dtrace", "-q", "-n", "BEGIN { printf(\"%d\", pid); exit(0); }");
        string second = h.Ok("dtrace", "-q", "-n", "BEGIN { printf(\"%d\", pid); exit(0); }");
        Assert.That(int.Parse(second.Trim(), System.Globalization.CultureInfo.InvariantCulture),
            Is.EqualTo(int.Parse(first.Trim(), System.Globalization.CultureInfo.InvariantCulture) + 1));
    }

    [Test]
    public void Curpsinfo_holds_the_command_line_cut_as_illumos_cuts_it()
    {
        string o = Begin("%s|%s|%d|%d|%d|%d|%d\\n",
            "curpsinfo->pr_fname, curpsinfo->pr_psargs, curpsinfo->pr_argc, curpsinfo->pr_pid == pid, curpsinfo->pr_nlwp, curpsinfo->pr_dmodel, curpsinfo->pr_addr != 0");
        // pr_psargs holds at most PRARGSZ - 1 (79) characters of the command line.
        string full = "dtrace -q -n BEGIN { printf(\"%s|%s|%d|%d|%d|%d|%d\\n\", curpsinfo->pr_fname, curpsinfo->pr_psargs";
        Assert.That(o, Is.EqualTo($"dtrace|{full[..79]}|4|1|1|2|1\n\n"));
    }

    [Test]
    public void Curlwpsinfo_and_curthread_describe_the_program_s_one_thread_on_cpu_0()
    {
        string o = Begin("%d %d %c %d %s %d\\n", "curlwpsinfo->pr_lwpid, curlwpsinfo->pr_state, curlwpsinfo->pr_sname, curlwpsinfo->pr_onpro, curlwpsinfo->pr_clname, curthread == curlwpsinfo->pr_addr && curthread != 0");
        Assert.That(o, Is.EqualTo("1 6 O 0 TS 1\n\n"));
    }

    [Test]
    public void A_long_command_name_is_cut_to_15_characters()
    {
        var p = new TraceProcess(100, 0, "global", 0, "abcdefghijklmnopqrstuvwxyz", ["abcdefghijklmnopqrstuvwxyz"], null);
        Assert.That(p.Fname, Is.EqualTo("abcdefghijklmno"));
    }

    [Test]
    public void Firings_in_a_program_name_it_and_its_zone_kernel_work_is_sched_with_pid_0()
    {
        var (code, o, e) = DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
            dtrace -q -n 'ip:::send { @[execname, pid == 0, zonename, curpsinfo->pr_zoneid != 0] = count(); }' &
            zlogin b httpd -p 443 &
            zlogin a curl -s -o /dev/null http://10.0.0.2:443/
            """);
        Assert.That(code, Is.Zero, o + e);
        const string B = "8e41b0c2-4281-4ddb-9776-4d757ce2d3d8";
        string Row(string exec, int kernel, string zone, int zoned) => $@"\n  {exec} +{kernel}  {zone} +{zoned} +[1-9]\d*\n";
        using (Assert.EnterMultipleScope())
        {
            // curl's sends are made by curl in zone a; httpd's by httpd in b; the segments TCP sends
            // when one arrives off the wire (an ACK, the reply to a FIN) are the kernel's (sched,
            // pid 0, the global zone in curpsinfo, the stack's zone in zonename).
            Assert.That(o, Does.Match(Row("curl", 0, A, 1)));
            Assert.That(o, Does.Match(Row("httpd", 0, B, 1)));
            Assert.That(o, Does.Match(Row("sched", 1, A, 0)));
            Assert.That(o, Does.Match(Row("sched", 1, B, 0)));
            Assert.That(o, Does.Not.Match(@"\n  (curl|httpd) +1 "));
        }
    }

    [Test]
    public void Proc_create_fires_in_the_parent_with_the_child_s_psinfo()
    {
        var (code, o, e) = DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
            dtrace -q -n 'proc:::create { printf("%s %d -> %s %d %d %d [%s]\n", execname, pid == 0, args[0]->pr_fname, args[0]->pr_ppid == pid, args[0]->pr_pid > pid, args[0]->pr_zoneid, args[0]->pr_psargs); } proc:::exec-success /zonename != "global"/ { printf("%s in %s: zoneid %d, parent %d\n", execname, zonename, curpsinfo->pr_zoneid, ppid > 0); }' &
            zlogin a ping -s 10.0.0.2 56 1
            """);
        Assert.That(code, Is.Zero, o + e);
        using (Assert.EnterMultipleScope())
        {
            // The scenario line's zlogin is started by the kernel (its ppid is 0, sched's pid); zlogin starts ping in zone a (zoneid 1).
            Assert.That(o, Does.Contain("sched 1 -> zlogin 1 1 0 [zlogin a ping -s 10.0.0.2 56 1]\n"));
            Assert.That(o, Does.Contain("zlogin 0 -> ping 1 1 1 [ping -s 10.0.0.2 56 1]\n"));
            Assert.That(o, Does.Contain($"ping in {A}: zoneid 1, parent 1\n"));
        }
    }

    [Test]
    public void Dash_l_lists_the_sched_and_proc_probes_under_illumos_s_modules_and_functions()
    {
        var h = CliHost.TwoVnicsOnAStub();
        string Row(Probe p) => $"{p.Id,5} {p.Provider,10} {p.Module,17} {p.Function,33} {p.Name}\n";
        var sched = h.Host.Mac.Probes.All.Where(p => p.Provider == "sched").ToList();
        Assert.That(sched.Select(p => $"{p.Module}:{p.Function}:{p.Name}"), Is.EqualTo(new[] { "unix:resume:on-cpu", "unix:resume:off-cpu" }));
        Assert.That(h.Ok("dtrace", "-l", "-P", "sched"), Is.EqualTo("   ID   PROVIDER            MODULE                          FUNCTION NAME\n" + string.Concat(sched.Select(Row))));
        h.Ok("dtrace", "-q", "-n", "BEGIN { exit(0); }"); // a program has run: the proc probes exist
        Assert.That(h.Ok("dtrace", "-l", "-n", "proc:::create"), Does.EndWith(" proc           genunix                             cfork create\n"));
    }

    [Test]
    public void Sched_on_cpu_counts_the_turns_of_each_program_and_of_the_kernel()
    {
        var (code, o, e) = DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
            dtrace -q -n 'sched:::on-cpu { @[execname] = count(); }' &
            zlogin a ping -s 10.0.0.2 56 3
            zlogin b httpd -p 443 &
            zlogin a curl -s -o /dev/null http://10.0.0.2:443/
            """);
        Assert.That(code, Is.Zero, o + e);
        var counts = System.Text.RegularExpressions.Regex.Matches(o, @"\n  (\S+) +(\d+)(?=\n)")
            .ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(counts.Keys, Is.SupersetOf(new[] { "sched", "zlogin", "ping", "curl", "httpd", "dtrace" }));
            // ping's three requests a second apart: it starts, and resumes after each reply and wait.
            Assert.That(counts["ping"], Is.GreaterThanOrEqualTo(4));
            // Every program's turn ends with the CPU back in the kernel or idle: the kernel runs
            // timers and frames of its own far more often than programs resume.
            Assert.That(counts["sched"], Is.GreaterThan(counts["ping"]));
        }
    }

    [Test]
    public void Off_cpu_names_the_thread_that_comes_next_and_pairs_with_on_cpu()
    {
        var (code, o, e) = DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
            dtrace -q -n 'sched:::on-cpu /execname == "ping"/ { self->on = timestamp + 1; @on = count(); } sched:::off-cpu /execname == "ping" && self->on/ { @off = count(); @next[args[1]->pr_fname, args[0]->pr_lwpid] = count(); self->on = 0; }' &
            zlogin a ping -s 10.0.0.2 56 2
            """);
        Assert.That(code, Is.Zero, o + e);
        var m = System.Text.RegularExpressions.Regex.Match(o, @"\n +(\d+)\n +(\d+)\n((?:  \S+ +\d+ +\d+\n)+)# end");
        Assert.That(m.Success, o);
        Assert.That(m.Groups[2].Value, Is.EqualTo(m.Groups[1].Value), "every on-cpu of ping is followed by its off-cpu");
        // When ping's turn ends, the CPU goes back to zlogin's code (lwp 1), or to the kernel or
        // idle (sched, whose threads have lwp id 0).
        foreach (var line in m.Groups[3].Value.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            Assert.That(line, Does.Match(@"^  (sched +0|zlogin +1) +\d+$"));
    }

    [Test]
    public void In_a_zone_sched_shows_only_the_zone_s_programs()
    {
        var (code, o, e) = DtraceCommandTests.Scenario(DtraceCommandTests.TwoZones + """
            zlogin a dtrace -q -n 'sched:::on-cpu { @[execname, zonename] = count(); }' &
            zlogin b ping -s 10.0.0.1 56 1
            zlogin a ping -s 10.0.0.2 56 1
            """);
        Assert.That(code, Is.Zero, o + e);
        string tail = o[o.LastIndexOf("zlogin a dtrace", StringComparison.Ordinal)..];
        Assert.That(tail, Does.Contain($"  {"ping",-50}  {A,-50}"));
        Assert.That(tail, Does.Not.Contain("\n  sched ").And.Not.Contain("8e41b0c2"));
    }

    [Test]
    public void Process_built_ins_cannot_be_assigned_and_curpsinfo_needs_a_member()
    {
        var h = CliHost.TwoVnicsOnAStub();
        var r = h.Run("dtrace", "-n", "BEGIN { pid = 3; }");
        Assert.That(r.ExitCode, Is.Not.Zero);
        Assert.That(r.Stderr, Does.Contain("operator = can only be applied to a writable variable"));
        r = h.Run("dtrace", "-n", "BEGIN { trace(curpsinfo->pr_nosuch); }");
        Assert.That(r.Stderr, Does.Contain("pr_nosuch is not a member of psinfo_t"));
    }
}
