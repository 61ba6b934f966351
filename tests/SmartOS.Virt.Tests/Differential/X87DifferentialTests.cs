using System.Text;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests.Differential;

/// <summary>
/// The x87 loads, stores, exchanges and compares (Interpreter.X87Data.cs) against this host's CPU:
/// short programs over operands rich in what x87 conversions are judged on (zeros, infinities,
/// quiet and signalling NaNs, denormals, values at the edges of binary32/binary64 and of the integer
/// ranges, halves for rounding ties), under every rounding mode, run on both sides; then the
/// general registers, flags, stored results, the status words saved along the way, and an fxsave of
/// the final x87 state (control, status and abridged tag words, the eight 80-bit registers) are
/// compared bit for bit. Every program starts by zeroing the registers (eight fldz, fninit) so that
/// empty registers hold the same bits on both sides, keeps all exceptions masked and ends with
/// fninit, leaving the host's x87 as the ABI wants it.
/// </summary>
public class X87DifferentialTests
{
    private sealed class NoDevices : IVcpuExitHandler
    {
        public bool StopRequested => false;
        public bool HandleAccess(ref VcpuExit exit) => false;
    }

    private const ulong CodeAt = 0x10_0000, ScratchAt = 0x20_0000;
    private const int A = 0, B = 16, D = 32, F = 40, I16 = 48, I32 = 52, I64 = 56, Cw = 0x300, Save = 0x400, Bytes = 0x600;
    private const int Rounds = 3000;


