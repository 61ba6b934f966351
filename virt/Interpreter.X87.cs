using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;
using IcedOpKind = Iced.Intel.OpKind;

namespace SmartOS.Virt;

// The x87 state and the instructions that save, restore and control it (Interpreter.cs): fninit,
// fnstcw/fldcw, fnstsw, fnclex, fwait; fxsave/fxrstor; xsave/xrstor/xgetbv/xsetbv for the x87 and
// SSE components. Loads, stores and compares on the x87 stack are Interpreter.X87Data.cs.
//
// Rules:
//   1. The eight physical registers R0-R7 hold 80-bit values (64-bit significand with its explicit
//      integer bit, 15-bit exponent, sign); ST(i) is R[(TOP + i) & 7], TOP being FSW bits 11-13. The
//      tag word is kept in its abridged form (one "valid" bit per physical register), which is what
//      fxsave stores and the full tag can be derived from.
//   2. Memory goes through Read/Write in 8-byte (or smaller) pieces on linear addresses, so a
//      512-byte fxsave is a loop of stores that paging and MMIO see as the guest's.
//   3. XCR0 supports x87 (bit 0) and SSE (bit 1) only; the XSAVE area is the 512-byte legacy region
//      and the 64-byte header (576 bytes), in the standard (non-compacted) form. A component counts as
//      in use whenever the guest asks (XINUSE may be 1 for a component in its initial state).
//   4. FIP, FDP and FOP (the last x87 instruction's address, operand and opcode) are kept as zero:
//      fxsave stores zeros there, as after fninit; nothing the tests compare depends on them.
public sealed unsafe partial class Interpreter
{
    private ushort _fcw = 0x37F, _fsw;
    private byte _ftwValid;
    private readonly ulong[] _stMant = new ulong[8];
    private readonly ushort[] _stExp = new ushort[8];
    private ulong _xcr0 = 1;

    /// <summary>XCR0: which state components xsave/xrstor manage (x87 always; SSE when enabled).</summary>
    public ulong Xcr0 => _xcr0;
    /// <summary>The x87 control word (rounding, precision, exception masks).</summary>
    public ushort FpuControlWord => _fcw;
    /// <summary>The x87 status word (exception flags, condition codes, TOP).</summary>
    public ushort FpuStatusWord => _fsw;

    private const ulong XcrSupported = 3;
    private const int XsaveSize = 576;

    private enum X87Op : byte
    {
        None, Fninit, Fnstcw, Fldcw, Fnstsw, FnstswAx, Fnclex, Fwait, Fxsave, Fxsave64, Fxrstor, Fxrstor64,
        Xsave, Xsave64, Xrstor, Xrstor64, Xgetbv, Xsetbv,
    }

    private static bool TryDecodeX87State(in Instruction ins, ref Op op)
    {
        X87Op x = ins.Mnemonic switch
        {
            Mnemonic.Fninit => X87Op.Fninit, Mnemonic.Fnstcw => X87Op.Fnstcw, Mnemonic.Fldcw => X87Op.Fldcw,
            Mnemonic.Fnstsw => ins.Op0Kind == IcedOpKind.Register ? X87Op.FnstswAx : X87Op.Fnstsw,
            Mnemonic.Fnclex => X87Op.Fnclex, Mnemonic.Wait => X87Op.Fwait,
            Mnemonic.Fxsave => X87Op.Fxsave, Mnemonic.Fxsave64 => X87Op.Fxsave64,
            Mnemonic.Fxrstor => X87Op.Fxrstor, Mnemonic.Fxrstor64 => X87Op.Fxrstor64,
            Mnemonic.Xsave => X87Op.Xsave, Mnemonic.Xsave64 => X87Op.Xsave64,
            Mnemonic.Xrstor => X87Op.Xrstor, Mnemonic.Xrstor64 => X87Op.Xrstor64,
            Mnemonic.Xgetbv => X87Op.Xgetbv, Mnemonic.Xsetbv => X87Op.Xsetbv,
            _ => X87Op.None,
        };
        if (x == X87Op.None) return false;
        if (ins.OpCount > 0 && ins.Op0Kind == IcedOpKind.Memory && !Mem(in ins, ref op)) return false;
        op.Kind = K.CpuMisc;
        op.Imm = (long)x;
        return true;
    }

