/*
 * The Linux boot protocol, 64-bit entry (the kernel's Documentation/arch/x86/boot.rst, protocol
 * 2.12 and later): what a boot loader does to start a bzImage without real-mode setup code.
 *
 * Terms
 *   bzImage       the file: the real-mode setup code ((setup_sects + 1) x 512 bytes; setup_sects 0
 *                 means 4) whose setup header sits at 0x1F1, then the protected-mode kernel (the
 *                 decompressor and the compressed kernel), syssize x 16 bytes.
 *   setup header  0x1F1 to 0x202 + the byte at 0x201: boot_flag 0xAA55 at 0x1FE, "HdrS" at 0x202,
 *                 the protocol version at 0x206, and the fields a loader reads and fills (below).
 *   zero page     struct boot_params, 4 KiB: the setup header copied at 0x1F1, the e820 map at
 *                 0x2D0 (20-byte entries, count at 0x1E8), acpi_rsdp_addr at 0x070.
 *
 * Guest physical layout (RAM from 0; with a PCI bus RAM ends at or below PciBus.PciMemoryBase):
 *   0x0000_1000  GDT: null, null, code64 (0x10 = __BOOT_CS), data (0x18 = __BOOT_DS); 0x08 is also
 *                a code64 descriptor, the selector the KVM backend enters with (Boot.cs)
 *   0x0000_3000  the identity map of 0-4 GiB with 2 MiB pages (Boot.cs's tables; CR3 = 0x3000)
 *   0x0000_9000  the zero page; RSI points here at entry
 *   0x0001_0000  the boot stack (RSP = 0x1FFF0 at entry; the kernel makes its own at once)
 *   0x0002_0000  the command line, NUL-terminated (cmd_line_ptr)
 *   0x0009_FC00  reserved: the EBDA, and 0xE0000-0xFFFFF, the BIOS area with the ACPI tables (Acpi.cs)
 *   pref_address the protected-mode kernel (16 MiB for Debian's); it needs init_size bytes from there
 *   top of RAM   the initrd, page-aligned, as high as RAM and initrd_addr_max allow
 * e820: RAM [0, 0x9FC00); reserved [0x9FC00, 0xA0000) and [0xE0000, 0x100000); RAM [1 MiB, top);
 *       reserved [0xFEC00000, +4 KiB) (I/O APIC) and [0xFEE00000, +4 KiB) (local APIC).
 * Entry: 64-bit mode with paging (the identity map), RIP = load address + 0x200 (startup_64),
 * RSI = the zero page, RFLAGS = 2 (interrupts off), CS 0x10 and DS/ES/SS 0x18 as the protocol
 * asks, other general registers 0.
 *
 * Rules
 *   1. A kernel file is untrusted: every field is checked before anything is written, and a file
 *      that is not a bzImage, speaks a protocol older than 2.12, has no 64-bit entry, is cut short
 *      or does not fit in RAM is refused with a sentence that says which; guest memory is then
 *      untouched.
 *   2. The zero page is built from the file's own setup header (as the protocol asks: copy it, then
 *      fill in the loader's fields), so fields this loader does not know travel as the kernel set them.
 */
using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Virt;

/// <summary>A parsed bzImage setup header (see the theory statement above).</summary>
public sealed class BzImage
{
    public const ushort MinimumProtocol = 0x020C;
    public const ushort XlfKernel64 = 1;
    public const byte LoadedHigh = 1;

    private BzImage() { }

    public ushort Protocol { get; private init; }
    public int SetupSects { get; private init; }
    public uint SysSize { get; private init; }
    public byte LoadFlags { get; private init; }
    public ushort XLoadFlags { get; private init; }
    public bool Relocatable { get; private init; }
    public ulong PrefAddress { get; private init; }
    public uint InitSize { get; private init; }
    public uint KernelAlignment { get; private init; }
    public uint CmdlineSize { get; private init; }
    public uint InitrdAddrMax { get; private init; }
    /// <summary>The kernel's version string ("6.1.0-28-cloud-amd64 (debian-kernel@...) #1 SMP ...").</summary>
    public string KernelVersion { get; private init; } = "";
    /// <summary>Where the protected-mode kernel starts in the file: (setup_sects + 1) x 512.</summary>
    public int PayloadOffset => (SetupSects + 1) * 512;
    /// <summary>The protected-mode kernel's length: syssize x 16.</summary>
    public long PayloadLength => SysSize * 16L;
    /// <summary>Where the setup header ends in the file (0x202 + the jump byte at 0x201).</summary>
    public int HeaderEnd { get; private init; }
    /// <summary>"2.15" for protocol 0x020F.</summary>
    public string ProtocolText => $"{Protocol >> 8}.{Protocol & 0xFF:D2}";

