using System.Buffers.Binary;
using System.Text;
using Iced.Intel;
using SmartOS.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

/// <summary>
/// The Linux boot protocol: bzImage header parsing (a synthetic header, and Debian's kernel where
/// virt/guests/linux/build.sh has built it or /boot has one), the zero page and e820 map at the
/// protocol's offsets, refused kernels, and the 64-bit entry state.
/// </summary>
public class LinuxBootTests
{
    private const ulong Load = 0x100_0000;

    /// <summary>A bzImage with one setup sector and <paramref name="code"/> at startup_64 (+0x200).</summary>
    internal static byte[] SyntheticKernel(byte[]? code = null, ushort protocol = 0x020F, ushort xloadflags = 3, uint initSize = 0x40_0000, byte loadflags = 1, ulong pref = Load)
    {
        code ??= [0xF4];
        int payload = 0x200 + code.Length;
        payload = (payload + 15) & ~15;
        var f = new byte[0x400 + payload];
        f[0x1F1] = 1;                                                              // setup_sects
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x1F4), (uint)(payload / 16)); // syssize
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x1FE), 0xAA55);
        f[0x200] = 0xEB; f[0x201] = 0x6A;                                          // jump: the header ends at 0x26C
        Encoding.ASCII.GetBytes("HdrS").CopyTo(f, 0x202);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x206), protocol);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x20E), 0x100);          // kernel_version at 0x300
        Encoding.ASCII.GetBytes("6.1.0-synthetic (test) #1\0").CopyTo(f, 0x300);
        f[0x211] = loadflags;
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x22C), 0x7FFF_FFFF);    // initrd_addr_max
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x230), 0x20_0000);      // kernel_alignment
        f[0x234] = 1;                                                              // relocatable
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x236), xloadflags);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x238), 2047);           // cmdline_size
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(0x258), pref);           // pref_address
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x260), initSize);
        f.AsSpan(0x400, 0x200).Fill(0xCC);                                         // startup_32: never entered
        code.CopyTo(f, 0x600);
        return f;
    }

    [Test]
    public void A_synthetic_header_parses_field_by_field()
    {
        var k = BzImage.Parse(SyntheticKernel(), out string error);
        Assert.That(k, Is.Not.Null, error);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(k!.ProtocolText, Is.EqualTo("2.15"));
            Assert.That(k.SetupSects, Is.EqualTo(1));
            Assert.That(k.PayloadOffset, Is.EqualTo(0x400));
            Assert.That(k.PayloadLength, Is.EqualTo(0x210));
            Assert.That(k.PrefAddress, Is.EqualTo(Load));
            Assert.That(k.InitSize, Is.EqualTo(0x40_0000u));
            Assert.That(k.KernelAlignment, Is.EqualTo(0x20_0000u));
            Assert.That(k.CmdlineSize, Is.EqualTo(2047u));
            Assert.That(k.Relocatable, Is.True);
            Assert.That(k.XLoadFlags & BzImage.XlfKernel64, Is.EqualTo(1));
            Assert.That(k.HeaderEnd, Is.EqualTo(0x26C));
            Assert.That(k.KernelVersion, Is.EqualTo("6.1.0-synthetic (test) #1"));
        }
        // setup_sects 0 means 4.
        var f = SyntheticKernel();
        f[0x1F1] = 0;
        Assert.That(BzImage.Parse(f, out _)?.SetupSects, Is.Null.Or.EqualTo(4));
    }

    [Test]
    public void The_zero_page_has_the_header_the_loader_fields_and_the_e820_map_at_the_protocols_offsets()
    {
        var file = SyntheticKernel();
        using var memory = new GuestMemory(64UL << 20);
        var initrd = Enumerable.Range(0, 10000).Select(i => (byte)i).ToArray();
        var p = LinuxBoot.TryLoad(memory, file, initrd, "console=ttyS0 quiet", out string error);
        Assert.That(p, Is.Not.Null, error);
        var z = new byte[4096];
        memory.TryRead(LinuxBoot.ZeroPageAddress, z);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Encoding.ASCII.GetString(z, 0x202, 4), Is.EqualTo("HdrS"), "the setup header is copied at 0x1F1");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(z.AsSpan(0x206)), Is.EqualTo(0x020F));
            Assert.That(z[0x1F1], Is.EqualTo(1), "setup_sects");
            Assert.That(z[0x210], Is.EqualTo(0xFF), "type_of_loader: undefined");
            Assert.That(z[0x211] & 1, Is.EqualTo(1), "loadflags: LOADED_HIGH");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(0x214)), Is.EqualTo((uint)Load), "code32_start");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(0x228)), Is.EqualTo((uint)LinuxBoot.CmdlineAddress), "cmd_line_ptr");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(0x218)), Is.EqualTo((uint)p!.InitrdAddress), "ramdisk_image");
            Assert.That(BinaryPrimitives.ReadUInt32LittleEndian(z.AsSpan(0x21C)), Is.EqualTo(10000u), "ramdisk_size");
            Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(z.AsSpan(0x070)), Is.EqualTo(LinuxBoot.BiosAreaAddress), "acpi_rsdp_addr");
            Assert.That(z[0x1EF], Is.Zero, "sentinel");
            Assert.That(p.EntryPoint, Is.EqualTo(Load + 0x200));
            Assert.That(p.InitrdAddress % 4096, Is.Zero);
            Assert.That(p.InitrdAddress + 10000, Is.LessThanOrEqualTo(64UL << 20));
            Assert.That(p.InitrdAddress, Is.GreaterThan((64UL << 20) - 0x4000), "as high as RAM allows");
        }
        Assert.That(z[0x1E8], Is.EqualTo(6), "e820_entries");
        var expected = new (ulong, ulong, uint)[]
        {
            (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xE0000, 0x20000, 2), (0x100000, (64UL << 20) - 0x100000, 1),
            (0xFEC00000, 0x1000, 2), (0xFEE00000, 0x1000, 2),
        };
        for (int i = 0; i < expected.Length; i++)
        {
            var e = z.AsSpan(0x2D0 + 20 * i);
            Assert.That((BinaryPrimitives.ReadUInt64LittleEndian(e), BinaryPrimitives.ReadUInt64LittleEndian(e[8..]), BinaryPrimitives.ReadUInt32LittleEndian(e[16..])),
                Is.EqualTo(expected[i]), $"e820 entry {i}");
        }
        var line = new byte[20];
        memory.TryRead(LinuxBoot.CmdlineAddress, line);
        Assert.That(Encoding.ASCII.GetString(line), Is.EqualTo("console=ttyS0 quiet\0"));
        var back = new byte[10000];
        memory.TryRead(p.InitrdAddress, back);
        Assert.That(back, Is.EqualTo(initrd));
        var kernel = new byte[0x210];
        memory.TryRead(Load, kernel);
        Assert.That(kernel, Is.EqualTo(file.AsSpan(0x400, 0x210).ToArray()), "the protected-mode kernel at pref_address");
        var gdt = new byte[32];
        memory.TryRead(LinuxBoot.GdtAddress, gdt);
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(gdt.AsSpan(0x10)), Is.EqualTo(0x00AF_9A00_0000_FFFFUL), "__BOOT_CS: 64-bit code");
        Assert.That(BinaryPrimitives.ReadUInt64LittleEndian(gdt.AsSpan(0x18)), Is.EqualTo(0x00CF_9200_0000_FFFFUL), "__BOOT_DS: flat data");
    }

    private static readonly object[] s_bad =
    [
        new object[] { "elf", "not a bzImage: no Linux boot protocol header (boot flag 0xAA55 and \"HdrS\")" },
        new object[] { "old", "Linux boot protocol 2.10 is older than 2.12, the oldest with a 64-bit entry" },
        new object[] { "no64", "the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)" },
        new object[] { "zimage", "the kernel is a zImage (loaded low): only a bzImage boots here" },
        new object[] { "short", "the bzImage is cut short: 1024 bytes, the header says 1552" },
        new object[] { "huge", "the kernel needs 512 MiB from 0x1000000 (init_size) and guest memory ends at 0x4000000" },
        new object[] { "initrd", "the initrd of 63 MiB does not fit between the kernel (which ends at 0x1400000) and 0x4000000" },
        new object[] { "cmdline", "the command line of 3000 bytes is longer than the kernel takes (2047 bytes)" },
    ];

    [TestCaseSource(nameof(s_bad))]
    public void A_bad_kernel_is_refused_with_a_clear_message_and_memory_untouched(string what, string message)
    {
        byte[] file = what switch
        {
            "elf" => [0x7F, (byte)'E', (byte)'L', (byte)'F', .. new byte[4096]],
            "old" => SyntheticKernel(protocol: 0x020A),
            "no64" => SyntheticKernel(xloadflags: 0),
            "zimage" => SyntheticKernel(loadflags: 0),
            "short" => SyntheticKernel()[..1024],
            "huge" => SyntheticKernel(initSize: 512u << 20),
            _ => SyntheticKernel(),
        };
        byte[] initrd = what == "initrd" ? new byte[63 << 20] : [];
        string cmdline = what == "cmdline" ? new string('x', 3000) : "";
        using var memory = new GuestMemory(64UL << 20);
        Assert.That(LinuxBoot.TryLoad(memory, file, initrd, cmdline, out string error), Is.Null);
        Assert.That(error, Is.EqualTo(message));
        var page = new byte[4096];
        foreach (ulong at in new[] { LinuxBoot.GdtAddress, Boot.Pml4Address, LinuxBoot.ZeroPageAddress, LinuxBoot.BiosAreaAddress, Load })
        {
            memory.TryRead(at, page);
            Assert.That(page, Is.All.Zero, $"nothing written at 0x{at:x}");
        }
    }

    [Test]
    public void Ram_over_the_pci_hole_or_too_small_is_refused()
    {
        using var small = new GuestMemory(16UL << 20);
        Assert.That(LinuxBoot.TryLoad(small, SyntheticKernel(), [], "", out string error), Is.Null);
        Assert.That(error, Is.EqualTo("guest memory of 16 MiB is too small for Linux (at least 32 MiB)"));
        using var big = new GuestMemory(3UL << 30 | 1UL << 20);
        Assert.That(LinuxBoot.TryLoad(big, SyntheticKernel(), [], "", out error), Is.Null);
        Assert.That(error, Is.EqualTo("guest memory of 3073 MiB would cover the PCI hole at 0xc0000000 (at most 3072 MiB)"));
    }

    [Test]
    public void The_vm_enters_startup_64_with_rsi_at_the_zero_page_and_interrupts_off()
    {
        // startup_64 of this kernel: prints "HdrS" from the zero page and the command line it points
        // to, then powers off with the e820 entry count and whether IF was clear.
        var code = GuestRunner.Assemble(a =>
        {
            var loop = a.CreateLabel();
            var done = a.CreateLabel();
            a.mov(rbx, rsi);
            a.mov(dx, Devices.Uart16550.Com1);
            for (int i = 0; i < 4; i++) { a.mov(al, __byte_ptr[rbx + 0x202 + i]); a.@out(dx, al); }
            a.mov(al, (byte)' '); a.@out(dx, al);
            a.mov(ecx, __dword_ptr[rbx + 0x228]);
            a.Label(ref loop);
            a.mov(al, __byte_ptr[rcx]);
            a.test(al, al);
            a.jz(done);
            a.@out(dx, al);
            a.inc(rcx);
            a.jmp(loop);
            a.Label(ref done);
            a.pushfq();
            a.pop(rax);
            a.and(eax, 0x200);
            a.movzx(ecx, __byte_ptr[rbx + 0x1E8]);
            a.or(eax, ecx);
            a.mov(dx, Vm.PowerOffPort);
            a.@out(dx, eax);
            a.hlt();
        }, Load + 0x200);
        var scheduler = new Scheduler();
        using var vm = new Vm(scheduler, new VmConfig
        {
            Kernel = SyntheticKernel(code), Initrd = [1, 2, 3], Cmdline = "console=ttyS0 smartos.ip=10.0.0.2/24",
            MemorySize = 64UL << 20, Backend = VmBackend.Interpreter, InstructionLimit = 100_000,
        });
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped, scheduler.Now + Time.Second);
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), vm.StopDetail);
        Assert.That(vm.ConsoleOutput, Is.EqualTo("HdrS console=ttyS0 smartos.ip=10.0.0.2/24"));
        Assert.That(vm.ExitStatus, Is.EqualTo(6UL), "six e820 entries, IF clear");
        Assert.That(vm.Pci, Is.Not.Null, "a kernel's devices are on PCI");
        Assert.That(vm.LinuxPlacement!.EntryPoint, Is.EqualTo(Load + 0x200));
        var cpu = (Interpreter)vm.Vcpu!;
        // The protocol's selectors: __BOOT_CS 0x10 and __BOOT_DS 0x18 (an iretq pops the SS entered with).
        Assert.That(Enumerable.Range(0, 6).Select(cpu.GetSelector), Is.EqualTo(new ushort[] { 0x18, 0x10, 0x18, 0x18, 0x18, 0x18 }));
    }

    /// <summary>A Linux guest asked to run under KVM goes to KVM (its interrupts injected by KvmVcpu);
    /// here, without /dev/kvm, it stops at start with KVM's own reason. Auto keeps it on the
    /// interpreter even in real time.</summary>
    [Test]
    public void A_linux_guest_goes_to_kvm_only_when_asked_and_auto_runs_it_on_the_interpreter()
    {
        var scheduler = new Scheduler();
        using var kvm = new Vm(scheduler, new VmConfig { Kernel = SyntheticKernel(), MemorySize = 64UL << 20, Backend = VmBackend.Kvm });
        kvm.Start();
        using var auto = new Vm(scheduler, new VmConfig { Kernel = SyntheticKernel(), MemorySize = 64UL << 20, Backend = VmBackend.Auto, RealTime = true, InstructionLimit = 1000 });
        auto.Start();
        scheduler.RunUntil(() => auto.IsStopped && kvm.IsStopped, scheduler.Now + Time.Second);
        using (Assert.EnterMultipleScope())
        {
            if (!Vm.KvmAvailable(out string why))
            {
                Assert.That(kvm.StopReason, Is.EqualTo(VmStopReason.BackendError));
                Assert.That(kvm.StopDetail, Is.EqualTo("kvm: " + why), "KVM's own reason, not a refusal of the PC platform");
            }
            else
            {
                Assert.That(kvm.BackendName, Is.EqualTo("kvm"));
            }
            Assert.That(auto.BackendName, Is.EqualTo("interpreter"));
            Assert.That(auto.StopReason, Is.EqualTo(VmStopReason.Halted), auto.StopDetail);
        }
    }

    [Test]
    public void A_vm_with_a_bad_kernel_stops_at_start_with_the_reason()
    {
        var scheduler = new Scheduler();
        using var vm = new Vm(scheduler, new VmConfig { Kernel = SyntheticKernel(protocol: 0x0204), MemorySize = 64UL << 20, Backend = VmBackend.Interpreter });
        vm.Start();
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.BackendError));
        Assert.That(vm.StopDetail, Is.EqualTo("Linux boot protocol 2.04 is older than 2.12, the oldest with a 64-bit entry"));
    }

    /// <summary>Debian's kernel and the initramfs of virt/guests/linux/build.sh: the directory named by
    /// SMARTOS_LINUX_GUEST (what .ci/run builds), else an installed /boot/vmlinuz-*.</summary>
    internal static (byte[] Kernel, byte[]? Initrd) RealKernel()
    {
        string? dir = Environment.GetEnvironmentVariable("SMARTOS_LINUX_GUEST");
        if (dir != null && File.Exists(Path.Combine(dir, "vmlinuz")))
        {
            string initrd = Path.Combine(dir, "initrd.img");
            return (File.ReadAllBytes(Path.Combine(dir, "vmlinuz")), File.Exists(initrd) ? File.ReadAllBytes(initrd) : null);
        }
        var installed = Directory.Exists("/boot") ? Directory.GetFiles("/boot", "vmlinuz-*").Order(StringComparer.Ordinal).LastOrDefault() : null;
        if (installed == null) Assert.Ignore("no Linux kernel: run virt/guests/linux/build.sh DIR and set SMARTOS_LINUX_GUEST=DIR (or install linux-image-cloud-amd64)");
        return (File.ReadAllBytes(installed!), null);
    }

    [Test]
    public void Debians_kernel_parses_as_a_64_bit_relocatable_bzimage()
    {
        var (kernel, _) = RealKernel();
        var k = BzImage.Parse(kernel, out string error);
        Assert.That(k, Is.Not.Null, error);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(k!.Protocol, Is.GreaterThanOrEqualTo((ushort)0x020C));
            Assert.That(k.XLoadFlags & BzImage.XlfKernel64, Is.EqualTo(1));
            Assert.That(k.Relocatable, Is.True);
            Assert.That(k.PrefAddress, Is.EqualTo(0x100_0000UL), "16 MiB, as x86-64 kernels prefer");
            Assert.That(k.KernelAlignment, Is.EqualTo(0x20_0000u));
            Assert.That(k.InitSize, Is.GreaterThan((uint)k.PayloadLength));
            Assert.That(k.CmdlineSize, Is.GreaterThanOrEqualTo(2047u));
            Assert.That(k.KernelVersion, Does.Match(@"^\d+\.\d+\.\d+-"));
        }
        TestContext.Out.WriteLine($"protocol {k.ProtocolText}, {k.KernelVersion}, payload {k.PayloadLength} bytes, init_size {k.InitSize}");
    }

    // Debian's kernel booted to its shell, its eth0 pinged and its console compared across two runs:
    // through vmadm in tests/SmartOS.Cli.Tests/Scenario/LinuxVmScenarioTests.cs (examples/linux-vm.scn),
    // the one Linux boot in CI.
}
