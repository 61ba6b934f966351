using SmartOS.Testing;
using System.Diagnostics;
using System.Globalization;
using SmartOS.Kernel;

namespace SmartOS.Virt.Tests;

/// <summary>
/// KVM interrupt delivery for the PC platform (virt/KvmVcpu.cs: KVM_INTERRUPT with the VMM's own
/// APIC, no in-kernel irqchip). There is no /dev/kvm here, so what runs is what does not need it:
/// the ioctl numbers and struct kvm_run offsets against the installed kernel headers (a C program
/// gcc builds prints them), the injection decision, and the CPUID adjustment. The injection itself
/// has not run on a machine with /dev/kvm.
/// </summary>
public class KvmInterruptTests
{
    private const string Probe = """
        #define _GNU_SOURCE
        #include <stdio.h>
        #include <stddef.h>
        #include <signal.h>
        #include <time.h>
        #include <linux/kvm.h>
        int main(void) {
            printf("KVM_INTERRUPT %lu\n", (unsigned long)KVM_INTERRUPT);
            printf("KVM_NMI %lu\n", (unsigned long)KVM_NMI);
            printf("KVM_RUN %lu\n", (unsigned long)KVM_RUN);
            printf("KVM_EXIT_IO %d\n", KVM_EXIT_IO);
            printf("KVM_EXIT_HLT %d\n", KVM_EXIT_HLT);
            printf("KVM_EXIT_IRQ_WINDOW_OPEN %d\n", KVM_EXIT_IRQ_WINDOW_OPEN);
            printf("KVM_EXIT_MMIO %d\n", KVM_EXIT_MMIO);
            printf("KVM_EXIT_SHUTDOWN %d\n", KVM_EXIT_SHUTDOWN);
            printf("KVM_EXIT_INTR %d\n", KVM_EXIT_INTR);
            printf("sizeof_kvm_interrupt %zu\n", sizeof(struct kvm_interrupt));
            printf("request_interrupt_window %zu\n", offsetof(struct kvm_run, request_interrupt_window));
            printf("exit_reason %zu\n", offsetof(struct kvm_run, exit_reason));
            printf("ready_for_interrupt_injection %zu\n", offsetof(struct kvm_run, ready_for_interrupt_injection));
            printf("if_flag %zu\n", offsetof(struct kvm_run, if_flag));
            printf("exit_union %zu\n", offsetof(struct kvm_run, io));
            printf("sizeof_kvm_cpuid_entry2 %zu\n", sizeof(struct kvm_cpuid_entry2));
            printf("kvm_cpuid2_entries %zu\n", offsetof(struct kvm_cpuid2, entries));
            printf("cpuid_entry2_ecx %zu\n", offsetof(struct kvm_cpuid_entry2, ecx));
            printf("KVM_SET_SIGNAL_MASK %lu\n", (unsigned long)KVM_SET_SIGNAL_MASK);
            printf("sizeof_kvm_signal_mask %zu\n", sizeof(struct kvm_signal_mask));
            printf("kvm_signal_mask_sigset %zu\n", offsetof(struct kvm_signal_mask, sigset));
            printf("SIGRTMIN %d\n", SIGRTMIN);
            printf("SIGRTMAX %d\n", SIGRTMAX);
            printf("sizeof_sigset_t %zu\n", sizeof(sigset_t));
            printf("sizeof_siginfo_t %zu\n", sizeof(siginfo_t));
            printf("sizeof_sigevent %zu\n", sizeof(struct sigevent));
            printf("sigev_signo %zu\n", offsetof(struct sigevent, sigev_signo));
            printf("sigev_notify %zu\n", offsetof(struct sigevent, sigev_notify));
            printf("sigev_tid %zu\n", offsetof(struct sigevent, _sigev_un._tid));
            printf("SIGEV_THREAD_ID %d\n", SIGEV_THREAD_ID);
            printf("CLOCK_MONOTONIC %d\n", CLOCK_MONOTONIC);
            printf("sizeof_itimerspec %zu\n", sizeof(struct itimerspec));
            printf("sizeof_timer_t %zu\n", sizeof(timer_t));
            return 0;
        }
        """;

    /// <summary>The kernel headers' values, by name, from a program gcc builds against them.</summary>
    internal static Dictionary<string, ulong> HeaderValues() => CHeaderProbe.Values(Probe, "/usr/include/linux/kvm.h");

