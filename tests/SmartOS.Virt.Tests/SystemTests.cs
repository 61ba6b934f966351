using System.Buffers.Binary;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

/// <summary>
/// System state in the interpreter (Interpreter.System*.cs, Interpreter.Paging.cs): small guests,
/// hand-assembled, that load their own GDT, TSS, IDT and page tables (written into RAM by the test
/// as a loader would), take page faults and fix them, drop to ring 3 and come back by syscall,
/// and count interrupts from a test interrupt controller.
/// </summary>
public class SystemTests
{
    // Guest physical layout of these tests (4 MiB of RAM; the image at 1 MiB).
    private const ulong Gdt = 0x6_0000, Tss = 0x6_1000, Idt = 0x6_2000, Pseudo = 0x6_3000;
    private const ulong Pml4 = 0x6_4000, Pdpt = 0x6_5000, Pd = 0x6_6000, Pt = 0x6_7000;
    private const ulong KernelStack = 0x7_0000, IstStack = 0x7_8000, UserStack = 0x8_F000;
    private const ulong SupervisorPage = 0x9_0000, NxPage = 0xA_0000, ReadOnlyPage = 0xB_0000, AbsentPage = 0xC_0000;
    private const ulong Counters = 0xD_0000;
    private const ushort KernelCs = 0x08, KernelDs = 0x10, UserDs = 0x23, UserCs = 0x2B, TssSel = 0x30;
    private const ushort Done = 0x500;

    /// <summary>One interpreter on its own RAM with COM1, the power-off port and a test interrupt controller.</summary>
    private sealed class Machine : IVcpuExitHandler, IInterruptController, IDisposable
    {
        public readonly GuestMemory Memory = new(4UL << 20);
        public readonly Interpreter Cpu;
        public int Pending;
        public int Vector = 0x40;
        public int Acknowledged;
        public bool AlwaysPending;
        public bool PoweredOff;

        public Machine(Action<Assembler> build, bool withInterrupts = false)
        {
            Cpu = new Interpreter(Memory, this);
            Assert.That(Boot.TryLoad(Memory, GuestRunner.Assemble(build), [], out string? error), Is.True, error);
            Boot.SetEntryState(Cpu);
            Cpu.SetRegister(Reg.Rsp, KernelStack);
            if (withInterrupts) Cpu.Interrupts = this;
            WriteTables();
        }

        public bool StopRequested => PoweredOff;
        public bool HasPendingInterrupt => AlwaysPending || Pending > 0;

        public int AcknowledgeInterrupt()
        {
            Acknowledged++;
            if (!AlwaysPending) Pending--;
            return Vector;
        }

        public bool HandleAccess(ref VcpuExit exit)
        {
            if (exit.Reason == VcpuExitReason.Io && exit.IsWrite && exit.Port == Done) PoweredOff = true;
            return exit.Reason == VcpuExitReason.Io;
        }

        public VcpuExit Run(long budget = 100_000)
        {
            var exit = Cpu.Run(budget);
            return exit;
        }

        public ulong Counter(int i) => Read64(Counters + 8UL * (ulong)i);

        public ulong Read64(ulong a)
        {
            Span<byte> b = stackalloc byte[8];
            Memory.TryRead(a, b);
            return BinaryPrimitives.ReadUInt64LittleEndian(b);
        }

        public void Write64(ulong a, ulong v)
        {
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, v);
            Memory.TryWrite(a, b);
        }

