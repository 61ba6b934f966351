using System.Text;
using Iced.Intel;

namespace SmartOS.Virt.Tests.Differential;

/// <summary>
/// Every form (register and memory) of every SSE..SSE4.2, BMI, MOVBE and cmpxchg8b/16b instruction the interpreter
/// claims, against this host's CPU: random XMM contents rich in the values floating point is
/// judged on (zeros, infinities, quiet and signalling NaNs, denormals, the largest and smallest
/// normals, integers), random MXCSR rounding modes with DAZ and FTZ on and off, and then the XMM
/// registers, general registers, flags, memory and MXCSR (its exception flags included) compared
/// bit for bit. The forms come from Iced's opcode tables, so a form nobody thought of is not left out.
/// All exceptions stay masked: an unmasked one would trap in the test host.
/// </summary>
public class IsaDifferentialTests
{
    private sealed class NoDevices : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => false;
    }

    private const ulong CodeAt = 0x10_0000, ScratchAt = 0x20_0000;

    /// <summary>The operand kinds the generator can fill; a form with any other is not generated.</summary>
    private static bool Fillable(OpCodeOperandKind k) => k is OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm
        or OpCodeOperandKind.xmm_or_mem or OpCodeOperandKind.mem or OpCodeOperandKind.imm8
        or OpCodeOperandKind.r32_reg or OpCodeOperandKind.r64_reg or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r64_rm
        or OpCodeOperandKind.r32_vvvv or OpCodeOperandKind.r64_vvvv or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r16_rm
        or OpCodeOperandKind.r8_or_mem or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r64_or_mem;

    internal static List<Code> Forms(IEnumerable<Mnemonic> mnemonics)
    {
        var wanted = new HashSet<Mnemonic>(mnemonics);
        var forms = new List<Code>();
        foreach (var code in Enum.GetValues<Code>())
        {
            if (!wanted.Contains(code.Mnemonic())) continue;
            var info = code.ToOpCode();
            // VEX only for the general-register instructions (BMI): SSE's VEX forms are AVX mnemonics.
            if (info.Encoding is not (EncodingKind.Legacy or EncodingKind.VEX) || !info.Mode64) continue;
            // The 0x66-less MMX forms share mnemonics with their XMM forms.
            bool ok = true;
            for (int i = 0; i < info.OpCount; i++) ok &= Fillable(info.GetOpKind(i));
            if (ok) forms.Add(code);
        }
        return forms;
    }

    [TestCaseSource(nameof(Features))]
    public void Every_form_leaves_the_same_xmm_registers_flags_memory_and_mxcsr_as_the_real_cpu(string feature)
    {
        if (!NativeCpu.IsUsable(out string why)) Assert.Ignore(why);
        NativeCpu native;
        try { native = NativeCpu.Create(); }
        catch (InvalidOperationException e) { Assert.Ignore(e.Message); return; }
        var forms = Forms(CpuFeatureCoverage.Mnemonics[feature]);
        Assert.That(forms, Is.Not.Empty);
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        // A seed that is the same in every process (string.GetHashCode is randomised per process, so
        // each run drew different cases); SMARTOS_ISA_SEED adds to it for a wider sweep by hand.
        int seed = 17;
        foreach (char c in feature) seed = seed * 31 + c;
        if (int.TryParse(Environment.GetEnvironmentVariable("SMARTOS_ISA_SEED"), out int extra)) seed += extra;
        var rng = new Random(seed & 0x7FFF_FFFF);
        var failures = new StringBuilder();
        int failed = 0, cases = 0;
        try
        {
            foreach (var code in forms)
                for (int n = 0; n < 40; n++)
                {
                    cases++;
                    var ins = Make(code, rng);
                    if (!RunOne(native, cpu, memory, ins, rng, CpuFeatureCoverage.UndefinedFlags(ins.Mnemonic), out string diff) && ++failed <= 12)
                        failures.AppendLine(diff);
                }
        }
        finally
        {
            native.Dispose();
        }
        TestContext.Out.WriteLine($"{feature}: {forms.Count} forms, {cases} cases, {failed} mismatches");
        Assert.That(failed, Is.Zero, failures.ToString());
    }

    public static IEnumerable<string> Features => CpuFeatureCoverage.Mnemonics.Keys;

    private static Instruction Make(Code code, Random rng)
    {
        var info = code.ToOpCode();
        var ins = new Instruction { Code = code };
        for (int i = 0; i < info.OpCount; i++)
        {
            var k = info.GetOpKind(i);
            bool mem = k is OpCodeOperandKind.mem || (k is OpCodeOperandKind.xmm_or_mem or OpCodeOperandKind.r8_or_mem
                or OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r64_or_mem && rng.Next(3) == 0);
            if (mem)
            {
                ins.SetOpKind(i, OpKind.Memory);
                ins.MemoryBase = Register.RBX;
                ins.MemoryDisplacement64 = (ulong)(16 * rng.Next(14));
                ins.MemoryDisplSize = 1;
                continue;
            }
            if (k == OpCodeOperandKind.imm8)
            {
                ins.SetOpKind(i, OpKind.Immediate8);
                ins.Immediate8 = (byte)(rng.Next(4) == 0 ? rng.Next(16) : rng.Next(256));
                continue;
            }
            ins.SetOpKind(i, OpKind.Register);
            ins.SetOpRegister(i, k switch
            {
                OpCodeOperandKind.xmm_reg or OpCodeOperandKind.xmm_rm or OpCodeOperandKind.xmm_or_mem => Register.XMM0 + rng.Next(16),
                OpCodeOperandKind.r8_or_mem => Byte(Gpr(rng)),
                OpCodeOperandKind.r16_or_mem or OpCodeOperandKind.r16_reg or OpCodeOperandKind.r16_rm => Register.AX + Gpr(rng),
                OpCodeOperandKind.r32_reg or OpCodeOperandKind.r32_rm or OpCodeOperandKind.r32_or_mem or OpCodeOperandKind.r32_vvvv => Register.EAX + Gpr(rng),
                _ => Register.RAX + Gpr(rng),
            });
        }
        return ins;
    }

    /// <summary>A general register other than rsp and rbx (the scratch base), and no high-byte
    /// register (AL + 4..7 means spl..dil with REX, which the encoder picks for these indexes).</summary>
    private static int Gpr(Random rng)
    {
        while (true)
        {
            int i = rng.Next(16);
            if (i != 3 && i != 4) return i;
        }
    }

    /// <summary>The byte register of general register i as the REX encodings name it (spl..dil, r8l..r15l).</summary>
    private static Register Byte(int i) => i < 4 ? Register.AL + i : i < 8 ? Register.SPL + (i - 4) : Register.R8L + (i - 8);

    private static readonly ulong[] s_doubles =
    [
        0, 0x8000_0000_0000_0000, 0x3FF0_0000_0000_0000, 0xBFF0_0000_0000_0000, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000,
        0x7FF8_0000_0000_0000, 0xFFF8_0000_0000_0000, 0x7FF4_0000_0000_0001, 0xFFF0_0000_0000_0001, 0x0000_0000_0000_0001,
        0x800F_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000, 0x7FEF_FFFF_FFFF_FFFF, 0x4340_0000_0000_0000, 0x43E0_0000_0000_0000,
        0xC3E0_0000_0000_0000, 0x41DF_FFFF_FFC0_0000, 0x3FE0_0000_0000_0000, 0x4004_0000_0000_0000, 0xC00C_0000_0000_0000,
        0x0008_0000_0000_0000, 0x3CA0_0000_0000_0001, 0x36A0_0000_0000_0000, 0x3810_0000_0000_0000, 0x47EF_FFFF_E000_0000,
    ];

    private static readonly uint[] s_floats =
    [
        0, 0x8000_0000, 0x3F80_0000, 0xBF80_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0000, 0x7FA0_0001,
        0xFF80_0001, 0x0000_0001, 0x807F_FFFF, 0x0080_0000, 0x7F7F_FFFF, 0x4B00_0000, 0x4F00_0000, 0xCF00_0000,
        0x3F00_0000, 0x4020_0000, 0xC060_0000, 0x0040_0000, 0x3300_0001, 0x0DA2_4260, 0x7E80_0000,
    ];

    private static ulong Half(Random rng)
    {
        ulong F() => rng.Next(3) switch { 0 => s_floats[rng.Next(s_floats.Length)], 1 => (uint)rng.Next() ^ ((uint)rng.Next(2) << 31), _ => (uint)rng.Next(-300, 300) };
        return rng.Next(6) switch
        {
            0 or 1 => s_doubles[rng.Next(s_doubles.Length)] ^ (rng.Next(8) == 0 ? (ulong)rng.Next(1 << 20) : 0),
            2 or 3 => F() | (F() << 32),
            4 => (ulong)rng.NextInt64() ^ ((ulong)rng.Next(2) << 63),
            _ => (ulong)(long)rng.Next(-70000, 70000),
        };
    }

    private static bool RunOne(NativeCpu native, Interpreter cpu, GuestMemory memory, Instruction ins, Random rng, ulong undefined, out string diff)
    {
        var w = new ListWriter();
        Iced.Intel.Encoder.Create(64, w).Encode(ins, 0);
        byte[] code = w.Bytes.ToArray();
        var regs = new ulong[16];
        for (int i = 0; i < 16; i++) regs[i] = rng.Next(4) == 0 ? Half(rng) : (ulong)rng.NextInt64() ^ ((ulong)rng.Next(4) << 62);
        regs[4] = 0x1F_0000;
        regs[SequenceGenerator.ScratchBase] = ScratchAt;
        ulong flags = 0x202 | ((ulong)rng.Next(0x1000) & SequenceGenerator.Arith);
        var xmm = new ulong[32];
        for (int i = 0; i < 32; i++) xmm[i] = Half(rng);
        // All exceptions masked; any rounding mode, DAZ and FTZ; some flags already set.
        uint mxcsr = 0x1F80 | ((uint)rng.Next(4) << 13) | (rng.Next(2) == 0 ? 0x40u : 0) | (rng.Next(2) == 0 ? 0x8000u : 0) | (uint)rng.Next(0x40) & (uint)-(rng.Next(3) == 0 ? 1 : 0);
        var scratch = new byte[SequenceGenerator.ScratchBytes];
        for (int i = 0; i < scratch.Length; i += 8) BitConverter.TryWriteBytes(scratch.AsSpan(i), Half(rng));
        // cmpxchg8b/16b: half the time memory holds what rdx:rax (edx:eax) compares equal to.
        if (ins.Mnemonic is Mnemonic.Cmpxchg8b or Mnemonic.Cmpxchg16b && rng.Next(2) == 0)
        {
            int at = (int)ins.MemoryDisplacement64;
            if (ins.Mnemonic == Mnemonic.Cmpxchg8b) BitConverter.TryWriteBytes(scratch.AsSpan(at), (regs[2] << 32) | (uint)regs[0]);
            else
            {
                BitConverter.TryWriteBytes(scratch.AsSpan(at), regs[0]);
                BitConverter.TryWriteBytes(scratch.AsSpan(at + 8), regs[2]);
            }
        }
        if (MultipleNaNDotProduct(ins, xmm, scratch, mxcsr))
        {
            diff = "";
            return true;
        }
        var wantScratch = (byte[])scratch.Clone();
        var wantXmm = (ulong[])xmm.Clone();
        var (want, wantFlags, wantMxcsr) = native.RunVector(code, regs, flags, wantXmm, mxcsr, wantScratch);

        if (ins.Mnemonic is Mnemonic.Cmpxchg8b or Mnemonic.Cmpxchg16b)
        {
            // A successful exchange stored rbx (ebx), the scratch base: the native one in the reference.
            int at = (int)ins.MemoryDisplacement64;
            if (ins.Mnemonic == Mnemonic.Cmpxchg16b && BitConverter.ToUInt64(wantScratch, at) == native.ScratchAddress)
                BitConverter.TryWriteBytes(wantScratch.AsSpan(at), ScratchAt);
            else if (ins.Mnemonic == Mnemonic.Cmpxchg8b && BitConverter.ToUInt32(wantScratch, at) == (uint)native.ScratchAddress)
                BitConverter.TryWriteBytes(wantScratch.AsSpan(at), (uint)ScratchAt);
        }
        memory.TryWrite(ScratchAt, scratch);
        memory.TryWrite(CodeAt, code);
        memory.TryWrite(CodeAt + (ulong)code.Length, [0xF4]);
        for (int i = 0; i < 16; i++) cpu.SetRegister((Reg)i, regs[i]);
        for (int i = 0; i < 16; i++) cpu.SetXmm(i, xmm[2 * i], xmm[2 * i + 1]);
        cpu.Mxcsr = mxcsr;
        cpu.Rflags = flags;
        cpu.Rip = CodeAt;
        var exit = cpu.Run(10);
        var gotScratch = new byte[scratch.Length];
        memory.TryRead(ScratchAt, gotScratch);

        var sb = new StringBuilder();
        if (exit.Reason != VcpuExitReason.Hlt) sb.AppendLine($"    exit {exit.Reason}: {exit.Detail}");
        for (int i = 0; i < 16; i++)
        {
            var (lo, hi) = cpu.GetXmm(i);
            if (lo != wantXmm[2 * i] || hi != wantXmm[2 * i + 1])
                sb.AppendLine($"    xmm{i}: in {xmm[2 * i + 1]:x16}_{xmm[2 * i]:x16} want {wantXmm[2 * i + 1]:x16}_{wantXmm[2 * i]:x16} got {hi:x16}_{lo:x16}");
        }
        for (int i = 0; i < 16; i++)
            if (cpu.GetRegister((Reg)i) != want[i]) sb.AppendLine($"    r{i}: in 0x{regs[i]:x} want 0x{want[i]:x} got 0x{cpu.GetRegister((Reg)i):x}");
        ulong mask = SequenceGenerator.Arith & ~undefined;
        if ((cpu.Rflags & mask) != (wantFlags & mask))
            sb.AppendLine($"    flags (mask 0x{mask:x}): in 0x{flags:x} want 0x{wantFlags & mask:x} got 0x{cpu.Rflags & mask:x}");
        if (cpu.Mxcsr != wantMxcsr) sb.AppendLine($"    mxcsr: in 0x{mxcsr:x} want 0x{wantMxcsr:x} got 0x{cpu.Mxcsr:x}");
        for (int i = 0; i < scratch.Length; i++)
            if (gotScratch[i] != wantScratch[i]) { sb.AppendLine($"    memory differs from [rbx+{i}]"); break; }
        diff = "";
        if (sb.Length == 0) return true;
        var text = new StringOutput();
        new NasmFormatter().Format(ins, text);
        for (int i = 0; i < ins.OpCount; i++)
            if (ins.GetOpKind(i) == OpKind.Register && ins.GetOpRegister(i) is >= Register.XMM0 and <= Register.XMM15)
            {
                int x = ins.GetOpRegister(i) - Register.XMM0;
                sb.AppendLine($"    operand xmm{x} was {xmm[2 * x + 1]:x16}_{xmm[2 * x]:x16}");
            }
        diff = $"{text}\n{sb}";
        return false;
    }

    /// <summary>dpps/dppd where more than one NaN meets in the sums: NaN operands, and products that
    /// are NaN because they multiply zero (or a denormal under DAZ) by infinity. Which NaN real parts
    /// return then differs by destination lane in an order the SDM does not document
    /// (Interpreter.SseFloat.cs).</summary>
    private static bool MultipleNaNDotProduct(Instruction ins, ulong[] xmm, byte[] scratch, uint mxcsr)
    {
        if (ins.Mnemonic is not (Mnemonic.Dpps or Mnemonic.Dppd)) return false;
        bool pd = ins.Mnemonic == Mnemonic.Dppd, daz = (mxcsr & 0x40) != 0;
        List<ulong> Lanes(ulong lo, ulong hi)
        {
            var lanes = new List<ulong>();
            foreach (var half in new[] { lo, hi })
                if (pd) lanes.Add(half);
                else { lanes.Add(half & 0xFFFF_FFFF); lanes.Add(half >> 32); }
            return lanes;
        }
        int d = ins.Op0Register - Register.XMM0;
        var a = Lanes(xmm[2 * d], xmm[2 * d + 1]);
        List<ulong> b;
        if (ins.Op1Kind == OpKind.Register) { int s = ins.Op1Register - Register.XMM0; b = Lanes(xmm[2 * s], xmm[2 * s + 1]); }
        else
        {
            int at = (int)ins.MemoryDisplacement64;
            b = Lanes(BitConverter.ToUInt64(scratch, at), BitConverter.ToUInt64(scratch, at + 8));
        }
        ulong expMask = pd ? 0x7FF0_0000_0000_0000UL : 0x7F80_0000UL, fracMask = pd ? 0xF_FFFF_FFFF_FFFFUL : 0x7F_FFFFUL;
        bool Nan(ulong v) => (v & expMask) == expMask && (v & fracMask) != 0;
        bool Inf(ulong v) => (v & expMask) == expMask && (v & fracMask) == 0;
        bool Zero(ulong v) => (v & expMask) == 0 && ((v & fracMask) == 0 || daz);
        int nanOperands = a.Count(Nan) + b.Count(Nan), nanProducts = 0;
        for (int i = 0; i < a.Count; i++)
            if (Nan(a[i]) || Nan(b[i]) || (Zero(a[i]) && Inf(b[i])) || (Inf(a[i]) && Zero(b[i]))) nanProducts++;
        return nanOperands > 1 || nanProducts > 1;
    }

    private sealed class ListWriter : CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }
}
