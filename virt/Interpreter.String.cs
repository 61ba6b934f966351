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

    /// <summary>Forward rep movs/stos, a page at a time: each chunk lies within one page of the
    /// destination (and of the source), is translated once and done as one block copy or fill;
    /// an element that straddles two pages, or a page that is not RAM, goes through the element
    /// path. rcx, rsi and rdi are brought up to date after each chunk, so a page fault part-way
    /// leaves the instruction ready to resume, as on hardware. Always true (kept for the caller's form).</summary>
    private bool TryBlock(int sub, int s, ulong count)
    {
        ulong* r = _r;
        while (count != 0)
        {
            ulong dst = r[7], src = r[6];
            ulong room = 0x1000 - (dst & 0xFFF);
            if (sub == 0) room = Math.Min(room, 0x1000 - (src & 0xFFF));
            ulong elems = Math.Min(count, room / (ulong)s);
            ulong physDst = 0;
            byte* pd = elems == 0 ? null : ChunkPointer(dst, write: true, out physDst);
            byte* ps = sub == 0 && pd != null ? ChunkPointer(src, write: false, out _) : null;
            ulong n = elems * (ulong)s;
            // Overlap with the destination ahead of the source repeats a pattern element by element.
            bool overlap = sub == 0 && ps != null && pd > ps && pd < ps + n;
            if (pd == null || (sub == 0 && ps == null) || overlap)
            {
                ulong k = Math.Max(1, elems);
                for (ulong i = 0; i < k; i++)
                {
                    StringStep(sub, s, (ulong)s);
                    r[1] = --count;
                }
                continue;
            }
            if (sub == 0)
            {
                Buffer.MemoryCopy(ps, pd, (long)n, (long)n);
                r[6] = src + n;
            }
            else
            {
                ulong v = r[0];
                if (s == 1) System.Runtime.InteropServices.NativeMemory.Fill(pd, (nuint)n, (byte)v);
                else
                    for (ulong i = 0; i < n; i += (ulong)s)
                        switch (s)
                        {
                            case 2: *(ushort*)(pd + i) = (ushort)v; break;
                            case 4: *(uint*)(pd + i) = (uint)v; break;
                            default: *(ulong*)(pd + i) = v; break;
                        }
            }
            r[7] = dst + n;
            count -= elems;
            r[1] = count;
            OnHostWrite(physDst, n);
        }
        return true;
    }

    /// <summary>The host address of linear <paramref name="a"/> when its page is RAM (translated,
    /// and checked for the access), else null.</summary>
    private byte* ChunkPointer(ulong a, bool write, out ulong phys)
    {
        TlbEntry* e = Translate(a, write, false);
        phys = e->Phys + (a & 0xFFF);
        return (e->Perm & PermRam) != 0 ? (byte*)(e->Addend + a) : null;
    }
}
