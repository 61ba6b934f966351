/*
 * Minimal ACPI tables for a PC guest (ACPI 6.x, chapter 5): what an OS needs to find its interrupt
 * controllers without a BIOS, and a parser that checks them as an OS would.
 *
 * Tables, written one after another (16-byte aligned) from a base in the BIOS area (0xE0000, where
 * an OS scans for "RSD PTR " on 16-byte boundaries; LinuxBoot.cs also passes it in acpi_rsdp_addr):
 *   RSDP  revision 2: the RSDT (32-bit) and XSDT (64-bit) addresses, both checksums
 *   RSDT  and XSDT: FADT, MADT
 *   FADT  revision 6 (276 bytes): the DSDT, SCI on IRQ 9, the PM1a event and control blocks at
 *         ports 0x600 and 0x604 (AcpiPm below: SCI_EN reads 1, the machine is in ACPI mode from the
 *         start, so no SMI command port), no PM timer, no PM1b/PM2/GPE blocks, no reset register;
 *         IAPC_BOOT_ARCH: legacy devices present, no 8042, no VGA (MSI is supported: the virtio-pci
 *         functions offer MSI-X, PciVirtio.cs); HW_REDUCED_ACPI when Layout.HardwareReduced (then no PM
 *         blocks and no SCI: an OS skips the 8259 and the PIT as timer, Linux's reduced-hardware path)
 *   DSDT  AML for one device, \_SB.PCI0, the PCI host bridge (Pci.cs), so that an OS that takes its
 *         PCI roots from ACPI (Linux does) finds bus 0: _HID PNP0A03, _UID 0, _BBN 0; _CRS with bus
 *         numbers 0-255, the config ports 0xCF8-0xCFF, I/O 0x0000-0x0CF7 and 0x0D00-0xFFFF, and the
 *         memory window PciBus.PciMemoryBase-PciMemoryLimit; _PRT routes INTA of slots 1-31 to GSI
 *         10 (even slots) or 11 (odd), the same IRQs the functions' interrupt line registers hold
 *   MADT  revision 3: local APIC address, PCAT_COMPAT (an 8259 pair is present), one local APIC
 *         per CPU (processor ids and APIC ids 0..n-1), the I/O APIC (id n, GSI base 0), interrupt
 *         source overrides IRQ 0 -> GSI 2 (the PIT on pin 2, as on every PC), IRQ 9 (SCI) and the
 *         PCI IRQs 10 and 11 level-triggered active high, and LINT1 as NMI on every CPU
 * Every table's bytes sum to zero (the checksum byte is set last); the RSDP's first 20 bytes sum to
 * zero and so do all 36 (the extended checksum).
 *
 * Rules
 *   1. The tables depend only on the Layout: the same VM gets the same bytes (deterministic).
 *   2. The parser trusts nothing: a bad signature, a length past the memory, a checksum that does
 *      not sum to zero, is reported with the table's name.
 */
using System.Buffers.Binary;
using System.Text;

namespace SmartOS.Virt;

public static class Acpi
{
    public const ushort Pm1aEventPort = 0x600, Pm1aControlPort = 0x604;
    public const int SciIrq = 9;
    public const string OemId = "SMOS  ", OemTableId = "SMARTOS ";
    private const int HeaderLength = 36;

    /// <summary>What the tables describe.</summary>
    public sealed record Layout(ulong LocalApic, ulong IoApic, int Cpus, bool HardwareReduced = false);

    /// <summary>Writes the tables at <paramref name="at"/> (16-byte aligned) and returns the RSDP's address.</summary>
    public static ulong Write(GuestMemory memory, ulong at, Layout layout)
    {
        var image = Build(at, layout);
        memory.TryWrite(at, image);
        return at;
    }