    /// <summary>Reads and checks the header (rule 1); null with the reason when it is not a kernel
    /// this loader boots.</summary>
    public static BzImage? Parse(ReadOnlySpan<byte> file, out string error)
    {
        error = "";
        if (file.Length < 0x270 || BinaryPrimitives.ReadUInt16LittleEndian(file[0x1FE..]) != 0xAA55
            || BinaryPrimitives.ReadUInt32LittleEndian(file[0x202..]) != 0x53726448) // "HdrS"
        {
            error = "not a bzImage: no Linux boot protocol header (boot flag 0xAA55 and \"HdrS\")";
            return null;
        }
        ushort protocol = BinaryPrimitives.ReadUInt16LittleEndian(file[0x206..]);
        if (protocol < MinimumProtocol)
        {
            error = $"Linux boot protocol {protocol >> 8}.{protocol & 0xFF:D2} is older than 2.12, the oldest with a 64-bit entry";
            return null;
        }
        int setupSects = file[0x1F1] == 0 ? 4 : file[0x1F1];
        var k = new BzImage
        {
            Protocol = protocol,
            SetupSects = setupSects,
            SysSize = BinaryPrimitives.ReadUInt32LittleEndian(file[0x1F4..]),
            LoadFlags = file[0x211],
            XLoadFlags = BinaryPrimitives.ReadUInt16LittleEndian(file[0x236..]),
            Relocatable = file[0x234] != 0,
            PrefAddress = BinaryPrimitives.ReadUInt64LittleEndian(file[0x258..]),
            InitSize = BinaryPrimitives.ReadUInt32LittleEndian(file[0x260..]),
            KernelAlignment = BinaryPrimitives.ReadUInt32LittleEndian(file[0x230..]),
            CmdlineSize = BinaryPrimitives.ReadUInt32LittleEndian(file[0x238..]),
            InitrdAddrMax = BinaryPrimitives.ReadUInt32LittleEndian(file[0x22C..]),
            HeaderEnd = 0x202 + file[0x201],
            KernelVersion = VersionString(file),
        };
        if ((k.LoadFlags & LoadedHigh) == 0)
            error = "the kernel is a zImage (loaded low): only a bzImage boots here";
        else if ((k.XLoadFlags & XlfKernel64) == 0)
            error = "the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)";
        else if (k.HeaderEnd > 0x290 || k.HeaderEnd > k.PayloadOffset)
            error = $"the setup header ends at 0x{k.HeaderEnd:x}, past the setup code";
        else if (k.SysSize == 0 || (long)k.PayloadOffset + k.PayloadLength > file.Length)
            error = $"the bzImage is cut short: {file.Length} bytes, the header says {(long)k.PayloadOffset + k.PayloadLength}";
        else if (k.InitSize < k.PayloadLength)
            error = $"init_size {k.InitSize} is smaller than the kernel's {k.PayloadLength} bytes";
        else if (k.PrefAddress < 0x10_0000 || k.PrefAddress % GuestMemory.PageSize != 0)
            error = $"pref_address 0x{k.PrefAddress:x} is below 1 MiB or not page-aligned";
        return error.Length == 0 ? k : null;
    }

    private static string VersionString(ReadOnlySpan<byte> file)
    {
        int at = 0x200 + BinaryPrimitives.ReadUInt16LittleEndian(file[0x20E..]);
        if (at <= 0x200 || at >= file.Length) return "";
        int end = at;
        while (end < file.Length && end - at < 256 && file[end] != 0) end++;
        return Encoding.ASCII.GetString(file[at..end]);
    }
}

/// <summary>One e820 entry: [Address, Address + Size) of Type (1 RAM, 2 reserved, 3 ACPI).</summary>
public readonly record struct E820Entry(ulong Address, ulong Size, uint Type)
{
    public const uint Ram = 1, Reserved = 2, Acpi = 3;
}

