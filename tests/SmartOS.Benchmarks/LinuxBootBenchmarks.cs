using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Virt;

namespace SmartOS.Benchmarks;

/// <summary>
/// The Linux boot (issue 18): Debian's kernel and the initramfs of virt/guests/linux/build.sh (the
/// directory SMARTOS_LINUX_GUEST names) on the interpreter in virtual time, up to 10^10 instructions
/// or the initramfs's marker. Prints the wall time, the instructions retired, how far the console
/// got and why the VM stopped: until the interpreter runs the whole boot, this measures how far it gets.
/// </summary>
public static class LinuxBootBenchmarks
{
    public static void Run(TextWriter o)
    {
        string? dir = Environment.GetEnvironmentVariable("SMARTOS_LINUX_GUEST");
        if (dir == null || !File.Exists(Path.Combine(dir, "vmlinuz")))
        {
            o.WriteLine("linux: skipped, set SMARTOS_LINUX_GUEST to a directory virt/guests/linux/build.sh made");
            return;
        }
        var scheduler = new Scheduler();
        string initrd = Path.Combine(dir, "initrd.img");
        using var vm = new Vm(scheduler, new VmConfig
        {
            Name = "linux", Kernel = File.ReadAllBytes(Path.Combine(dir, "vmlinuz")),
            Initrd = File.Exists(initrd) ? File.ReadAllBytes(initrd) : null,
            Cmdline = "console=ttyS0 earlyprintk=serial,ttyS0 smartos.ip=10.0.0.2/24",
            MemorySize = 256UL << 20, Backend = VmBackend.Interpreter, InstructionLimit = 10_000_000_000,
        });
        var wall = Stopwatch.StartNew();
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped || vm.ConsoleOutput.Contains("SMARTOS-LINUX-UP", StringComparison.Ordinal), scheduler.Now + 600 * Time.Second);
        wall.Stop();
        string console = vm.ConsoleOutput;
        // The whole console, for reading the boot: SMARTOS_LINUX_CONSOLE=FILE.
        if (Environment.GetEnvironmentVariable("SMARTOS_LINUX_CONSOLE") is { Length: > 0 } file) File.WriteAllText(file, console);
        string last = console.TrimEnd().Split('\n')[^1];
        string blocks = vm.Vcpu is Interpreter cpu
            ? cpu.TranslateBlocks ? $"; block translation on: {cpu.BlocksTranslated:N0} blocks, {cpu.BlockRuns:N0} runs, {cpu.BlocksInvalidated:N0} dropped" : "; block translation off"
            : "";
        o.WriteLine($"linux: {wall.Elapsed.TotalSeconds:F2} s wall, {vm.InstructionsRetired:N0} instructions, {console.Length} console bytes" +
            (last.Length > 0 ? $" (last line: {last})" : "") + $"; {(console.Contains("SMARTOS-LINUX-UP", StringComparison.Ordinal) ? "reached SMARTOS-LINUX-UP" : vm.IsStopped ? $"stopped: {vm.StopReason}: {vm.StopDetail}" : $"still running after {Time.FormatSeconds(scheduler.Now, 1)} s of guest time")}{blocks}");
    }
}
