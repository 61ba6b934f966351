using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

/// <summary>Interpreter behaviour the register-only differential tests cannot reach: string
/// instructions, SSE moves, the decode cache, time, cpuid and the exit shapes. Single instructions
/// (memory forms, partial registers, flags) are lines of Data/instruction-semantics.txt.</summary>
public class InterpreterTests
{
    private sealed class Recorder : IVcpuExitHandler
    {
        public readonly List<VcpuExit> Exits = new();
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit)
        {
            bool device = exit.Reason == VcpuExitReason.Mmio && exit.Address >= 0xD000_0000 && exit.Address < 0xD000_1000;
            if (device && !exit.IsWrite) exit.Data = 0x1122_3344_5566_7788UL;
            if (exit.Reason == VcpuExitReason.Io && !exit.IsWrite) exit.Data = 0xAB;
            Exits.Add(exit);
            return device || exit.Reason == VcpuExitReason.Io;
        }
    }

    private static (Interpreter Cpu, GuestMemory Memory, Recorder Exits) Load(Action<Assembler> build)
    {
        var memory = new GuestMemory(4UL << 20);
        var rec = new Recorder();
        var cpu = new Interpreter(memory, rec);
        memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(build));
        cpu.Rip = Boot.ImageBase;
        cpu.SetRegister(Reg.Rsp, 0x30_0000);
        return (cpu, memory, rec);
    }

    [Test]
    public void Port_io_and_mmio_leave_the_vcpu_in_kvm_exit_shapes()
    {
        var (cpu, memory, rec) = Load(a =>
        {
            a.mov(dx, 0x3F8);
            a.mov(al, 0x41);
            a.@out(dx, al);
            a.@in(al, dx);
            a.mov(rbx, 0xD000_0010UL);
            a.mov(__dword_ptr[rbx], 0x55);
            a.mov(rcx, __qword_ptr[rbx + 8]);
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            var exit = cpu.Run(1000);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt));
                Assert.That(rec.Exits.Select(e => e.ToString()), Is.EqualTo(new[]
                {
                    "io out port 0x3f8 size 1 data 0x41",
                    "io in port 0x3f8 size 1 data 0xab",
                    "mmio write 0xd0000010 size 4 data 0x55",
                    "mmio read 0xd0000018 size 8 data 0x1122334455667788",
                }));
                Assert.That(cpu.GetRegister(Reg.Rax) & 0xFF, Is.EqualTo(0xABUL));
                Assert.That(cpu.GetRegister(Reg.Rcx), Is.EqualTo(0x1122_3344_5566_7788UL));
            }
        }
    }

    [Test]
    public void Rep_string_instructions_copy_fill_compare_and_scan()
    {
        var (cpu, memory, _) = Load(a =>
        {
            a.cld();
            a.mov(rsi, 0x20_0000UL);
            a.mov(rdi, 0x21_0000UL);
            a.mov(ecx, 100);
            a.rep.movsb();
            a.mov(rdi, 0x22_0000UL);
            a.mov(eax, 0x5A5A5A5A);
            a.mov(ecx, 10);
            a.rep.stosd();
            a.mov(rsi, 0x20_0000UL);
            a.mov(rdi, 0x21_0000UL);
            a.mov(ecx, 100);
            a.repe.cmpsb();
            a.mov(r8, rcx);                               // 0: all equal
            a.mov(rdi, 0x20_0000UL);
            a.mov(al, 50);
            a.mov(ecx, 100);
            a.repne.scasb();
            a.mov(r9, rdi);                               // one past the byte 50
            a.std();
            a.mov(rsi, 0x20_0000UL + 3);
            a.lodsb();
            a.cld();
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            var src = new byte[100];
            for (int i = 0; i < src.Length; i++) src[i] = (byte)i;
            memory.TryWrite(0x20_0000, src);
            cpu.Run(1000);
            var copy = new byte[100];
            memory.TryRead(0x21_0000, copy);
            memory.TryReadUInt32(0x22_0000 + 36, out uint fill);
            memory.TryReadUInt32(0x22_0000 + 40, out uint past);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(copy, Is.EqualTo(src));
                Assert.That(fill, Is.EqualTo(0x5A5A5A5AU));
                Assert.That(past, Is.Zero);
                Assert.That(cpu.GetRegister(Reg.R8), Is.Zero);
                Assert.That(cpu.GetRegister(Reg.R9), Is.EqualTo(0x20_0000UL + 51));
                Assert.That(cpu.GetRegister(Reg.Rax) & 0xFF, Is.EqualTo(3UL));
                Assert.That(cpu.GetRegister(Reg.Rsi), Is.EqualTo(0x20_0000UL + 2));
            }
        }
    }

    [Test]
    public void Overlapping_rep_movsb_repeats_a_pattern_as_hardware_does()
    {
        var (cpu, memory, _) = Load(a =>
        {
            a.mov(rsi, 0x20_0000UL);
            a.mov(rdi, 0x20_0001UL);
            a.mov(ecx, 7);
            a.rep.movsb();
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            memory.TryWrite(0x20_0000, [9]);
            cpu.Run(100);
            var b = new byte[8];
            memory.TryRead(0x20_0000, b);
            Assert.That(b, Is.EqualTo(new byte[] { 9, 9, 9, 9, 9, 9, 9, 9 }));
        }
    }

    [Test]
    public void Sse_moves_copy_sixteen_bytes_and_misaligned_movdqa_faults()
    {
        var (cpu, memory, _) = Load(a =>
        {
            a.mov(rbx, 0x20_0000UL);
            a.movdqu(xmm1, __xmmword_ptr[rbx + 1]);
            a.movaps(__xmmword_ptr[rbx + 0x40], xmm1);
            a.pxor(xmm2, xmm2);
            a.movq(xmm3, rbx);
            a.movq(rax, xmm3);
            a.movd(xmm4, ebx);
            a.movq(__qword_ptr[rbx + 0x80], xmm1);
            a.movups(xmm5, __xmmword_ptr[rbx + 0x40]);
            a.movdqa(xmm6, __xmmword_ptr[rbx + 8]);
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            var src = new byte[17];
            for (int i = 0; i < src.Length; i++) src[i] = (byte)(i * 3);
            memory.TryWrite(0x20_0000, src);
            cpu.SetXmm(2, 0xFFFF, 0xFFFF);
            var exit = cpu.Run(100);
            var copy = new byte[16];
            memory.TryRead(0x20_0040, copy);
            memory.TryReadUInt64(0x20_0080, out ulong low);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(copy, Is.EqualTo(src[1..]));
                Assert.That(cpu.GetXmm(2), Is.EqualTo((0UL, 0UL)));
                Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(0x20_0000UL));
                Assert.That(cpu.GetXmm(4), Is.EqualTo((0x20_0000UL, 0UL)));
                Assert.That(low, Is.EqualTo(BitConverter.ToUInt64(src, 1)));
                Assert.That(cpu.GetXmm(5), Is.EqualTo(cpu.GetXmm(1)));
                Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Fault));
                Assert.That(exit.Detail, Does.StartWith("#GP: misaligned"));
            }
        }
    }

    [Test]
    public void Code_written_by_the_guest_is_decoded_again_before_it_runs()
    {
        // The loop body's "mov eax, imm32" is patched through its immediate on the second pass.
        var (cpu, memory, _) = Load(a =>
        {
            var body = a.CreateLabel();
            var done = a.CreateLabel();
            a.xor(ecx, ecx);
            a.Label(ref body);
            a.mov(eax, 1);
            a.add(ecx, eax);
            a.cmp(ecx, 1);
            a.jne(done);
            a.mov(rbx, (ulong)Boot.ImageBase + 2 + 1);      // the imm32 of "mov eax, 1"
            a.mov(__dword_ptr[rbx], 41);
            a.jmp(body);
            a.Label(ref done);
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            cpu.Run(1000);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(cpu.GetRegister(Reg.Rcx), Is.EqualTo(42UL));
                Assert.That(cpu.Invalidations, Is.GreaterThan(0));
            }
        }
    }

    [Test]
    public void Host_writes_over_cached_code_drop_it_too()
    {
        var (cpu, memory, _) = Load(a =>
        {
            a.mov(eax, 1);
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            cpu.Run(10);
            memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(a => { a.mov(eax, 2); a.hlt(); }));
            cpu.Rip = Boot.ImageBase;
            cpu.Run(10);
            Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(2UL));
        }
    }

    [Test]
    public void Rdtsc_counts_one_nanosecond_per_instruction_from_the_slice_base()
    {
        var (cpu, memory, _) = Load(a =>
        {
            a.rdtsc();
            a.mov(r8d, eax);
            a.nop();
            a.nop();
            a.rdtsc();
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            cpu.TscBase = 5_000;
            cpu.TscRetiredBase = 0;
            cpu.Run(100);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(cpu.GetRegister(Reg.R8), Is.EqualTo(5_001UL));
                Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(5_005UL));
            }
        }
    }

    [Test]
    public void Cpuid_names_the_vmm_and_claims_only_what_the_interpreter_implements()
    {
        var (cpu, memory, _) = Load(a =>
        {
            a.xor(eax, eax);
            a.cpuid();
            a.mov(r8d, ebx);
            a.mov(r9d, edx);
            a.mov(r10d, ecx);
            a.mov(eax, 1);
            a.cpuid();
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            cpu.Run(100);
            var vendor = new byte[12];
            BitConverter.TryWriteBytes(vendor.AsSpan(0), (uint)cpu.GetRegister(Reg.R8));
            BitConverter.TryWriteBytes(vendor.AsSpan(4), (uint)cpu.GetRegister(Reg.R9));
            BitConverter.TryWriteBytes(vendor.AsSpan(8), (uint)cpu.GetRegister(Reg.R10));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(System.Text.Encoding.ASCII.GetString(vendor), Is.EqualTo("SmartOS-Virt"));
                Assert.That(cpu.GetRegister(Reg.Rdx) & (1UL << 26), Is.Not.Zero, "SSE2");
                Assert.That(cpu.GetRegister(Reg.Rcx) & (1UL << 28), Is.Zero, "no AVX");
            }
        }
    }

    [Test]
    public void Call_ret_push_pop_and_leave_keep_the_stack_balanced()
    {
        var (cpu, memory, _) = Load(a =>
        {
            var fn = a.CreateLabel();
            var end = a.CreateLabel();
            a.mov(rdi, 20);
            a.call(fn);
            a.jmp(end);
            a.Label(ref fn);
            a.push(rbp);
            a.mov(rbp, rsp);
            a.sub(rsp, 32);
            a.lea(rax, __[rdi + rdi * 2]);
            a.mov(__qword_ptr[rbp - 8], rax);
            a.mov(rax, __qword_ptr[rbp - 8]);
            a.leave();
            a.ret();
            a.Label(ref end);
            a.hlt();
        });
        using (memory)
        using (cpu)
        {
            cpu.Run(100);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(60UL));
                Assert.That(cpu.GetRegister(Reg.Rsp), Is.EqualTo(0x30_0000UL));
            }
        }
    }
}