        private void WriteTables()
        {
            // GDT: null, kernel code 64, kernel data, user code 32 (placeholder for sysret's layout),
            // user data, user code 64, TSS (16 bytes).
            ulong[] gdt = [0, 0x00AF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF, 0x00CF_FA00_0000_FFFF, 0x00CF_F200_0000_FFFF, 0x00AF_FA00_0000_FFFF];
            for (int i = 0; i < gdt.Length; i++) Write64(Gdt + 8UL * (ulong)i, gdt[i]);
            ulong tssLimit = 103;
            Write64(Gdt + 0x30, tssLimit | ((Tss & 0xFF_FFFF) << 16) | (0x89UL << 40) | ((Tss >> 24) << 56));
            Write64(Gdt + 0x38, Tss >> 32);
            Write64(Tss + 4, KernelStack);        // RSP0
            Write64(Tss + 0x24, IstStack);        // IST1
            // Pseudo-descriptors for lgdt and lidt.
            Memory.TryWrite(Pseudo, [0x3F, 0]);
            Write64(Pseudo + 2, Gdt);
            Memory.TryWrite(Pseudo + 0x10, [0xFF, 0x0F]);
            Write64(Pseudo + 0x12, Idt);
            // Page tables: 0-2 MiB in 4 KiB pages (user, writable), 2-4 MiB as one 2 MiB page, and
            // 1 GiB at 1 GiB as one 1 GiB page (mapped to physical 0).
            Write64(Pml4, Pdpt | 7);
            Write64(Pdpt, Pd | 7);
            Write64(Pdpt + 8, 0 | 0x87);
            Write64(Pd, Pt | 7);
            Write64(Pd + 8, 0x20_0000 | 0x87);
            for (ulong p = 0; p < 512; p++) Write64(Pt + 8 * p, (p << 12) | 7);
            Write64(Pt + 8 * (SupervisorPage >> 12), SupervisorPage | 3);
            Write64(Pt + 8 * (NxPage >> 12), NxPage | 7 | (1UL << 63));
            Write64(Pt + 8 * (ReadOnlyPage >> 12), ReadOnlyPage | 5);
            Write64(Pt + 8 * (AbsentPage >> 12), 0);
        }

