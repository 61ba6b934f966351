using System.Runtime.CompilerServices;
using SmartOS.Kernel.Trace;

namespace SmartOS.Cli;

/// <summary>
/// The proc provider over this host's programs (issue 14; kernel/Trace/Probe.cs): a program is a
/// command the dispatcher starts, in the global zone or, through zlogin, in a zone (Dispatcher.cs).
/// There are no processes or process IDs here, so the probes are illumos's whose arguments need
/// none, named as `dtrace -l -P proc` lists them on illumos, and each firing names the program's
/// zone (zonename; a zone's dtrace hears only its own, Probe.cs rule 5) and is the program's
/// thread (self-> variables live from start to exit):
/// <list type="number">
/// <item>proc:genunix:lwp_rtt_initial:start when the program starts, then
/// proc:genunix:exec_common:exec with arg0 the command's name (stringof(arg0); illumos's args[0],
/// the path), then exec-success, or exec-failure with arg0 the errno (ENOENT 2: no such command;
/// EPERM 1: the command may not run in a zone) and exit.</item>
/// <item>proc:genunix:proc_exit:exit when it ends: arg0 illumos's reason, CLD_EXITED (1), or
/// CLD_KILLED (2) for a program interrupted (^C, the end of a scenario); arg1 its exit status
/// (this project's: illumos reads it from curpsinfo, which does not exist here).</item>
/// </list>
/// Not here: create, signal-*, lwp-*, and psinfo_t/lwpsinfo_t arguments and curpsinfo, which need
/// processes. A disabled probe costs its site one branch, once per program.
/// </summary>
public sealed class ProcProbes
{
    public readonly Probe Start, Exec, ExecSuccess, ExecFailure, Exit;

    public const int Enoent = 2, Eperm = 1, CldExited = 1, CldKilled = 2;

    private static readonly ConditionalWeakTable<ProbeRegistry, ProcProbes> s_byRegistry = new();

    /// <summary>The host's proc probes, created in its registry the first time a program starts.</summary>
    public static ProcProbes For(ProbeRegistry registry) => s_byRegistry.GetValue(registry, static r => new ProcProbes(r));

    private ProcProbes(ProbeRegistry r)
    {
        Start = r.AddShared("proc", "genunix", "lwp_rtt_initial", "start");
        Exec = r.AddShared("proc", "genunix", "exec_common", "exec");
        ExecSuccess = r.AddShared("proc", "genunix", "exec_common", "exec-success");
        ExecFailure = r.AddShared("proc", "genunix", "exec_common", "exec-failure");
        Exit = r.AddShared("proc", "genunix", "proc_exit", "exit");
    }

    /// <summary>Fires a probe for a program (its zone, and its thread for self->).</summary>
    public static void Fire(Probe probe, string zone, object program, ProbeArg a0 = default, ProbeArg a1 = default)
    {
        if (probe.Enabled) probe.Fire(new ProbeArgs(a0, a1) { Zone = zone, Thread = program });
    }
}