/// <summary>Loads a bzImage, an initrd and a command line into guest memory (the theory statement above).</summary>
public static class LinuxBoot
{
    public const ulong GdtAddress = 0x1000;
    public const ulong ZeroPageAddress = 0x9000;
    public const ulong StackTop = 0x1FFF0;
    public const ulong CmdlineAddress = 0x2_0000;
    public const ulong CmdlineMax = 0x1_0000;
    public const ulong EbdaAddress = 0x9_FC00;
    public const ulong BiosAreaAddress = 0xE_0000;
    public const ulong HighMemory = 0x10_0000;
    public const ulong IoApicAddress = 0xFEC0_0000, LocalApicAddress = 0xFEE0_0000;
    public const ushort BootCs = 0x10, BootDs = 0x18;
    /// <summary>type_of_loader: 0xFF, "undefined" (no registered loader id).</summary>
    public const byte LoaderType = 0xFF;

    /// <summary>Where things went, for the caller and for tests.</summary>
    public sealed record Placement(ulong KernelAddress, ulong EntryPoint, ulong InitrdAddress, ulong InitrdSize, ulong RsdpAddress, IReadOnlyList<E820Entry> E820);

    /// <summary>The e820 map of a guest with <paramref name="ramSize"/> bytes of RAM.</summary>
    public static List<E820Entry> E820Map(ulong ramSize) =>
    [
        new(0, EbdaAddress, E820Entry.Ram),
        new(EbdaAddress, 0xA_0000 - EbdaAddress, E820Entry.Reserved),
        new(BiosAreaAddress, HighMemory - BiosAreaAddress, E820Entry.Reserved),
        new(HighMemory, ramSize - HighMemory, E820Entry.Ram),
        new(IoApicAddress, 0x1000, E820Entry.Reserved),
        new(LocalApicAddress, 0x1000, E820Entry.Reserved),
    ];

    /// <summary>Checks everything, then writes the GDT, page tables, ACPI tables, zero page, command
    /// line, kernel and initrd (rule 1: nothing is written when anything is refused).</summary>
    public static Placement? TryLoad(GuestMemory memory, ReadOnlySpan<byte> kernelFile, ReadOnlySpan<byte> initrd, string cmdline, out string error)
    {
        var k = BzImage.Parse(kernelFile, out error);
        if (k == null) return null;
        ulong ram = memory.Size;
        if (ram < 32UL << 20)
        {
            error = $"guest memory of {ram >> 20} MiB is too small for Linux (at least 32 MiB)";
            return null;
        }
        if (ram > PciBus.PciMemoryBase)
        {
            error = $"guest memory of {ram >> 20} MiB would cover the PCI hole at 0x{PciBus.PciMemoryBase:x} (at most {PciBus.PciMemoryBase >> 20} MiB)";
            return null;
        }
        ulong load = k.PrefAddress, end = load + k.InitSize;
        if (end > ram)
        {
            error = $"the kernel needs {k.InitSize >> 20} MiB from 0x{load:x} (init_size) and guest memory ends at 0x{ram:x}";
            return null;
        }
        byte[] line = Encoding.UTF8.GetBytes(cmdline);
        if ((ulong)line.Length >= Math.Min(k.CmdlineSize + 1UL, CmdlineMax))
        {
            error = $"the command line of {line.Length} bytes is longer than the kernel takes ({k.CmdlineSize} bytes)";
            return null;
        }
        ulong initrdAddress = 0;
        if (!initrd.IsEmpty)
        {
            ulong ceiling = Math.Min(ram, (ulong)k.InitrdAddrMax + 1);
            ulong size = (ulong)initrd.Length;
            initrdAddress = size <= ceiling ? (ceiling - size) & ~(ulong)(GuestMemory.PageSize - 1) : 0;
            if (initrdAddress < end)
            {
                error = $"the initrd of {size >> 20} MiB does not fit between the kernel (which ends at 0x{end:x}) and 0x{ceiling:x}";
                return null;
            }
        }
        var e820 = E820Map(ram);
        Boot.WriteIdentityMap(memory);
        WriteGdt(memory);
        ulong rsdp = Acpi.Write(memory, BiosAreaAddress, new Acpi.Layout(LocalApicAddress, IoApicAddress, Cpus: 1));
        memory.TryWrite(CmdlineAddress, line);
        memory.TryWrite(CmdlineAddress + (ulong)line.Length, [0]);
        memory.TryWrite(load, kernelFile.Slice(k.PayloadOffset, (int)k.PayloadLength));
        if (!initrd.IsEmpty) memory.TryWrite(initrdAddress, initrd);
        Span<byte> zero = stackalloc byte[GuestMemory.PageSize];
        BuildZeroPage(zero, kernelFile, k, load, initrdAddress, (ulong)initrd.Length, rsdp, e820);
        memory.TryWrite(ZeroPageAddress, zero);
        return new Placement(load, load + 0x200, initrdAddress, (ulong)initrd.Length, rsdp, e820);
    }

