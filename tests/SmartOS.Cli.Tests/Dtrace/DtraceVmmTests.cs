using SmartOS.Virt;

namespace SmartOS.Cli.Tests.Dtrace;

/// <summary>
/// The vmm provider (virt/VmProbes.cs) over a bhyve zone's guest in one `smartos run` scenario: the
/// guest is virt/guests/hello.c (built with gcc), which prints three lines on COM1, sleeps 2 ms in
/// hlt and powers off with status 7. The global zone's dtrace counts its exits and console bytes
/// and sees its stop; a joyent zone's dtrace hears nothing of a guest that is not its own.
/// </summary>
public class DtraceVmmTests
{
    private const string Guest = "22222222-2222-4222-8222-222222222222", Other = "33333333-3333-4333-8333-333333333333";

    private static readonly Lazy<(int Code, string Out, string Err)> s_run = new(() => DtraceCommandTests.Scenario($$"""
        host h1
        vmadm create <<JSON
        { "alias": "g", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": false,
          "uuid": "{{Guest}}", "image": { "guest": "hello" } }
        JSON
        vmadm create <<JSON
        { "alias": "z", "brand": "joyent", "max_physical_memory": 128, "uuid": "{{Other}}" }
        JSON
        dtrace -l -P vmm
        zlogin {{Other}} dtrace -l -n 'vmm:::stop'
        dtrace -q -n 'vmm:::exit-* { @[probename] = count(); }' &
        dtrace -q -n 'vmm:::exit-io /arg1 == 0x3f8 && arg4 == 1/ { @["console bytes", stringof(arg0)] = count(); } vmm:::stop { printf("%s %s %s %s %d\n", zonename, stringof(arg0), stringof(arg1), stringof(arg2), arg3); }' &
        zlogin {{Other}} dtrace -q -n 'vmm::: { @[probename] = count(); }' &
        vmadm start {{Guest}}
        sleep 2s
        vmadm console {{Guest}}
        """));

    [SetUp]
    public void NeedGcc()
    {
        if (GuestCompiler.FindGcc(out string why) == null) Assert.Ignore($"the guest is hello.c, built with gcc: {why}");
    }

    private static string Run()
    {
        var (code, o, e) = s_run.Value;
        Assert.That(code, Is.Zero, o + e);
        return o;
    }

    private static string Output(int line)
    {
        string o = Run();
        string mark = $"[background, line {line}] h1# ";
        int at = o.IndexOf(mark, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), o);
        int start = o.IndexOf('\n', at) + 1;
        int end = o.IndexOf("\n[background", start, StringComparison.Ordinal);
        return o[start..(end < 0 ? o.IndexOf("# end of scenario", start, StringComparison.Ordinal) : end + 1)];
    }

    /// <summary>What the guest printed on its console, as vmadm console shows it.</summary>
    private static string Console()
    {
        string o = Run();
        string mark = $"h1# vmadm console {Guest}\n";
        int at = o.IndexOf(mark, StringComparison.Ordinal) + mark.Length;
        return o[at..o.IndexOf("[background", at, StringComparison.Ordinal)];
    }

    [Test]
    public void Dtrace_l_lists_the_vmm_probes_and_a_zone_lists_them_too()
    {
        string o = Run();
        foreach (string probe in new[] { "vm_handle_inout exit-io", "vm_handle_mmio_emul exit-mmio", "vm_handle_hlt exit-hlt", "vmx_handle_cpuid exit-cpuid",
                     "vm_handle_rdmsr exit-rdmsr", "vm_handle_wrmsr exit-wrmsr", "vm_inject_exception exception", "vm_inject_intr interrupt", "vm_suspend stop" })
            Assert.That(o, Does.Match($@"\n +\d+ +vmm +vmm +{probe}\n"));
        Assert.That(o, Does.Match($@"h1# zlogin {Other} dtrace -l -n 'vmm:::stop'\n   ID   PROVIDER .*\n +\d+ +vmm +vmm +vm_suspend stop\n"));
    }

    [Test]
    public void Every_console_byte_is_one_exit_io_out_of_port_0x3f8()
    {
        string console = Console();
        Assert.That(console, Does.StartWith("hello from the guest\n"));
        Assert.That(Output(12), Does.Match($@"\n  console bytes +{Guest} +{console.Length}\n"));
    }

    [Test]
    public void The_guests_stop_names_its_zone_the_reason_and_the_exit_status()
    {
        Assert.That(Output(12), Does.StartWith($"{Guest} {Guest} powered-off exit status 7 7\n"));
    }

    [Test]
    public void Exits_are_counted_by_reason_the_sleep_is_one_hlt()
    {
        var rows = Output(11).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToDictionary(r => r[0], r => int.Parse(r[1], System.Globalization.CultureInfo.InvariantCulture));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(rows["exit-hlt"], Is.EqualTo(1));
            Assert.That(rows["exit-io"], Is.GreaterThanOrEqualTo(Console().Length), "the console bytes, the timer's ports and the power-off");
            Assert.That(rows.Keys, Is.SubsetOf(new[] { "exit-io", "exit-mmio", "exit-hlt", "exit-cpuid", "exit-rdmsr", "exit-wrmsr" }));
        }
    }

    [Test]
    public void A_zones_dtrace_hears_nothing_of_another_zones_guest()
    {
        Assert.That(Output(13).Trim('\n'), Is.Empty);
    }
}
