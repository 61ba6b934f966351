using SmartOS.Virt.Internal;

namespace SmartOS.Virt;

// SSE execution, the integer and data-movement half (Interpreter.Sse.cs has the rules; the floating
// point half is Interpreter.SseFloat.cs). Lane-wise operations work on the XMM register file in place
// through typed pointers; operations whose lanes read lanes they also write build the result in a
// stack buffer first.
public sealed unsafe partial class Interpreter
{
    private void ExecuteSse(ref Op op)
    {
        var s = (SseOp)(byte)op.Imm;
        int sub = (int)(op.Imm >> 8) & 0xFF, imm = (int)(op.Imm >> 32) & 0xFF;
        if (s >= SseOp.Arith)
        {
            ExecuteSseFloat(ref op, s, sub, imm);
            return;
        }
        ulong* d = _xmm + 2 * op.Reg;
        ulong* src = stackalloc ulong[2];
        ulong* res = stackalloc ulong[2];
        int size = sub & 0xF;
        switch (s)
        {
            case SseOp.Padd: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, GetLane(d, size, i) + GetLane(src, size, i)); break;
            case SseOp.Psub: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, GetLane(d, size, i) - GetLane(src, size, i)); break;
            case SseOp.Padds: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, SatSigned(SLane(d, size, i) + SLane(src, size, i), size)); break;
            case SseOp.Psubs: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, SatSigned(SLane(d, size, i) - SLane(src, size, i), size)); break;
            case SseOp.Paddus: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, SatUnsigned((long)(GetLane(d, size, i) + GetLane(src, size, i)), size)); break;
            case SseOp.Psubus: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, SatUnsigned((long)GetLane(d, size, i) - (long)GetLane(src, size, i), size)); break;
            case SseOp.Pmullw: LoadSource(ref op, src); for (int i = 0; i < 8; i++) ((short*)d)[i] = (short)(((short*)d)[i] * ((short*)src)[i]); break;
            case SseOp.Pmulhw: LoadSource(ref op, src); for (int i = 0; i < 8; i++) ((short*)d)[i] = (short)((((short*)d)[i] * ((short*)src)[i]) >> 16); break;
            case SseOp.Pmulhuw: LoadSource(ref op, src); for (int i = 0; i < 8; i++) ((ushort*)d)[i] = (ushort)((((ushort*)d)[i] * (uint)((ushort*)src)[i]) >> 16); break;
            case SseOp.Pmuludq: LoadSource(ref op, src); for (int i = 0; i < 2; i++) d[i] = (uint)d[i] * (ulong)(uint)src[i]; break;
            case SseOp.Pmuldq: LoadSource(ref op, src); for (int i = 0; i < 2; i++) d[i] = (ulong)((long)(int)d[i] * (int)src[i]); break;
            case SseOp.Pmulld: LoadSource(ref op, src); for (int i = 0; i < 4; i++) ((int*)d)[i] = ((int*)d)[i] * ((int*)src)[i]; break;
            case SseOp.Pmaddwd:
                LoadSource(ref op, src);
                for (int i = 0; i < 4; i++)
                    ((int*)res)[i] = ((short*)d)[2 * i] * ((short*)src)[2 * i] + ((short*)d)[2 * i + 1] * ((short*)src)[2 * i + 1];
                Store(d, res);
                break;
            case SseOp.Pmulhrsw: LoadSource(ref op, src); for (int i = 0; i < 8; i++) ((short*)d)[i] = (short)((((((short*)d)[i] * ((short*)src)[i]) >> 14) + 1) >> 1); break;
            case SseOp.Pmaddubsw:
                LoadSource(ref op, src);
                for (int i = 0; i < 8; i++)
                    ((short*)res)[i] = (short)SatSigned(((byte*)d)[2 * i] * ((sbyte*)src)[2 * i] + ((byte*)d)[2 * i + 1] * ((sbyte*)src)[2 * i + 1], 2);
                Store(d, res);
                break;
            case SseOp.Pcmpeq: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, GetLane(d, size, i) == GetLane(src, size, i) ? ulong.MaxValue : 0); break;
            case SseOp.Pcmpgt: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, SLane(d, size, i) > SLane(src, size, i) ? ulong.MaxValue : 0); break;
            case SseOp.PshiftXmm:
            {
                ulong count;
                if (op.HasImm) count = (ulong)imm;
                else { LoadSource(ref op, src); count = src[0]; }
                PackedShift(d, size, sub >> 4, count);
                break;
            }
            case SseOp.Pslldq: ByteShift(d, imm, left: true); break;
            case SseOp.Psrldq: ByteShift(d, imm, left: false); break;
            case SseOp.Packsswb: LoadSource(ref op, src); Pack(d, src, res, 2, true); break;
            case SseOp.Packssdw: LoadSource(ref op, src); Pack(d, src, res, 4, true); break;
            case SseOp.Packuswb: LoadSource(ref op, src); Pack(d, src, res, 2, false); break;
            case SseOp.Packusdw: LoadSource(ref op, src); Pack(d, src, res, 4, false); break;
            case SseOp.Punpckl:
            case SseOp.Punpckh:
            {
                LoadSource(ref op, src);
                int n = 16 / size, from = s == SseOp.Punpckl ? 0 : n / 2;
                for (int i = 0; i < n / 2; i++)
                {
                    SetLane(res, size, 2 * i, GetLane(d, size, from + i));
                    SetLane(res, size, 2 * i + 1, GetLane(src, size, from + i));
                }
                Store(d, res);
                break;
            }
            case SseOp.Pmovmskb:
            {
                ulong* x = _xmm + 2 * op.Rm;
                uint mask = 0;
                for (int i = 0; i < 16; i++) mask |= (uint)(((byte*)x)[i] >> 7) << i;
                SetReg(op.Reg, op.Size2, mask);
                break;
            }
            case SseOp.Pshufd: LoadSource(ref op, src); for (int i = 0; i < 4; i++) ((uint*)res)[i] = ((uint*)src)[(imm >> (2 * i)) & 3]; Store(d, res); break;
            case SseOp.Pshuflw:
                LoadSource(ref op, src);
                for (int i = 0; i < 4; i++) ((ushort*)res)[i] = ((ushort*)src)[(imm >> (2 * i)) & 3];
                res[1] = src[1];
                Store(d, res);
                break;
            case SseOp.Pshufhw:
                LoadSource(ref op, src);
                for (int i = 0; i < 4; i++) ((ushort*)res)[4 + i] = ((ushort*)src)[4 + ((imm >> (2 * i)) & 3)];
                res[0] = src[0];
                Store(d, res);
                break;
            case SseOp.Pshufb:
                LoadSource(ref op, src);
                for (int i = 0; i < 16; i++)
                {
                    byte k = ((byte*)src)[i];
                    ((byte*)res)[i] = (k & 0x80) != 0 ? (byte)0 : ((byte*)d)[k & 15];
                }
                Store(d, res);
                break;
            case SseOp.Palignr:
                LoadSource(ref op, src);
                for (int i = 0; i < 16; i++)
                {
                    int at = i + imm;
                    ((byte*)res)[i] = at < 16 ? ((byte*)src)[at] : at < 32 ? ((byte*)d)[at - 16] : (byte)0;
                }
                Store(d, res);
                break;
            case SseOp.Pminu: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, Math.Min(GetLane(d, size, i), GetLane(src, size, i))); break;
            case SseOp.Pmaxu: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, Math.Max(GetLane(d, size, i), GetLane(src, size, i))); break;
            case SseOp.Pmins: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, (ulong)Math.Min(SLane(d, size, i), SLane(src, size, i))); break;
            case SseOp.Pmaxs: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, (ulong)Math.Max(SLane(d, size, i), SLane(src, size, i))); break;
            case SseOp.Pavg: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, (GetLane(d, size, i) + GetLane(src, size, i) + 1) >> 1); break;
            case SseOp.Psadbw:
                LoadSource(ref op, src);
                for (int h = 0; h < 2; h++)
                {
                    ulong sum = 0;
                    for (int i = 0; i < 8; i++) sum += (ulong)Math.Abs(((byte*)d)[8 * h + i] - ((byte*)src)[8 * h + i]);
                    res[h] = sum;
                }
                Store(d, res);
                break;
            case SseOp.Pabs: LoadSource(ref op, src); for (int i = 0; i < 16 / size; i++) SetLane(d, size, i, (ulong)Math.Abs(SLane(src, size, i))); break;
            case SseOp.Psign:
                LoadSource(ref op, src);
                for (int i = 0; i < 16 / size; i++)
                {
                    long k = SLane(src, size, i);
                    SetLane(d, size, i, k < 0 ? (ulong)-SLane(d, size, i) : k == 0 ? 0 : GetLane(d, size, i));
                }
                break;
            case SseOp.Phadd: case SseOp.Phsub: case SseOp.Phaddsw: case SseOp.Phsubsw:
            {
                LoadSource(ref op, src);
                if (size == 0) size = 2;
                int n = 16 / size;
                bool subtract = s is SseOp.Phsub or SseOp.Phsubsw, saturate = s is SseOp.Phaddsw or SseOp.Phsubsw;
                for (int i = 0; i < n; i++)
                {
                    ulong* from = i < n / 2 ? d : src;
                    int j = 2 * (i % (n / 2));
                    long a = SLane(from, size, j), b = SLane(from, size, j + 1);
                    long v = subtract ? a - b : a + b;
                    SetLane(res, size, i, saturate ? SatSigned(v, size) : (ulong)v);
                }
                Store(d, res);
                break;
            }
            case SseOp.Pextr:
            {
                ulong* x = _xmm + 2 * op.Rm;
                ulong v = GetLane(x, size, imm & (16 / size - 1));
                if (op.IsMem) Write(Ea(ref op), size, v);
                else SetReg(op.Reg, op.Size2, v);
                break;
            }
            case SseOp.Pinsr:
            {
                ulong v = op.IsMem ? Read(Ea(ref op), size) : GetReg(op.Rm, op.Size2);
                SetLane(d, size, imm & (16 / size - 1), v);
                break;
            }
            case SseOp.Pmovsx:
            case SseOp.Pmovzx:
            {
                LoadSource(ref op, src);
                int from = sub & 0xF, to = sub >> 4;
                for (int i = 0; i < 16 / to; i++)
                    SetLane(res, to, i, s == SseOp.Pmovsx ? (ulong)SLane(src, from, i) : GetLane(src, from, i));
                Store(d, res);
                break;
            }
            case SseOp.Ptest:
                LoadSource(ref op, src);
                SetFlagBits(ArithFlags, ((d[0] & src[0]) == 0 && (d[1] & src[1]) == 0 ? ZF : 0)
                    | ((~d[0] & src[0]) == 0 && (~d[1] & src[1]) == 0 ? CF : 0));
                break;
            case SseOp.Pblendw: LoadSource(ref op, src); for (int i = 0; i < 8; i++) if (((imm >> i) & 1) != 0) ((ushort*)d)[i] = ((ushort*)src)[i]; break;
            case SseOp.Pblendvb:
                LoadSource(ref op, src);
                for (int i = 0; i < 16; i++) if ((((byte*)_xmm)[i] & 0x80) != 0) ((byte*)d)[i] = ((byte*)src)[i];
                break;
            case SseOp.Phminposuw:
            {
                LoadSource(ref op, src);
                int at = 0;
                for (int i = 1; i < 8; i++) if (((ushort*)src)[i] < ((ushort*)src)[at]) at = i;
                d[0] = ((ushort*)src)[at] | ((ulong)at << 16);
                d[1] = 0;
                break;
            }
            case SseOp.Logic:
                LoadSource(ref op, src);
                for (int i = 0; i < 2; i++) d[i] = sub switch { 0 => d[i] & src[i], 1 => ~d[i] & src[i], _ => d[i] | src[i] };
                break;
            case SseOp.Crc32:
            {
                ulong v = op.IsMem ? Read(Ea(ref op), op.Size) : GetReg(op.Rm, op.Size);
                uint crc = (uint)GetReg(op.Reg, 4);
                for (int i = 0; i < op.Size; i++) crc = Crc32C(crc, (byte)(v >> (8 * i)));
                SetReg(op.Reg, 8, crc);
                break;
            }
            case SseOp.Mpsadbw:
            {
                LoadSource(ref op, src);
                int from = (imm & 3) * 4, at = ((imm >> 2) & 1) * 4;
                for (int i = 0; i < 8; i++)
                {
                    int sum = 0;
                    for (int j = 0; j < 4; j++) sum += Math.Abs(((byte*)d)[at + i + j] - ((byte*)src)[from + j]);
                    ((ushort*)res)[i] = (ushort)sum;
                }
                Store(d, res);
                break;
            }
            case SseOp.Movntdqa: LoadSource(ref op, src); Store(d, src); break;
            case SseOp.PcmpStr: LoadSource(ref op, src, unaligned: true); StringCompare(d, src, sub, imm, res); break;
            default:
                throw new GuestFault(VcpuExitReason.Unimplemented, _instrRip, $"unimplemented SSE operation {s} at 0x{_instrRip:x}");
        }
    }

    /// <summary>pcmpestri/pcmpestrm/pcmpistri/pcmpistrm (SDM vol. 2, 4.1): imm8 picks the element
    /// format (bits 0-1), the aggregation (2-3: equal any, ranges, equal each, equal ordered), the
    /// polarity (4-5) and the output (6: most significant index, or a byte/word mask).</summary>
    private void StringCompare(ulong* a, ulong* b, int sub, int imm, ulong* res)
    {
        bool words = (imm & 1) != 0, signed = (imm & 2) != 0;
        int n = words ? 8 : 16, size = words ? 2 : 1, agg = (imm >> 2) & 3;
        int la, lb;
        if ((sub & 1) != 0)
        {
            la = ExplicitLength(0, n, (sub & 4) != 0);
            lb = ExplicitLength(2, n, (sub & 4) != 0);
        }
        else
        {
            la = ImplicitLength(a, size, n);
            lb = ImplicitLength(b, size, n);
        }
        long E(ulong* v, int i) => signed ? SLane(v, size, i) : (long)GetLane(v, size, i);
        int r1 = 0;
        for (int j = 0; j < n; j++)
        {
            bool bit = false;
            switch (agg)
            {
                case 0:
                    for (int i = 0; i < la && j < lb && !bit; i++) bit = E(a, i) == E(b, j);
                    break;
                case 1:
                    for (int i = 0; i + 1 < la && j < lb && !bit; i += 2) bit = E(a, i) <= E(b, j) && E(b, j) <= E(a, i + 1);
                    break;
                case 2:
                    bit = j >= la && j >= lb || (j < la && j < lb && E(a, j) == E(b, j));
                    break;
                default:
                    bit = true;
                    for (int k = 0; k < n - j && bit; k++)
                    {
                        if (k >= la) break;
                        bit = j + k < lb && E(a, k) == E(b, j + k);
                    }
                    break;
            }
            if (bit) r1 |= 1 << j;
        }
        int all = (1 << n) - 1, validB = (1 << lb) - 1;
        int r2 = ((imm >> 4) & 3) switch { 1 => r1 ^ all, 3 => r1 ^ validB, _ => r1 };
        if ((sub & 2) == 0)
            SetReg(1, 4, r2 == 0 ? (ulong)n : (ulong)((imm & 0x40) != 0 ? 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)r2) : System.Numerics.BitOperations.TrailingZeroCount(r2)));
        else
        {
            if ((imm & 0x40) == 0) { res[0] = (uint)r2; res[1] = 0; }
            else for (int i = 0; i < n; i++) SetLane(res, size, i, ((r2 >> i) & 1) != 0 ? ulong.MaxValue : 0);
            Store(_xmm, res);
        }
        SetFlagBits(ArithFlags, (r2 != 0 ? CF : 0) | (lb < n ? ZF : 0) | (la < n ? SF : 0) | ((r2 & 1) != 0 ? OF : 0));
    }

    /// <summary>The length in rax or rdx (REX.W) or eax or edx: its absolute value, at most n.</summary>
    private int ExplicitLength(int reg, int n, bool wide)
    {
        long v = wide ? (long)_r[reg] : (int)_r[reg];
        return (int)Math.Min(Math.Abs(Math.Max(v, -n - 1L)), n);
    }

    private static int ImplicitLength(ulong* v, int size, int n)
    {
        for (int i = 0; i < n; i++) if (GetLane(v, size, i) == 0) return i;
        return n;
    }

    /// <summary>The source operand (operand 1) into src: an XMM register, or memory of op.Size bytes
    /// zero-extended (16-byte operands must be aligned unless <paramref name="unaligned"/>).</summary>
    private void LoadSource(ref Op op, ulong* src, bool unaligned = false)
    {
        if (!op.IsMem)
        {
            src[0] = _xmm[2 * op.Rm];
            src[1] = _xmm[2 * op.Rm + 1];
            return;
        }
        ulong ea = Ea(ref op);
        switch (op.Size)
        {
            case 16:
                if (!unaligned && (ea & 15) != 0)
                    throw new GuestFault(VcpuExitReason.Fault, _instrRip, $"#GP: misaligned 16-byte access at 0x{ea:x}");
                src[0] = Read(ea, 8);
                src[1] = Read(ea + 8, 8);
                break;
            case 8: src[0] = Read(ea, 8); src[1] = 0; break;
            default: src[0] = Read(ea, op.Size); src[1] = 0; break;
        }
    }

    private static void Store(ulong* d, ulong* res)
    {
        d[0] = res[0];
        d[1] = res[1];
    }

    private static ulong GetLane(ulong* v, int size, int i) => size switch
    {
        1 => ((byte*)v)[i], 2 => ((ushort*)v)[i], 4 => ((uint*)v)[i], _ => v[i],
    };

    private static long SLane(ulong* v, int size, int i) => size switch
    {
        1 => ((sbyte*)v)[i], 2 => ((short*)v)[i], 4 => ((int*)v)[i], _ => (long)v[i],
    };

    private static void SetLane(ulong* v, int size, int i, ulong x)
    {
        switch (size)
        {
            case 1: ((byte*)v)[i] = (byte)x; break;
            case 2: ((ushort*)v)[i] = (ushort)x; break;
            case 4: ((uint*)v)[i] = (uint)x; break;
            default: v[i] = x; break;
        }
    }

    private static ulong SatSigned(long v, int size)
    {
        long max = (1L << (size * 8 - 1)) - 1;
        return (ulong)Math.Clamp(v, -max - 1, max);
    }

    private static ulong SatUnsigned(long v, int size) => (ulong)Math.Clamp(v, 0, (1L << (size * 8)) - 1);

    /// <summary>psll/psrl/psra: a count beyond the lane width clears the lane (fills it with the sign for psra).</summary>
    private static void PackedShift(ulong* d, int size, int kind, ulong count)
    {
        int bits = size * 8;
        for (int i = 0; i < 16 / size; i++)
        {
            ulong v = GetLane(d, size, i);
            ulong r = kind switch
            {
                0 => count >= (ulong)bits ? 0 : v << (int)count,
                1 => count >= (ulong)bits ? 0 : v >> (int)count,
                _ => (ulong)(SLane(d, size, i) >> (int)Math.Min(count, (ulong)bits - 1)),
            };
            SetLane(d, size, i, r);
        }
    }

    private static void ByteShift(ulong* d, int count, bool left)
    {
        UInt128 v = ((UInt128)d[1] << 64) | d[0];
        v = count > 15 ? 0 : left ? v << (8 * count) : v >> (8 * count);
        d[0] = (ulong)v;
        d[1] = (ulong)(v >> 64);
    }

    /// <summary>pack*: the lanes of d then of src, each narrowed to half its size with saturation.</summary>
    private static void Pack(ulong* d, ulong* src, ulong* res, int from, bool signed)
    {
        int n = 16 / from, to = from / 2;
        for (int i = 0; i < 2 * n; i++)
        {
            long v = SLane(i < n ? d : src, from, i % n);
            SetLane(res, to, i, signed ? SatSigned(v, to) : SatUnsigned(v, to));
        }
        Store(d, res);
    }

    /// <summary>One byte of CRC-32C (the Castagnoli polynomial, reflected), as crc32 computes it.</summary>
    private static uint Crc32C(uint crc, byte b)
    {
        crc ^= b;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (uint)-(int)(crc & 1));
        return crc;
    }
}
