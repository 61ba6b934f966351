using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

/// <summary>What the host-CPU differential tests cannot hold the interpreter to: branches
/// (loop/loopcc), the stack (enter), and the faults an unmasked SIMD exception or a bad MXCSR raise.</summary>
public class CpuExtensionTests
{
    private sealed class NoDevices : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => false;
    }

    private static (Interpreter Cpu, GuestMemory Memory, VcpuExit Exit) Run(Action<Assembler> build)
    {
        var memory = new GuestMemory(4UL << 20);
        var cpu = new Interpreter(memory, new NoDevices());
        memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(build));
        cpu.Rip = Boot.ImageBase;
        cpu.SetRegister(Reg.Rsp, 0x30_0000);
        return (cpu, memory, cpu.Run(10_000));
    }

    [Test]
    public void Loop_counts_rcx_down_and_loopne_stops_at_a_match()
    {
        var (cpu, memory, exit) = Run(a =>
        {
            var top = a.CreateLabel();
            var scan = a.CreateLabel();
            a.mov(ecx, 5);
            a.xor(eax, eax);
            a.Label(ref top);
            a.add(eax, 10);
            a.loop(top);
            a.mov(r8, rax);
            // loopne: count rdx from 0 up until it equals 3, at most 10 times.
            a.mov(ecx, 10);
            a.xor(edx, edx);
            a.Label(ref scan);
            a.inc(edx);
            a.cmp(edx, 3);
            a.loopne(scan);
            a.hlt();
        });
        using (memory)
        using (cpu)
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt), exit.Detail);
            Assert.That(cpu.GetRegister(Reg.R8), Is.EqualTo(50UL));
            Assert.That(cpu.GetRegister(Reg.Rdx), Is.EqualTo(3UL));
            Assert.That(cpu.GetRegister(Reg.Rcx), Is.EqualTo(7UL));
        }
    }

    [Test]
    public void Enter_builds_a_frame_with_the_display_of_enclosing_frame_pointers()
    {
        var (cpu, memory, exit) = Run(a =>
        {
            a.mov(rbp, 0x2F_0000UL);
            a.mov(__qword_ptr[rbp - 8], 0x1111);
            a.enter(32, 2);
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            var stack = new byte[32];
            memory.TryRead(0x30_0000 - 24, stack);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt), exit.Detail);
                // push rbp; push [rbp-8] (level 2 copies one enclosing pointer); push the new frame.
                Assert.That(BitConverter.ToUInt64(stack, 16), Is.EqualTo(0x2F_0000UL));
                Assert.That(BitConverter.ToUInt64(stack, 8), Is.EqualTo(0x1111UL));
                Assert.That(BitConverter.ToUInt64(stack, 0), Is.EqualTo(0x30_0000UL - 8));
                Assert.That(cpu.GetRegister(Reg.Rbp), Is.EqualTo(0x30_0000UL - 8));
                Assert.That(cpu.GetRegister(Reg.Rsp), Is.EqualTo(0x30_0000UL - 24 - 32));
            }
        }
    }

    [Test]
    public void An_unmasked_divide_by_zero_stops_with_xm_and_writes_nothing()
    {
        var (cpu, memory, exit) = Run(a =>
        {
            a.mov(eax, 0x1F80 & ~0x200); // ZM (bit 9) clear
            a.mov(__dword_ptr[0x1000], eax);
            a.ldmxcsr(__dword_ptr[0x1000]);
            a.mov(rax, 0x3FF0_0000_0000_0000UL);
            a.movq(xmm0, rax);
            a.pxor(xmm1, xmm1);
            a.divsd(xmm0, xmm1);
            a.hlt();
        });
        using (memory)
        using (cpu)
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Fault));
            Assert.That(exit.Detail, Does.StartWith("#XM"));
            Assert.That(cpu.GetXmm(0).Low, Is.EqualTo(0x3FF0_0000_0000_0000UL));
            Assert.That(cpu.Mxcsr & 0x3F, Is.Zero);
        }
    }

    [Test]
    public void Ldmxcsr_with_reserved_bits_is_a_general_protection_fault_and_stmxcsr_reads_it_back()
    {
        var (cpu, memory, exit) = Run(a =>
        {
            a.mov(__dword_ptr[0x1000], 0x7F80 | 0x40);
            a.ldmxcsr(__dword_ptr[0x1000]);
            a.stmxcsr(__dword_ptr[0x1004]);
            a.mov(r8d, __dword_ptr[0x1004]);
            a.mov(__dword_ptr[0x1000], 0x10000);
            a.ldmxcsr(__dword_ptr[0x1000]);
            a.hlt();
        });
        using (memory)
        using (cpu)
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cpu.GetRegister(Reg.R8), Is.EqualTo((ulong)(0x7F80 | 0x40)));
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Fault));
            Assert.That(exit.Detail, Does.StartWith("#GP"));
        }
    }

    [Test]
    public void Fxsave_stores_the_legacy_layout_and_fxrstor_brings_it_back()
    {
        var (cpu, memory, exit) = Run(a =>
        {
            a.fninit();
            a.mov(__dword_ptr[0x1000], 0x3F80);
            a.ldmxcsr(__dword_ptr[0x1000]);
            a.mov(rax, 0x1122_3344_5566_7788UL);
            a.movq(xmm3, rax);
            a.fxsave(__[0x2000]);
            a.pxor(xmm3, xmm3);
            a.mov(__dword_ptr[0x1000], 0x1F80);
            a.ldmxcsr(__dword_ptr[0x1000]);
            a.fxrstor(__[0x2000]);
            a.movq(r8, xmm3);
            a.stmxcsr(__dword_ptr[0x1004]);
            a.mov(r9d, __dword_ptr[0x1004]);
            a.fxsave(__[0x2008]);
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            var area = new byte[512];
            memory.TryRead(0x2000, area);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(BitConverter.ToUInt16(area, 0), Is.EqualTo((ushort)0x37F), "FCW after fninit");
                Assert.That(BitConverter.ToUInt16(area, 2), Is.Zero, "FSW");
                Assert.That(area[4], Is.Zero, "abridged tag: all empty");
                Assert.That(BitConverter.ToUInt32(area, 24), Is.EqualTo(0x3F80u), "MXCSR");
                Assert.That(BitConverter.ToUInt32(area, 28), Is.EqualTo(0xFFFFu), "MXCSR_MASK");
                Assert.That(BitConverter.ToUInt64(area, 160 + 3 * 16), Is.EqualTo(0x1122_3344_5566_7788UL), "XMM3");
                Assert.That(cpu.GetRegister(Reg.R8), Is.EqualTo(0x1122_3344_5566_7788UL));
                Assert.That(cpu.GetRegister(Reg.R9), Is.EqualTo(0x3F80UL));
                Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Fault), "a misaligned fxsave");
                Assert.That(exit.Detail, Does.StartWith("#GP"));
            }
        }
    }

    [Test]
    public void Xsave_and_xrstor_keep_the_x87_and_sse_components_xcr0_enables()
    {
        var (cpu, memory, exit) = Run(a =>
        {
            a.xor(ecx, ecx);
            a.xgetbv();
            a.mov(r10, rax);
            a.mov(eax, 3);
            a.xor(edx, edx);
            a.xsetbv();
            a.mov(rax, 0x55UL);
            a.movq(xmm1, rax);
            a.mov(eax, 3);
            a.xsave(__[0x3000]);
            a.mov(r8, __qword_ptr[0x3000 + 512]);
            // Restore with SSE marked not in use: XMM registers return to zero.
            a.mov(__qword_ptr[0x3000 + 512], 1);
            a.mov(eax, 3);
            a.xrstor(__[0x3000]);
            a.movq(r9, xmm1);
            a.mov(eax, 7);
            a.xor(ecx, ecx);
            a.xsetbv();
            a.hlt();
        });
        using (memory)
        using (cpu)
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cpu.GetRegister(Reg.R10), Is.EqualTo(1UL), "XCR0 at reset: x87");
            Assert.That(cpu.GetRegister(Reg.R8), Is.EqualTo(3UL), "XSTATE_BV");
            Assert.That(cpu.GetRegister(Reg.R9), Is.Zero);
            Assert.That(cpu.Xcr0, Is.EqualTo(3UL));
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Fault), "AVX is not supported");
            Assert.That(exit.Detail, Does.StartWith("#GP"));
        }
    }

    [Test]
    public void Fldcw_fnstcw_and_fnstsw_move_the_x87_control_and_status_words()
    {
        var (cpu, memory, exit) = Run(a =>
        {
            a.fninit();
            a.mov(__word_ptr[0x1000], 0x0C7F);
            a.fldcw(__word_ptr[0x1000]);
            a.fnstcw(__word_ptr[0x1002]);
            a.movzx(r8d, __word_ptr[0x1002]);
            a.mov(eax, 0xFFFF_FFFF);
            a.fnstsw(ax);
            a.hlt();
        });
        using (memory)
        using (cpu)
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt), exit.Detail);
            Assert.That(cpu.GetRegister(Reg.R8), Is.EqualTo(0x0C7FUL));
            Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(0xFFFF_0000UL));
        }
    }

    [Test]
    public void Rdrand_and_rdseed_draw_from_the_seeded_source_and_set_only_cf()
    {
        ulong[] Draw(ulong seed)
        {
            using var memory = new GuestMemory(4UL << 20);
            using var cpu = new Interpreter(memory, new NoDevices()) { Random = new SmartOS.Kernel.HostRandom(seed) };
            memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(a =>
            {
                a.rdrand(r8);
                a.rdseed(r9d);
                a.pushfq();
                a.pop(r10);
                a.mov(eax, 1);
                a.cpuid();
                a.hlt();
            }));
            cpu.Rip = Boot.ImageBase;
            cpu.SetRegister(Reg.Rsp, 0x30_0000);
            cpu.Rflags = 0x8D5;
            cpu.Run(100);
            return [cpu.GetRegister(Reg.R8), cpu.GetRegister(Reg.R9), cpu.GetRegister(Reg.R10) & 0x8D5, cpu.GetRegister(Reg.Rcx) >> 30 & 1];
        }
        var expected = new SmartOS.Kernel.HostRandom(42);
        ulong first = expected.NextUInt64(), second = expected.NextUInt64() & 0xFFFF_FFFF;
        var (noSource, memory2, exit) = Run(a => a.rdrand(rax));
        using (memory2)
        using (noSource)
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Draw(42), Is.EqualTo(new ulong[] { first, second, 1, 1 }));
            Assert.That(Draw(43), Is.Not.EqualTo(Draw(42)));
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Unimplemented), "no source: no rdrand");
        }
    }

    [Test]
    public void Rdtscp_reads_the_tsc_and_tsc_aux()
    {
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices()) { TscAux = 7, TscBase = 1000 };
        memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(a => { a.nop(); a.rdtscp(); a.hlt(); }));
        cpu.Rip = Boot.ImageBase;
        cpu.Run(10);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(cpu.GetRegister(Reg.Rcx), Is.EqualTo(7UL));
            Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(1002UL));
            Assert.That(cpu.GetRegister(Reg.Rdx), Is.Zero);
        }
    }
}