    /// <summary>The programs, between the common prologue (registers zeroed, control word loaded)
    /// and epilogue (fxsave, fninit).</summary>
    private static readonly (string Name, Action<Assembler> Body)[] Programs =
    [
        ("fld m80, fst/fist to every width", a =>
        {
            a.fld(__tword_ptr[rbx + A]);
            a.fst(__qword_ptr[rbx + 0x100]); a.fnstsw(__word_ptr[rbx + 0x1F0]);
            a.fst(__dword_ptr[rbx + 0x108]); a.fnstsw(__word_ptr[rbx + 0x1F2]);
            a.fist(__word_ptr[rbx + 0x10C]); a.fnstsw(__word_ptr[rbx + 0x1F4]);
            a.fist(__dword_ptr[rbx + 0x110]); a.fnstsw(__word_ptr[rbx + 0x1F6]);
            a.fld(st0);
            a.fistp(__qword_ptr[rbx + 0x118]); a.fnstsw(__word_ptr[rbx + 0x1F8]);
            a.fld(st0);
            a.fisttp(__word_ptr[rbx + 0x120]); a.fnstsw(__word_ptr[rbx + 0x1FA]);
            a.fld(st0);
            a.fisttp(__dword_ptr[rbx + 0x124]);
            a.fld(st0);
            a.fisttp(__qword_ptr[rbx + 0x128]); a.fnstsw(__word_ptr[rbx + 0x1FC]);
            a.fstp(__tword_ptr[rbx + 0x130]);
        }),
        ("loads of every kind, fxch, fst st(i)", a =>
        {
            a.fld(__qword_ptr[rbx + D]);
            a.fld(__dword_ptr[rbx + F]);
            a.fild(__word_ptr[rbx + I16]);
            a.fild(__dword_ptr[rbx + I32]);
            a.fild(__qword_ptr[rbx + I64]);
            a.fxch(st0, st3);
            a.fst(st5);
            a.fstp(st1);
            a.fld(st2);
            a.fstp(__tword_ptr[rbx + 0x100]);
            a.fnstsw(__word_ptr[rbx + 0x1F0]);
        }),
        ("compares", a =>
        {
            a.fld(__tword_ptr[rbx + B]);
            a.fld(__tword_ptr[rbx + A]);
            a.fcom(st0, st1); a.fnstsw(__word_ptr[rbx + 0x1F0]);
            a.fucom(st0, st1); a.fnstsw(__word_ptr[rbx + 0x1F2]);
            a.fcom(__qword_ptr[rbx + D]); a.fnstsw(__word_ptr[rbx + 0x1F4]);
            a.fcom(__dword_ptr[rbx + F]); a.fnstsw(__word_ptr[rbx + 0x1F6]);
            a.ftst(); a.fnstsw(__word_ptr[rbx + 0x1F8]);
            a.fxam(); a.fnstsw(__word_ptr[rbx + 0x1FA]);
            a.fcomi(st0, st1);
            a.fld(st1);
            a.fcomp(__qword_ptr[rbx + D]); a.fnstsw(__word_ptr[rbx + 0x1FC]);
            a.fucompp(); a.fnstsw(__word_ptr[rbx + 0x1FE]);
        }),
        ("fucomip and fcompp", a =>
        {
            a.fld(__tword_ptr[rbx + A]);
            a.fld(__tword_ptr[rbx + B]);
            a.fld(__qword_ptr[rbx + D]);
            a.fucomip(st0, st2);
            a.fcompp(); a.fnstsw(__word_ptr[rbx + 0x1F0]);
        }),
        ("constants, fchs, fabs, ffree, fincstp, fdecstp, fcmov", a =>
        {
            a.fld1(); a.fldz(); a.fldpi(); a.fldl2e(); a.fldl2t(); a.fldlg2(); a.fldln2();
            a.fchs();
            a.fxch(st0, st2);
            a.fabs();
            a.fld(__tword_ptr[rbx + A]);
            a.fcmovb(st0, st1); a.fcmove(st0, st2); a.fcmovu(st0, st3); a.fcmovnbe(st0, st4);
            a.fcmovnb(st0, st5); a.fcmovne(st0, st6); a.fcmovbe(st0, st7); a.fcmovnu(st0, st1);
            a.ffree(st3);
            a.fincstp(); a.fincstp(); a.fdecstp();
            a.fnop();
            a.fnstsw(__word_ptr[rbx + 0x1F0]);
        }),
        ("stack overflow and underflow, masked", a =>
        {
            for (int i = 0; i < 9; i++) a.fld(__tword_ptr[rbx + A]);
            a.fnstsw(__word_ptr[rbx + 0x1F0]);
            a.ffree(st0);
            a.fst(__qword_ptr[rbx + 0x100]); a.fnstsw(__word_ptr[rbx + 0x1F2]);
            a.fist(__dword_ptr[rbx + 0x108]);
            a.fxch(st0, st1);
            a.fchs();
            a.ffree(st2);
            a.fcom(st0, st2); a.fnstsw(__word_ptr[rbx + 0x1F4]);
            a.fxam(); a.fnstsw(__word_ptr[rbx + 0x1F6]);
            a.fincstp();
            a.fxam(); a.fnstsw(__word_ptr[rbx + 0x1F8]);
            a.fstp(__tword_ptr[rbx + 0x110]);
        }),
        ("fadd, fsub, fsubr in every form", a =>
        {
            a.fld(__tword_ptr[rbx + B]);
            a.fld(__tword_ptr[rbx + A]);
            a.fadd(st0, st1); a.fld(st0); a.fstp(__tword_ptr[rbx + 0x100]); a.fnstsw(__word_ptr[rbx + 0x1F0]);
            a.fsub(st1, st0); a.fnstsw(__word_ptr[rbx + 0x1F2]);
            a.fld(__tword_ptr[rbx + A]);
            a.fsubr(st0, st2); a.fnstsw(__word_ptr[rbx + 0x1F4]);
            a.fsub(__qword_ptr[rbx + D]); a.fld(st0); a.fstp(__tword_ptr[rbx + 0x110]); a.fnstsw(__word_ptr[rbx + 0x1F6]);
            a.fadd(__dword_ptr[rbx + F]); a.fnstsw(__word_ptr[rbx + 0x1F8]);
            a.fsubr(__qword_ptr[rbx + D]); a.fnstsw(__word_ptr[rbx + 0x1FA]);
            a.fiadd(__word_ptr[rbx + I16]); a.fisub(__dword_ptr[rbx + I32]); a.fisubr(__word_ptr[rbx + I16]);
            a.fnstsw(__word_ptr[rbx + 0x1FC]);
            a.fld(__tword_ptr[rbx + B]);
            a.faddp(st2, st0);
            a.fld(__tword_ptr[rbx + A]);
            a.fsubp(st1, st0);
            a.fld(__tword_ptr[rbx + B]);
            a.fsubrp(st1, st0);
            a.fnstsw(__word_ptr[rbx + 0x1FE]);
        }),
        ("fmul, fdiv, fdivr in every form", a =>
        {
            a.fld(__tword_ptr[rbx + B]);
            a.fld(__tword_ptr[rbx + A]);
            a.fmul(st0, st1); a.fld(st0); a.fstp(__tword_ptr[rbx + 0x100]); a.fnstsw(__word_ptr[rbx + 0x1F0]);
            a.fdiv(st1, st0); a.fnstsw(__word_ptr[rbx + 0x1F2]);
            a.fld(__tword_ptr[rbx + A]);
            a.fdivr(st0, st2); a.fnstsw(__word_ptr[rbx + 0x1F4]);
            a.fld(__tword_ptr[rbx + B]);
            a.fdiv(st0, st2); a.fnstsw(__word_ptr[rbx + 0x1E0]);
            a.fmul(__qword_ptr[rbx + D]); a.fld(st0); a.fstp(__tword_ptr[rbx + 0x110]); a.fnstsw(__word_ptr[rbx + 0x1F6]);
            a.fdiv(__dword_ptr[rbx + F]); a.fnstsw(__word_ptr[rbx + 0x1F8]);
            a.fdivr(__qword_ptr[rbx + D]); a.fnstsw(__word_ptr[rbx + 0x1FA]);
            a.fimul(__word_ptr[rbx + I16]); a.fidiv(__dword_ptr[rbx + I32]); a.fidivr(__word_ptr[rbx + I16]);
            a.fnstsw(__word_ptr[rbx + 0x1FC]);
            a.fld(__tword_ptr[rbx + B]);
            a.fmulp(st2, st0);
            a.fld(__tword_ptr[rbx + A]);
            a.fdivp(st1, st0);
            a.fld(__tword_ptr[rbx + B]);
            a.fdivrp(st1, st0);
            a.fnstsw(__word_ptr[rbx + 0x1FE]);
        }),
        ("fsqrt, frndint, fscale, fxtract", a =>
        {
            a.fld(__tword_ptr[rbx + A]);
            a.fsqrt(); a.fld(st0); a.fstp(__tword_ptr[rbx + 0x100]); a.fnstsw(__word_ptr[rbx + 0x1F0]);
            a.fld(__tword_ptr[rbx + B]);
            a.frndint(); a.fld(st0); a.fstp(__tword_ptr[rbx + 0x110]); a.fnstsw(__word_ptr[rbx + 0x1F2]);
            a.fld(__tword_ptr[rbx + A]);
            a.fld(__tword_ptr[rbx + B]);
            a.fxtract(); a.fnstsw(__word_ptr[rbx + 0x1F4]);
            a.fld(__tword_ptr[rbx + A]);
            a.fscale(); a.fnstsw(__word_ptr[rbx + 0x1F6]);
            a.fld(__qword_ptr[rbx + D]);
            a.fild(__word_ptr[rbx + I16]);
            a.fxch(st0, st1);
            a.fscale(); a.fnstsw(__word_ptr[rbx + 0x1F8]);
        }),
    ];

