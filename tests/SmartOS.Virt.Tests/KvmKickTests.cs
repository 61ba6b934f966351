using System.Globalization;
using SmartOS.Kernel;

namespace SmartOS.Virt.Tests;

/// <summary>
/// The kick that bounds a KVM slice (virt/KvmKick.cs, virt/KvmVcpu.cs "Slices"). Without /dev/kvm
/// what runs is the signal plumbing on real threads of this process (a mistake there would end the
/// test run, which is what the survival of these tests shows), the numbers and layouts against the
/// C headers, and the slice decisions; the slices under KVM are in the spinning-guest tests, which
/// run on the interpreter here and are ignored for KVM.
/// </summary>
public class KvmKickTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("signals and POSIX timers are Linux's here");
    }

    /// <summary>Runs <paramref name="body"/> on a new thread of its own and rethrows what it threw.</summary>
    private static void OnNewThread(Action body)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try { body(); }
            catch (Exception e) { failure = e; }
        }) { IsBackground = true, Name = "kick-test" };
        thread.Start();
        Assert.That(thread.Join(Bound), Is.True, "the test thread did not finish");
        if (failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
    }

    /// <summary>The calling thread's blocked signals 1-64, as /proc shows them.</summary>
    private static ulong ProcBlockedMask()
    {
        foreach (string line in File.ReadAllLines("/proc/thread-self/status"))
            if (line.StartsWith("SigBlk:", StringComparison.Ordinal))
                return ulong.Parse(line["SigBlk:".Length..].Trim()[^16..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        throw new AssertionException("no SigBlk in /proc/thread-self/status");
    }

    [Test]
    public void A_kick_sent_to_a_thread_that_blocks_it_stays_pending_and_is_taken_without_delivery()
    {
        RequireLinux();
        using var ready = new ManualResetEventSlim();
        using var sent = new ManualResetEventSlim();
        int tid = 0;
        bool pendingBefore = false, taken = false, takenTwice = true, pendingAfter = true;
        var thread = new Thread(() =>
        {
            KvmKick.BlockOnCurrentThread();
            tid = KvmKick.CurrentThreadId;
            ready.Set();
            if (!sent.Wait(Bound)) return;
            pendingBefore = KvmKick.IsPending(tid);
            taken = KvmKick.TryConsume();
            takenTwice = KvmKick.TryConsume();
            pendingAfter = KvmKick.IsPending(tid);
        }) { IsBackground = true };
        thread.Start();
        Assert.That(ready.Wait(Bound), Is.True);
        bool sentOk = KvmKick.TrySend(tid, out string why);
        sent.Set();
        Assert.That(thread.Join(Bound), Is.True);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sentOk, Is.True, why);
            Assert.That(pendingBefore, Is.True, "tgkill left the kick pending on the blocked thread");
            Assert.That(taken, Is.True, "sigtimedwait took it");
            Assert.That(takenTwice, Is.False, "one kick is taken once");
            Assert.That(pendingAfter, Is.False, "nothing is left pending");
        }
    }

    [Test]
    public void The_kick_is_refused_to_a_thread_that_has_not_blocked_it_and_to_threads_of_other_processes()
    {
        RequireLinux();
        using var ready = new ManualResetEventSlim();
        using var done = new ManualResetEventSlim();
        int tid = 0;
        bool blockedThere = true, timerMade = true;
        string timerWhy = "";
        var thread = new Thread(() =>
        {
            blockedThere = KvmKick.IsBlockedOnCurrentThread();
            timerMade = KvmKick.SliceTimer.TryCreate(out var timer, out timerWhy);
            timer?.Dispose();
            tid = KvmKick.CurrentThreadId;
            ready.Set();
            done.Wait(Bound);
        }) { IsBackground = true };
        thread.Start();
        Assert.That(ready.Wait(Bound), Is.True);
        bool sent = KvmKick.TrySend(tid, out string why);
        bool pending = KvmKick.IsPending(tid);
        done.Set();
        Assert.That(thread.Join(Bound), Is.True);
        bool sentToInit = KvmKick.TrySend(1, out string whyInit);
        if (blockedThere) Assert.Ignore("this test's thread blocks the kick (a KVM test ran on it), so its new threads do too");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(sent, Is.False, "a kick to a thread that does not block it would end the process");
            Assert.That(why, Does.Contain("does not block signal 63"));
            Assert.That(pending, Is.False);
            Assert.That(timerMade, Is.False, "no slice timer aims at a thread that does not block the kick");
            Assert.That(timerWhy, Does.Contain("does not block signal 63"));
            Assert.That(sentToInit, Is.False);
            Assert.That(whyInit, Does.Contain("not a thread of this process"));
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)] private static extern int tgkill(int tgid, int tid, int sig);
    [System.Runtime.InteropServices.DllImport("libc")] private static extern int getpid();

    [Test]
    public void A_kick_delivered_by_mistake_is_swallowed_and_counted_not_fatal()
    {
        RequireLinux();
        OnNewThread(KvmKick.BlockOnCurrentThread); // installs the net
        Assert.That(KvmKick.HasSafetyNet, Is.True, "the runtime took the handler for signal 63");
        long before = KvmKick.DeliveredByMistake;
        using var ready = new ManualResetEventSlim();
        using var done = new ManualResetEventSlim();
        int tid = 0;
        bool blockedThere = true;
        var thread = new Thread(() =>
        {
            blockedThere = KvmKick.IsBlockedOnCurrentThread();
            tid = KvmKick.CurrentThreadId;
            ready.Set();
            done.Wait(Bound);
        }) { IsBackground = true };
        thread.Start();
        Assert.That(ready.Wait(Bound), Is.True);
        if (blockedThere)
        {
            done.Set();
            Assert.Ignore("this test's thread blocks the kick (a KVM test ran on it), so its new threads do too");
        }
        // What KvmKick.TrySend refuses to do: a raw tgkill at a thread that does not block the kick.
        Assert.That(tgkill(getpid(), tid, KvmKick.Signal), Is.Zero);
        bool counted = SpinWait.SpinUntil(() => KvmKick.DeliveredByMistake > before, Bound);
        done.Set();
        Assert.That(thread.Join(Bound), Is.True);
        Assert.That(counted, Is.True, "the delivered kick reached the net (and the process is still here)");
    }

    [Test]
    public void The_kick_is_consumed_only_on_a_thread_that_blocks_it()
    {
        RequireLinux();
        OnNewThread(() =>
        {
            if (KvmKick.IsBlockedOnCurrentThread()) Assert.Ignore("this test's thread blocks the kick (a KVM test ran on it), so its new threads do too");
            Assert.That(() => KvmKick.TryConsume(), Throws.InvalidOperationException);
        });
    }

    [Test]
    public void The_slice_timer_kicks_its_own_thread_and_a_disarmed_one_kicks_nobody()
    {
        RequireLinux();
        OnNewThread(() =>
        {
            KvmKick.BlockOnCurrentThread();
            Assert.That(KvmKick.SliceTimer.TryCreate(out var made, out string why), Is.True, why);
            using var timer = made!;
            using (Assert.EnterMultipleScope())
            {
                Assert.That(timer.ThreadId, Is.EqualTo(KvmKick.CurrentThreadId));
                Assert.That(timer.Arm(1_000_000), Is.True);
                // The wait is only an upper bound: the timer fires after 1 ms.
                Assert.That(KvmKick.TryConsume((long)Bound.TotalMilliseconds * 1_000_000), Is.True, "the armed timer kicked this thread");
                Assert.That(timer.Arm(60L * 1_000_000_000), Is.True);
                Assert.That(timer.Disarm(), Is.True);
                Assert.That(KvmKick.TryConsume(), Is.False, "a disarmed timer sent nothing");
                Assert.That(KvmKick.IsPending(KvmKick.CurrentThreadId), Is.False);
            }
        });
    }

    [Test]
    public void Kvm_run_gets_the_threads_own_mask_with_only_the_kick_unblocked()
    {
        RequireLinux();
        OnNewThread(() =>
        {
            KvmKick.BlockOnCurrentThread();
            ulong blocked = ProcBlockedMask();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(blocked & (1UL << (KvmKick.Signal - 1)), Is.Not.Zero, "the thread blocks the kick");
                Assert.That(KvmKick.RunMask(), Is.EqualTo(blocked & ~(1UL << (KvmKick.Signal - 1))));
            }
        });
    }

    [Test]
    public void The_signal_mask_ioctl_the_kick_signal_and_the_timer_structures_are_the_headers()
    {
        var h = KvmInterruptTests.HeaderValues();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h["KVM_SET_SIGNAL_MASK"], Is.EqualTo(KvmVcpu.KVM_SET_SIGNAL_MASK));
            Assert.That(h["kvm_signal_mask_sigset"], Is.EqualTo((ulong)KvmVcpu.SignalMaskHeaderSize));
            Assert.That(h["sizeof_kvm_signal_mask"], Is.EqualTo((ulong)KvmVcpu.SignalMaskHeaderSize), "a u32 len, then the sigset");
            Assert.That((int)h["SIGRTMAX"] - 1, Is.EqualTo(KvmKick.Signal), "SIGRTMAX - 1");
            Assert.That((int)h["SIGRTMIN"], Is.Not.EqualTo(KvmKick.Signal), "CoreCLR's activation signal");
            Assert.That(h["SIGRTMAX"], Is.LessThanOrEqualTo((ulong)(8 * KvmKick.KernelSigsetBytes)), "the kick is inside the kernel's sigset");
            Assert.That(h["sizeof_sigset_t"], Is.EqualTo((ulong)KvmKick.LibcSigsetBytes));
            Assert.That(h["sizeof_siginfo_t"], Is.EqualTo((ulong)KvmKick.SiginfoBytes));
            Assert.That(h["sizeof_sigevent"], Is.EqualTo((ulong)KvmKick.SigeventBytes));
            Assert.That(h["sigev_signo"], Is.EqualTo((ulong)KvmKick.SigeventSigno));
            Assert.That(h["sigev_notify"], Is.EqualTo((ulong)KvmKick.SigeventNotify));
            Assert.That(h["sigev_tid"], Is.EqualTo((ulong)KvmKick.SigeventThreadId));
            Assert.That(h["SIGEV_THREAD_ID"], Is.EqualTo((ulong)KvmKick.SIGEV_THREAD_ID));
            Assert.That(h["CLOCK_MONOTONIC"], Is.EqualTo((ulong)KvmKick.CLOCK_MONOTONIC));
            Assert.That(h["sizeof_itimerspec"], Is.EqualTo(32UL), "four longs: interval, then value");
            Assert.That(h["sizeof_timer_t"], Is.EqualTo((ulong)IntPtr.Size), "timer_t is held in an nint");
        }
    }

    [TestCase(0L, 100_000L)]
    [TestCase(1L, 100_000L)]
    [TestCase(250_000L, 250_000L)]
    [TestCase(1_000_000L, 1_000_000L)]
    [TestCase(10_000_000L, 10_000_000L)]
    [TestCase(50_000_000L, 10_000_000L)]
    [TestCase(long.MaxValue, 10_000_000L)]
    public void A_kvm_slice_is_the_budget_in_nanoseconds_within_its_bounds(long budget, long expected)
        => Assert.That(KvmVcpu.SliceNanoseconds(budget), Is.EqualTo(expected));

    [TestCase("6.18.44-fc-v1252", true)]
    [TestCase("4.15.0", true)]
    [TestCase("4.15", true)]
    [TestCase("5.4.0-150-generic", true)]
    [TestCase("10.1.0", true)]
    [TestCase("4.14.336", false)]
    [TestCase("4.9.0-rc1", false)]
    [TestCase("3.10.0-1160.el7.x86_64", false)]
    [TestCase("4", false)]
    [TestCase("(unknown release)", false)]
    [TestCase("", false)]
    public void Kvm_runs_only_on_a_kernel_that_keeps_an_unblocked_kick_pending(string release, bool expected)
        => Assert.That(KvmKick.KernelKeepsKickPending(release), Is.EqualTo(expected));
}

