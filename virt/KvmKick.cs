using System.Globalization;
using System.Runtime.InteropServices;

namespace SmartOS.Virt;

/// <summary>
/// The kick that ends a KVM slice (KvmVcpu.cs, "Slices"): one real-time signal, <see cref="Signal"/>,
/// that every thread which runs a vCPU keeps blocked at all times, and a POSIX timer per vCPU
/// (<see cref="SliceTimer"/>) that sends it to that thread alone (SIGEV_THREAD_ID) when the slice
/// is over. KVM_SET_SIGNAL_MASK hands KVM_RUN the thread's mask with the kick unblocked, so a kick
/// that is pending, or that arrives while the guest runs, ends KVM_RUN with EINTR; the kernel puts
/// the thread's own mask back before it returns to user space, so the signal is still pending,
/// never delivered, and <see cref="TryConsume"/> takes it with a zero-timeout sigtimedwait.
///
/// Rules (a mistake here ends the whole host process: the signal's default action terminates it)
///   1. The kick is only ever directed at one thread (the timer's SIGEV_THREAD_ID, tgkill), never at
///      the process, and only at a thread that has blocked it: <see cref="SliceTimer.TryCreate"/> and
///      <see cref="TrySend"/> refuse a thread that has not (the latter reads the target's SigBlk in
///      /proc), and nothing here ever unblocks it. A thread that exits with a kick pending loses it
///      with the thread.
///   2. Which signal: CoreCLR injects its activations (GC suspension, thread hijacking) with SIGRTMIN
///      (glibc's, 34), and glibc keeps 32 and 33 for itself below that; the runtime's System.Native
///      handles only the classic signals (SIGINT, SIGTERM, SIGCHLD, SIGCONT, SIGWINCH, ...). kvmtool
///      and other programs that take real-time signals count up from SIGRTMIN. The kick takes
///      SIGRTMAX - 1 (63), from the other end, away from all of those; SIGRTMAX itself is left to
///      programs that count down.
///   3. The kernel must keep a kick unblocked by KVM_SET_SIGNAL_MASK pending even though the thread
///      has no handler for it: Linux 4.15 made KVM_SET_SIGNAL_MASK behave so (before it, a signal
///      with the default action that arrived inside KVM_RUN killed the process).
///      <see cref="KernelKeepsKickPending"/> says whether the running kernel is that new, and the
///      KVM backend refuses to start on an older one.
///   4. A safety net under rule 1: the first thread to block the kick also registers a handler for
///      it with the runtime (PosixSignalRegistration), which swallows a kick that is ever delivered
///      and counts it in <see cref="DeliveredByMistake"/> instead of letting the default action end
///      the process. By rule 1 the count stays 0.
///   5. Blocking is inherited: threads and child processes started from a thread that has run a
///      vCPU start with the kick blocked too (harmless: no one sends it to them).
/// </summary>
public static unsafe class KvmKick
{
    /// <summary>SIGRTMAX - 1 on Linux (rule 2).</summary>
    public const int Signal = 63;
    /// <summary>The kernel's sigset on x86-64 (struct kvm_signal_mask's len, rt_sigprocmask's size).</summary>
    public const int KernelSigsetBytes = 8;
    /// <summary>glibc's sigset_t and siginfo_t (sizes the header probe checks).</summary>
    public const int LibcSigsetBytes = 128, SiginfoBytes = 128;
    /// <summary>struct sigevent: its size, and where sigev_signo, sigev_notify and the target
    /// thread (sigev_notify_thread_id) are; SIGEV_THREAD_ID; CLOCK_MONOTONIC.</summary>
    public const int SigeventBytes = 64, SigeventSigno = 8, SigeventNotify = 12, SigeventThreadId = 16;
    public const int SIGEV_THREAD_ID = 4, CLOCK_MONOTONIC = 1;
    private const int SIG_BLOCK = 0, EINTR = 4, EAGAIN = 11;

    [DllImport("libc", SetLastError = true)] private static extern int pthread_sigmask(int how, ulong* set, ulong* old);
    [DllImport("libc", SetLastError = true)] private static extern int sigtimedwait(ulong* set, byte* info, long* timeout);
    [DllImport("libc", SetLastError = true)] private static extern int tgkill(int tgid, int tid, int sig);
    [DllImport("libc")] private static extern int gettid();
    [DllImport("libc")] private static extern int getpid();
    [DllImport("libc", SetLastError = true)] private static extern int timer_create(int clock, byte* sigevent, nint* timer);
    [DllImport("libc", SetLastError = true)] private static extern int timer_settime(nint timer, int flags, long* value, long* old);
    [DllImport("libc", SetLastError = true)] private static extern int timer_delete(nint timer);