    /// <summary>The tables as bytes, for <paramref name="at"/> (the RSDP first).</summary>
    public static byte[] Build(ulong at, Layout layout)
    {
        ulong rsdp = at, xsdt = at + 0x40, rsdt = xsdt + 0x40, fadt = rsdt + 0x40, dsdt = fadt + 0x120;
        ulong madt = dsdt + (((ulong)(HeaderLength + Aml.PciRoot().Length) + 15) & ~15UL);
        var madtBytes = Madt(layout);
        var buffer = new byte[(int)(madt - at) + madtBytes.Length];
        Span<byte> Table(ulong address, int length) => buffer.AsSpan((int)(address - at), length);

        var r = Table(rsdp, 36);
        Encoding.ASCII.GetBytes("RSD PTR ").CopyTo(r);
        Encoding.ASCII.GetBytes(OemId).CopyTo(r[9..]);
        r[15] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(r[16..], (uint)rsdt);
        BinaryPrimitives.WriteUInt32LittleEndian(r[20..], 36);
        BinaryPrimitives.WriteUInt64LittleEndian(r[24..], xsdt);
        r[8] = Checksum(r[..20]);
        r[32] = Checksum(r);

        var x = Table(xsdt, HeaderLength + 16);
        Header(x, "XSDT", 1);
        BinaryPrimitives.WriteUInt64LittleEndian(x[36..], fadt);
        BinaryPrimitives.WriteUInt64LittleEndian(x[44..], madt);
        x[9] = Checksum(x);

        var s = Table(rsdt, HeaderLength + 8);
        Header(s, "RSDT", 1);
        BinaryPrimitives.WriteUInt32LittleEndian(s[36..], (uint)fadt);
        BinaryPrimitives.WriteUInt32LittleEndian(s[40..], (uint)madt);
        s[9] = Checksum(s);

        var f = Table(fadt, 276);
        Fadt(f, dsdt, layout.HardwareReduced);

        var aml = Aml.PciRoot();
        var d = Table(dsdt, HeaderLength + aml.Length);
        Header(d, "DSDT", 2);
        aml.CopyTo(d[HeaderLength..]);
        d[9] = Checksum(d);

        madtBytes.CopyTo(Table(madt, madtBytes.Length));
        return buffer;
    }

    private static void Fadt(Span<byte> f, ulong dsdt, bool reduced)
    {
        Header(f, "FACP", 6);
        BinaryPrimitives.WriteUInt32LittleEndian(f[40..], (uint)dsdt);
        if (!reduced)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(f[46..], SciIrq);                 // SCI_INT
            BinaryPrimitives.WriteUInt32LittleEndian(f[56..], Pm1aEventPort);          // PM1a_EVT_BLK
            BinaryPrimitives.WriteUInt32LittleEndian(f[64..], Pm1aControlPort);        // PM1a_CNT_BLK
            f[88] = 4;                                                                 // PM1_EVT_LEN
            f[89] = 2;                                                                 // PM1_CNT_LEN
            Gas(f[148..], 32, Pm1aEventPort);                                          // X_PM1a_EVT_BLK
            Gas(f[172..], 16, Pm1aControlPort);                                        // X_PM1a_CNT_BLK
        }
        // IAPC_BOOT_ARCH: LEGACY_DEVICES, no 8042 (bit 1 clear), VGA not present; MSI supported (bit 3 clear).
        BinaryPrimitives.WriteUInt16LittleEndian(f[109..], reduced ? (ushort)0x04 : (ushort)0x05);
        // Flags: WBINVD, PWR_BUTTON and SLP_BUTTON (none as fixed features), HW_REDUCED_ACPI.
        uint flags = 1u | 1u << 4 | 1u << 5 | (reduced ? 1u << 20 : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(f[112..], flags);
        f[131] = 0;                                                                    // FADT minor version (6.0)
        BinaryPrimitives.WriteUInt64LittleEndian(f[140..], dsdt);                      // X_DSDT
        Encoding.ASCII.GetBytes("SmartOS\0").CopyTo(f[268..]);                         // hypervisor vendor identity
        f[9] = Checksum(f);
    }