    public static IEnumerable<string> ProgramNames => Programs.Select(p => p.Name);

    [TestCaseSource(nameof(ProgramNames))]
    public void Leaves_the_same_x87_registers_status_tags_flags_and_memory_as_the_real_cpu(string name)
    {
        if (!NativeCpu.IsUsable(out string why)) Assert.Ignore(why);
        NativeCpu native;
        try { native = NativeCpu.Create(); }
        catch (InvalidOperationException e) { Assert.Ignore(e.Message); return; }
        using var _ = native;
        var body = Programs.Single(p => p.Name == name).Body;
        byte[] code = GuestRunner.Assemble(a =>
        {
            a.fninit();
            for (int i = 0; i < 8; i++) a.fldz();
            a.fninit();
            a.fldcw(__word_ptr[rbx + Cw]);
            body(a);
            a.fxsave(__[rbx + Save]);
            a.fninit();
        }, 0);
        using var memory = new GuestMemory(4UL << 20);
        using var cpu = new Interpreter(memory, new NoDevices());
        var rng = new Random(name.Length * 7919 + 17);
        var failures = new StringBuilder();
        for (int round = 0; round < Rounds && failures.Length < 4000; round++)
        {
            var scratch = Inputs(rng);
            var regs = new ulong[16];
            for (int i = 0; i < 16; i++) regs[i] = (ulong)rng.NextInt64();
            regs[SequenceGenerator.ScratchBase] = ScratchAt;
            ulong flags = 0x202 | ((ulong)rng.Next(0x1000) & SequenceGenerator.Arith);
            var want = (byte[])scratch.Clone();
            var (wantRegs, wantFlags) = native.Run(code, (ulong[])regs.Clone(), flags, want);

            memory.TryWrite(ScratchAt, scratch);
            memory.TryWrite(CodeAt, code);
            memory.TryWrite(CodeAt + (ulong)code.Length, [0xF4]);
            for (int i = 0; i < 16; i++) cpu.SetRegister((Reg)i, regs[i]);
            cpu.Rflags = flags;
            cpu.Rip = CodeAt;
            var exit = cpu.Run(1000);
            var got = new byte[Bytes];
            memory.TryRead(ScratchAt, got);
            // FOP, FIP and FDP (and MXCSR, not x87 state) are not compared: the interpreter keeps them zero.
            Array.Clear(want, Save + 6, 26);
            Array.Clear(got, Save + 6, 26);
            // The XMM registers and the reserved tail are the host's own, not x87 state.
            Array.Clear(want, Save + 160, 352);
            Array.Clear(got, Save + 160, 352);

            var sb = new StringBuilder();
            if (exit.Reason != VcpuExitReason.Hlt) sb.AppendLine($"    exit {exit.Reason}: {exit.Detail}");
            for (int i = 0; i < 16; i++)
                if (cpu.GetRegister((Reg)i) != wantRegs[i]) sb.AppendLine($"    r{i}: want 0x{wantRegs[i]:x} got 0x{cpu.GetRegister((Reg)i):x}");
            if ((cpu.Rflags & SequenceGenerator.Arith) != (wantFlags & SequenceGenerator.Arith))
                sb.AppendLine($"    flags: want 0x{wantFlags & SequenceGenerator.Arith:x} got 0x{cpu.Rflags & SequenceGenerator.Arith:x}");
            for (int i = 0; i < Bytes; i += 2)
                if (BitConverter.ToUInt16(got, i) != BitConverter.ToUInt16(want, i))
                    sb.AppendLine($"    [rbx+0x{i:x}]: want {Hex(want, i)} got {Hex(got, i)}");
            if (sb.Length > 0)
                failures.AppendLine($"  round {round}: A={Value80(scratch, A)} B={Value80(scratch, B)} D=0x{BitConverter.ToUInt64(scratch, D):x16} "
                    + $"F=0x{BitConverter.ToUInt32(scratch, F):x8} cw=0x{BitConverter.ToUInt16(scratch, Cw):x4}\n{sb}");
        }
        Assert.That(failures.ToString(), Is.Empty, name);
    }