/// <summary>
/// A guest that never gives the host's loop back by itself: `jmp .` with interrupts off, an endless
/// `out` to an empty port, an endless read of the local APIC's MMIO. Run on the real-time driver as
/// `smartos boot` runs it: other work handed to the loop still runs, and the host's stop (what
/// `vmadm stop` does) ends the VM. The interpreter yields by its instruction budget; KVM by the kick
/// (virt/KvmVcpu.cs, "Slices"), which needs /dev/kvm: there the KVM cases are ignored.
/// </summary>
public class SpinningGuestTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    public static IEnumerable<TestCaseData> Cases()
    {
        byte[] spin = [0xEB, 0xFE]; // jmp .
        byte[] portStorm = [0xE6, 0x80, 0xEB, 0xFC]; // out 0x80, al; jmp back
        byte[] mmioStorm = [0xA1, 0x20, 0x00, 0xE0, 0xFE, 0, 0, 0, 0, 0xEB, 0xF5]; // mov eax, [0xfee00020] (moffs64: the APIC ID); jmp back
        foreach (var backend in new[] { VmBackend.Interpreter, VmBackend.Kvm })
        {
            yield return new TestCaseData(backend, spin, VmPlatform.Flat).SetArgDisplayNames(backend.ToString(), "jmp .");
            yield return new TestCaseData(backend, portStorm, VmPlatform.Flat).SetArgDisplayNames(backend.ToString(), "port storm");
            yield return new TestCaseData(backend, mmioStorm, VmPlatform.Pc).SetArgDisplayNames(backend.ToString(), "mmio storm");
        }
    }

    [TestCase(VmBackend.Interpreter)]
    [TestCase(VmBackend.Kvm)]
    public void A_guest_that_never_exits_reaches_its_time_limit_in_virtual_time(VmBackend backend)
    {
        if (backend == VmBackend.Kvm && !Vm.KvmAvailable(out string why)) Assert.Ignore(why);
        var scheduler = new Scheduler();
        using var vm = new Vm(scheduler, new VmConfig { Image = [0xEB, 0xFE], Backend = backend, MemorySize = 8UL << 20, TimeLimit = 20 * Time.Millisecond });
        bool otherWorkRan = false;
        scheduler.After(5 * Time.Millisecond, () => otherWorkRan = vm.State == VmState.Running);
        vm.Start();
        // Under KVM a kicked slice is 1 ms of guest time: 20 slices, each 1 ms of wall time.
        scheduler.RunUntil(() => vm.IsStopped, Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.OutOfTime), vm.StopDetail);
            Assert.That(otherWorkRan, Is.True, "the host's own timer ran while the guest spun");
            Assert.That(scheduler.Now, Is.LessThan(30 * Time.Millisecond), "the limit ended it in its slice");
        }
    }

    /// <summary>How far the guest has got: slices the kick ended under KVM, instructions on the interpreter.</summary>
    private static long Progress(Vm vm) => vm.Vcpu is KvmVcpu kvm ? kvm.SlicesKicked : vm.InstructionsRetired;

    [TestCaseSource(nameof(Cases))]
    public void A_guest_that_never_yields_leaves_the_loop_to_other_work_and_stops_when_the_host_stops_it(VmBackend backend, byte[] image, VmPlatform platform)
    {
        if (backend == VmBackend.Kvm && !Vm.KvmAvailable(out string why)) Assert.Ignore(why);
        var scheduler = new Scheduler();
        using var driver = new RealTimeDriver(scheduler);
        driver.Start("spin-test");
        Vm? vm = null;
        var started = driver.InvokeAsync(() =>
        {
            vm = new Vm(scheduler, new VmConfig { Image = image, Backend = backend, RealTime = true, Platform = platform, MemorySize = 8UL << 20 });
            vm.Start();
            return vm.State;
        });
        Assert.That(started.Wait(Bound), Is.True, "the VM did not start");
        Assert.That(started.Result, Is.EqualTo(VmState.Running), vm!.StopDetail);
        try
        {
            // Timed work of the host (a zone's timers, a command) runs while the guest spins, again
            // and again; the guest runs between (it is kicked, or spends its budget, each slice).
            long firstProgress = -1;
            for (int i = 0; i < 5; i++)
            {
                var other = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
                driver.Invoke(() => scheduler.After(1, () => other.SetResult(Progress(vm))));
                Assert.That(other.Task.Wait(Bound), Is.True, $"the host's own work did not run (round {i})");
                if (i == 0) firstProgress = other.Task.Result;
            }
            var stop = driver.InvokeAsync(() =>
            {
                var before = (vm.State, Progress(vm));
                vm.Stop("stopped by the host (vmadm stop)");
                return (before, vm.State, vm.StopReason, vm.BackendName);
            });
            Assert.That(stop.Wait(Bound), Is.True, "the stop did not reach the loop");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(stop.Result.before.State, Is.EqualTo(VmState.Running), "the guest was still spinning");
                Assert.That(stop.Result.before.Item2, Is.GreaterThan(firstProgress), "the guest ran between the host's work");
                Assert.That(stop.Result.State, Is.EqualTo(VmState.Stopped));
                Assert.That(stop.Result.StopReason, Is.EqualTo(VmStopReason.StoppedByHost), vm.StopDetail);
                Assert.That(stop.Result.BackendName, Is.EqualTo(backend == VmBackend.Kvm ? "kvm" : "interpreter"));
            }
        }
        finally
        {
            driver.InvokeAsync(() => { vm.Dispose(); return 0; }).Wait(Bound);
        }
    }
}
