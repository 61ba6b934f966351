namespace SmartOS.Kernel.Trace;

/// <summary>
/// The sched provider's on-cpu and off-cpu (Probe.cs rule 7): where a host's loop spends its turns.
///
/// A host has one CPU, its loop (cpu 0). The loop runs one thing at a time, and each is a turn of
/// one thread:
/// <list type="bullet">
/// <item>every event of the host's scheduler (a timer, a batch of frames off a wire or a NIC's ring,
/// a guest's devices) is a turn of the kernel, pid 0, execname "sched" (TraceProcess.cs);</item>
/// <item>a program's start and each continuation of its awaits is a turn of that program: its code
/// running inside a kernel event (a command started by a scenario line) takes the CPU from sched for
/// as long as it runs and gives it back, and a continuation posted to the loop is the program's turn
/// alone.</item>
/// </list>
/// When the CPU passes from one thread to another, off-cpu fires in the context of the thread that
/// stops (args[0] the lwpsinfo_t and args[1] the psinfo_t of the one that comes next, as illumos's
/// resume() passes them) and on-cpu in the context of the one that starts, as illumos fires them
/// from resume() in swtch.s; the module and function are illumos's, unix and resume. A continuation
/// of the host's own async code that belongs to no program (a zone's services) is no one's turn and
/// fires neither.
///
/// Cost: a disabled provider costs the scheduler one field test per event; the state of the CPU is
/// followed only while on-cpu or off-cpu is enabled.
/// </summary>
public sealed class SchedProbes
{
    public readonly Probe OnCpu, OffCpu;

    /// <summary>lwpsinfo_t (procfs.d's translator from kthread_t): the members a program's one
    /// thread has here, read from its TraceProcess.</summary>
    public static readonly ProbeType LwpsInfo = new("lwpsinfo_t",
        ProbeMember.Integer("pr_flag", "int", static _ => 0),
        ProbeMember.Integer("pr_lwpid", "id_t", static o => P(o).Pid == 0 ? 0 : 1),
        ProbeMember.Integer("pr_addr", "uintptr_t", static o => P(o).ThreadAddress),
        ProbeMember.Integer("pr_state", "char", static _ => SOnProc),
        ProbeMember.Integer("pr_sname", "char", static _ => 'O'),
        ProbeMember.Integer("pr_pri", "int", static o => P(o).Pid == 0 ? 60 : 59),
        ProbeMember.Text("pr_clname", static o => P(o).Pid == 0 ? "SYS" : "TS"),
        ProbeMember.Integer("pr_onpro", "processorid_t", static _ => 0),
        ProbeMember.Integer("pr_bindpro", "processorid_t", static _ => -1),
        ProbeMember.Integer("pr_bindpset", "psetid_t", static _ => -1));

    /// <summary>psinfo_t (procfs.d's translator from proc_t): what a program is.</summary>
    public static readonly ProbeType PsInfo = new("psinfo_t",
        ProbeMember.Integer("pr_nlwp", "int", static _ => 1),
        ProbeMember.Integer("pr_pid", "pid_t", static o => P(o).Pid),
        ProbeMember.Integer("pr_ppid", "pid_t", static o => P(o).PPid),
        ProbeMember.Integer("pr_pgid", "pid_t", static o => P(o).Pid),
        ProbeMember.Integer("pr_sid", "pid_t", static o => P(o).Pid),
        ProbeMember.Integer("pr_uid", "uid_t", static _ => 0),
        ProbeMember.Integer("pr_euid", "uid_t", static _ => 0),
        ProbeMember.Integer("pr_gid", "gid_t", static _ => 0),
        ProbeMember.Integer("pr_egid", "gid_t", static _ => 0),
        ProbeMember.Integer("pr_addr", "uintptr_t", static o => P(o).ProcAddress),
        ProbeMember.Text("pr_fname", static o => P(o).Fname),
        ProbeMember.Text("pr_psargs", static o => P(o).Psargs),
        ProbeMember.Integer("pr_argc", "int", static o => P(o).Argc),
        ProbeMember.Integer("pr_dmodel", "char", static _ => PrModelLp64),
        ProbeMember.Integer("pr_zoneid", "zoneid_t", static o => P(o).ZoneId));

    /// <summary>procfs.h's SONPROC (the thread is on a CPU) and PR_MODEL_LP64.</summary>
    public const int SOnProc = 6, PrModelLp64 = 2;

    private static TraceProcess P(object o) => (TraceProcess)o;

    /// <summary>The host's kernel, whose turns the scheduler's own events are.</summary>
    public TraceProcess Kernel { get; }

    private SchedProbes(ProbeRegistry r)
    {
        Kernel = r.Kernel;
        OnCpu = r.AddShared("sched", "unix", "resume", "on-cpu");
        OffCpu = r.AddShared("sched", "unix", "resume", "off-cpu", LwpsInfo, PsInfo);
    }

    /// <summary>Creates a host's sched probes and hooks them to its scheduler.</summary>
    public static SchedProbes Attach(ProbeRegistry registry, Scheduler scheduler)
    {
        var s = new SchedProbes(registry);
        registry.Sched = s;
        scheduler.SchedProbes = s;
        return s;
    }

    /// <summary>Whether a consumer listens (the scheduler's one test per event).</summary>
    public bool Enabled => OnCpu.Enabled || OffCpu.Enabled;

    // The thread on this OS thread's CPU (one OS thread runs one host's event at a time, also in a
    // parallel run) and the thread an event's turn belongs to when no program runs.
    [ThreadStatic] private static TraceProcess? t_onCpu;
    [ThreadStatic] private static TraceProcess? t_eventOwner;
    // Whether this thread is running one of a traced scheduler's events: a program's flow that
    // reaches another thread (a continuation on the thread pool, in real time) is no turn of the
    // loop, and the consumer, which lives on the loop, must not hear of it there.
    [ThreadStatic] private static bool t_inEvent;

    /// <summary>Runs one of the scheduler's events as a turn: sched's, unless it is a program's
    /// continuation (<paramref name="kernel"/> null), whose own switch reports its turn.</summary>
    internal static void RunEvent(KTimer timer, TraceProcess? kernel)
    {
        var outer = t_eventOwner;
        bool outerInEvent = t_inEvent;
        t_eventOwner = kernel;
        t_inEvent = true;
        Switch(kernel);
        try
        {
            timer.Fire();
        }
        finally
        {
            t_eventOwner = outer;
            Switch(outer);
            t_inEvent = outerInEvent;
        }
    }

    /// <summary>TraceProcess.Current changed: a program's code starts or stops running here.</summary>
    internal static void Switched(TraceProcess? previous, TraceProcess? current)
    {
        if (!t_inEvent || current == null && previous == null) return;
        Switch(current ?? t_eventOwner);
    }

    private static void Switch(TraceProcess? next)
    {
        var cur = t_onCpu;
        if (ReferenceEquals(cur, next)) return;
        t_onCpu = next;
        if (cur?.Registry?.Sched is { OffCpu.Enabled: true } off)
        {
            // Nothing comes next when a program's continuation ends: the CPU goes idle, which on
            // illumos is the idle thread of p0.
            var incoming = next ?? off.Kernel;
            off.OffCpu.Fire(new ProbeArgs(ProbeArg.Of(incoming), ProbeArg.Of(incoming)) { Zone = cur.Zone, Thread = cur, Process = cur });
        }
        if (next?.Registry?.Sched is { OnCpu.Enabled: true } on)
            on.OnCpu.Fire(new ProbeArgs { Zone = next.Zone, Thread = next, Process = next });
    }
}