    private const ulong Bit = 1UL << (Signal - 1);

    /// <summary>The kernel's id of the calling thread (what tgkill and SIGEV_THREAD_ID name).</summary>
    public static int CurrentThreadId => gettid();

    private static long s_deliveredByMistake;
    private static readonly PosixSignalRegistration? s_net = InstallNet();

    private static PosixSignalRegistration? InstallNet()
    {
        try
        {
            return PosixSignalRegistration.Create((PosixSignal)Signal, static context =>
            {
                Interlocked.Increment(ref s_deliveredByMistake);
                context.Cancel = true;
            });
        }
        catch (Exception e) when (e is PlatformNotSupportedException or IOException or UnauthorizedAccessException)
        {
            return null; // rule 1 still holds; only the net is missing
        }
    }

    /// <summary>Kicks that reached a handler (rule 4): 0 unless rule 1 was broken.</summary>
    public static long DeliveredByMistake => Interlocked.Read(ref s_deliveredByMistake);

    /// <summary>Whether the safety net of rule 4 is in place.</summary>
    public static bool HasSafetyNet => s_net != null;

    /// <summary>Blocks the kick on the calling thread, for good (rule 1). Idempotent.</summary>
    public static void BlockOnCurrentThread()
    {
        GC.KeepAlive(s_net);
        ulong* set = stackalloc ulong[LibcSigsetBytes / 8];
        new Span<ulong>(set, LibcSigsetBytes / 8).Clear();
        set[0] = Bit;
        int error = pthread_sigmask(SIG_BLOCK, set, null);
        if (error != 0) throw new InvalidOperationException($"pthread_sigmask failed (errno {error})");
    }

    /// <summary>Whether the calling thread blocks the kick.</summary>
    public static bool IsBlockedOnCurrentThread() => (CurrentMask() & Bit) != 0;

    /// <summary>The first word of the calling thread's signal mask (signals 1-64).</summary>
    private static ulong CurrentMask()
    {
        ulong* old = stackalloc ulong[LibcSigsetBytes / 8];
        int error = pthread_sigmask(SIG_BLOCK, null, old);
        if (error != 0) throw new InvalidOperationException($"pthread_sigmask failed (errno {error})");
        return old[0];
    }

    /// <summary>The mask KVM_RUN runs with (KVM_SET_SIGNAL_MASK): the calling thread's, with the
    /// kick unblocked and nothing else changed.</summary>
    public static ulong RunMask() => CurrentMask() & ~Bit;

    /// <summary>Takes a pending kick off the calling thread without delivering it (sigtimedwait,
    /// zero timeout). The thread must block the kick: sigtimedwait on an unblocked signal is what
    /// rule 1 forbids, so that is a programming error.</summary>
    public static bool TryConsume() => TryConsume(0);

