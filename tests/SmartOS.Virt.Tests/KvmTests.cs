namespace SmartOS.Virt.Tests;

/// <summary>The KVM backend: the same images as on the interpreter, the same console output. Needs
/// /dev/kvm; without it each test is ignored, saying so.</summary>
public class KvmTests
{
    private static void RequireKvm()
    {
        if (!Vm.KvmAvailable(out string why)) Assert.Ignore(why);
    }

    private static Vm RunOn(VmBackend backend, byte[] image)
    {
        var scheduler = new SmartOS.Kernel.Scheduler();
        var vm = new Vm(scheduler, new VmConfig { Image = image, Backend = backend, MemorySize = 16UL << 20 });
        vm.Start();
        scheduler.RunUntil(() => vm.IsStopped, 100 * SmartOS.Kernel.Time.Second);
        return vm;
    }

    [Test]
    public void Asking_for_kvm_where_it_is_missing_stops_the_vm_with_the_reason()
    {
        if (Vm.KvmAvailable(out _)) Assert.Ignore("/dev/kvm is available here");
        using var vm = RunOn(VmBackend.Kvm, [0xF4]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.BackendError));
            Assert.That(vm.StopDetail, Does.StartWith("kvm: "));
        }
    }

    [Test]
    public void Auto_chooses_the_interpreter_in_virtual_time()
    {
        using var vm = RunOn(VmBackend.Auto, [0xF4]);
        Assert.That(vm.BackendName, Is.EqualTo("interpreter"));
    }

    [TestCase("sieve.c", 2)]
    [TestCase("selftest.c", 0)]
    [TestCase("selftest.c", 2)]
    [TestCase("hello.c", 2)]
    public void A_c_guest_prints_the_same_console_on_kvm_and_on_the_interpreter(string program, int opt)
    {
        RequireKvm();
        var image = CGuestTests.Build(program, opt);
        using var kvm = RunOn(VmBackend.Kvm, image);
        using var interp = RunOn(VmBackend.Interpreter, image);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(kvm.BackendName, Is.EqualTo("kvm"));
            Assert.That(kvm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), kvm.StopDetail);
            Assert.That(kvm.ConsoleOutput, Is.EqualTo(interp.ConsoleOutput));
            Assert.That(kvm.ExitStatus, Is.EqualTo(interp.ExitStatus));
        }
    }

    [Test]
    public void A_guest_fault_under_kvm_stops_only_that_vm()
    {
        RequireKvm();
        using var vm = RunOn(VmBackend.Kvm, [0x0F, 0x0B]);
        Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.TripleFault), vm.StopDetail);
    }
}
