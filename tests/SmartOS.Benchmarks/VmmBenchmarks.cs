using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Virt;

namespace SmartOS.Benchmarks;

/// <summary>
/// Interpreter speed on a CPU-bound C guest (virt/guests/sieve.c at -O2): instructions retired
/// per second of wall time, goal above 100 million. Beside it the same guest under KVM when
/// /dev/kvm is usable. Needs gcc to build the guest.
/// </summary>
public static class VmmBenchmarks
{
    public static void Run(TextWriter o)
    {
        string guests = Path.Combine(AppContext.BaseDirectory, "guests");
        if (!GuestCompiler.TryBuild(guests, "sieve.c", 2, ["N=1000000", "ROUNDS=16"], out var image, out string error))
        {
            o.WriteLine($"vmm: skipped, the guest does not build: {error}");
            return;
        }
        // A warm-up run lets the JIT reach its optimized code before the measured ones.
        RunOnce(image, VmBackend.Interpreter, out _, out _);
        double best = 0;
        long instructions = 0;
        string console = "";
        for (int i = 0; i < 3; i++)
        {
            var (seconds, vm) = RunOnce(image, VmBackend.Interpreter, out instructions, out console);
            if (vm.StopReason != VmStopReason.PoweredOff) { o.WriteLine($"vmm: guest stopped early: {vm.StopReason} {vm.StopDetail}"); return; }
            best = Math.Max(best, instructions / seconds);
        }
        o.WriteLine($"vmm interpreter: sieve.c -O2, {instructions:N0} instructions, {best / 1e6:F1} M instructions/s (best of 3); console: {console.Trim()}");
        if (Vm.KvmAvailable(out string why))
        {
            var (seconds, vm) = RunOnce(image, VmBackend.Kvm, out _, out console);
            o.WriteLine($"vmm kvm: sieve.c -O2 in {seconds * 1000:F1} ms ({vm.StopReason}); console: {console.Trim()}");
        }
        else
        {
            o.WriteLine($"vmm kvm: not measured, {why}");
        }
    }

    private static (double Seconds, Vm Vm) RunOnce(byte[] image, VmBackend backend, out long instructions, out string console)
    {
        var scheduler = new Scheduler();
        var vm = new Vm(scheduler, new VmConfig { Image = image, Backend = backend, MemorySize = 16UL << 20, SliceInstructions = 10_000_000 });
        var sw = Stopwatch.StartNew();
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped);
        sw.Stop();
        instructions = vm.InstructionsRetired;
        console = vm.ConsoleOutput;
        vm.Dispose();
        return (sw.Elapsed.TotalSeconds, vm);
    }
}