    private static byte[] Madt(Layout layout)
    {
        var entries = new List<byte[]>();
        for (int i = 0; i < layout.Cpus; i++) entries.Add([0, 8, (byte)i, (byte)i, 1, 0, 0, 0]);   // local APIC, enabled
        var io = new byte[12];
        io[0] = 1; io[1] = 12; io[2] = (byte)layout.Cpus;
        BinaryPrimitives.WriteUInt32LittleEndian(io.AsSpan(4), (uint)layout.IoApic);
        entries.Add(io);                                                                   // I/O APIC, GSI base 0
        entries.Add(Override(0, 2, 0));                                                    // the PIT's IRQ 0 on pin 2
        entries.Add(Override(SciIrq, SciIrq, 0x0D));                                       // SCI: level, active high
        entries.Add(Override(10, 10, 0x0D));                                               // PCI INTx (Pci.cs)
        entries.Add(Override(11, 11, 0x0D));
        entries.Add([4, 6, 0xFF, 0, 0, 1]);                                                // LINT1 is NMI, all CPUs
        int length = HeaderLength + 8;
        foreach (var e in entries) length += e.Length;
        var m = new byte[length];
        Header(m, "APIC", 3);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(36), (uint)layout.LocalApic);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(40), 1);                         // PCAT_COMPAT
        int at = HeaderLength + 8;
        foreach (var e in entries) { e.CopyTo(m, at); at += e.Length; }
        m[9] = Checksum(m);
        return m;
    }

    private static byte[] Override(byte irq, uint gsi, ushort flags)
    {
        var e = new byte[10];
        e[0] = 2; e[1] = 10; e[2] = 0; e[3] = irq;
        BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(4), gsi);
        BinaryPrimitives.WriteUInt16LittleEndian(e.AsSpan(8), flags);
        return e;
    }

    /// <summary>A Generic Address Structure for system I/O space, accessed a word at a time (the
    /// PM1 registers are 16 bits wide).</summary>
    private static void Gas(Span<byte> g, byte bitWidth, ulong address)
    {
        g[0] = 1;               // system I/O
        g[1] = bitWidth;
        g[2] = 0;               // bit offset
        g[3] = 2;               // access size: word
        BinaryPrimitives.WriteUInt64LittleEndian(g[4..], address);
    }

    private static void Header(Span<byte> t, string signature, byte revision)
    {
        Encoding.ASCII.GetBytes(signature).CopyTo(t);
        BinaryPrimitives.WriteUInt32LittleEndian(t[4..], (uint)t.Length);
        t[8] = revision;
        Encoding.ASCII.GetBytes(OemId).CopyTo(t[10..]);
        Encoding.ASCII.GetBytes(OemTableId).CopyTo(t[16..]);
        BinaryPrimitives.WriteUInt32LittleEndian(t[24..], 1);                             // OEM revision
        Encoding.ASCII.GetBytes("SMOS").CopyTo(t[28..]);                                  // creator id
        BinaryPrimitives.WriteUInt32LittleEndian(t[32..], 1);                             // creator revision
    }

    private static byte Checksum(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte x in bytes) sum += x;
        return (byte)(0x100 - sum);
    }

    private static bool SumsToZero(ReadOnlySpan<byte> bytes)
    {
        byte sum = 0;
        foreach (byte x in bytes) sum += x;
        return sum == 0;
    }

    // ---- The parser (rule 2) ----

    /// <summary>Finds "RSD PTR " on a 16-byte boundary in [from, to), as an OS scans the BIOS area.</summary>
    public static ulong? FindRsdp(GuestMemory memory, ulong from = 0xE_0000, ulong to = 0x10_0000)
    {
        Span<byte> sig = stackalloc byte[8];
        for (ulong a = from; a + 36 <= to; a += 16)
            if (memory.TryRead(a, sig) && sig.SequenceEqual("RSD PTR "u8)) return a;
        return null;
    }

    /// <summary>Reads the tables the RSDP at <paramref name="rsdp"/> leads to (through the XSDT),
    /// every checksum checked; null with the reason on the first fault.</summary>
    public static Dictionary<string, byte[]>? Parse(GuestMemory memory, ulong rsdp, out string error)
    {
        error = "";
        var tables = new Dictionary<string, byte[]>();
        var r = new byte[36];
        if (!memory.TryRead(rsdp, r) || !r.AsSpan(0, 8).SequenceEqual("RSD PTR "u8)) { error = $"no RSDP at 0x{rsdp:x}"; return null; }
        if (!SumsToZero(r.AsSpan(0, 20))) { error = "RSDP: checksum of the first 20 bytes is not zero"; return null; }
        if (r[15] < 2 || !SumsToZero(r)) { error = "RSDP: not revision 2, or the extended checksum is not zero"; return null; }
        tables["RSDP"] = r;
        var xsdt = ReadTable(memory, BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(24)), "XSDT", out error);
        var rsdt = xsdt == null ? null : ReadTable(memory, BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(16)), "RSDT", out error);
        if (xsdt == null || rsdt == null) return null;
        tables["XSDT"] = xsdt;
        tables["RSDT"] = rsdt;
        for (int at = HeaderLength; at + 8 <= xsdt.Length; at += 8)
        {
            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(xsdt.AsSpan(at));
            var t = ReadTable(memory, address, null, out error);
            if (t == null) return null;
            tables[Encoding.ASCII.GetString(t, 0, 4)] = t;
        }
        if (tables.TryGetValue("FACP", out var fadt) && fadt.Length >= 148)
        {
            ulong dsdt = BinaryPrimitives.ReadUInt64LittleEndian(fadt.AsSpan(140));
            if (dsdt == 0) dsdt = BinaryPrimitives.ReadUInt32LittleEndian(fadt.AsSpan(40));
            var d = ReadTable(memory, dsdt, "DSDT", out error);
            if (d == null) return null;
            tables["DSDT"] = d;
        }
        return tables;
    }

    private static byte[]? ReadTable(GuestMemory memory, ulong address, string? signature, out string error)
    {
        error = "";
        var header = new byte[HeaderLength];
        if (!memory.TryRead(address, header)) { error = $"{signature ?? "table"} at 0x{address:x} is outside memory"; return null; }
        string sig = Encoding.ASCII.GetString(header, 0, 4);
        if (signature != null && sig != signature) { error = $"{signature} at 0x{address:x} has signature \"{sig}\""; return null; }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
        var t = length >= HeaderLength && length <= 0x10000 ? new byte[length] : null;
        if (t == null || !memory.TryRead(address, t)) { error = $"{sig} at 0x{address:x}: length {length} is not readable"; return null; }
        if (!SumsToZero(t)) { error = $"{sig} at 0x{address:x}: checksum is not zero"; return null; }
        return t;
    }

    /// <summary>A decoded MADT entry: type 0 local APIC, 1 I/O APIC, 2 source override, 4 local NMI.</summary>
    public readonly record struct MadtEntry(byte Type, byte[] Bytes);

    /// <summary>The MADT's entries, in order.</summary>
    public static List<MadtEntry> MadtEntries(byte[] madt)
    {
        var list = new List<MadtEntry>();
        for (int at = HeaderLength + 8; at + 2 <= madt.Length && madt[at + 1] >= 2 && at + madt[at + 1] <= madt.Length; at += madt[at + 1])
            list.Add(new MadtEntry(madt[at], madt.AsSpan(at, madt[at + 1]).ToArray()));
        return list;
    }
}

