namespace SmartOS.Kernel.Trace;

/// <summary>
/// What DTrace's process built-ins read (Probe.cs rule 6): a program the host runs, or the host's
/// kernel itself. A program is a command the dispatcher starts (tools/Dispatcher.cs), in the global
/// zone or in a zone through zlogin; while its code runs (its start and every continuation of its
/// awaits) it is <see cref="Current"/>, carried with its async flow as illumos's curthread is
/// carried by the CPU. Everything else the loop runs (timers, frames arriving on a wire, a guest's
/// devices) is the kernel's: <see cref="ProbeRegistry.Sched"/>, pid 0, execname "sched", the global
/// zone, as illumos's kernel threads belong to p0.
///
/// A program has one thread (lwp 1). Its pid comes from its host's registry, counting up from
/// <see cref="ProbeRegistry.FirstPid"/> as a freshly booted system hands them out; its parent is the
/// program that started it (zlogin for the command it runs in a zone), or 0 when the front end (a
/// scenario line, the daemon's client) started it. Every program runs as root (uid, gid 0): the
/// host has no users.
/// </summary>
public sealed class TraceProcess
{
    /// <summary>illumos's PRFNSZ (16) and PRARGSZ (80): pr_fname and pr_psargs hold one byte less
    /// than that, the rest cut.</summary>
    public const int FnameSize = 16, PsargsSize = 80;

    private static readonly AsyncLocal<TraceProcess?> s_current = new(static e => SchedProbes.Switched(e.PreviousValue, e.CurrentValue));

    public TraceProcess(int pid, int ppid, string zone, int zoneId, string command, IReadOnlyList<string> argv, ProbeRegistry? registry)
    {
        Pid = pid;
        PPid = ppid;
        Zone = zone;
        ZoneId = zoneId;
        Fname = Cut(command, FnameSize);
        Psargs = Cut(string.Join(' ', argv), PsargsSize);
        Argc = argv.Count;
        Registry = registry;
    }

    public int Pid { get; }
    public int PPid { get; }
    public string Zone { get; }
    public int ZoneId { get; }

    /// <summary>The command's name (pr_fname, execname), cut to 15 characters as illumos cuts u_comm.</summary>
    public string Fname { get; }

    /// <summary>The command line (pr_psargs), cut to 79 characters.</summary>
    public string Psargs { get; }
    public int Argc { get; }

    /// <summary>Where its proc_t and its thread's kthread_t would be (pr_addr, curthread): distinct
    /// for each process of a host, never 0, the same in every run.</summary>
    public long ProcAddress => unchecked((long)0xfffffe0000000000UL) + (long)Pid * 0x2000;
    public long ThreadAddress => ProcAddress + 0x1000;

    /// <summary>The host whose probes this process fires (its sched probes); null for none.</summary>
    public ProbeRegistry? Registry { get; }

    /// <summary>The program whose code is running, or null: the kernel's.</summary>
    public static TraceProcess? Current => s_current.Value;

    /// <summary>Makes this process current for the rest of the calling async method and everything
    /// it awaits (an async method's changes to its flow do not leak to its caller).</summary>
    public void Enter() => s_current.Value = this;

    private static string Cut(string s, int size) => s.Length < size ? s : s[..(size - 1)];
}
