using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Iced.Intel;
using SmartOS.Kernel;
using SmartOS.Virt;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>
/// Bad guests under vmadm (HvmGuest.cs rule 2, Vmm.cs rule 1): a triple fault, an interrupt storm
/// and a guest that disables interrupts and halts each stop only their own VM, with the reason in
/// vmadm get and what they wrote on their console, while a good VM and a joyent zone go on. The
/// guests are machine code assembled here with Iced into a bzImage, so they boot on the PC platform
/// (local APIC, I/O APIC) as Linux does.
/// </summary>
public class BadGuestTests
{
    private const ulong Startup64 = 0x100_0000 + 0x200; // pref_address + startup_64's offset
    private const ulong Apic = 0xFEE0_0000;
    private const ulong Idt = 0x5_0000;

    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-badguest-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private sealed class BytesWriter : CodeWriter
    {
        public readonly List<byte> Bytes = [];
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    /// <summary>A bzImage (protocol 2.15, 64-bit entry) whose startup_64 is the assembled code.</summary>
    internal static byte[] Kernel(Action<Assembler> build)
    {
        var a = new Assembler(64);
        build(a);
        var w = new BytesWriter();
        a.Assemble(w, Startup64);
        byte[] code = [.. w.Bytes];
        int payload = (0x200 + code.Length + 15) & ~15;
        var f = new byte[0x400 + payload];
        f[0x1F1] = 1;                                                              // setup_sects
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x1F4), (uint)(payload / 16));
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x1FE), 0xAA55);
        f[0x201] = 0x6A;
        Encoding.ASCII.GetBytes("HdrS").CopyTo(f, 0x202);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x206), 0x020F);
        f[0x211] = 1;                                                              // loaded high
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x22C), 0x7FFF_FFFF);
        f[0x234] = 1;                                                              // relocatable
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(0x236), 3);              // 64-bit entry
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x238), 255);
        BinaryPrimitives.WriteUInt64LittleEndian(f.AsSpan(0x258), 0x100_0000);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(0x260), 0x10_0000);
        code.CopyTo(f, 0x600);
        return f;
    }

    /// <summary>Writes the text on COM1, byte by byte.</summary>
    internal static void Print(Assembler a, string text)
    {
        a.mov(dx, (short)0x3F8);
        foreach (byte b in Encoding.ASCII.GetBytes(text))
        {
            a.mov(al, b);
            a.@out(dx, al);
        }
    }

    /// <summary>An IDT at <see cref="Idt"/> with one interrupt gate, vector 0x40, to the label; loaded.</summary>
    private static void IdtWithVector40(Assembler a, Label handler)
    {
        a.lea(rax, __[handler]);
        a.mov(rdi, Idt + 0x40 * 16);
        a.mov(__word_ptr[rdi], ax);
        a.mov(__word_ptr[rdi + 2], 0x10);                 // the boot protocol's code selector
        a.mov(__word_ptr[rdi + 4], unchecked((short)0x8E00)); // present, DPL 0, interrupt gate
        a.shr(rax, 16);
        a.mov(__word_ptr[rdi + 6], ax);
        a.shr(rax, 16);
        a.mov(__dword_ptr[rdi + 8], eax);
        a.mov(__dword_ptr[rdi + 12], 0);
        a.mov(rax, Idt);
        a.push(rax);
        a.mov(rax, 0x41FUL << 48);                        // limit 0x41F: vectors 0 to 0x41
        a.push(rax);
        a.lidt(__[rsp + 6]);
        a.add(rsp, 16);
    }

    /// <summary>Enables the local APIC and sends itself vector 0x40 (ICR: fixed, shorthand self).</summary>
    private static void SelfIpi(Assembler a)
    {
        a.mov(rbx, Apic);
        a.mov(__dword_ptr[rbx + 0xB0], 0);                // EOI of what is in service
        a.mov(__dword_ptr[rbx + 0x300], 0x4_4040);
    }

    private static readonly Dictionary<string, Action<Assembler>> Guests = new()
    {
        // An empty IDT: the #UD cannot be delivered, nor the #GP that says so, nor the #DF.
        ["triple fault"] = a =>
        {
            Print(a, "triple\n");
            a.push(0);
            a.push(0);
            a.lidt(__[rsp]);
            a.ud2();
        },
        // Each interrupt's handler takes its EOI, sends itself the next one and enables interrupts
        // without returning: the interrupts nest until the stack runs off the bottom of RAM's
        // identity map, and the page fault of the next delivery has no gate either.
        ["interrupt storm"] = a =>
        {
            var handler = a.CreateLabel();
            var spin = a.CreateLabel();
            Print(a, "storm\n");
            IdtWithVector40(a, handler);
            a.mov(rbx, Apic);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);        // spurious vector register: APIC on
            a.mov(rsp, 0x800UL);
            SelfIpi(a);
            a.sti();
            a.Label(ref spin);
            a.jmp(spin);
            a.Label(ref handler);
            SelfIpi(a);
            a.sti();
            var wait = a.CreateLabel();
            a.Label(ref wait);
            a.jmp(wait);
        },
        ["cli; hlt"] = a =>
        {
            Print(a, "halting\n");
            a.cli();
            a.hlt();
        },
    };

    private const string Open = "\"allow_ip_spoofing\": true, \"allow_mac_spoofing\": true, \"allow_dhcp_spoofing\": true, \"allow_restricted_traffic\": true";

    private static string Create(CliHost h, string payload)
    {
        var r = h.WithStdin(payload, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return r.Stderr.Split('\n')[0].Split(' ')[^1].Trim();
    }

    private static JsonObject Get(CliHost h, string uuid) => JsonNode.Parse(h.Ok("vmadm", "get", uuid))!.AsObject();

    [TestCase("triple fault", "triple_fault", "triple fault at 0x", "while delivering #DF (#UD: ud2)", "triple\n")]
    [TestCase("interrupt storm", "triple_fault", "triple fault at 0x", "(#PF: write at 0xfffffffffffffff8, page not present", "storm\n")]
    [TestCase("cli; hlt", "halted", "hlt with interrupts disabled at 0x", "", "halting\n")]
    public void A_bad_guest_stops_only_its_own_vm_with_the_reason(string guest, string reason, string detail, string cause, string console)
    {
        if (GuestCompiler.FindGcc(out string why) == null) Assert.Ignore($"the good VM is netecho, built with gcc: {why}");
        string kernel = Path.Combine(_dir, "vmlinuz");
        File.WriteAllBytes(kernel, Kernel(Guests[guest]));
        var h = new CliHost();
        h.Ok(CliHost.Split("nictagadm add -l stub0"));
        string client = Create(h, $$"""
            { "alias": "client", "brand": "joyent", "max_physical_memory": 128, "autoboot": true,
              "nics": [ { "nic_tag": "stub0", "ips": ["10.0.0.1/24"], {{Open}} } ] }
            """);
        string good = Create(h, $$"""
            { "alias": "good", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": true, "image": { "guest": "netecho" },
              "nics": [ { "nic_tag": "stub0", "model": "virtio", "ips": ["10.0.0.2/24"], "mac": "90:b8:d0:00:00:02", {{Open}} } ] }
            """);
        string bad = Create(h, $$"""
            { "alias": "bad", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": false,
              "image": { "kernel": "{{kernel}}", "cmdline": "console=ttyS0" },
              "nics": [ { "nic_tag": "stub0", "model": "virtio", "ips": ["10.0.0.3/24"], "mac": "90:b8:d0:00:00:03", {{Open}} } ] }
            """);
        h.World.Scheduler.RunFor(Time.Second);
        Assert.That(h.Run(CliHost.Split($"vmadm start {bad}")).ExitCode, Is.Zero);
        h.World.Scheduler.RunFor(Time.Second);
        var j = Get(h, bad);
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)j["state"], Is.EqualTo("stopped"));
            Assert.That((string?)j["vm_stop_reason"], Is.EqualTo(reason));
            Assert.That((string?)j["vm_stop_detail"], Does.StartWith(detail).And.Contain(cause));
            Assert.That(h.Ok(CliHost.Split($"vmadm console {bad}")), Is.EqualTo(console), "what it wrote before it stopped");
            Assert.That(h.Ok(CliHost.Split("dladm show-vnic -p -o zone")), Does.Not.Contain(bad), "the bad guest's VNIC is gone");
            Assert.That((string?)Get(h, good)["state"], Is.EqualTo("running"));
            Assert.That((string?)Get(h, client)["state"], Is.EqualTo("running"));
            Assert.That(h.Run("zlogin", client, "ping", "-s", "10.0.0.2", "56", "2").Stdout, Does.Contain("2 packets transmitted, 2 packets received"),
                "the zone still reaches the good VM");
        }
        TestContext.Out.WriteLine((string?)j["vm_stop_detail"]);
    }

    /// <summary>A storm the guest handles (EOI, the next self-IPI, iretq) never ends by itself; the VM
    /// runs on in its slices, the others go on beside it, and vmadm stop ends it.</summary>
    [Test]
    public void A_handled_interrupt_storm_keeps_only_its_own_vm_busy_and_vmadm_stop_ends_it()
    {
        if (GuestCompiler.FindGcc(out string why) == null) Assert.Ignore($"the good VM is netecho, built with gcc: {why}");
        string kernel = Path.Combine(_dir, "vmlinuz");
        File.WriteAllBytes(kernel, Kernel(a =>
        {
            var handler = a.CreateLabel();
            var spin = a.CreateLabel();
            IdtWithVector40(a, handler);
            a.mov(rbx, Apic);
            a.mov(__dword_ptr[rbx + 0xF0], 0x1FF);
            a.xor(r12, r12);
            SelfIpi(a);
            a.sti();
            a.Label(ref spin);
            a.hlt();                                    // woken by each interrupt at once
            a.jmp(spin);
            a.Label(ref handler);
            a.inc(r12);
            SelfIpi(a);
            a.iretq();
        }));
        var h = new CliHost();
        h.Ok(CliHost.Split("nictagadm add -l stub0"));
        string client = Create(h, $$"""
            { "alias": "client", "brand": "joyent", "max_physical_memory": 128, "autoboot": true,
              "nics": [ { "nic_tag": "stub0", "ips": ["10.0.0.1/24"], {{Open}} } ] }
            """);
        string good = Create(h, $$"""
            { "alias": "good", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": true, "image": { "guest": "netecho" },
              "nics": [ { "nic_tag": "stub0", "model": "virtio", "ips": ["10.0.0.2/24"], "mac": "90:b8:d0:00:00:02", {{Open}} } ] }
            """);
        h.World.Scheduler.RunFor(Time.Second);
        // The storm runs at a few instructions per interrupt: 2 ms of it is some 350,000 interrupts.
        string storm = Create(h, $$"""
            { "alias": "storm", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": true,
              "image": { "kernel": "{{kernel}}" },
              "nics": [ { "nic_tag": "stub0", "model": "virtio", "ips": ["10.0.0.3/24"], "mac": "90:b8:d0:00:00:03", {{Open}} } ] }
            """);
        h.World.Scheduler.RunFor(2 * Time.Millisecond);
        long start = h.World.Scheduler.Now;
        var ping = h.Run("zlogin", client, "ping", "-s", "10.0.0.2", "56", "1");
        TestContext.Out.WriteLine($"ping took {(h.World.Scheduler.Now - start) / 1000} us of virtual time");
        var vm = h.Host.Zones.Find(storm)!.Guest!;
        var interp = (Interpreter)vm.Vcpu!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That((string?)Get(h, storm)["state"], Is.EqualTo("running"), $"{vm.StopReason}: {vm.StopDetail}");
            Assert.That(interp.InterruptsDelivered, Is.GreaterThan(100_000), "the storm ran");
            TestContext.Out.WriteLine($"{interp.InterruptsDelivered} interrupts");
            Assert.That((string?)Get(h, good)["state"], Is.EqualTo("running"));
            Assert.That(ping.Stdout, Does.Contain("1 packets transmitted, 1 packets received"), "the zone still reaches the good VM");
        }
        h.Ok(CliHost.Split($"vmadm stop {storm}"));
        var j = Get(h, storm);
        Assert.That(((string?)j["state"], (string?)j["vm_stop_reason"]), Is.EqualTo(("stopped", "stopped_by_host")));
    }
}
