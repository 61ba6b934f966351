using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;
using IcedOpKind = Iced.Intel.OpKind;

namespace SmartOS.Virt;

// SSE through SSE4.2 (Interpreter.cs): decode into one Op kind (K.Sse) whose Imm carries the
// operation (low 32 bits) and the instruction's imm8 (bits 32..39).
//
// Operand rules:
//   1. op.Reg is operand 0 and op.Rm operand 1 when they are registers (XMM or general, by the
//      operation); op.Sub = 1 when operand 0 is the memory operand (a store form); op.Size is the
//      memory operand's size and op.Size2 the general register's.
//   2. Memory goes through Read/Write in pieces of at most 8 bytes on linear addresses, so paging and
//      MMIO apply unchanged. A 16-byte memory operand must be 16-byte aligned (#GP otherwise) except
//      for the string compares (pcmpXstrX), as for legacy SSE encodings on hardware.
//   3. Floating point goes through SoftFloat under MXCSR; the flags of all lanes are gathered, and an
//      exception the guest unmasked stops the vCPU with #XM before anything is written.
//   4. VEX (AVX) forms are other mnemonics in Iced and stay unimplemented: CPUID does not claim AVX.
public sealed unsafe partial class Interpreter
{
    /// <summary>MXCSR: flags (bits 0-5), DAZ (6), masks (7-12), rounding (13-14), FTZ (15).</summary>
    private uint _mxcsr = MxcsrDefault;
    private const uint MxcsrDefault = 0x1F80;
    /// <summary>The MXCSR bits this CPU implements (fxsave's MXCSR_MASK): all 16, DAZ included.</summary>
    public const uint MxcsrMask = 0xFFFF;

    public uint Mxcsr
    {
        get => _mxcsr;
        set => _mxcsr = value & MxcsrMask;
    }

    private enum SseOp : byte
    {
        None,
        // Integer.
        Padd, Psub, Padds, Paddus, Psubs, Psubus, Pmullw, Pmulhw, Pmulhuw, Pmuludq, Pmuldq, Pmulld, Pmaddwd,
        Pmulhrsw, Pmaddubsw, Pcmpeq, Pcmpgt, PshiftImm, PshiftXmm, Pslldq, Psrldq,
        Packsswb, Packssdw, Packuswb, Packusdw, Punpckl, Punpckh, Pmovmskb, Pshufd, Pshuflw, Pshufhw, Pshufb,
        Palignr, Pminu, Pmaxu, Pmins, Pmaxs, Pavg, Psadbw, Pabs, Psign, Phadd, Phsub, Phaddsw, Phsubsw,
        Pextr, Pinsr, Pmovsx, Pmovzx, Ptest, Pblendw, Pblendvb, Phminposuw, Logic, Crc32, Mpsadbw, Movntdqa, PcmpStr,
        // Floating point.
        Arith, Sqrt, MinMax, Cmp, Comis, Ucomis, Cvtsi2f, Cvtf2si, Cvtss2sd, Cvtsd2ss, Cvtdq2ps, Cvtdq2pd,
        Cvtps2dq, Cvtpd2dq, Cvtps2pd, Cvtpd2ps, Shufps, Shufpd, Unpcklps, Unpckhps, Unpcklpd, Unpckhpd,
        Movhlps, MovLow, MovHigh, MovScalar, Movddup, Movsldup, Movshdup, Addsub, Hadd, Hsub, Round,
        Movmsk, Blend, Blendv, Insertps, Extractps, Ldmxcsr, Stmxcsr, Dpps, Dppd,
    }