public class DecodeCacheTests
{
    private sealed class NoDevices : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => false;
    }

    [Test]
    public void A_loop_is_decoded_once_however_often_it_runs()
    {
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        memory.TryWrite(Boot.ImageBase, GuestRunner.Assemble(a =>
        {
            var l = a.CreateLabel();
            a.mov(AssemblerRegisters.ecx, 10_000);
            a.Label(ref l);
            a.add(AssemblerRegisters.rax, AssemblerRegisters.rcx);
            a.dec(AssemblerRegisters.ecx);
            a.jnz(l);
            a.hlt();
        }));
        cpu.Rip = Boot.ImageBase;
        var exit = cpu.Run(1_000_000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt));
            Assert.That(cpu.Retired, Is.EqualTo(1 + 3 * 10_000 + 1));
            Assert.That(cpu.Decodes, Is.EqualTo(5));
            Assert.That(cpu.CachedCodePages, Is.EqualTo(1));
            Assert.That(cpu.GetRegister(Reg.Rax), Is.EqualTo(10_000UL * 10_001 / 2));
        }
    }

    [Test]
    public void A_store_next_to_code_drops_only_the_instructions_it_could_overlap()
    {
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        // 64 nops, then a store 32 bytes past the hlt (same page), then hlt.
        var code = GuestRunner.Assemble(a =>
        {
            for (int i = 0; i < 64; i++) a.nop();
            a.mov(AssemblerRegisters.rbx, (ulong)Boot.ImageBase + 200);
            a.mov(AssemblerRegisters.__byte_ptr[AssemblerRegisters.rbx], 1);
            a.hlt();
        });
        memory.TryWrite(Boot.ImageBase, code);
        cpu.Rip = Boot.ImageBase;
        cpu.Run(1000);
        Assert.That(cpu.Invalidations, Is.Zero, "nothing decoded within 14 bytes before byte 200");
    }
}

