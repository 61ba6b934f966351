using System.Buffers.Binary;

namespace SmartOS.Virt;

/// <summary>The boot protocol of Vmm.cs: page tables, GDT, boot-info block, image, entry registers.</summary>
public static class Boot
{
    public const ulong GdtAddress = 0x1000;
    public const ulong BootInfoAddress = 0x2000;
    public const ulong Pml4Address = 0x3000;
    public const ulong PdptAddress = 0x4000;
    public const ulong PdAddress = 0x5000;
    public const ulong ImageBase = 0x10_0000;
    public const ulong Magic = 0x544F4F42534F4D53; // "SMOSBOOT" little-endian
    public const ulong TscHz = 1_000_000_000;

    /// <summary>Writes the boot structures and the image; false (with the reason) when they do not fit.</summary>
    public static bool TryLoad(GuestMemory memory, ReadOnlySpan<byte> image, ReadOnlySpan<ulong> nicBases, out string? error)
        => TryLoad(memory, image, nicBases, [], out error);

    /// <summary>The same, for a guest with virtio-blk disks too (their bases go at +144 of the boot-info block).</summary>
    public static bool TryLoad(GuestMemory memory, ReadOnlySpan<byte> image, ReadOnlySpan<ulong> nicBases, ReadOnlySpan<ulong> diskBases, out string? error)
    {
        error = null;
        if (memory.Size < ImageBase + 0x10000)
        {
            error = $"guest memory of {memory.Size} bytes is too small (at least {ImageBase + 0x10000})";
            return false;
        }
        if (memory.Size > Vm.VirtioMmioBase)
        {
            error = $"guest memory of {memory.Size} bytes would cover the device window at 0x{Vm.VirtioMmioBase:x}";
            return false;
        }
        // Leave 64 KiB of stack under the top of RAM.
        if ((ulong)image.Length > memory.Size - ImageBase - 0x10000)
        {
            error = $"image of {image.Length} bytes does not fit in {memory.Size} bytes of guest memory";
            return false;
        }
        Span<byte> page = stackalloc byte[GuestMemory.PageSize];
        // GDT: null, code64 (P, S, type execute/read, L), data (P, S, type read/write).
        page.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(page[8..], 0x00AF_9A00_0000_FFFF);
        BinaryPrimitives.WriteUInt64LittleEndian(page[16..], 0x00CF_9200_0000_FFFF);
        memory.TryWrite(GdtAddress, page);
        WriteIdentityMap(memory);
        page.Clear();
        WriteBootInfo(page, memory.Size, (ulong)image.Length, nicBases, diskBases);
        memory.TryWrite(BootInfoAddress, page[..256]);
        memory.TryWrite(ImageBase, image);
        return true;
    }

    /// <summary>The page tables at 0x3000-0x8fff: PML4[0] -> PDPT; PDPT[0..3] -> four PDs; each PD
    /// maps 1 GiB with 2 MiB pages (P, RW, PS), so 0-4 GiB is identity-mapped (also LinuxBoot.cs's).</summary>
    internal static void WriteIdentityMap(GuestMemory memory)
    {
        Span<byte> page = stackalloc byte[GuestMemory.PageSize];
        page.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(page, PdptAddress | 3);
        memory.TryWrite(Pml4Address, page);
        page.Clear();
        for (int i = 0; i < 4; i++) BinaryPrimitives.WriteUInt64LittleEndian(page[(8 * i)..], (PdAddress + (ulong)i * 0x1000) | 3);
        memory.TryWrite(PdptAddress, page);
        for (int pd = 0; pd < 4; pd++)
        {
            for (int i = 0; i < 512; i++)
                BinaryPrimitives.WriteUInt64LittleEndian(page[(8 * i)..], ((ulong)pd << 30 | (ulong)i << 21) | 0x83);
            memory.TryWrite(PdAddress + (ulong)pd * 0x1000, page);
        }
    }

    private static void WriteBootInfo(Span<byte> b, ulong memSize, ulong imageSize, ReadOnlySpan<ulong> nicBases, ReadOnlySpan<ulong> diskBases)
    {
        ulong[] fields = [Magic, 1, memSize, ImageBase, imageSize, Devices.Uart16550.Com1, Devices.GuestTimer.BasePort, Vm.PowerOffPort, TscHz, (ulong)nicBases.Length];
        for (int i = 0; i < fields.Length; i++) BinaryPrimitives.WriteUInt64LittleEndian(b[(8 * i)..], fields[i]);
        for (int i = 0; i < nicBases.Length && i < Vm.MaxNics; i++) BinaryPrimitives.WriteUInt64LittleEndian(b[(80 + 8 * i)..], nicBases[i]);
        BinaryPrimitives.WriteUInt64LittleEndian(b[144..], (ulong)diskBases.Length);
        for (int i = 0; i < diskBases.Length && i < Vm.MaxDisks; i++) BinaryPrimitives.WriteUInt64LittleEndian(b[(152 + 8 * i)..], diskBases[i]);
    }

    /// <summary>The entry state: general registers, and for the interpreter the long-mode system state
    /// (KvmVcpu sets up long mode itself).</summary>
    public static void SetEntryState(Vcpu vcpu)
    {
        for (int i = 0; i < 16; i++) vcpu.SetRegister((Reg)i, 0);
        vcpu.Rip = ImageBase;
        vcpu.Rflags = 2;
        vcpu.SetRegister(Reg.Rdi, BootInfoAddress);
        vcpu.SetRegister(Reg.Rsp, MemorySizeOf(vcpu) - 8);
        // KvmVcpu sets the same long-mode state when it is created.
        if (vcpu is Interpreter interp) interp.SetLongModeState(Pml4Address, GdtAddress, 23);
    }

    private static ulong MemorySizeOf(Vcpu vcpu) => vcpu switch
    {
        Interpreter i => i.MemorySize,
        KvmVcpu k => k.MemorySize,
        _ => throw new ArgumentException("unknown backend", nameof(vcpu)),
    };
}