/// <summary>
/// The FADT's PM1a event and control blocks (ACPI 6.x, section 4.8.3): PM1_STS and PM1_EN at 0x600
/// (write-one-to-clear status, enable bits kept), PM1_CNT at 0x604 with SCI_EN always set (the
/// machine is in ACPI mode from power-on, Acpi.cs). No event here ever raises a status bit (no
/// power button, no PM timer, no sleep states: a write of SLP_EN is kept and does nothing).
/// </summary>
public sealed class AcpiPm : IPortDevice
{
    private ushort _enable, _control = 1;

    public bool OwnsPort(ushort port) => port >= Acpi.Pm1aEventPort && port < Acpi.Pm1aEventPort + 4
        || port >= Acpi.Pm1aControlPort && port < Acpi.Pm1aControlPort + 2;

    public ulong ReadPort(ushort port, int size)
    {
        // The 4-byte event block: status (always 0) then enable; the 2-byte control block.
        ulong v = port switch
        {
            Acpi.Pm1aEventPort => (ulong)_enable << 16,
            Acpi.Pm1aEventPort + 1 => (ulong)_enable << 8,
            Acpi.Pm1aEventPort + 2 => _enable,
            Acpi.Pm1aEventPort + 3 => (ulong)_enable >> 8,
            Acpi.Pm1aControlPort => _control,
            _ => (ulong)_control >> 8,
        };
        return size >= 8 ? v : v & ((1UL << (8 * size)) - 1);
    }

