using SmartOS.Virt.Internal;

namespace SmartOS.Virt;

// String instructions: movs, stos, lods, cmps, scas with rep/repe/repne (Interpreter.cs). A rep
// instruction retires as one instruction, as on hardware; forward rep movs and rep stos over RAM
// are done as one block copy or fill.
public sealed unsafe partial class Interpreter
{
    private void StringOp(ref Op op)
    {
        ulong* r = _r;
        int s = op.Size;
        bool down = (_rflags & DF) != 0;
        ulong step = down ? (ulong)(-(long)s) : (ulong)s;
        if (op.Size2 == 0)
        {
            StringStep(op.Sub, s, step);
            return;
        }
        ulong count = r[1];
        if (count == 0) return;
        if (!down && (op.Sub == 0 || op.Sub == 1) && count <= _memSize / (ulong)s && TryBlock(op.Sub, s, count))
            return;
        bool cmp = op.Sub >= 3;
        while (count != 0)
        {
            StringStep(op.Sub, s, step);
            count--;
            r[1] = count;
            if (cmp)
            {
                bool zf = Cond(4);
                if (op.Size2 == 1 ? !zf : zf) break;
            }
        }
    }

    private void StringStep(int sub, int s, ulong step)
    {
        ulong* r = _r;
        switch (sub)
        {
            case 0:
                Write(r[7], s, Read(r[6], s));
                r[6] += step;
                r[7] += step;
                break;
            case 1:
                Write(r[7], s, r[0]);
                r[7] += step;
                break;
            case 2:
                SetReg(0, s, Read(r[6], s));
                r[6] += step;
                break;
            case 3:
                Alu(7, s, Read(r[6], s), Read(r[7], s));
                r[6] += step;
                r[7] += step;
                break;
            default:
                Alu(7, s, GetReg(0, s), Read(r[7], s));
                r[7] += step;
                break;
        }
    }

    /// <summary>Forward rep movs/stos over RAM as one operation; false to fall back to the element loop.</summary>
    private bool TryBlock(int sub, int s, ulong count)
    {
        ulong* r = _r;
        ulong n = count * (ulong)s;
        ulong dst = r[7];
        if (!_memory.Contains(dst, n)) return false;
        if (sub == 0)
        {
            ulong src = r[6];
            if (!_memory.Contains(src, n)) return false;
            // Overlap with the destination ahead of the source repeats a pattern element by element.
            if (dst > src && dst < src + n) return false;
            Buffer.MemoryCopy(_mem + src, _mem + dst, (long)n, (long)n);
            r[6] = src + n;
        }
        else
        {
            ulong v = r[0];
            if (s == 1) System.Runtime.InteropServices.NativeMemory.Fill(_mem + dst, (nuint)n, (byte)v);
            else
                for (ulong i = 0; i < n; i += (ulong)s)
                    switch (s)
                    {
                        case 2: *(ushort*)(_mem + dst + i) = (ushort)v; break;
                        case 4: *(uint*)(_mem + dst + i) = (uint)v; break;
                        default: *(ulong*)(_mem + dst + i) = v; break;
                    }
        }
        r[7] = dst + n;
        r[1] = 0;
        OnHostWrite(dst, n);
        return true;
    }
}