    [Test]
    public void The_ioctl_numbers_and_kvm_run_offsets_are_the_kernel_headers()
    {
        var h = HeaderValues();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(h["KVM_INTERRUPT"], Is.EqualTo(KvmVcpu.KVM_INTERRUPT));
            Assert.That(h["KVM_NMI"], Is.EqualTo(KvmVcpu.KVM_NMI));
            Assert.That(h["sizeof_kvm_interrupt"], Is.EqualTo(4UL), "KVM_INTERRUPT takes a u32 vector");
            Assert.That(h["KVM_EXIT_IO"], Is.EqualTo((ulong)KvmVcpu.ExitIo));
            Assert.That(h["KVM_EXIT_HLT"], Is.EqualTo((ulong)KvmVcpu.ExitHlt));
            Assert.That(h["KVM_EXIT_IRQ_WINDOW_OPEN"], Is.EqualTo((ulong)KvmVcpu.ExitIrqWindowOpen));
            Assert.That(h["KVM_EXIT_MMIO"], Is.EqualTo((ulong)KvmVcpu.ExitMmio));
            Assert.That(h["KVM_EXIT_SHUTDOWN"], Is.EqualTo((ulong)KvmVcpu.ExitShutdown));
            Assert.That(h["KVM_EXIT_INTR"], Is.EqualTo((ulong)KvmVcpu.ExitIntr));
            Assert.That(h["request_interrupt_window"], Is.EqualTo((ulong)KvmVcpu.RunRequestInterruptWindow));
            Assert.That(h["exit_reason"], Is.EqualTo((ulong)KvmVcpu.RunExitReason));
            Assert.That(h["ready_for_interrupt_injection"], Is.EqualTo((ulong)KvmVcpu.RunReadyForInjection));
            Assert.That(h["if_flag"], Is.EqualTo((ulong)KvmVcpu.RunIfFlag));
            Assert.That(h["exit_union"], Is.EqualTo((ulong)KvmVcpu.RunExitUnion));
            Assert.That(h["sizeof_kvm_cpuid_entry2"], Is.EqualTo((ulong)KvmVcpu.CpuidEntrySize));
            Assert.That(h["kvm_cpuid2_entries"], Is.EqualTo((ulong)KvmVcpu.CpuidHeaderSize));
            Assert.That(h["cpuid_entry2_ecx"], Is.EqualTo(20UL), "where AdjustCpuidForUserspaceApic finds ECX");
        }
    }

    [TestCase(false, false, false, KvmVcpu.Injection.None)]
    [TestCase(false, true, true, KvmVcpu.Injection.None)]
    [TestCase(true, true, true, KvmVcpu.Injection.Inject)]
    [TestCase(true, true, false, KvmVcpu.Injection.RequestWindow)]
    [TestCase(true, false, true, KvmVcpu.Injection.RequestWindow)]
    [TestCase(true, false, false, KvmVcpu.Injection.RequestWindow)]
    public void An_interrupt_is_injected_only_when_the_guest_can_take_it_else_the_window_is_requested(bool pending, bool ready, bool interruptsOn, KvmVcpu.Injection expected)
        => Assert.That(KvmVcpu.PlanInjection(pending, ready, interruptsOn), Is.EqualTo(expected));

    [Test]
    public void Cpuid_under_kvm_drops_x2apic_and_tsc_deadline_from_leaf_1_only()
    {
        var buf = new byte[KvmVcpu.CpuidHeaderSize + 3 * KvmVcpu.CpuidEntrySize];
        BitConverter.TryWriteBytes(buf.AsSpan(0), 3u);
        uint[] functions = [0, 1, 7];
        for (int i = 0; i < 3; i++)
        {
            int at = KvmVcpu.CpuidHeaderSize + i * KvmVcpu.CpuidEntrySize;
            BitConverter.TryWriteBytes(buf.AsSpan(at), functions[i]);
            BitConverter.TryWriteBytes(buf.AsSpan(at + 20), 0xFFFF_FFFFu); // ecx
        }
        KvmVcpu.AdjustCpuidForUserspaceApic(buf);
        uint Ecx(int i) => BitConverter.ToUInt32(buf, KvmVcpu.CpuidHeaderSize + i * KvmVcpu.CpuidEntrySize + 20);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Ecx(1), Is.EqualTo(0xFFFF_FFFFu & ~(1u << 21) & ~(1u << 24)), "leaf 1: no x2APIC, no TSC-deadline");
            Assert.That(Ecx(0), Is.EqualTo(0xFFFF_FFFFu));
            Assert.That(Ecx(2), Is.EqualTo(0xFFFF_FFFFu));
        }
    }
}