        public void Dispose()
        {
            Cpu.Dispose();
            Memory.Dispose();
        }
    }

    /// <summary>lgdt, lidt, ltr, the test page tables, a far return to reload CS, data segments.</summary>
    private static void Setup(Assembler a)
    {
        var reloaded = a.CreateLabel();
        a.mov(rax, Pseudo);
        a.lgdt(__[rax]);
        a.lidt(__[rax + 0x10]);
        a.mov(ax, TssSel);
        a.ltr(ax);
        a.mov(rax, Pml4);
        a.mov(cr3, rax);
        a.push(KernelCs);
        a.lea(rax, __[reloaded]);
        a.push(rax);
        a.db(0x48, 0xCB); // retfq
        a.Label(ref reloaded);
        a.mov(ax, KernelDs);
        a.mov(ds, ax);
        a.mov(es, ax);
        a.mov(ss, ax);
    }

    /// <summary>Writes IDT entry <paramref name="vector"/>: an interrupt gate to <paramref name="handler"/>.</summary>
    private static void Gate(Assembler a, int vector, Label handler, int dpl = 0, int ist = 0, bool present = true)
    {
        a.lea(rax, __[handler]);
        a.mov(rbx, Idt + 16UL * (ulong)vector);
        a.mov(__word_ptr[rbx], ax);
        a.mov(__word_ptr[rbx + 2], KernelCs);
        a.mov(__byte_ptr[rbx + 4], ist);
        a.mov(__byte_ptr[rbx + 5], (present ? 0x80 : 0) | 0x0E | (dpl << 5));
        a.shr(rax, 16);
        a.mov(__word_ptr[rbx + 6], ax);
        a.shr(rax, 16);
        a.mov(__dword_ptr[rbx + 8], eax);
        a.mov(__dword_ptr[rbx + 12], 0);
    }

    private static void PowerOff(Assembler a)
    {
        a.mov(dx, Done);
        a.@out(dx, al);
        a.hlt();
    }

    /// <summary>Stores <paramref name="value"/> in counter slot <paramref name="i"/>.</summary>
    private static void Store(Assembler a, int i, AssemblerRegister64 value)
    {
        a.mov(r15, Counters + 8UL * (ulong)i);
        a.mov(__qword_ptr[r15], value);
    }

    private static VcpuExit RunToPowerOff(Machine m)
    {
        var exit = m.Run(1_000_000);
        Assert.That(m.PoweredOff, Is.True, $"the guest did not finish: {exit}");
        return exit;
    }

    [Test]
    public void A_page_fault_handler_maps_the_page_and_the_load_is_retried()
    {
        using var m = new Machine(a =>
        {
            var pf = a.CreateLabel();
            Setup(a);
            Gate(a, 14, pf);
            a.mov(rsi, AbsentPage + 0x10);
            a.mov(rax, __qword_ptr[rsi]);
            Store(a, 0, rax);
            PowerOff(a);

            // #PF: record CR2 and the error code, map the page, drop its stale entry, retry.
            a.Label(ref pf);
            a.mov(rax, cr2);
            Store(a, 1, rax);
            a.pop(rax);
            Store(a, 2, rax);
            a.mov(rax, Pt + 8 * (AbsentPage >> 12));
            a.mov(__qword_ptr[rax], (int)(AbsentPage | 3));
            a.mov(rax, AbsentPage);
            a.invlpg(__[rax]);
            a.iretq();
        });
        m.Write64(AbsentPage + 0x10, 0x1234_5678_9ABC_DEF0);
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(0x1234_5678_9ABC_DEF0UL), "the retried load");
            Assert.That(m.Counter(1), Is.EqualTo(AbsentPage + 0x10), "CR2");
            Assert.That(m.Counter(2), Is.EqualTo(0UL), "error code: a supervisor read of a page not present");
            Assert.That(m.Cpu.ExceptionsDelivered, Is.EqualTo(1));
            // The walk set the accessed bit of the entry the handler wrote.
            Assert.That(m.Read64(Pt + 8 * (AbsentPage >> 12)) & 0x20, Is.EqualTo(0x20UL));
        }
    }

    [TestCase(0, 0x3UL, TestName = "A_write_to_a_read_only_page_faults_with_cr0_wp")]
    [TestCase(1, 0x11UL, TestName = "A_fetch_from_a_no_execute_page_faults_with_the_fetch_bit")]
    public void Protection_faults_carry_their_error_code(int which, ulong errorCode)
    {
        using var m = new Machine(a =>
        {
            var pf = a.CreateLabel();
            Setup(a);
            Gate(a, 14, pf);
            // EFER.NXE on, so the NX bit is honoured.
            a.mov(ecx, 0xC000_0080);
            a.rdmsr();
            a.or(eax, 0x800);
            a.wrmsr();
            if (which == 0)
            {
                a.mov(rsi, ReadOnlyPage);
                a.mov(__qword_ptr[rsi], 1);
            }
            else
            {
                a.mov(rsi, NxPage);
                a.call(rsi);
            }
            PowerOff(a);
            a.Label(ref pf);
            a.pop(rax);
            Store(a, 0, rax);
            a.mov(rax, cr2);
            Store(a, 1, rax);
            PowerOff(a);
        });
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(errorCode), "error code");
            Assert.That(m.Counter(1), Is.EqualTo(which == 0 ? ReadOnlyPage : NxPage), "CR2");
        }
    }

    [Test]
    public void Ring_3_code_runs_after_sysret_and_comes_back_by_syscall()
    {
        using var m = new Machine(a =>
        {
            var user = a.CreateLabel();
            var entry = a.CreateLabel();
            Setup(a);
            // STAR: kernel CS 0x08 (SS 0x10); sysret CS = 0x18 + 16 | 3, SS = 0x18 + 8 | 3. SFMASK clears IF and DF.
            a.mov(ecx, 0xC000_0081);
            a.mov(eax, 0);
            a.mov(edx, 0x0018_0008);
            a.wrmsr();
            a.mov(ecx, 0xC000_0082);
            a.lea(rax, __[entry]);
            a.mov(rdx, rax);
            a.shr(rdx, 32);
            a.wrmsr();
            a.mov(ecx, 0xC000_0084);
            a.mov(eax, 0x600);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0xC000_0080);
            a.rdmsr();
            a.or(eax, 1);
            a.wrmsr();
            a.lea(rcx, __[user]);
            a.mov(r11d, 0x202);
            a.mov(rsp, UserStack);
            a.sysretq();

            a.Label(ref user);
            a.mov(rbx, 0x55);
            a.mov(eax, 60);
            a.syscall();

            // The syscall entry: back in ring 0, rcx is the user rip after syscall, r11 its flags.
            a.Label(ref entry);
            Store(a, 0, rcx);
            Store(a, 1, r11);
            Store(a, 2, rax);
            a.mov(rax, rsp);
            Store(a, 3, rax);
            a.mov(ax, cs);
            a.movzx(rax, ax);
            Store(a, 4, rax);
            a.pushfq();
            a.pop(rax);
            Store(a, 5, rax);
            PowerOff(a);
        });
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(1) & 0x200, Is.EqualTo(0x200UL), "r11 holds the user flags (IF set)");
            Assert.That(m.Counter(2), Is.EqualTo(60UL), "rax");
            Assert.That(m.Counter(3), Is.EqualTo(UserStack), "syscall does not switch stacks");
            Assert.That(m.Counter(4), Is.EqualTo(0x08UL), "CS after syscall");
            Assert.That(m.Counter(5) & 0x600, Is.EqualTo(0UL), "SFMASK cleared IF and DF");
            Assert.That(m.Cpu.Cpl, Is.EqualTo(0));
            Assert.That(m.Cpu.GetRegister(Reg.Rbx), Is.EqualTo(0x55UL), "the user code ran");
        }
    }

    /// <summary>Drops to ring 3 by iretq, runs <paramref name="userCode"/>; handlers for #GP, #PF and
    /// int 0x80 (a DPL 3 gate) record the vector, the error code, the pushed CS and the stack.</summary>
    private static Machine RunInRing3(Action<Assembler> userCode)
    {
        var m = new Machine(a =>
        {
            var user = a.CreateLabel();
            var gp = a.CreateLabel();
            var pf = a.CreateLabel();
            var sys = a.CreateLabel();
            Setup(a);
            Gate(a, 13, gp);
            Gate(a, 14, pf, ist: 1);
            Gate(a, 0x80, sys, dpl: 3);
            // An iretq frame to ring 3: SS, RSP, RFLAGS, CS, RIP.
            a.push(UserDs);
            a.push((int)UserStack);
            a.push(0x202);
            a.push(UserCs);
            a.lea(rax, __[user]);
            a.push(rax);
            a.iretq();
            a.Label(ref user);
            userCode(a);
            a.jmp(user);

            foreach (var (label, vector, hasCode) in new[] { (gp, 13, true), (pf, 14, true), (sys, 0x80, false) })
            {
                var l = label;
                a.Label(ref l);
                a.mov(rax, vector);
                Store(a, 0, rax);
                if (hasCode) a.pop(rax); else a.mov(rax, -1);
                Store(a, 1, rax);
                a.mov(rax, __qword_ptr[rsp + 8]);
                Store(a, 2, rax);
                a.mov(rax, rsp);
                Store(a, 3, rax);
                PowerOff(a);
            }
        });
        RunToPowerOff(m);
        return m;
    }

    [Test]
    public void A_privileged_instruction_in_ring_3_raises_gp_on_the_tss_stack()
    {
        using var m = RunInRing3(a => a.hlt());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(13UL), "vector");
            Assert.That(m.Counter(1), Is.EqualTo(0UL), "error code");
            Assert.That(m.Counter(2), Is.EqualTo((ulong)UserCs), "the pushed CS is ring 3's");
            Assert.That(m.Counter(3), Is.EqualTo(KernelStack - 5 * 8), "the frame is on RSP0");
        }
    }

    [Test]
    public void A_user_access_to_a_supervisor_page_raises_pf_on_the_ist_stack()
    {
        using var m = RunInRing3(a =>
        {
            a.mov(rsi, SupervisorPage);
            a.mov(rax, __qword_ptr[rsi]);
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(14UL), "vector");
            Assert.That(m.Counter(1), Is.EqualTo(5UL), "error code: present, user, read");
            Assert.That(m.Counter(3), Is.EqualTo(IstStack - 5 * 8), "IST1's stack");
        }
    }

    [Test]
    public void Int_0x80_from_ring_3_goes_through_a_dpl_3_gate()
    {
        using var m = RunInRing3(a => a.@int(0x80));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(0x80UL));
            Assert.That(m.Counter(1), Is.EqualTo(ulong.MaxValue), "no error code");
            Assert.That(m.Counter(2), Is.EqualTo((ulong)UserCs));
        }
    }

    [Test]
    public void Int_n_through_a_ring_0_gate_from_ring_3_raises_gp_naming_the_gate()
    {
        using var m = RunInRing3(a => a.@int(14));
        Assert.That(m.Counter(1), Is.EqualTo(14UL * 8 + 2), "error code: IDT entry 14");
    }

    [Test]
    public void Rdmsr_of_an_unknown_msr_raises_gp_and_the_handler_skips_it()
    {
        using var m = new Machine(a =>
        {
            var gp = a.CreateLabel();
            Setup(a);
            Gate(a, 13, gp);
            a.mov(ecx, 0x1234_5678);
            a.rdmsr();
            a.mov(rbx, 7);
            PowerOff(a);
            // Skip the two-byte rdmsr.
            a.Label(ref gp);
            a.pop(rax);
            Store(a, 0, rax);
            a.add(__qword_ptr[rsp], 2);
            a.iretq();
        });
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(0UL));
            Assert.That(m.Cpu.GetRegister(Reg.Rbx), Is.EqualTo(7UL));
        }
    }

    [Test]
    public void Fs_and_gs_overrides_use_the_bases_from_the_msrs_and_swapgs_exchanges_them()
    {
        using var m = new Machine(a =>
        {
            Setup(a);
            a.mov(ecx, 0xC000_0100);
            a.mov(eax, (int)Counters);
            a.xor(edx, edx);
            a.wrmsr();
            a.mov(ecx, 0xC000_0102);
            a.mov(eax, (int)(Counters + 0x100));
            a.wrmsr();
            a.mov(rax, 0x1111);
            a.mov(__qword_ptr.fs[8], rax);
            a.swapgs();
            a.mov(rax, 0x2222);
            a.mov(rbx, 2);
            a.mov(__qword_ptr.gs[rbx * 8], rax);
            a.mov(rcx, __qword_ptr.fs[8]);
            PowerOff(a);
        });
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(1), Is.EqualTo(0x1111UL), "fs:[8]");
            Assert.That(m.Read64(Counters + 0x110), Is.EqualTo(0x2222UL), "gs:[rbx*8] after swapgs");
            Assert.That(m.Cpu.GetRegister(Reg.Rcx), Is.EqualTo(0x1111UL));
            Assert.That(m.Cpu.GsBase, Is.EqualTo(Counters + 0x100));
            Assert.That(m.Cpu.KernelGsBase, Is.EqualTo(0UL));
        }
    }

    [Test]
    public void A_fault_on_a_missing_gate_becomes_a_double_fault()
    {
        using var m = new Machine(a =>
        {
            var df = a.CreateLabel();
            Setup(a);
            Gate(a, 8, df, ist: 1);
            Gate(a, 13, df, present: false);
            a.mov(ecx, 0x1234_5678);
            a.rdmsr();
            PowerOff(a);
            a.Label(ref df);
            a.pop(rax);
            Store(a, 0, rax);
            a.mov(rax, 8);
            Store(a, 1, rax);
            PowerOff(a);
        });
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(1), Is.EqualTo(8UL), "the #DF handler ran");
            Assert.That(m.Counter(0), Is.EqualTo(0UL), "#DF's error code");
        }
    }

    [Test]
    public void A_fault_with_an_empty_idt_is_a_triple_fault_that_stops_only_that_vm()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.mov(rax, 0x3000UL);
            a.mov(__word_ptr[rax + 0xF00], 0);
            a.mov(__qword_ptr[rax + 0xF02], 0);
            a.lidt(__[rax + 0xF00]);
            a.ud2();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.TripleFault));
            Assert.That(vm.StopDetail, Does.StartWith("triple fault at 0x").And.Contain("#UD: ud2"));
        }
    }

    [Test]
    public void Interrupts_from_the_controller_are_taken_at_sti_and_after_hlt()
    {
        using var m = new Machine(a =>
        {
            var irq = a.CreateLabel();
            var wait = a.CreateLabel();
            Setup(a);
            Gate(a, 0x40, irq);
            a.xor(ebx, ebx);
            a.sti();
            a.Label(ref wait);
            a.hlt();
            a.cmp(rbx, 3);
            a.jb(wait);
            a.cli();
            PowerOff(a);
            // Count the interrupt; record the return rip of the first.
            a.Label(ref irq);
            a.inc(rbx);
            a.cmp(rbx, 1);
            var skip = a.CreateLabel();
            a.jne(skip);
            a.mov(rax, __qword_ptr[rsp]);
            Store(a, 0, rax);
            a.Label(ref skip);
            a.iretq();
        }, withInterrupts: true);
        m.Pending = 1;
        var exit = m.Run();
        // The first interrupt was pending at sti: taken after the shadow, at the hlt's boundary or
        // after it; then the guest halts with nothing pending.
        Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Hlt));
        Assert.That(m.Cpu.GetRegister(Reg.Rbx), Is.EqualTo(1UL));
        for (int i = 0; i < 2; i++)
        {
            m.Pending = 1;
            exit = m.Run();
        }
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.PoweredOff, Is.True, exit.ToString());
            Assert.That(m.Acknowledged, Is.EqualTo(3));
            Assert.That(m.Cpu.InterruptsDelivered, Is.EqualTo(3));
        }
    }

    [Test]
    public void An_interrupt_storm_spends_the_budget_and_returns()
    {
        using var m = new Machine(a =>
        {
            var irq = a.CreateLabel();
            var spin = a.CreateLabel();
            Setup(a);
            Gate(a, 0x40, irq);
            a.sti();
            a.Label(ref spin);
            a.jmp(spin);
            a.Label(ref irq);
            a.iretq();
        }, withInterrupts: true);
        m.AlwaysPending = true;
        var exit = m.Run(50_000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Budget));
            Assert.That(m.Acknowledged, Is.GreaterThan(1000));
        }
    }

    [Test]
    public void Without_an_idt_an_exception_stops_the_vcpu_as_before()
    {
        using var m = new Machine(a =>
        {
            a.mov(ecx, 0x1234_5678);
            a.rdmsr();
        });
        var exit = m.Run();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exit.Reason, Is.EqualTo(VcpuExitReason.Fault));
            Assert.That(exit.Detail, Does.StartWith("#GP: rdmsr of unknown MSR 0x12345678"));
            Assert.That(m.Cpu.IdtLoaded, Is.False);
        }
    }

    [Test]
    public void Code_written_through_one_mapping_is_seen_when_run_through_another()
    {
        // Linear 1 GiB + x is physical x (the 1 GiB page): run a function at its low address,
        // rewrite it through the high alias, run it again through both.
        const ulong f = 0x18_0000;
        using var m = new Machine(a =>
        {
            Setup(a);
            a.mov(rsi, f);
            a.mov(rdi, (1UL << 30) + f);
            a.call(rsi);
            Store(a, 0, rax);
            a.mov(__byte_ptr[rdi + 1], 2);
            a.call(rsi);
            Store(a, 1, rax);
            a.call(rdi);
            Store(a, 2, rax);
            PowerOff(a);
        });
        // mov eax, 1; ret
        m.Memory.TryWrite(f, [0xB8, 1, 0, 0, 0, 0xC3]);
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(1UL));
            Assert.That(m.Counter(1), Is.EqualTo(2UL), "the store through the alias invalidated the decoded op");
            Assert.That(m.Counter(2), Is.EqualTo(2UL), "the same code through the high mapping");
        }
    }

    [Test]
    public void Cr3_reload_keeps_global_entries_until_invlpg()
    {
        using var m = new Machine(a =>
        {
            Setup(a);
            // CR4.PGE on; the page at 0x0C_0000 becomes a global mapping of 0x0D_1000.
            a.mov(rax, cr4);
            a.or(rax, 0x80);
            a.mov(cr4, rax);
            a.mov(rsi, Pt + 8 * (AbsentPage >> 12));
            a.mov(__qword_ptr[rsi], (int)((Counters + 0x1000) | 0x103));
            a.mov(rdi, AbsentPage);
            a.mov(rax, __qword_ptr[rdi]);
            Store(a, 0, rax);
            // Point the entry elsewhere; a CR3 reload does not drop a global entry, invlpg does.
            a.mov(__qword_ptr[rsi], (int)((Counters + 0x2000) | 0x103));
            a.mov(rax, cr3);
            a.mov(cr3, rax);
            a.mov(rax, __qword_ptr[rdi]);
            Store(a, 1, rax);
            a.invlpg(__[rdi]);
            a.mov(rax, __qword_ptr[rdi]);
            Store(a, 2, rax);
            PowerOff(a);
        });
        m.Write64(Counters + 0x1000, 0xAAAA);
        m.Write64(Counters + 0x2000, 0xBBBB);
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(0xAAAAUL));
            Assert.That(m.Counter(1), Is.EqualTo(0xAAAAUL), "still the global translation");
            Assert.That(m.Counter(2), Is.EqualTo(0xBBBBUL), "after invlpg");
        }
    }

    [Test]
    public void A_write_sets_the_dirty_bit_and_a_read_only_the_accessed_bit()
    {
        using var m = new Machine(a =>
        {
            Setup(a);
            a.mov(rsi, 0x3_0000UL);
            a.mov(rax, __qword_ptr[rsi]);
            a.mov(rsi, 0x3_1000UL);
            a.mov(__qword_ptr[rsi], rax);
            PowerOff(a);
        });
        RunToPowerOff(m);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Read64(Pt + 8 * 0x30) & 0x60, Is.EqualTo(0x20UL), "read: accessed");
            Assert.That(m.Read64(Pt + 8 * 0x31) & 0x60, Is.EqualTo(0x60UL), "written: accessed and dirty");
        }
    }

    [Test]
    public void Rep_stos_across_pages_follows_the_mapping_and_resumes_after_a_page_fault()
    {
        // Linear 0xE_0000 is physical 0x5_0000; linear 0xE_1000 is absent until the handler maps
        // it to physical 0x5_8000 (not the next physical page).
        using var m = new Machine(a =>
        {
            var pf = a.CreateLabel();
            Setup(a);
            Gate(a, 14, pf);
            a.mov(rdi, 0xE_0F00UL);
            a.mov(ecx, 0x200);
            a.mov(al, 0xAB);
            a.cld();
            a.rep.stosb();
            PowerOff(a);
            a.Label(ref pf);
            a.add(rsp, 8);
            Store(a, 0, rcx);
            a.mov(rsi, Pt + 8 * 0xE1);
            a.mov(__qword_ptr[rsi], 0x5_8000 | 3);
            a.iretq();
        });
        m.Write64(Pt + 8 * 0xE0, 0x5_0000 | 3);
        m.Write64(Pt + 8 * 0xE1, 0);
        RunToPowerOff(m);
        var low = new byte[0x100];
        var high = new byte[0x101];
        var between = new byte[0x100];
        m.Memory.TryRead(0x5_0F00, low);
        m.Memory.TryRead(0x5_8000, high);
        m.Memory.TryRead(0x5_1000, between);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Counter(0), Is.EqualTo(0x100UL), "rcx when the fault hit: the first page was done");
            Assert.That(low, Is.All.EqualTo((byte)0xAB));
            Assert.That(high[..0x100], Is.All.EqualTo((byte)0xAB));
            Assert.That(high[0x100], Is.EqualTo((byte)0));
            Assert.That(between, Is.All.EqualTo((byte)0), "the physically next page is not touched");
            Assert.That(m.Cpu.GetRegister(Reg.Rdi), Is.EqualTo(0xE_1100UL));
            Assert.That(m.Cpu.GetRegister(Reg.Rcx), Is.EqualTo(0UL));
        }
    }

    private sealed class DeadlineMsr : IMsrHandler
    {
        public ulong Value;
        public bool TryReadMsr(uint msr, out ulong value) { value = Value; return msr == 0x6E0; }
        public bool TryWriteMsr(uint msr, ulong value)
        {
            if (msr != 0x6E0) return false;
            Value = value;
            return true;
        }
    }

    [Test]
    public void Msrs_the_platform_implements_are_reached_through_its_handler()
    {
        var msrs = new DeadlineMsr();
        using var m = new Machine(a =>
        {
            a.mov(ecx, 0x6E0);
            a.mov(eax, 0x1234);
            a.mov(edx, 1);
            a.wrmsr();
            a.xor(eax, eax);
            a.xor(edx, edx);
            a.rdmsr();
            a.hlt();
        });
        m.Cpu.Msrs = msrs;
        m.Run();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(msrs.Value, Is.EqualTo(0x1_0000_1234UL));
            Assert.That(m.Cpu.GetRegister(Reg.Rax), Is.EqualTo(0x1234UL));
            Assert.That(m.Cpu.GetRegister(Reg.Rdx), Is.EqualTo(1UL));
        }
    }

    [Test]
    public void Verw_lar_and_lsl_inspect_descriptors_from_ring_3_without_faulting()
    {
        using var m = RunInRing3(a =>
        {
            a.mov(ax, UserDs);
            a.verw(ax);
            a.setz(bl);
            a.mov(ax, KernelDs);
            a.verw(ax);
            a.setz(bh);
            a.mov(ax, UserCs);
            a.lar(ecx, eax);
            a.lsl(r8d, eax);
            a.mov(ax, 0x7F8);
            a.lsl(esi, eax);
            a.setz(al);
            a.movzx(edi, al);
            a.@int(0x80);
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(m.Cpu.GetRegister(Reg.Rbx) & 0xFFFF, Is.EqualTo(0x0001UL), "user data writable, kernel data not visible");
            Assert.That(m.Cpu.GetRegister(Reg.Rcx), Is.EqualTo(0x00A0_FB00UL), "lar: the attributes (accessed after the iretq)");
            Assert.That(m.Cpu.GetRegister(Reg.R8), Is.EqualTo(0xFFFF_FFFFUL), "lsl: the page-granular limit");
            Assert.That(m.Cpu.GetRegister(Reg.Rdi), Is.EqualTo(0UL), "a selector beyond the GDT: ZF clear");
        }
    }

    [Test]
    public void Cpuid_reports_the_system_features_and_the_apic_only_when_present()
    {
        using var m = new Machine(a =>
        {
            a.mov(eax, 1);
            a.cpuid();
            a.mov(r8, rdx);
            a.mov(eax, 0x8000_0001);
            a.cpuid();
            a.mov(r9, rdx);
            a.hlt();
        });
        m.Run();
        ulong leaf1 = m.Cpu.GetRegister(Reg.R8), ext = m.Cpu.GetRegister(Reg.R9);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(leaf1 & 0x1_2068, Is.EqualTo(0x1_2068UL), "PSE, MSR, PAE, PGE, PAT");
            Assert.That(leaf1 & 0x200, Is.EqualTo(0UL), "no APIC without a local APIC");
            Assert.That(ext & 0x2410_0800, Is.EqualTo(0x2410_0800UL), "SYSCALL, NX, 1 GiB pages, long mode");
        }
    }
}
