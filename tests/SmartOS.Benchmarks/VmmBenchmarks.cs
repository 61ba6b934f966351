using System.Buffers.Binary;
using System.Diagnostics;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Virt;
using SmartOS.Vnic;

namespace SmartOS.Benchmarks;

/// <summary>
/// Interpreter speed on a CPU-bound C guest (virt/guests/sieve.c at -O2): instructions retired
/// per second of wall time with paging on, goal above 200 million (issue 18), without and with block
/// translation (virt/Interpreter.Blocks.cs; goal 500 million). Beside it the same guest under KVM when
/// /dev/kvm is usable; and the wall time of a ping from a MAC client to the netecho guest across an
/// etherstub (virtual time, interpreter). Needs gcc to build the guests.
/// </summary>
public static class VmmBenchmarks
{
    public static void Run(TextWriter o)
    {
        string guests = Path.Combine(AppContext.BaseDirectory, "guests");
        foreach (int opt in new[] { 2, 0 })
        {
            if (!GuestCompiler.TryBuild(guests, "sieve.c", opt, ["N=1000000", "ROUNDS=16"], out var image, out string error))
            {
                o.WriteLine($"vmm: skipped, the guest does not build: {error}");
                return;
            }
            // Without and with block translation (Interpreter.Blocks.cs); the issue's goal is 500 M/s with it.
            foreach (bool translate in new[] { false, true })
            {
                // A warm-up run lets the JIT reach its optimized code before the measured ones.
                RunOnce(image, VmBackend.Interpreter, out _, out _, out _, translate);
                double best = 0;
                long instructions = 0;
                string console = "";
                bool paging = false;
                for (int i = 0; i < 3; i++)
                {
                    var (seconds, vm) = RunOnce(image, VmBackend.Interpreter, out instructions, out console, out paging, translate);
                    if (vm.StopReason != VmStopReason.PoweredOff) { o.WriteLine($"vmm: guest stopped early: {vm.StopReason} {vm.StopDetail}"); return; }
                    best = Math.Max(best, instructions / seconds);
                }
                o.WriteLine($"vmm interpreter{(translate ? " + block translation" : "")}: sieve.c -O{opt}, {instructions:N0} instructions, {best / 1e6:F1} M instructions/s (best of 3), paging {(paging ? "on (2 MiB pages through the software TLB)" : "off")}; console: {console.Trim()}");
            }
            if (Vm.KvmAvailable(out string why))
            {
                var (seconds, vm) = RunOnce(image, VmBackend.Kvm, out _, out string kvmConsole);
                o.WriteLine($"vmm kvm: sieve.c -O{opt} in {seconds * 1000:F1} ms ({vm.StopReason}); console: {kvmConsole.Trim()}");
            }
            else if (opt == 2)
            {
                o.WriteLine($"vmm kvm: not measured, {why}");
            }
        }
        Ping(o, guests);
    }

    private sealed class Replies : IMacReceiver
    {
        public long Count;
        public void Receive(MacClient client, Packet packet)
        {
            Count++;
            packet.Free();
        }
    }

    private static void Ping(TextWriter o, string guests)
    {
        if (!GuestCompiler.TryBuild(guests, "netecho.c", 2, [], out var image, out string error))
        {
            o.WriteLine($"vmm ping: skipped, the guest does not build: {error}");
            return;
        }
        var scheduler = new Scheduler();
        var pool = new PacketPool();
        var mac = new MacLayer("bench", scheduler, pool, new KstatRegistry(), new HostRandom(1));
        mac.CreateEtherstub("stub0", temporary: true);
        var guestMac = new MacAddress(0x02_00_00_00_00_02);
        mac.CreateVnic("vm0", "stub0", new MacLayer.MacRequest(MacAddressType.Fixed, guestMac), 0, true, out var g);
        mac.CreateVnic("zone0", "stub0", new MacLayer.MacRequest(MacAddressType.Fixed, new MacAddress(0x02_00_00_00_00_01)), 0, true, out var z);
        var zone = z!.OpenClient("bench")!;
        var replies = new Replies();
        zone.Receiver = replies;
        using var vm = new Vm(scheduler, new VmConfig { Image = image, Backend = VmBackend.Interpreter, MemorySize = 8UL << 20 });
        vm.AttachNic(g!.OpenClient("vm")!);
        vm.Start();
        scheduler.RunUntil(() => vm.ConsoleOutput.Contains("net up", StringComparison.Ordinal) || vm.IsStopped, Time.Second);

        // An ICMP echo request from 10.0.0.1 to the guest's 10.0.0.2 with 56 bytes of data (ping's default).
        var frame = new byte[14 + 20 + 8 + 56];
        guestMac.Write(frame);
        new MacAddress(0x02_00_00_00_00_01).Write(frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        Ipv4View.Write(frame.AsSpan(14), 0x0A00_0001, 0x0A00_0002, 1, 64);
        frame[34] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(36), Checksum.Compute(frame.AsSpan(34)));
        const int pings = 2000;
        long instructions = vm.InstructionsRetired;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < pings; i++)
        {
            long want = replies.Count + 1;
            zone.Transmit(pool.Rent(frame)!);
            scheduler.RunUntil(() => replies.Count >= want || vm.IsStopped, scheduler.Now + Time.Second);
        }
        sw.Stop();
        if (replies.Count != pings) { o.WriteLine($"vmm ping: {replies.Count} of {pings} answered ({vm.StopReason} {vm.StopDetail})"); return; }
        o.WriteLine($"vmm ping: zone MAC client -> netecho guest (interpreter) over an etherstub: {sw.Elapsed.TotalMicroseconds / pings:F1} us wall per round trip, {(vm.InstructionsRetired - instructions) / pings} guest instructions per echo");
    }

    private static (double Seconds, Vm Vm) RunOnce(byte[] image, VmBackend backend, out long instructions, out string console)
        => RunOnce(image, backend, out instructions, out console, out _);

    /// <param name="paging">whether the guest ran with CR0.PG set (the boot protocol's identity map
    /// of 2 MiB pages, every access translated through the software TLB)</param>
    private static (double Seconds, Vm Vm) RunOnce(byte[] image, VmBackend backend, out long instructions, out string console, out bool paging, bool? translate = null)
    {
        var scheduler = new Scheduler();
        var vm = new Vm(scheduler, new VmConfig { Image = image, Backend = backend, MemorySize = 16UL << 20, SliceInstructions = 10_000_000, TranslateBlocks = translate });
        var sw = Stopwatch.StartNew();
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped);
        sw.Stop();
        instructions = vm.InstructionsRetired;
        console = vm.ConsoleOutput;
        paging = vm.Vcpu is Interpreter cpu && (cpu.Cr0 & (1UL << 31)) != 0;
        vm.Dispose();
        return (sw.Elapsed.TotalSeconds, vm);
    }
}