    /// <summary>The zero page (rule 2): the file's setup header, then the loader's fields.</summary>
    public static void BuildZeroPage(Span<byte> z, ReadOnlySpan<byte> kernelFile, BzImage k, ulong load, ulong initrdAddress, ulong initrdSize, ulong rsdp, IReadOnlyList<E820Entry> e820)
    {
        z.Clear();
        kernelFile[0x1F1..k.HeaderEnd].CopyTo(z[0x1F1..]);
        BinaryPrimitives.WriteUInt64LittleEndian(z[0x070..], rsdp);             // acpi_rsdp_addr
        z[0x210] = LoaderType;                                                  // type_of_loader
        z[0x211] = (byte)((k.LoadFlags | BzImage.LoadedHigh) & ~0x80);          // loadflags: no heap (no setup code runs)
        BinaryPrimitives.WriteUInt32LittleEndian(z[0x214..], (uint)load);       // code32_start
        BinaryPrimitives.WriteUInt32LittleEndian(z[0x218..], (uint)initrdAddress); // ramdisk_image
        BinaryPrimitives.WriteUInt32LittleEndian(z[0x21C..], (uint)initrdSize); // ramdisk_size
        BinaryPrimitives.WriteUInt32LittleEndian(z[0x228..], (uint)CmdlineAddress); // cmd_line_ptr
        BinaryPrimitives.WriteUInt32LittleEndian(z[0x0C0..], (uint)(initrdAddress >> 32)); // ext_ramdisk_image
        BinaryPrimitives.WriteUInt32LittleEndian(z[0x0C4..], (uint)(initrdSize >> 32));    // ext_ramdisk_size
        BinaryPrimitives.WriteUInt32LittleEndian(z[0x0C8..], (uint)(CmdlineAddress >> 32)); // ext_cmd_line_ptr
        z[0x1E8] = (byte)e820.Count;                                            // e820_entries
        for (int i = 0; i < e820.Count; i++)
        {
            var entry = z.Slice(0x2D0 + 20 * i, 20);
            BinaryPrimitives.WriteUInt64LittleEndian(entry, e820[i].Address);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], e820[i].Size);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[16..], e820[i].Type);
        }
    }

    private static void WriteGdt(GuestMemory memory)
    {
        Span<byte> gdt = stackalloc byte[32];
        gdt.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[8..], 0x00AF_9A00_0000_FFFF);   // 0x08 code64 (the KVM backend's CS)
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[16..], 0x00AF_9A00_0000_FFFF);  // 0x10 __BOOT_CS
        BinaryPrimitives.WriteUInt64LittleEndian(gdt[24..], 0x00CF_9200_0000_FFFF);  // 0x18 __BOOT_DS
        memory.TryWrite(GdtAddress, gdt);
    }

    /// <summary>The general-register part of the entry state (the backend's long mode is Boot.cs's).</summary>
    public static void SetEntryState(Vcpu vcpu, Placement p)
    {
        for (int i = 0; i < 16; i++) vcpu.SetRegister((Reg)i, 0);
        vcpu.Rip = p.EntryPoint;
        vcpu.Rflags = 2;
        vcpu.SetRegister(Reg.Rsi, ZeroPageAddress);
        vcpu.SetRegister(Reg.Rsp, StackTop);
        // Long mode on Boot.cs's identity map, with this GDT (KvmVcpu sets its own when created).
        if (vcpu is Interpreter interp) interp.SetLongModeState(Boot.Pml4Address, GdtAddress, 31, BootCs, BootDs);
    }
}