    /// <summary>Decodes the SSE..SSE4.2 instructions of this file; false for anything else.</summary>
    private static bool TryDecodeSse(in Instruction ins, ref Op op)
    {
        var m = ins.Mnemonic;
        // Sub-operation: element size in bytes (1, 2, 4, 8), or the arithmetic (0 add, 1 sub, 2 mul,
        // 3 div, 4 min, 5 max), or a shift kind; bit 7 marks double precision or signedness.
        int sub = 0;
        SseOp s = m switch
        {
            Mnemonic.Paddb => Set(SseOp.Padd, 1, ref sub), Mnemonic.Paddw => Set(SseOp.Padd, 2, ref sub),
            Mnemonic.Paddd => Set(SseOp.Padd, 4, ref sub), Mnemonic.Paddq => Set(SseOp.Padd, 8, ref sub),
            Mnemonic.Psubb => Set(SseOp.Psub, 1, ref sub), Mnemonic.Psubw => Set(SseOp.Psub, 2, ref sub),
            Mnemonic.Psubd => Set(SseOp.Psub, 4, ref sub), Mnemonic.Psubq => Set(SseOp.Psub, 8, ref sub),
            Mnemonic.Paddsb => Set(SseOp.Padds, 1, ref sub), Mnemonic.Paddsw => Set(SseOp.Padds, 2, ref sub),
            Mnemonic.Paddusb => Set(SseOp.Paddus, 1, ref sub), Mnemonic.Paddusw => Set(SseOp.Paddus, 2, ref sub),
            Mnemonic.Psubsb => Set(SseOp.Psubs, 1, ref sub), Mnemonic.Psubsw => Set(SseOp.Psubs, 2, ref sub),
            Mnemonic.Psubusb => Set(SseOp.Psubus, 1, ref sub), Mnemonic.Psubusw => Set(SseOp.Psubus, 2, ref sub),
            Mnemonic.Pmullw => SseOp.Pmullw, Mnemonic.Pmulhw => SseOp.Pmulhw, Mnemonic.Pmulhuw => SseOp.Pmulhuw,
            Mnemonic.Pmuludq => SseOp.Pmuludq, Mnemonic.Pmuldq => SseOp.Pmuldq, Mnemonic.Pmulld => SseOp.Pmulld,
            Mnemonic.Pmaddwd => SseOp.Pmaddwd, Mnemonic.Pmulhrsw => SseOp.Pmulhrsw, Mnemonic.Pmaddubsw => SseOp.Pmaddubsw,
            Mnemonic.Pcmpeqb => Set(SseOp.Pcmpeq, 1, ref sub), Mnemonic.Pcmpeqw => Set(SseOp.Pcmpeq, 2, ref sub),
            Mnemonic.Pcmpeqd => Set(SseOp.Pcmpeq, 4, ref sub), Mnemonic.Pcmpeqq => Set(SseOp.Pcmpeq, 8, ref sub),
            Mnemonic.Pcmpgtb => Set(SseOp.Pcmpgt, 1, ref sub), Mnemonic.Pcmpgtw => Set(SseOp.Pcmpgt, 2, ref sub),
            Mnemonic.Pcmpgtd => Set(SseOp.Pcmpgt, 4, ref sub), Mnemonic.Pcmpgtq => Set(SseOp.Pcmpgt, 8, ref sub),
            // Shifts: size | kind << 4 (0 left, 1 logical right, 2 arithmetic right).
            Mnemonic.Psllw => Set(SseOp.PshiftXmm, 2, ref sub), Mnemonic.Pslld => Set(SseOp.PshiftXmm, 4, ref sub),
            Mnemonic.Psllq => Set(SseOp.PshiftXmm, 8, ref sub),
            Mnemonic.Psrlw => Set(SseOp.PshiftXmm, 2 | 0x10, ref sub), Mnemonic.Psrld => Set(SseOp.PshiftXmm, 4 | 0x10, ref sub),
            Mnemonic.Psrlq => Set(SseOp.PshiftXmm, 8 | 0x10, ref sub),
            Mnemonic.Psraw => Set(SseOp.PshiftXmm, 2 | 0x20, ref sub), Mnemonic.Psrad => Set(SseOp.PshiftXmm, 4 | 0x20, ref sub),
            Mnemonic.Pslldq => SseOp.Pslldq, Mnemonic.Psrldq => SseOp.Psrldq,
            Mnemonic.Packsswb => SseOp.Packsswb, Mnemonic.Packssdw => SseOp.Packssdw,
            Mnemonic.Packuswb => SseOp.Packuswb, Mnemonic.Packusdw => SseOp.Packusdw,
            Mnemonic.Punpcklbw => Set(SseOp.Punpckl, 1, ref sub), Mnemonic.Punpcklwd => Set(SseOp.Punpckl, 2, ref sub),
            Mnemonic.Punpckldq => Set(SseOp.Punpckl, 4, ref sub),
            Mnemonic.Punpckhbw => Set(SseOp.Punpckh, 1, ref sub), Mnemonic.Punpckhwd => Set(SseOp.Punpckh, 2, ref sub),
            Mnemonic.Punpckhdq => Set(SseOp.Punpckh, 4, ref sub), Mnemonic.Punpckhqdq => Set(SseOp.Punpckh, 8, ref sub),
            Mnemonic.Pmovmskb => SseOp.Pmovmskb, Mnemonic.Pshufd => SseOp.Pshufd, Mnemonic.Pshuflw => SseOp.Pshuflw,
            Mnemonic.Pshufhw => SseOp.Pshufhw, Mnemonic.Pshufb => SseOp.Pshufb, Mnemonic.Palignr => SseOp.Palignr,
            Mnemonic.Pminub => Set(SseOp.Pminu, 1, ref sub), Mnemonic.Pminuw => Set(SseOp.Pminu, 2, ref sub),
            Mnemonic.Pminud => Set(SseOp.Pminu, 4, ref sub),
            Mnemonic.Pmaxub => Set(SseOp.Pmaxu, 1, ref sub), Mnemonic.Pmaxuw => Set(SseOp.Pmaxu, 2, ref sub),
            Mnemonic.Pmaxud => Set(SseOp.Pmaxu, 4, ref sub),
            Mnemonic.Pminsb => Set(SseOp.Pmins, 1, ref sub), Mnemonic.Pminsw => Set(SseOp.Pmins, 2, ref sub),
            Mnemonic.Pminsd => Set(SseOp.Pmins, 4, ref sub),
            Mnemonic.Pmaxsb => Set(SseOp.Pmaxs, 1, ref sub), Mnemonic.Pmaxsw => Set(SseOp.Pmaxs, 2, ref sub),
            Mnemonic.Pmaxsd => Set(SseOp.Pmaxs, 4, ref sub),
            Mnemonic.Pavgb => Set(SseOp.Pavg, 1, ref sub), Mnemonic.Pavgw => Set(SseOp.Pavg, 2, ref sub),
            Mnemonic.Psadbw => SseOp.Psadbw,
            Mnemonic.Pabsb => Set(SseOp.Pabs, 1, ref sub), Mnemonic.Pabsw => Set(SseOp.Pabs, 2, ref sub),
            Mnemonic.Pabsd => Set(SseOp.Pabs, 4, ref sub),
            Mnemonic.Psignb => Set(SseOp.Psign, 1, ref sub), Mnemonic.Psignw => Set(SseOp.Psign, 2, ref sub),
            Mnemonic.Psignd => Set(SseOp.Psign, 4, ref sub),
            Mnemonic.Phaddw => Set(SseOp.Phadd, 2, ref sub), Mnemonic.Phaddd => Set(SseOp.Phadd, 4, ref sub),
            Mnemonic.Phsubw => Set(SseOp.Phsub, 2, ref sub), Mnemonic.Phsubd => Set(SseOp.Phsub, 4, ref sub),
            Mnemonic.Phaddsw => SseOp.Phaddsw, Mnemonic.Phsubsw => SseOp.Phsubsw,
            Mnemonic.Pextrb => Set(SseOp.Pextr, 1, ref sub), Mnemonic.Pextrw => Set(SseOp.Pextr, 2, ref sub),
            Mnemonic.Pextrd => Set(SseOp.Pextr, 4, ref sub), Mnemonic.Pextrq => Set(SseOp.Pextr, 8, ref sub),
            Mnemonic.Pinsrb => Set(SseOp.Pinsr, 1, ref sub), Mnemonic.Pinsrw => Set(SseOp.Pinsr, 2, ref sub),
            Mnemonic.Pinsrd => Set(SseOp.Pinsr, 4, ref sub), Mnemonic.Pinsrq => Set(SseOp.Pinsr, 8, ref sub),
            // pmovsx/zx: source element size | destination element size << 4.
            Mnemonic.Pmovsxbw => Set(SseOp.Pmovsx, 0x21, ref sub), Mnemonic.Pmovsxbd => Set(SseOp.Pmovsx, 0x41, ref sub),
            Mnemonic.Pmovsxbq => Set(SseOp.Pmovsx, 0x81, ref sub), Mnemonic.Pmovsxwd => Set(SseOp.Pmovsx, 0x42, ref sub),
            Mnemonic.Pmovsxwq => Set(SseOp.Pmovsx, 0x82, ref sub), Mnemonic.Pmovsxdq => Set(SseOp.Pmovsx, 0x84, ref sub),
            Mnemonic.Pmovzxbw => Set(SseOp.Pmovzx, 0x21, ref sub), Mnemonic.Pmovzxbd => Set(SseOp.Pmovzx, 0x41, ref sub),
            Mnemonic.Pmovzxbq => Set(SseOp.Pmovzx, 0x81, ref sub), Mnemonic.Pmovzxwd => Set(SseOp.Pmovzx, 0x42, ref sub),
            Mnemonic.Pmovzxwq => Set(SseOp.Pmovzx, 0x82, ref sub), Mnemonic.Pmovzxdq => Set(SseOp.Pmovzx, 0x84, ref sub),
            Mnemonic.Ptest => SseOp.Ptest, Mnemonic.Pblendw => SseOp.Pblendw, Mnemonic.Pblendvb => SseOp.Pblendvb,
            Mnemonic.Phminposuw => SseOp.Phminposuw,
            // Logic beyond Interpreter.Execute's SseLogic: 0 and, 1 andn, 2 or, 3 xor.
            Mnemonic.Andpd => Set(SseOp.Logic, 0, ref sub), Mnemonic.Andnpd => Set(SseOp.Logic, 1, ref sub),
            Mnemonic.Orpd => Set(SseOp.Logic, 2, ref sub),
            Mnemonic.Crc32 => SseOp.Crc32, Mnemonic.Mpsadbw => SseOp.Mpsadbw, Mnemonic.Movntdqa => SseOp.Movntdqa,
            // String compares: 1 explicit lengths | 2 mask output | 4 64-bit lengths (REX.W).
            Mnemonic.Pcmpestri => Set(SseOp.PcmpStr, 1, ref sub), Mnemonic.Pcmpestrm => Set(SseOp.PcmpStr, 3, ref sub),
            Mnemonic.Pcmpestri64 => Set(SseOp.PcmpStr, 5, ref sub), Mnemonic.Pcmpestrm64 => Set(SseOp.PcmpStr, 7, ref sub),
            Mnemonic.Pcmpistri => Set(SseOp.PcmpStr, 0, ref sub), Mnemonic.Pcmpistrm => Set(SseOp.PcmpStr, 2, ref sub),
            Mnemonic.Dpps => SseOp.Dpps, Mnemonic.Dppd => SseOp.Dppd,
            // Arithmetic: operation | 0x10 packed | 0x80 double.
            Mnemonic.Addss => Set(SseOp.Arith, 0, ref sub), Mnemonic.Addsd => Set(SseOp.Arith, 0x80, ref sub),
            Mnemonic.Addps => Set(SseOp.Arith, 0x10, ref sub), Mnemonic.Addpd => Set(SseOp.Arith, 0x90, ref sub),
            Mnemonic.Subss => Set(SseOp.Arith, 1, ref sub), Mnemonic.Subsd => Set(SseOp.Arith, 0x81, ref sub),
            Mnemonic.Subps => Set(SseOp.Arith, 0x11, ref sub), Mnemonic.Subpd => Set(SseOp.Arith, 0x91, ref sub),
            Mnemonic.Mulss => Set(SseOp.Arith, 2, ref sub), Mnemonic.Mulsd => Set(SseOp.Arith, 0x82, ref sub),
            Mnemonic.Mulps => Set(SseOp.Arith, 0x12, ref sub), Mnemonic.Mulpd => Set(SseOp.Arith, 0x92, ref sub),
            Mnemonic.Divss => Set(SseOp.Arith, 3, ref sub), Mnemonic.Divsd => Set(SseOp.Arith, 0x83, ref sub),
            Mnemonic.Divps => Set(SseOp.Arith, 0x13, ref sub), Mnemonic.Divpd => Set(SseOp.Arith, 0x93, ref sub),
            Mnemonic.Minss => Set(SseOp.MinMax, 0, ref sub), Mnemonic.Minsd => Set(SseOp.MinMax, 0x80, ref sub),
            Mnemonic.Minps => Set(SseOp.MinMax, 0x10, ref sub), Mnemonic.Minpd => Set(SseOp.MinMax, 0x90, ref sub),
            Mnemonic.Maxss => Set(SseOp.MinMax, 1, ref sub), Mnemonic.Maxsd => Set(SseOp.MinMax, 0x81, ref sub),
            Mnemonic.Maxps => Set(SseOp.MinMax, 0x11, ref sub), Mnemonic.Maxpd => Set(SseOp.MinMax, 0x91, ref sub),
            Mnemonic.Sqrtss => Set(SseOp.Sqrt, 0, ref sub), Mnemonic.Sqrtsd => Set(SseOp.Sqrt, 0x80, ref sub),
            Mnemonic.Sqrtps => Set(SseOp.Sqrt, 0x10, ref sub), Mnemonic.Sqrtpd => Set(SseOp.Sqrt, 0x90, ref sub),
            Mnemonic.Cmpss => Set(SseOp.Cmp, 0, ref sub), Mnemonic.Cmpps => Set(SseOp.Cmp, 0x10, ref sub),
            Mnemonic.Cmppd => Set(SseOp.Cmp, 0x90, ref sub),
            Mnemonic.Cmpsd when ins.Code == Code.Cmpsd_xmm_xmmm64_imm8 => Set(SseOp.Cmp, 0x80, ref sub),
            Mnemonic.Comiss => Set(SseOp.Comis, 0, ref sub), Mnemonic.Comisd => Set(SseOp.Comis, 0x80, ref sub),
            Mnemonic.Ucomiss => Set(SseOp.Ucomis, 0, ref sub), Mnemonic.Ucomisd => Set(SseOp.Ucomis, 0x80, ref sub),
            // Conversions to integers: 1 truncating | 0x80 double.
            Mnemonic.Cvtsi2ss => Set(SseOp.Cvtsi2f, 0, ref sub), Mnemonic.Cvtsi2sd => Set(SseOp.Cvtsi2f, 0x80, ref sub),
            Mnemonic.Cvtss2si => Set(SseOp.Cvtf2si, 0, ref sub), Mnemonic.Cvttss2si => Set(SseOp.Cvtf2si, 1, ref sub),
            Mnemonic.Cvtsd2si => Set(SseOp.Cvtf2si, 0x80, ref sub), Mnemonic.Cvttsd2si => Set(SseOp.Cvtf2si, 0x81, ref sub),
            Mnemonic.Cvtss2sd => SseOp.Cvtss2sd, Mnemonic.Cvtsd2ss => SseOp.Cvtsd2ss,
            Mnemonic.Cvtdq2ps => SseOp.Cvtdq2ps, Mnemonic.Cvtdq2pd => SseOp.Cvtdq2pd,
            Mnemonic.Cvtps2dq => Set(SseOp.Cvtps2dq, 0, ref sub), Mnemonic.Cvttps2dq => Set(SseOp.Cvtps2dq, 1, ref sub),
            Mnemonic.Cvtpd2dq => Set(SseOp.Cvtpd2dq, 0, ref sub), Mnemonic.Cvttpd2dq => Set(SseOp.Cvtpd2dq, 1, ref sub),
            Mnemonic.Cvtps2pd => SseOp.Cvtps2pd, Mnemonic.Cvtpd2ps => SseOp.Cvtpd2ps,
            Mnemonic.Shufps => SseOp.Shufps, Mnemonic.Shufpd => SseOp.Shufpd,
            Mnemonic.Unpcklps => SseOp.Unpcklps, Mnemonic.Unpckhps => SseOp.Unpckhps,
            Mnemonic.Unpcklpd => SseOp.Unpcklpd, Mnemonic.Unpckhpd => SseOp.Unpckhpd,
            Mnemonic.Movhlps => SseOp.Movhlps,
            Mnemonic.Movlps or Mnemonic.Movlpd => SseOp.MovLow, Mnemonic.Movhps or Mnemonic.Movhpd => SseOp.MovHigh,
            Mnemonic.Movss => Set(SseOp.MovScalar, 4, ref sub),
            Mnemonic.Movsd when ins.Code != Code.Movsd_m32_m32 => Set(SseOp.MovScalar, 8, ref sub),
            Mnemonic.Movddup => SseOp.Movddup, Mnemonic.Movsldup => SseOp.Movsldup, Mnemonic.Movshdup => SseOp.Movshdup,
            Mnemonic.Addsubps => Set(SseOp.Addsub, 0, ref sub), Mnemonic.Addsubpd => Set(SseOp.Addsub, 0x80, ref sub),
            Mnemonic.Haddps => Set(SseOp.Hadd, 0, ref sub), Mnemonic.Haddpd => Set(SseOp.Hadd, 0x80, ref sub),
            Mnemonic.Hsubps => Set(SseOp.Hsub, 0, ref sub), Mnemonic.Hsubpd => Set(SseOp.Hsub, 0x80, ref sub),
            Mnemonic.Roundss => Set(SseOp.Round, 0, ref sub), Mnemonic.Roundsd => Set(SseOp.Round, 0x80, ref sub),
            Mnemonic.Roundps => Set(SseOp.Round, 0x10, ref sub), Mnemonic.Roundpd => Set(SseOp.Round, 0x90, ref sub),
            Mnemonic.Movmskps => Set(SseOp.Movmsk, 0, ref sub), Mnemonic.Movmskpd => Set(SseOp.Movmsk, 0x80, ref sub),
            Mnemonic.Blendps => Set(SseOp.Blend, 0, ref sub), Mnemonic.Blendpd => Set(SseOp.Blend, 0x80, ref sub),
            Mnemonic.Blendvps => Set(SseOp.Blendv, 0, ref sub), Mnemonic.Blendvpd => Set(SseOp.Blendv, 0x80, ref sub),
            Mnemonic.Insertps => SseOp.Insertps, Mnemonic.Extractps => SseOp.Extractps,
            Mnemonic.Ldmxcsr => SseOp.Ldmxcsr, Mnemonic.Stmxcsr => SseOp.Stmxcsr,
            _ => SseOp.None,
        };
        if (s == SseOp.None) return false;
        long imm = 0;
        for (int i = 0; i < ins.OpCount; i++)
        {
            var k = ins.GetOpKind(i);
            if (k == IcedOpKind.Memory)
            {
                if (!Mem(in ins, ref op)) return false;
                op.Size = (byte)ins.MemorySize.GetSize();
                if (i == 0) op.Sub = 1;
            }
            else if (k == IcedOpKind.Register)
            {
                var reg = ins.GetOpRegister(i);
                if (i == 2 && reg == Register.XMM0) continue; // blendv's implicit mask
                byte index;
                if (Xmm(reg, out index)) { }
                else if (Gpr(reg, out index, out byte size) && index < 16)
                {
                    // crc32's source register has its size in Size, as a memory source would.
                    if (i == 1 && s == SseOp.Crc32) op.Size = size;
                    else op.Size2 = size;
                }
                else return false;
                if (i == 0) op.Reg = index;
                else if (i == 1) op.Rm = index;
                else return false;
            }
            else if (IsImm(k)) { imm = (long)(byte)ins.GetImmediate(i); op.HasImm = true; }
            else return false;
        }
        op.Kind = K.Sse;
        op.Imm = (long)s | ((long)sub << 8) | (imm << 32);
        return true;
    }

    private static SseOp Set(SseOp op, int sub, ref int into)
    {
        into = sub;
        return op;
    }
}
