using System.Runtime.CompilerServices;
using SmartOS.Kernel.Trace;

namespace SmartOS.Cli;

/// <summary>
/// The proc provider over this host's programs (issue 14; kernel/Trace/Probe.cs): a program is a
/// command the dispatcher starts, in the global zone or, through zlogin, in a zone (Dispatcher.cs),
/// and is a process with a pid, a parent, a zone and a command line (kernel/Trace/TraceProcess.cs:
/// execname, pid, ppid, curpsinfo). The probes are illumos's, named as `dtrace -l -P proc` lists
/// them there; each firing names its process's zone (zonename; a zone's dtrace hears only its own,
/// Probe.cs rule 5) and is its process's thread (self-> lives from start to exit):
/// <list type="number">
/// <item>proc:genunix:cfork:create in the process that starts the program (the kernel, sched, when
/// a scenario line or a client of the daemon starts it), args[0] the new program's psinfo_t, as
/// illumos fires it in the parent of a fork.</item>
/// <item>proc:genunix:lwp_rtt_initial:start in the new program, then proc:genunix:exec_common:exec
/// with arg0 the command's name (stringof(arg0); illumos's args[0], the path), then exec-success,
/// or exec-failure with arg0 the errno (ENOENT 2: no such command; EPERM 1: the command may not
/// run in a zone) and exit.</item>
/// <item>proc:genunix:proc_exit:exit when it ends: arg0 illumos's reason, CLD_EXITED (1), or
/// CLD_KILLED (2) for a program interrupted (^C, the end of a scenario); arg1 its exit status
/// (this project's: illumos has it in the process, which D cannot read there either).</item>
/// </list>
/// Not here: signal-*, lwp-* and fault, since a program has one thread and takes no signals. A
/// disabled probe costs its site one branch, a few times per program.
/// </summary>
public sealed class ProcProbes
{
    public readonly Probe Create, Start, Exec, ExecSuccess, ExecFailure, Exit;

    public const int Enoent = 2, Eperm = 1, CldExited = 1, CldKilled = 2;

    private static readonly ConditionalWeakTable<ProbeRegistry, ProcProbes> s_byRegistry = new();

    /// <summary>The host's proc probes, created in its registry the first time a program starts.</summary>
    public static ProcProbes For(ProbeRegistry registry) => s_byRegistry.GetValue(registry, static r => new ProcProbes(r));

    private ProcProbes(ProbeRegistry r)
    {
        Create = r.AddShared("proc", "genunix", "cfork", "create", SchedProbes.PsInfo);
        Start = r.AddShared("proc", "genunix", "lwp_rtt_initial", "start");
        Exec = r.AddShared("proc", "genunix", "exec_common", "exec");
        ExecSuccess = r.AddShared("proc", "genunix", "exec_common", "exec-success");
        ExecFailure = r.AddShared("proc", "genunix", "exec_common", "exec-failure");
        Exit = r.AddShared("proc", "genunix", "proc_exit", "exit");
    }

    /// <summary>Fires a probe in a process (its zone, its thread for self->, its built-ins); a
    /// null process is the kernel's.</summary>
    public static void Fire(Probe probe, string zone, object? thread, TraceProcess? process, ProbeArg a0 = default, ProbeArg a1 = default)
    {
        if (probe.Enabled) probe.Fire(new ProbeArgs(a0, a1) { Zone = zone, Thread = thread, Process = process });
    }
}
