using SmartOS.Virt.Internal;
using Soft = SmartOS.Virt.Internal.SoftFloat;

namespace SmartOS.Virt;

// SSE execution, the floating-point half: arithmetic, compares, conversions, shuffles of float lanes,
// scalar moves and MXCSR (Interpreter.Sse.cs rule 3: results are built, MXCSR's flags gathered, and
// only then is anything written).
public sealed unsafe partial class Interpreter
{
    private void ExecuteSseFloat(ref Op op, SseOp s, int sub, int imm)
    {
        ulong* d = _xmm + 2 * op.Reg;
        ulong* src = stackalloc ulong[2];
        ulong* res = stackalloc ulong[2];
        bool dbl = (sub & 0x80) != 0, packed = (sub & 0x10) != 0;
        int lanes = !packed ? 1 : dbl ? 2 : 4, lane = dbl ? 8 : 4;
        uint mx = _mxcsr, flags = 0;
        switch (s)
        {
            case SseOp.Arith:
            case SseOp.MinMax:
            case SseOp.Sqrt:
            case SseOp.Cmp:
            case SseOp.Round:
            {
                LoadSource(ref op, src);
                Store(res, s is SseOp.Sqrt or SseOp.Round && packed ? src : d);
                bool fromMxcsr = (imm & 4) != 0;
                for (int i = 0; i < lanes; i++)
                {
                    ulong a = GetLane(d, lane, i), b = GetLane(src, lane, i), r = s switch
                    {
                        SseOp.Arith => (sub & 0xF) switch
                        {
                            0 => Soft.Add(dbl, a, b, mx, ref flags),
                            1 => Soft.Sub(dbl, a, b, mx, ref flags),
                            2 => Soft.Mul(dbl, a, b, mx, ref flags),
                            _ => Soft.Div(dbl, a, b, mx, ref flags),
                        },
                        SseOp.MinMax => Soft.MinMax(dbl, a, b, (sub & 1) != 0, mx, ref flags),
                        SseOp.Sqrt => Soft.Sqrt(dbl, b, mx, ref flags),
                        SseOp.Round => Soft.RoundToIntegral(dbl, b, fromMxcsr ? (int)(mx >> 13) & 3 : imm & 3, (imm & 8) != 0, mx, ref flags),
                        _ => CmpPredicate(imm & 7, Soft.Compare(dbl, a, b, (0x66 >> (imm & 7) & 1) != 0, mx, ref flags)) ? ulong.MaxValue : 0,
                    };
                    SetLane(res, lane, i, r);
                }
                CommitMxcsr(flags);
                Store(d, res);
                break;
            }
            case SseOp.Comis:
            case SseOp.Ucomis:
            {
                LoadSource(ref op, src);
                int c = Soft.Compare(dbl, GetLane(d, lane, 0), GetLane(src, lane, 0), s == SseOp.Comis, mx, ref flags);
                CommitMxcsr(flags);
                SetFlagBits(ArithFlags, c switch { 2 => ZF | PF | CF, 0 => ZF, -1 => CF, _ => 0 });
                break;
            }
            case SseOp.Addsub: case SseOp.Hadd: case SseOp.Hsub:
            {
                LoadSource(ref op, src);
                int n = dbl ? 2 : 4;
                for (int i = 0; i < n; i++)
                {
                    ulong a, b;
                    bool subtract;
                    if (s == SseOp.Addsub) { a = GetLane(d, lane, i); b = GetLane(src, lane, i); subtract = (i & 1) == 0; }
                    else
                    {
                        ulong* from = i < n / 2 ? d : src;
                        int j = 2 * (i % (n / 2));
                        a = GetLane(from, lane, j);
                        b = GetLane(from, lane, j + 1);
                        subtract = s == SseOp.Hsub;
                    }
                    SetLane(res, lane, i, subtract ? Soft.Sub(dbl, a, b, mx, ref flags) : Soft.Add(dbl, a, b, mx, ref flags));
                }
                CommitMxcsr(flags);
                Store(d, res);
                break;
            }
            case SseOp.Cvtsi2f:
            {
                ulong v = op.IsMem ? Read(Ea(ref op), op.Size) : GetReg(op.Rm, op.Size2);
                int bits = op.IsMem ? op.Size : op.Size2;
                ulong r = Soft.FromInt(dbl, SignExtend(v, bits), mx, ref flags);
                CommitMxcsr(flags);
                SetLane(d, lane, 0, r);
                break;
            }
            case SseOp.Cvtf2si:
            {
                LoadSource(ref op, src);
                ulong r = Soft.ToInt(dbl, GetLane(src, lane, 0), op.Size2 * 8, (sub & 1) != 0, mx, ref flags);
                CommitMxcsr(flags);
                SetReg(op.Reg, op.Size2, r);
                break;
            }
            case SseOp.Cvtss2sd:
            {
                LoadSource(ref op, src);
                ulong r = Soft.Convert(true, (uint)src[0], mx, ref flags);
                CommitMxcsr(flags);
                d[0] = r;
                break;
            }
            case SseOp.Cvtsd2ss:
            {
                LoadSource(ref op, src);
                ulong r = Soft.Convert(false, src[0], mx, ref flags);
                CommitMxcsr(flags);
                ((uint*)d)[0] = (uint)r;
                break;
            }
            case SseOp.Cvtdq2ps:
                LoadSource(ref op, src);
                for (int i = 0; i < 4; i++) ((uint*)res)[i] = (uint)Soft.FromInt(false, ((int*)src)[i], mx, ref flags);
                CommitMxcsr(flags);
                Store(d, res);
                break;
            case SseOp.Cvtdq2pd:
                LoadSource(ref op, src);
                for (int i = 0; i < 2; i++) res[i] = Soft.FromInt(true, ((int*)src)[i], mx, ref flags);
                Store(d, res);
                break;
            case SseOp.Cvtps2dq:
                LoadSource(ref op, src);
                for (int i = 0; i < 4; i++) ((uint*)res)[i] = (uint)Soft.ToInt(false, ((uint*)src)[i], 32, sub == 1, mx, ref flags);
                CommitMxcsr(flags);
                Store(d, res);
                break;
            case SseOp.Cvtpd2dq:
                LoadSource(ref op, src);
                res[0] = Soft.ToInt(true, src[0], 32, sub == 1, mx, ref flags) | (Soft.ToInt(true, src[1], 32, sub == 1, mx, ref flags) << 32);
                res[1] = 0;
                CommitMxcsr(flags);
                Store(d, res);
                break;
            case SseOp.Cvtps2pd:
                LoadSource(ref op, src);
                for (int i = 0; i < 2; i++) res[i] = Soft.Convert(true, ((uint*)src)[i], mx, ref flags);
                CommitMxcsr(flags);
                Store(d, res);
                break;
            case SseOp.Cvtpd2ps:
                LoadSource(ref op, src);
                res[0] = Soft.Convert(false, src[0], mx, ref flags) | (Soft.Convert(false, src[1], mx, ref flags) << 32);
                res[1] = 0;
                CommitMxcsr(flags);
                Store(d, res);
                break;
            case SseOp.Shufps:
                LoadSource(ref op, src);
                for (int i = 0; i < 4; i++) ((uint*)res)[i] = ((uint*)(i < 2 ? d : src))[(imm >> (2 * i)) & 3];
                Store(d, res);
                break;
            case SseOp.Shufpd:
                LoadSource(ref op, src);
                res[0] = d[imm & 1];
                res[1] = src[(imm >> 1) & 1];
                Store(d, res);
                break;
            case SseOp.Unpcklps:
            case SseOp.Unpckhps:
            {
                LoadSource(ref op, src);
                int from = s == SseOp.Unpcklps ? 0 : 2;
                for (int i = 0; i < 2; i++)
                {
                    ((uint*)res)[2 * i] = ((uint*)d)[from + i];
                    ((uint*)res)[2 * i + 1] = ((uint*)src)[from + i];
                }
                Store(d, res);
                break;
            }
            case SseOp.Unpcklpd: LoadSource(ref op, src); d[1] = src[0]; break;
            case SseOp.Unpckhpd: LoadSource(ref op, src); d[0] = d[1]; d[1] = src[1]; break;
            case SseOp.Movhlps: d[0] = _xmm[2 * op.Rm + 1]; break;
            case SseOp.MovLow:
            case SseOp.MovHigh:
            {
                int half = s == SseOp.MovLow ? 0 : 1;
                if (op.Sub == 1) Write(Ea(ref op), 8, _xmm[2 * op.Rm + half]);
                else d[half] = Read(Ea(ref op), 8);
                break;
            }
            case SseOp.MovScalar:
            {
                int size = sub;
                if (op.Sub == 1) Write(Ea(ref op), size, GetLane(_xmm + 2 * op.Rm, size, 0));
                else if (op.IsMem) { d[0] = Read(Ea(ref op), size); d[1] = 0; }
                else SetLane(d, size, 0, GetLane(_xmm + 2 * op.Rm, size, 0));
                break;
            }
            case SseOp.Movddup: LoadSource(ref op, src); d[0] = d[1] = src[0]; break;
            case SseOp.Movsldup:
            case SseOp.Movshdup:
            {
                LoadSource(ref op, src);
                int odd = s == SseOp.Movshdup ? 1 : 0;
                for (int i = 0; i < 4; i++) ((uint*)res)[i] = ((uint*)src)[(i & ~1) + odd];
                Store(d, res);
                break;
            }
            case SseOp.Movmsk:
            {
                ulong* x = _xmm + 2 * op.Rm;
                uint mask = 0;
                for (int i = 0; i < 16 / lane; i++) mask |= (uint)(GetLane(x, lane, i) >> (lane * 8 - 1)) << i;
                SetReg(op.Reg, op.Size2, mask);
                break;
            }
            case SseOp.Blend:
                LoadSource(ref op, src);
                for (int i = 0; i < 16 / lane; i++) if (((imm >> i) & 1) != 0) SetLane(d, lane, i, GetLane(src, lane, i));
                break;
            case SseOp.Blendv:
                LoadSource(ref op, src);
                for (int i = 0; i < 16 / lane; i++) if ((GetLane(_xmm, lane, i) >> (lane * 8 - 1)) != 0) SetLane(d, lane, i, GetLane(src, lane, i));
                break;
            case SseOp.Insertps:
            {
                uint v = op.IsMem ? (uint)Read(Ea(ref op), 4) : ((uint*)(_xmm + 2 * op.Rm))[(imm >> 6) & 3];
                ((uint*)d)[(imm >> 4) & 3] = v;
                for (int i = 0; i < 4; i++) if (((imm >> i) & 1) != 0) ((uint*)d)[i] = 0;
                break;
            }
            case SseOp.Extractps:
            {
                uint v = ((uint*)(_xmm + 2 * op.Rm))[imm & 3];
                if (op.IsMem) Write(Ea(ref op), 4, v);
                else SetReg(op.Reg, op.Size2, v);
                break;
            }
            case SseOp.Dpps:
            case SseOp.Dppd:
            {
                // The products, then pairwise sums (low pair + high pair). The SDM's DP_primitive adds
                // lane 0 + lane 1; hardware takes the higher lane as the first operand of each pair's
                // sum (its NaN wins). With NaNs in both lanes of a pair, real parts pick per
                // destination lane in an order the SDM does not give; not modelled.
                LoadSource(ref op, src);
                bool pd = s == SseOp.Dppd;
                int n = pd ? 2 : 4, w = pd ? 8 : 4;
                ulong* t = stackalloc ulong[4];
                for (int i = 0; i < n; i++)
                    t[i] = ((imm >> (4 + i)) & 1) != 0 ? Soft.Mul(pd, GetLane(d, w, i), GetLane(src, w, i), mx, ref flags) : 0;
                ulong sum = pd ? Soft.Add(true, t[1], t[0], mx, ref flags)
                    : Soft.Add(false, Soft.Add(false, t[1], t[0], mx, ref flags), Soft.Add(false, t[3], t[2], mx, ref flags), mx, ref flags);
                for (int i = 0; i < n; i++) SetLane(res, w, i, ((imm >> i) & 1) != 0 ? sum : 0);
                CommitMxcsr(flags);
                Store(d, res);
                break;
            }
            case SseOp.Ldmxcsr:
            {
                ulong ea = Ea(ref op);
                uint v = (uint)Read(ea, 4);
                if ((v & ~MxcsrMask) != 0)
                    throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#GP: ldmxcsr of 0x{v:x} sets reserved bits");
                _mxcsr = v;
                break;
            }
            case SseOp.Stmxcsr: Write(Ea(ref op), 4, _mxcsr); break;
            default:
                throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, $"unimplemented SSE operation {s} at 0x{_instrRip:x}");
        }
    }

    /// <summary>cmpps/cmpss predicates 0-7 (EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD) on Compare's answer
    /// (-1, 0, 1, 2 = unordered). LT, LE, NLT and NLE signal on any NaN (the 0x66 mask in the caller).</summary>
    private static bool CmpPredicate(int p, int c) => p switch
    {
        0 => c == 0,
        1 => c == -1,
        2 => c is -1 or 0,
        3 => c == 2,
        4 => c != 0,
        5 => c != -1,
        6 => c is 1 or 2,
        _ => c != 2,
    };

    /// <summary>Rule 3: an exception the guest has not masked stops the vCPU (#XM) before any result
    /// is written; masked ones accumulate in MXCSR's flags.</summary>
    private void CommitMxcsr(uint flags)
    {
        uint unmasked = flags & ~(_mxcsr >> 7) & 0x3F;
        if (unmasked != 0)
            throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#XM: unmasked SIMD floating-point exception (MXCSR flags 0x{flags:x}) at 0x{_instrRip:x}");
        _mxcsr |= flags;
    }
}