    private static string Hex(byte[] b, int at) => $"{BitConverter.ToUInt16(b, at):x4}";
    private static string Value80(byte[] b, int at) => $"{BitConverter.ToUInt16(b, at + 8):x4}_{BitConverter.ToUInt64(b, at):x16}";

    private static byte[] Inputs(Random rng)
    {
        var b = new byte[Bytes];
        Put80(b, A, Extended(rng));
        Put80(b, B, rng.Next(4) == 0 ? Get80(b, A) : Extended(rng));
        BitConverter.TryWriteBytes(b.AsSpan(D), Double(rng));
        BitConverter.TryWriteBytes(b.AsSpan(F), Single(rng));
        BitConverter.TryWriteBytes(b.AsSpan(I16), (short)Integer(rng, 16));
        BitConverter.TryWriteBytes(b.AsSpan(I32), (int)Integer(rng, 32));
        BitConverter.TryWriteBytes(b.AsSpan(I64), Integer(rng, 64));
        // Every rounding mode and precision (24, 53, 64 bits), all exceptions masked.
        int pc = rng.Next(3) switch { 0 => 0, 1 => 2, _ => 3 };
        BitConverter.TryWriteBytes(b.AsSpan(Cw), (ushort)(0x7F | (pc << 8) | (rng.Next(4) << 10)));
        return b;
    }