public class InterpreterAllocationTests
{
    [Test]
    public void A_running_guest_allocates_nothing_per_instruction()
    {
        var scheduler = new SmartOS.Kernel.Scheduler();
        var image = GuestRunner.Assemble(a =>
        {
            var l = a.CreateLabel();
            a.mov(AssemblerRegisters.rbx, 0x20_0000UL);
            a.Label(ref l);
            a.add(AssemblerRegisters.rax, AssemblerRegisters.__qword_ptr[AssemblerRegisters.rbx]);
            a.mov(AssemblerRegisters.__qword_ptr[AssemblerRegisters.rbx + 8], AssemblerRegisters.rax);
            a.inc(AssemblerRegisters.rcx);
            a.cmp(AssemblerRegisters.rcx, 0);
            a.jne(l);
            a.hlt();
        });
        using var vm = new Vm(scheduler, new VmConfig { Image = image, Backend = VmBackend.Interpreter, MemorySize = 4UL << 20, SliceInstructions = 100_000 });
        vm.Start();
        // Warm-up, with a pause for the JIT's background compiler: a whole-suite run once counted
        // 6,616 bytes in the measured window after a 1 ms warm-up, none of them per instruction.
        scheduler.RunFor(5 * SmartOS.Kernel.Time.Millisecond);
        Thread.Sleep(250);
        scheduler.RunFor(SmartOS.Kernel.Time.Millisecond);
        long before = GC.GetAllocatedBytesForCurrentThread();
        long retired = vm.InstructionsRetired;
        scheduler.RunFor(20 * SmartOS.Kernel.Time.Millisecond);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.InstructionsRetired - retired, Is.EqualTo(20_000_000));
            Assert.That(allocated, Is.LessThan(4096), "bytes allocated over 20 M instructions and 200 slices");
        }
    }
}
