using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests;

public class VmStopTests
{
    [Test]
    public void Guest_output_on_com1_is_the_console_and_hlt_halts_the_vm()
    {
        using var vm = GuestRunner.Run(a =>
        {
            GuestRunner.Print(a, "hello, world\n");
            a.hlt();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.ConsoleOutput, Is.EqualTo("hello, world\n"));
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Halted));
            Assert.That(vm.BackendName, Is.EqualTo("interpreter"));
        }
    }

    [Test]
    public void Writing_the_power_off_port_stops_the_vm_with_its_exit_status()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.mov(dx, Vm.PowerOffPort);
            a.mov(eax, 42);
            a.@out(dx, eax);
            a.jmp(a.@F);
            a.AnonymousLabel();
            a.hlt();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff));
            Assert.That(vm.ExitStatus, Is.EqualTo(42UL));
        }
    }

    [Test]
    public void An_undefined_opcode_stops_the_vm_with_ud_and_its_address()
    {
        // 0x06 (push es) does not exist in 64-bit mode.
        using var vm = GuestRunner.Run([0x90, 0x06]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Fault));
            Assert.That(vm.StopDetail, Does.StartWith("#UD").And.Contain("0x100001"));
        }
    }

    [Test]
    public void Ud2_stops_the_vm_with_a_fault()
    {
        using var vm = GuestRunner.Run(a => a.ud2());
        Assert.That(vm.StopDetail, Is.EqualTo("#UD: ud2"));
    }

    [Test]
    public void A_wild_load_stops_the_vm_with_the_address_it_touched()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.mov(rbx, 0x7_0000_0000UL);
            a.mov(rax, __qword_ptr[rbx + 8]);
            a.hlt();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Fault));
            // The boot page tables map 0-4 GiB: above that the load is a page fault, with no IDT to take it.
            Assert.That(vm.StopDetail, Does.Contain("0x700000008").And.Contain("page not present"));
        }
    }

    [Test]
    public void A_load_from_a_mapped_hole_stops_the_vm_as_outside_ram_and_every_device()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.mov(rbx, 0xE000_0000UL);
            a.mov(rax, __qword_ptr[rbx + 8]);
            a.hlt();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Fault));
            Assert.That(vm.StopDetail, Does.Contain("0xe0000008").And.Contain("outside RAM and every device"));
        }
    }

    [Test]
    public void A_wild_jump_stops_the_vm_on_the_instruction_fetch()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.mov(rax, 0x1234_5678_9000UL);
            a.jmp(rax);
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Fault));
            Assert.That(vm.StopDetail, Does.Contain("instruction fetch at 0x123456789000"));
        }
    }

    [Test]
    public void A_guest_that_never_halts_stops_at_its_instruction_limit()
    {
        using var vm = GuestRunner.Run(a =>
        {
            var l = a.CreateLabel();
            a.Label(ref l);
            a.jmp(l);
        }, instructionLimit: 2_500_000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.OutOfInstructions));
            Assert.That(vm.InstructionsRetired, Is.EqualTo(2_500_000));
        }
    }

    [Test]
    public void A_guest_that_never_halts_stops_at_its_time_limit()
    {
        var spin = GuestRunner.Assemble(a =>
        {
            var l = a.CreateLabel();
            a.Label(ref l);
            a.jmp(l);
        });
        using var vm = GuestRunner.Run(spin, instructionLimit: 0, timeLimit: 5 * SmartOS.Kernel.Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.OutOfTime));
            Assert.That(vm.InstructionsRetired, Is.EqualTo(5_000_000));
        }
    }

    [Test]
    public void Division_by_zero_stops_the_vm_with_a_divide_error()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.xor(ecx, ecx);
            a.mov(eax, 10);
            a.div(ecx);
            a.hlt();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Fault));
            Assert.That(vm.StopDetail, Does.StartWith("#DE").And.Contain("0x100007"));
        }
    }

    [Test]
    public void An_instruction_the_interpreter_lacks_stops_the_vm_with_its_name_and_address()
    {
        using var vm = GuestRunner.Run(a =>
        {
            a.nop();
            a.fsin();
            a.hlt();
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.Unimplemented));
            Assert.That(vm.StopDetail, Is.EqualTo("unimplemented instruction fsin at 0x100001"));
        }
    }

    [Test]
    public void A_faulting_vm_leaves_another_vm_on_the_same_host_running()
    {
        var scheduler = new SmartOS.Kernel.Scheduler();
        var bad = new Vm(scheduler, new VmConfig { Image = [0x0F, 0x0B], MemorySize = 4UL << 20, Backend = VmBackend.Interpreter });
        var good = new Vm(scheduler, new VmConfig
        {
            Image = GuestRunner.Assemble(a =>
            {
                a.mov(ecx, 3_000_000);
                var l = a.CreateLabel();
                a.Label(ref l);
                a.dec(ecx);
                a.jnz(l);
                GuestRunner.Print(a, "done");
                a.hlt();
            }),
            MemorySize = 4UL << 20,
            Backend = VmBackend.Interpreter,
        });
        bad.Start();
        good.Start();
        scheduler.RunUntil(() => bad.IsStopped && good.IsStopped);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bad.StopReason, Is.EqualTo(VmStopReason.Fault));
            Assert.That(good.StopReason, Is.EqualTo(VmStopReason.Halted));
            Assert.That(good.ConsoleOutput, Is.EqualTo("done"));
        }
        bad.Dispose();
        good.Dispose();
    }

    [Test]
    public void The_host_can_stop_a_running_vm()
    {
        var scheduler = new SmartOS.Kernel.Scheduler();
        using var vm = new Vm(scheduler, new VmConfig { Image = [0xEB, 0xFE], MemorySize = 4UL << 20, Backend = VmBackend.Interpreter });
        vm.Start();
        scheduler.RunFor(2_500 * SmartOS.Kernel.Time.Microsecond);
        vm.Stop();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.StoppedByHost));
            Assert.That(vm.InstructionsRetired, Is.EqualTo(3_000_000));
        }
    }

    [Test]
    public void An_image_bigger_than_memory_stops_the_vm_before_it_runs()
    {
        using var vm = GuestRunner.Run(new byte[8 << 20]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.BackendError));
            Assert.That(vm.StopDetail, Does.Contain("does not fit"));
        }
    }

    [Test]
    public void Kvm_absence_is_detected_and_explained()
    {
        bool ok = Vm.KvmAvailable(out string why);
        if (ok) Assert.Ignore("/dev/kvm is available here; the absence path is not exercised");
        Assert.That(why, Does.Contain("/dev/kvm").Or.Contain("Linux"));
    }
}

public class VmWaitTests
{
    [Test]
    public void A_guest_idle_forever_stops_at_its_time_limit_without_spinning()
    {
        // sti; hlt; jmp back
        using var vm = GuestRunner.Run([0xFB, 0xF4, 0xEB, 0xFC], instructionLimit: 0, timeLimit: 10 * SmartOS.Kernel.Time.Second);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.OutOfTime));
            Assert.That(vm.InstructionsRetired, Is.LessThan(10));
        }
    }

    [Test]
    public void Memory_that_would_cover_the_device_window_is_refused()
    {
        var scheduler = new SmartOS.Kernel.Scheduler();
        using var vm = new Vm(scheduler, new VmConfig { Image = [0xF4], MemorySize = Vm.VirtioMmioBase + 0x1000, Backend = VmBackend.Interpreter });
        vm.Start();
        Assert.That(vm.StopDetail, Does.Contain("device window"));
    }
}