    public void WritePort(ushort port, int size, ulong value)
    {
        if (port == Acpi.Pm1aEventPort && size == 4) _enable = (ushort)(value >> 16);
        else if (port == Acpi.Pm1aEventPort + 2 && size >= 2) _enable = (ushort)value;
        else if (port == Acpi.Pm1aControlPort && size >= 2) _control = (ushort)((value & ~1UL) | 1);
    }
}

/// <summary>
/// The few AML encodings the DSDT needs (ACPI 6.x, chapter 20: "ACPI Machine Language
/// Specification"; chapter 6.4 for resource descriptors): names, integers, packages, buffers,
/// Scope and Device, built as byte arrays from the inside out so each package length is known.
/// </summary>
internal static class Aml
{
    private const byte NameOp = 0x08, BytePrefix = 0x0A, WordPrefix = 0x0B, DWordPrefix = 0x0C, ScopeOp = 0x10,
        BufferOp = 0x11, PackageOp = 0x12, ZeroOp = 0x00, OneOp = 0x01, ExtOpPrefix = 0x5B, DeviceOp = 0x82;

    /// <summary>\_SB.PCI0 (see Acpi.cs's theory statement).</summary>
    public static byte[] PciRoot()
    {
        var routes = new List<byte[]>();
        for (uint slot = 1; slot < PciBus.MaxSlots; slot++)
            routes.Add(Package(DWord(slot << 16 | 0xFFFF), Integer(0), Integer(0), Integer(slot % 2 == 0 ? 10u : 11u)));
        byte[] device = Concat(
            Name("_HID", EisaId("PNP0A03")),
            Name("_UID", Integer(0)),
            Name("_BBN", Integer(0)),
            Name("_CRS", Buffer(Resources())),
            Name("_PRT", Package([.. routes])));
        return Scope("\\_SB_", Device("PCI0", device));
    }

    private static byte[] Resources()
    {
        var r = new List<byte>();
        r.AddRange(WordAddress(2, 0x0000, 0x00FF));                                    // bus numbers
        r.AddRange([0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08]);                  // IO 0xCF8, 8 ports (decode16)
        r.AddRange(WordAddress(1, 0x0000, 0x0CF7));                                    // I/O below the config ports
        r.AddRange(WordAddress(1, 0x0D00, 0xFFFF));                                    // and above
        r.AddRange(DWordMemory(PciBus.PciMemoryBase, PciBus.PciMemoryLimit - 1));
        r.AddRange([0x79, 0x00]);                                                      // end tag
        return [.. r];
    }