    private void ExecuteX87State(ref Op op)
    {
        var x = (X87Op)(byte)op.Imm;
        switch (x)
        {
            case X87Op.Fninit: FpuInit(); break;
            case X87Op.Fnstcw: Write(Ea(ref op), 2, _fcw); break;
            case X87Op.Fldcw: _fcw = (ushort)(Read(Ea(ref op), 2) | 0x40); UpdateErrorSummary(); break;
            case X87Op.Fnstsw: Write(Ea(ref op), 2, _fsw); break;
            case X87Op.FnstswAx: SetReg(0, 2, _fsw); break;
            case X87Op.Fnclex: _fsw &= 0x7F00; break;
            case X87Op.Fwait:
                if ((_fsw & 0x80) != 0)
                    throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#MF: pending unmasked x87 exception (FSW 0x{_fsw:x4}) at 0x{_instrRip:x}");
                break;
            case X87Op.Fxsave: case X87Op.Fxsave64: FxSave(Aligned(ref op, 16, "fxsave"), ~0UL); break;
            case X87Op.Fxrstor: case X87Op.Fxrstor64: FxRestore(Aligned(ref op, 16, "fxrstor"), ~0UL, ~0UL); break;
            case X87Op.Xsave: case X87Op.Xsave64: XSave(Aligned(ref op, 64, "xsave")); break;
            case X87Op.Xrstor: case X87Op.Xrstor64: XRestore(Aligned(ref op, 64, "xrstor")); break;
            case X87Op.Xgetbv:
                if ((uint)_r[1] != 0) throw Gp($"xgetbv of XCR{(uint)_r[1]}");
                _r[0] = (uint)_xcr0;
                _r[2] = _xcr0 >> 32;
                break;
            case X87Op.Xsetbv:
            {
                ulong v = ((ulong)(uint)_r[2] << 32) | (uint)_r[0];
                if ((uint)_r[1] != 0 || (v & 1) == 0 || (v & ~XcrSupported) != 0) throw Gp($"xsetbv of XCR{(uint)_r[1]} = 0x{v:x}");
                _xcr0 = v;
                break;
            }
        }
    }

    private GuestFault Gp(string what) => new(VcpuExitReason.Fault, _instrRip, $"#GP: {what} at 0x{_instrRip:x}");

    private ulong Aligned(ref Op op, ulong alignment, string what)
    {
        ulong ea = Ea(ref op);
        if ((ea & (alignment - 1)) != 0) throw Gp($"{what} of misaligned 0x{ea:x}");
        return ea;
    }

    private void FpuInit()
    {
        _fcw = 0x37F;
        _fsw = 0;
        _ftwValid = 0;
    }

    /// <summary>FSW's ES and B (bits 7 and 15) summarise the unmasked exceptions pending.</summary>
    private void UpdateErrorSummary()
    {
        bool pending = (_fsw & ~_fcw & 0x3F) != 0;
        _fsw = (ushort)(pending ? _fsw | 0x8080 : _fsw & ~0x8080);
    }

