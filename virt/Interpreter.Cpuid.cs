namespace SmartOS.Virt;

// CPUID: what the guest is told it may use (Interpreter.cs).
//
// Rule 1: a feature bit is set only when the interpreter executes everything the bit promises, and
// a differential test holds those instructions against the real CPU (CpuidTests keeps the table of
// bit -> instruction that proves each one). A guest that probes CPUID and then uses what it found
// (gcc's ifunc resolvers, glibc's string functions, Linux's alternatives) must never stop on an
// unimplemented instruction that CPUID advertised.
// Rule 2: the system bits (APIC, MSR, PAE, PGE, NX, syscall, ...) belong to the system state
// (Interpreter.System*.cs): it adds them in AddSystemCpuid, called last, so this file never claims
// a feature of the paging or interrupt machinery.
// Rule 3: leaves above the maximum return zeros (as AMD parts do; Intel repeats the highest basic
// leaf, which nothing relies on).
public sealed unsafe partial class Interpreter
{
    private const uint MaxBasicLeaf = 0xD;
    private const uint MaxExtendedLeaf = 0x80000008;

    // Leaf 1 ecx.
    private const uint Sse3 = 1u << 0, Ssse3 = 1u << 9, Cx16 = 1u << 13, Sse41 = 1u << 19, Sse42 = 1u << 20,
        Movbe = 1u << 22, Popcnt = 1u << 23, Xsave = 1u << 26, Rdrand = 1u << 30, Hypervisor = 1u << 31;
    // Leaf 1 edx.
    private const uint Fpu = 1u << 0, Tsc = 1u << 4, Cx8 = 1u << 8, Cmov = 1u << 15, Fxsr = 1u << 24, Sse = 1u << 25, Sse2 = 1u << 26;
    // Leaf 7 subleaf 0 ebx.
    private const uint Bmi1 = 1u << 3, Bmi2 = 1u << 8, Rdseed = 1u << 18;
    // Leaf 0x80000001 ecx and edx.
    private const uint LahfLm = 1u << 0, Abm = 1u << 5, Rdtscp = 1u << 27, LongMode = 1u << 29;

    /// <summary>The system state's bits (Interpreter.System*.cs implements it): called at the end of
    /// every CPUID with the answer so far, which it may extend.</summary>
    partial void AddSystemCpuid(uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx);

    private void Cpuid()
    {
        ulong* r = _r;
        var (a, b, c, d) = QueryCpuid((uint)r[0], (uint)r[1]);
        if (Probes.ExitCpuid.Enabled) Probes.Fire(Probes.ExitCpuid, (long)_instrRip, (uint)r[0], (uint)r[1], a);
        r[0] = a; r[3] = b; r[1] = c; r[2] = d;
    }

    /// <summary>What CPUID answers for <paramref name="leaf"/> and <paramref name="subleaf"/> in this
    /// vCPU's present state (the guest's registers untouched): for the VMM and tests.</summary>
    public (uint Eax, uint Ebx, uint Ecx, uint Edx) QueryCpuid(uint leaf, uint subleaf)
    {
        CpuidLeaf(leaf, subleaf, out uint a, out uint b, out uint c, out uint d);
        // rdrand and rdseed exist only with a random source (Interpreter.Random.cs).
        if (_random != null && leaf == 1) c |= Rdrand;
        if (_random != null && leaf == 7 && subleaf == 0) b |= Rdseed;
        AddSystemCpuid(leaf, subleaf, ref a, ref b, ref c, ref d);
        return (a, b, c, d);
    }

    private static void CpuidLeaf(uint leaf, uint subleaf, out uint a, out uint b, out uint c, out uint d)
    {
        a = b = c = d = 0;
        switch (leaf)
        {
            case 0:
                a = MaxBasicLeaf;
                b = 0x72616D53; // "Smar"
                d = 0x2D534F74; // "tOS-"
                c = 0x74726956; // "Virt"
                break;
            case 1:
                // Family 6, model 0x3A, stepping 9: a family-6 part, so that guests take their
                // ordinary Intel paths; the features below, not the model, say what is there.
                a = 0x000306A9;
                // OSXSAVE (ecx bit 27) mirrors CR4.OSXSAVE: the system state's to add.
                c = Sse3 | Ssse3 | Cx16 | Sse41 | Sse42 | Movbe | Popcnt | Xsave | Hypervisor;
                d = Fpu | Tsc | Cx8 | Cmov | Fxsr | Sse | Sse2;
                break;
            case 7:
                // Subleaf 0 only; eax = 0 says there are no further subleaves.
                if (subleaf == 0) b = Bmi1 | Bmi2;
                break;
            case 0xD:
                // XSAVE: x87 and SSE in XCR0; the legacy region and header, 576 bytes; no
                // xsaveopt/xsavec/xgetbv1/xsaves (subleaf 1 reads zero).
                if (subleaf == 0) { a = (uint)XcrSupported; b = c = XsaveSize; }
                break;
            case 0x80000000:
                a = MaxExtendedLeaf;
                break;
            case 0x80000001:
                c = LahfLm | Abm;
                d = Rdtscp | LongMode;
                break;
            case 0x80000002: case 0x80000003: case 0x80000004:
                BrandString(leaf - 0x80000002, out a, out b, out c, out d);
                break;
            case 0x80000008:
                // Linear addresses are 48 bits (4-level paging); physical addresses 40 bits, more
                // than any guest's RAM and device windows reach.
                a = 40 | (48 << 8);
                break;
        }
    }

    private const string Brand = "SmartOS virtual CPU (interpreter)";

    /// <summary>Sixteen bytes of the 48-byte, NUL-padded brand string per leaf, little-endian in eax..edx.</summary>
    private static void BrandString(uint part, out uint a, out uint b, out uint c, out uint d)
    {
        Span<byte> bytes = stackalloc byte[16];
        bytes.Clear();
        for (int i = 0; i < 16; i++)
        {
            int at = (int)part * 16 + i;
            if (at < Brand.Length) bytes[i] = (byte)Brand[at];
        }
        a = BitConverter.ToUInt32(bytes[..4]);
        b = BitConverter.ToUInt32(bytes[4..8]);
        c = BitConverter.ToUInt32(bytes[8..12]);
        d = BitConverter.ToUInt32(bytes[12..16]);
    }
}