    private static void Put80(byte[] b, int at, (ulong M, ushort Se) v)
    {
        BitConverter.TryWriteBytes(b.AsSpan(at), v.M);
        BitConverter.TryWriteBytes(b.AsSpan(at + 8), v.Se);
    }

    private static (ulong, ushort) Get80(byte[] b, int at) => (BitConverter.ToUInt64(b, at), BitConverter.ToUInt16(b, at + 8));

    /// <summary>An 80-bit value, in a valid encoding (the integer bit set exactly when the exponent is non-zero).</summary>
    private static (ulong M, ushort Se) Extended(Random rng)
    {
        ushort sign = (ushort)(rng.Next(2) << 15);
        ulong m = (ulong)rng.NextInt64() | (1UL << 63);
        // Short significands make exact conversions and rounding ties likely.
        if (rng.Next(3) == 0) m &= ~((1UL << rng.Next(64)) - 1) | (1UL << 63);
        int e = rng.Next(12) switch
        {
            0 => 0x7FFF,                                   // infinity or NaN
            1 => 0,                                        // zero or denormal
            2 => 0x3FFF - 1022 - rng.Next(60),             // binary64 denormal range
            3 => 0x3FFF - 126 - rng.Next(30),              // binary32 denormal range
            4 => 0x3FFF + 1023 + rng.Next(-1, 2),          // binary64 overflow edge
            5 => 0x3FFF + 127 + rng.Next(-1, 2),           // binary32 overflow edge
            6 => 0x3FFF + rng.Next(14, 17),                // int16 edge
            7 => 0x3FFF + rng.Next(30, 33),                // int32 edge
            8 => 0x3FFF + rng.Next(62, 65),                // int64 edge
            9 => 0x3FFF - rng.Next(0, 3),                  // around one and a half
            _ => 0x3FFF + rng.Next(-40, 70),
        };
        if (e == 0x7FFF)
        {
            int kind = rng.Next(3);
            m = kind == 0 ? 1UL << 63 : kind == 1 ? m | (3UL << 62) : (m & ~(1UL << 62)) | 1;
        }
        if (e == 0) m = rng.Next(3) == 0 ? 0 : m >> (1 + rng.Next(63));
        return (m, (ushort)(sign | e));
    }

    private static ulong Double(Random rng) => rng.Next(8) switch
    {
        0 => 0x7FF0_0000_0000_0000UL | (rng.Next(2) == 0 ? 0 : (ulong)rng.NextInt64() & 0xF_FFFF_FFFF_FFFFUL),
        1 => (ulong)rng.NextInt64() & 0xF_FFFF_FFFF_FFFFUL,
        2 => 0,
        _ => (ulong)rng.NextInt64(),
    } | (rng.Next(2) == 0 ? 0 : 1UL << 63);

    private static uint Single(Random rng) => rng.Next(8) switch
    {
        0 => 0x7F80_0000u | (rng.Next(2) == 0 ? 0 : (uint)rng.Next() & 0x7F_FFFF),
        1 => (uint)rng.Next() & 0x7F_FFFF,
        2 => 0,
        _ => (uint)rng.Next(),
    } | (rng.Next(2) == 0 ? 0 : 0x8000_0000u);

    private static long Integer(Random rng, int bits) => rng.Next(4) switch
    {
        0 => 0,
        1 => -1L << (bits - 1),
        _ => rng.NextInt64() >> rng.Next(64 - bits, 64),
    };
}