    /// <summary>The legacy region: x87 when <paramref name="rfbm"/> bit 0, XMM registers, MXCSR and its
    /// mask when bit 1 (the fxsave layout, SDM vol. 1, 10.5.1).</summary>
    private void FxSave(ulong ea, ulong rfbm)
    {
        if ((rfbm & 1) != 0)
        {
            Write(ea, 2, _fcw);
            Write(ea + 2, 2, _fsw);
            Write(ea + 4, 1, _ftwValid);
            Write(ea + 5, 1, 0);
            Write(ea + 6, 2, 0);   // FOP
            Write(ea + 8, 8, 0);   // FIP (and FCS)
            Write(ea + 16, 8, 0);  // FDP (and FDS)
            for (int i = 0; i < 8; i++)
            {
                // Stored in stack order: ST(0) first.
                int p = (Top + i) & 7;
                ulong at = ea + 32 + (ulong)(16 * i);
                Write(at, 8, _stMant[p]);
                Write(at + 8, 2, _stExp[p]);
                Write(at + 10, 2, 0);
                Write(at + 12, 4, 0);
            }
        }
        // MXCSR goes with the SSE component (fxsave passes every bit).
        if ((rfbm & 2) != 0)
        {
            Write(ea + 24, 4, _mxcsr);
            Write(ea + 28, 4, MxcsrMask);
        }
        if ((rfbm & 2) != 0)
            for (int i = 0; i < 32; i++) Write(ea + 160 + (ulong)(8 * i), 8, _xmm[i]);
    }

    /// <summary>Loads the components in <paramref name="rfbm"/> whose <paramref name="present"/> bit is
    /// set; the others in rfbm return to their initial state. MXCSR with reserved bits set is #GP
    /// before anything changes.</summary>
    private void FxRestore(ulong ea, ulong rfbm, ulong present)
    {
        // MXCSR is loaded whenever SSE is requested, whatever XSTATE_BV says (SDM vol. 1, 13.8.1).
        bool mx = (rfbm & 2) != 0;
        uint mxcsr = mx ? (uint)Read(ea + 24, 4) : _mxcsr;
        if (mx && (mxcsr & ~MxcsrMask) != 0) throw Gp($"restore of MXCSR 0x{mxcsr:x} with reserved bits");
        if ((rfbm & 1) != 0)
        {
            if ((present & 1) != 0)
            {
                _fcw = (ushort)Read(ea, 2);
                _fsw = (ushort)Read(ea + 2, 2);
                _ftwValid = (byte)Read(ea + 4, 1);
                for (int i = 0; i < 8; i++)
                {
                    int p = (Top + i) & 7;
                    ulong at = ea + 32 + (ulong)(16 * i);
                    _stMant[p] = Read(at, 8);
                    _stExp[p] = (ushort)Read(at + 8, 2);
                }
            }
            else
            {
                FpuInit();
                Array.Clear(_stMant);
                Array.Clear(_stExp);
            }
        }
        if ((rfbm & 2) != 0)
        {
            if ((present & 2) != 0) for (int i = 0; i < 32; i++) _xmm[i] = Read(ea + 160 + (ulong)(8 * i), 8);
            else for (int i = 0; i < 32; i++) _xmm[i] = 0;
        }
        if (mx) _mxcsr = mxcsr;
    }

    private ulong Rfbm() => (((ulong)(uint)_r[2] << 32) | (uint)_r[0]) & _xcr0;

    private void XSave(ulong ea)
    {
        ulong rfbm = Rfbm();
        FxSave(ea, rfbm);
        ulong bv = Read(ea + 512, 8);
        Write(ea + 512, 8, (bv & ~rfbm) | rfbm);
    }

    private void XRestore(ulong ea)
    {
        ulong rfbm = Rfbm();
        ulong bv = Read(ea + 512, 8), comp = Read(ea + 520, 8);
        // The standard form: XCOMP_BV zero, no state outside XCR0, the rest of the header zero.
        if (comp != 0 || (bv & ~_xcr0) != 0) throw Gp($"xrstor with XSTATE_BV 0x{bv:x}, XCOMP_BV 0x{comp:x}");
        for (ulong at = 528; at < 576; at += 8)
            if (Read(ea + at, 8) != 0) throw Gp("xrstor with a reserved header field set");
        FxRestore(ea, rfbm, bv);
    }

    private int Top => (_fsw >> 11) & 7;
}