    /// <summary>Waits up to <paramref name="timeoutNs"/> for a kick on the calling thread and takes it.</summary>
    public static bool TryConsume(long timeoutNs)
    {
        if (!IsBlockedOnCurrentThread()) throw new InvalidOperationException("the kick is consumed only on a thread that blocks it");
        ulong* set = stackalloc ulong[LibcSigsetBytes / 8];
        new Span<ulong>(set, LibcSigsetBytes / 8).Clear();
        set[0] = Bit;
        byte* info = stackalloc byte[SiginfoBytes];
        long* timeout = stackalloc long[2];
        timeout[0] = timeoutNs / 1_000_000_000;
        timeout[1] = timeoutNs % 1_000_000_000;
        while (true)
        {
            if (sigtimedwait(set, info, timeout) == Signal) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR) continue; // another signal's handler ran (CoreCLR's activation)
            if (errno == EAGAIN) return false;
            throw new InvalidOperationException($"sigtimedwait failed (errno {errno})");
        }
    }

    /// <summary>Sends the kick to thread <paramref name="tid"/> of this process with tgkill, only if
    /// that thread blocks it (rule 1; its SigBlk in /proc/self/task), else refuses with the reason.</summary>
    public static bool TrySend(int tid, out string why)
    {
        if (!TryReadMask(tid, "SigBlk:", out ulong blocked, out why)) return false;
        if ((blocked & Bit) == 0)
        {
            why = $"thread {tid} does not block signal {Signal}: a kick would be delivered and end the process";
            return false;
        }
        if (tgkill(getpid(), tid, Signal) != 0)
        {
            why = $"tgkill failed (errno {Marshal.GetLastPInvokeError()})";
            return false;
        }
        why = "";
        return true;
    }

    /// <summary>Whether a kick is pending on thread <paramref name="tid"/> of this process (its SigPnd).</summary>
    public static bool IsPending(int tid) => TryReadMask(tid, "SigPnd:", out ulong pending, out _) && (pending & Bit) != 0;

    private static bool TryReadMask(int tid, string field, out ulong mask, out string why)
    {
        mask = 0;
        string status = $"/proc/self/task/{tid.ToString(CultureInfo.InvariantCulture)}/status";
        string[] lines;
        try
        {
            lines = File.ReadAllLines(status);
        }
        catch (IOException)
        {
            why = $"thread {tid} is not a thread of this process";
            return false;
        }
        foreach (string line in lines)
        {
            if (!line.StartsWith(field, StringComparison.Ordinal)) continue;
            // The mask is hexadecimal, 64 bits per 16 digits, signal 1 in the lowest bit.
            string hex = line[field.Length..].Trim();
            if (hex.Length >= 16 && ulong.TryParse(hex.AsSpan(hex.Length - 16), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out mask))
            {
                why = "";
                return true;
            }
        }
        why = $"{status} has no readable {field}";
        return false;
    }

    /// <summary>Whether kernel release <paramref name="release"/> (uname -r) keeps a kick that
    /// KVM_SET_SIGNAL_MASK unblocked pending rather than acting on it (rule 3): 4.15 or later.</summary>
    public static bool KernelKeepsKickPending(string release)
    {
        var parts = release.Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major)) return false;
        int digits = 0;
        while (digits < parts[1].Length && char.IsAsciiDigit(parts[1][digits])) digits++;
        if (digits == 0) return false;
        int minor = int.Parse(parts[1].AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture);
        return major > 4 || major == 4 && minor >= 15;
    }

    /// <summary>
    /// A one-shot CLOCK_MONOTONIC timer that sends the kick to the thread that created it, and to no
    /// other (SIGEV_THREAD_ID). Armed when a slice starts and disarmed when it ends, both on that
    /// thread, so it never fires at a thread that is gone.
    /// </summary>
    public sealed class SliceTimer : IDisposable
    {
        private nint _timer;
        private bool _disposed;

        private SliceTimer(nint timer, int threadId)
        {
            _timer = timer;
            ThreadId = threadId;
        }

        /// <summary>The thread the timer kicks.</summary>
        public int ThreadId { get; }

        /// <summary>A timer for the calling thread, which must already block the kick (rule 1).</summary>
        public static bool TryCreate(out SliceTimer? timer, out string why)
        {
            timer = null;
            if (!IsBlockedOnCurrentThread())
            {
                why = $"the calling thread does not block signal {Signal}";
                return false;
            }
            int tid = gettid();
            byte* sev = stackalloc byte[SigeventBytes];
            new Span<byte>(sev, SigeventBytes).Clear();
            *(int*)(sev + SigeventSigno) = Signal;
            *(int*)(sev + SigeventNotify) = SIGEV_THREAD_ID;
            *(int*)(sev + SigeventThreadId) = tid;
            nint id;
            if (timer_create(CLOCK_MONOTONIC, sev, &id) != 0)
            {
                why = $"timer_create failed (errno {Marshal.GetLastPInvokeError()})";
                return false;
            }
            timer = new SliceTimer(id, tid);
            why = "";
            return true;
        }

        /// <summary>Kicks the thread once, <paramref name="ns"/> (at least 1) from now.</summary>
        public bool Arm(long ns) => Set(Math.Max(1, ns));

        /// <summary>Stops a kick that has not fired; one that has is pending (TryConsume takes it).</summary>
        public bool Disarm() => Set(0);

        private bool Set(long ns)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long* spec = stackalloc long[4]; // struct itimerspec: it_interval, then it_value
            spec[0] = 0; spec[1] = 0;
            spec[2] = ns / 1_000_000_000;
            spec[3] = ns % 1_000_000_000;
            return timer_settime(_timer, 0, spec, null) == 0;
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            timer_delete(_timer);
            _timer = 0;
        }
    }
}