    /// <summary>A Word Address Space Descriptor (type 0x88): resource type 1 I/O or 2 bus numbers,
    /// producer, min and max fixed.</summary>
    private static byte[] WordAddress(byte type, ushort min, ushort max)
    {
        var d = new byte[16];
        d[0] = 0x88; d[1] = 13; d[3] = type;
        d[4] = 0x0C;                                                                   // MinFixed, MaxFixed, producer, positive decode
        d[5] = (byte)(type == 1 ? 0x03 : 0x00);                                        // I/O: ISA and non-ISA ranges
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(8), min);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(10), max);
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(14), (ushort)(max - min + 1));
        return d;
    }

    /// <summary>A DWord Address Space Descriptor (type 0x87) for memory: non-cacheable, read/write.</summary>
    private static byte[] DWordMemory(uint min, uint max)
    {
        var d = new byte[26];
        d[0] = 0x87; d[1] = 23; d[3] = 0;
        d[4] = 0x0C;
        d[5] = 0x01;                                                                   // read/write, non-cacheable
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(10), min);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(14), max);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(22), max - min + 1);
        return d;
    }

    private static byte[] Name(string seg, byte[] value) => Concat([NameOp], NameSeg(seg), value);

    private static byte[] NameSeg(string seg) => Encoding.ASCII.GetBytes(seg.PadRight(4, '_'));

    private static byte[] Integer(uint v) => v switch
    {
        0 => [ZeroOp],
        1 => [OneOp],
        <= 0xFF => [BytePrefix, (byte)v],
        <= 0xFFFF => [WordPrefix, (byte)v, (byte)(v >> 8)],
        _ => DWord(v),
    };

    private static byte[] DWord(uint v) => [DWordPrefix, (byte)v, (byte)(v >> 8), (byte)(v >> 16), (byte)(v >> 24)];

    /// <summary>EisaId("PNP0A03"): three letters in 5 bits each and four hex digits, big-endian.</summary>
    private static byte[] EisaId(string id)
    {
        uint v = (uint)(id[0] - 0x40) << 26 | (uint)(id[1] - 0x40) << 21 | (uint)(id[2] - 0x40) << 16
            | Convert.ToUInt32(id[3..], 16);
        return DWord(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v));
    }

    private static byte[] Buffer(byte[] bytes) => Concat([BufferOp], PkgLength(Concat(Integer((uint)bytes.Length), bytes)));

    private static byte[] Package(params byte[][] elements) => Concat([PackageOp], PkgLength(Concat([(byte)elements.Length], Concat(elements))));

    private static byte[] Scope(string path, byte[] body) => Concat([ScopeOp], PkgLength(Concat(Encoding.ASCII.GetBytes(path), body)));

    private static byte[] Device(string seg, byte[] body) => Concat([ExtOpPrefix, DeviceOp], PkgLength(Concat(NameSeg(seg), body)));

    /// <summary>PkgLength followed by <paramref name="body"/>: the length counts its own bytes.</summary>
    private static byte[] PkgLength(byte[] body)
    {
        int n = body.Length;
        if (n + 1 < 0x40) return Concat([(byte)(n + 1)], body);
        for (int extra = 1; extra <= 3; extra++)
        {
            int total = n + 1 + extra;
            if (total < 1 << (4 + 8 * extra))
            {
                var lead = new byte[1 + extra];
                lead[0] = (byte)(extra << 6 | (total & 0x0F));
                for (int i = 0; i < extra; i++) lead[1 + i] = (byte)(total >> (4 + 8 * i));
                return Concat(lead, body);
            }
        }
        throw new ArgumentException("AML package too long");
    }

    private static byte[] Concat(params byte[][] parts)
    {
        int length = 0;
        foreach (var p in parts) length += p.Length;
        var all = new byte[length];
        int at = 0;
        foreach (var p in parts) { p.CopyTo(all, at); at += p.Length; }
        return all;
    }
}
