using SmartOS.Cli.Scenario;
using SmartOS.Virt;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>
/// examples/linux-vm.scn: Debian's kernel and the busybox initramfs of virt/guests/linux/build.sh,
/// booted under vmadm as a bhyve VM on the interpreter in virtual time, pinged from a joyent zone.
/// This is the one test in CI that boots Linux to its shell (about a minute in Debug): the kernel's
/// own log is asserted here, on what `vmadm console` prints, rather than by a second boot elsewhere.
/// </summary>
public class LinuxVmScenarioTests
{
    private const string Uuid = "33333333-3333-4333-8333-333333333333";

    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-linuxvm-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private static string GuestDirectory()
    {
        string? dir = Environment.GetEnvironmentVariable("SMARTOS_LINUX_GUEST");
        if (string.IsNullOrEmpty(dir) || !File.Exists(Path.Combine(dir, "vmlinuz")) || !File.Exists(Path.Combine(dir, "initrd.img")))
            Assert.Ignore("no Linux guest: run virt/guests/linux/build.sh DIR and set SMARTOS_LINUX_GUEST=DIR (.ci/run does)");
        return dir!;
    }

    private (int Code, string Out, string Err, ScenarioRunner Runner) Run(string script, string path)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var runner = new ScenarioRunner(o, e, _dir);
        int code = runner.Run(script, path);
        return (code, o.ToString(), e.ToString(), runner);
    }

    /// <summary>What `vmadm console UUID` printed in a transcript.</summary>
    private static string ConsoleOf(string transcript)
    {
        string head = $"h1# vmadm console {Uuid}\n";
        int at = transcript.IndexOf(head, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), "the transcript has the console");
        string rest = transcript[(at + head.Length)..];
        int end = rest.IndexOf("h1# ", StringComparison.Ordinal);
        int endOfRun = rest.IndexOf("# end of scenario", StringComparison.Ordinal);
        return rest[..(end >= 0 ? end : endOfRun)];
    }

    [Test]
    public void Linux_boots_under_vmadm_answers_the_zones_ping_and_a_second_run_prints_the_same_bytes()
    {
        GuestDirectory();
        string path = Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", "linux-vm.scn");
        string script = File.ReadAllText(path);
        var (code, first, err, runner) = Run(script, path);
        TestContext.Out.WriteLine(first);
        Assert.That(code, Is.Zero, err); // every expect of the example held: the markers and the zone's ping
        string console = ConsoleOf(first);
        var zone = runner.World.Hosts.Single().Zones.Find(Uuid)!;
        var interp = zone.Guest?.Vcpu as Interpreter;
        using (Assert.EnterMultipleScope())
        {
            // The kernel's own words, from the decompressor's hand-over to the console driver.
            Assert.That(console, Does.StartWith("[    0.000000] Linux version 6."));
            Assert.That(console, Does.Contain("Command line: console=ttyS0 smartos.ip=10.0.0.2/24"));
            Assert.That(console, Does.Contain("BIOS-e820: [mem 0x0000000000100000-0x000000000fffffff] usable"), "the e820 map of 256 MiB");
            Assert.That(console, Does.Contain("ACPI: RSDP 0x00000000000E0000"), "the ACPI tables");
            Assert.That(console, Does.Contain("IOAPIC[0]: apic_id 1, version 17, address 0xfec00000, GSI 0-23"), "the MADT's I/O APIC");
            Assert.That(console, Does.Contain("TSC deadline timer available"), "the local APIC's TSC-deadline mode through CPUID");
            Assert.That(console, Does.Contain("tsc: Detected 1000.0").Or.Contain("tsc: Detected 999.9"), "the TSC calibrated against the PIT: 1 GHz of guest time");
            Assert.That(console, Does.Contain("printk: console [ttyS0] enabled"), "the 16550 as the console");
            Assert.That(console, Does.Contain("APIC: Switch to symmetric I/O mode setup"), "the I/O APIC routes the timer");
            Assert.That(console, Does.Contain("Run /init as init process"));
            Assert.That(console, Does.Contain("virtio-pci 0000:00:01.0"), "the NIC is a virtio-pci function");
            Assert.That(console, Does.Contain("SMARTOS-LINUX-UP 6.").And.Contain("SMARTOS-NET-UP eth0 10.0.0.2/24"));
            Assert.That(first, Does.Contain("3 packets transmitted, 3 packets received, 0% packet loss"));
            Assert.That(first, Does.Match(@"PCI-MSI[^\n]*virtio0-input"), "keys through the console reached the shell, and the NIC's queues interrupt by MSI-X");
            Assert.That(first, Does.Contain("\"vm_stop_reason\": \"stopped_by_host\""));
            Assert.That(interp, Is.Not.Null, "in virtual time the guest ran on the interpreter");
            Assert.That(interp!.InterruptsDelivered, Is.GreaterThan(0), "interrupts through the IDT");
            Assert.That(interp.ExceptionsDelivered, Is.GreaterThan(0), "exceptions through the IDT (the kernel's own page faults and probes)");
        }

        // Virtual time: a second run of the same lines, cut 300 ms of guest time after the start (to
        // keep the test short: past the console's hand-over to the 16550 and the interrupt set-up),
        // prints the same transcript up to its cut.
        int cut = script.IndexOf("\nsleep 5s\n", StringComparison.Ordinal);
        Assert.That(cut, Is.GreaterThan(0), "the example waits with 'sleep 5s'");
        string shorter = script[..cut] + $"\nsleep 300ms\nvmadm console {Uuid}\n";
        var (code2, second, err2, _) = Run(shorter, path);
        Assert.That(code2, Is.Zero, err2);
        string secondConsole = ConsoleOf(second);
        string upToEnd = second[..second.IndexOf("# end of scenario", StringComparison.Ordinal)];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(secondConsole, Does.Contain("APIC: Switch to symmetric I/O mode setup"), "the second run's prefix is long enough to mean something");
            Assert.That(first, Does.StartWith(upToEnd), "two runs, the same transcript and console bytes");
        }
    }
}
