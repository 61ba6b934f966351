using System.Reflection;
using System.Reflection.Emit;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;

namespace SmartOS.Virt;

/*
 * Block translation (Interpreter.cs): hot basic blocks become .NET code.
 *
 * The dispatch loop (Interpreter.Execute.cs) counts how often it reaches each decoded instruction
 * (Op.Heat). When one reaches BlockThreshold, the straight run of decoded, translatable
 * instructions that starts there is compiled with DynamicMethod and ILGenerator into one method
 * that works directly on the register file (_r), the lazy-flag fields and guest memory through
 * the software TLB; from then on the loop calls that method instead of dispatching the
 * instructions one by one. The method returns the rip to continue at and leaves _retired exact.
 *
 * Glossary
 *   block        a run of instructions on one code page, from a start offset; it ends after a
 *                jmp, call, ret or indirect branch, before an instruction the translator does not
 *                cover (which the interpreter then runs), before an instruction that is not decoded
 *                yet or crosses the page end, or at MaxBlockInstructions. A Jcc inside a block is a
 *                side exit; a branch back to the block's own start loops inside the method.
 *   pending      the flags of the last flag-writing instruction, kept in IL locals at compile time
 *   flags        (operands, result, kind) instead of the _fop/_fa/_fb/_fr/_fc fields; a Jcc or
 *                setcc/cmovcc after a cmp, sub, add, test or logic op reads them from the locals.
 *                They are stored into the fields (as the interpreter's SetFlags would have left
 *                them) before anything that can observe them: a slow memory path (which can fault
 *                or reach a device), a helper that reads flags, and every exit of the block.
 *
 * Rules
 *   1. Same results as the interpreter, instruction for instruction: registers, memory, flags,
 *      exceptions and the retired count. The loop enters a block only when all of its
 *      instructions fit before _end (the budget, a timer deadline, an interrupt shadow); a loop
 *      back to the start checks again. A memory access that leaves the fast TLB path goes through
 *      the interpreter's own ReadSlow/WriteSlow after publishing _instrRip and _retired for that
 *      instruction, so a #PF, an MMIO exit or a device's view of guest time is exactly the
 *      interpreter's; after each memory instruction the block leaves if _end dropped to 0
 *      (RequestBoundary: a device or an interrupt source wants the loop to stop).
 *   2. Self-modifying code: blocks are kept per physical code page with their byte range. A store
 *      that invalidates decoded instructions (InvalidateCode: code pages take the slow store path,
 *      rule 2 of Interpreter.Paging.cs) also drops every block whose bytes overlap it, and when a
 *      block is running it ends the loop after the storing instruction (_end = 0), so the next
 *      instruction is decoded afresh. Re-linking a physical page to another linear page (rule 1
 *      of Interpreter.Paging.cs) drops its blocks with its decoded ops.
 *   3. A block embeds linear addresses (branch targets, the next rip) and the TLB of the privilege
 *      level it runs at is read from _tlb on entry: no translated instruction changes CPL, CR3 or
 *      paging (those are system instructions, left to the interpreter).
 *   4. Translation is on unless SMARTOS_VIRT_TRANSLATE=0 (or VmConfig.TranslateBlocks = false);
 *      off, the loop is the plain interpreter. Both give the same bytes and counts (tests).
 * Covered: mov (all forms), add/or/adc/sbb/and/sub/xor/cmp/test, lea, movzx/movsx/movsxd, push/pop
 * of a register or an immediate, call/jmp (direct and indirect), ret, jcc, setcc, cmovcc, inc/dec/
 * neg/not, shl/shr/sar by an immediate, two- and three-operand imul, xchg, cbw..cdqe, cwd..cqo, nop.
 * Everything else ends a block and runs in the interpreter.
 */
public sealed unsafe partial class Interpreter
{
    /// <summary>Executions of an instruction before the block starting at it is translated.</summary>
    /// <remarks>Compiling a block costs about what interpreting a few hundred thousand instructions
    /// does; on the Linux boot 1000 beat both 64 (13,509 blocks compiled, slower than no translation)
    /// and 8000 (too little translated).</remarks>
    public const int BlockThreshold = 1000;
    private const int MaxBlockInstructions = 48;

    private delegate ulong BlockCode(Interpreter cpu, ulong* r, long retired);

    private sealed class Block(int start, int end, int count, BlockCode code)
    {
        public readonly int Start = start, End = end, Count = count;
        public readonly BlockCode Code = code;
    }

    private bool _translate = DefaultTranslate();
    private Block?[]?[]? _blocks;
    private List<Block>?[]? _blockLists;
    private bool _inBlock;
    /// <summary>The physical page of the ops FetchPage returned last.</summary>
    private ulong _fetchPhys;
    private readonly ulong[] _itlbPhys = new ulong[ItlbSize];

    /// <summary>Whether hot blocks are translated into .NET code (Interpreter.Blocks.cs). Set before
    /// the first Run; off, every instruction goes through the dispatch loop.</summary>
    public bool TranslateBlocks
    {
        get => _translate;
        set
        {
            _translate = value;
            if (!value) DropAllBlocks();
        }
    }

    /// <summary>Blocks translated so far.</summary>
    public long BlocksTranslated { get; private set; }

    /// <summary>Translated blocks dropped because their bytes were written or their page re-linked.</summary>
    public long BlocksInvalidated { get; private set; }

    /// <summary>Times the loop ran a translated block.</summary>
    public long BlockRuns { get; private set; }

    private static bool DefaultTranslate()
    {
        string? v = Environment.GetEnvironmentVariable("SMARTOS_VIRT_TRANSLATE");
        return v is not ("0" or "off" or "false" or "no");
    }

    private void DropAllBlocks()
    {
        if (_blocks == null) return;
        for (int p = 0; p < _blocks.Length; p++) DropPageBlocks((ulong)p);
    }

    private void DropPageBlocks(ulong page)
    {
        var list = _blockLists?[page];
        if (list == null || list.Count == 0) return;
        BlocksInvalidated += list.Count;
        var arr = _blocks![page]!;
        foreach (var b in list) arr[b.Start] = null;
        list.Clear();
        if (_inBlock) _end = 0;
    }

    /// <summary>Rule 2: drops the blocks of physical page <paramref name="page"/> whose bytes meet [lo, hi).</summary>
    private void DropBlocks(ulong page, int lo, int hi)
    {
        var list = _blockLists?[page];
        if (list == null || list.Count == 0) return;
        var arr = _blocks![page]!;
        var ops = _pages[page];
        for (int i = list.Count - 1; i >= 0; i--)
        {
            var b = list[i];
            if (b.Start >= hi || b.End <= lo) continue;
            arr[b.Start] = null;
            list.RemoveAt(i);
            BlocksInvalidated++;
            // The start may not have been re-decoded: let it heat up again.
            if (ops != null) ops[b.Start].Heat = 0;
            if (_inBlock) _end = 0;
        }
    }

    /// <summary>The loop's call of a block; a GuestFault leaves _inBlock set for Loop's handler.</summary>
    private ulong RunBlock(Block b, long retired)
    {
        BlockRuns++;
        _inBlock = true;
        ulong next = b.Code(this, _r, retired);
        _inBlock = false;
        return next;
    }

    /// <summary>Translates the block starting at <paramref name="rip"/> on the current code page;
    /// false when its first instruction is not covered (it stays with the interpreter).</summary>
    private bool CompileBlock(ulong rip, Op[] ops, ulong physPage)
    {
        int start = (int)(rip & 0xFFF);
        var offsets = new List<int>();
        int off = start;
        while (off < GuestMemory.PageSize && offsets.Count < MaxBlockInstructions)
        {
            ref Op op = ref ops[off];
            if (op.Kind == K.Undecoded || off + op.Len > GuestMemory.PageSize || !BlockEmitter.Covers(ref op)) break;
            offsets.Add(off);
            off += op.Len;
            if (BlockEmitter.EndsBlock(op.Kind)) break;
        }
        if (offsets.Count == 0) return false;
        var code = new BlockEmitter(rip & PageMask, ops, offsets).Emit();
        _blocks ??= new Block?[]?[_pages.Length];
        _blockLists ??= new List<Block>?[_pages.Length];
        var arr = _blocks[physPage] ??= new Block?[GuestMemory.PageSize];
        var list = _blockLists[physPage] ??= [];
        var block = new Block(start, off, offsets.Count, code);
        arr[start] = block;
        list.Add(block);
        BlocksTranslated++;
        return true;
    }

    // ---- helpers the translated code calls on its slow paths ----------------------------------

    private ulong BlockReadSlow(ulong a, int size, ulong rip, long retired)
    {
        _instrRip = rip;
        _retired = retired;
        return ReadSlow(a, size);
    }

    private void BlockWriteSlow(ulong a, int size, ulong v, ulong rip, long retired)
    {
        _instrRip = rip;
        _retired = retired;
        WriteSlow(a, size, v);
    }

    /// <summary>imul's low half and overflow (1 or 0) for sign-extended operands: the interpreter's
    /// two- and three-operand imul (Interpreter.Execute.cs, Imul2) and the blocks' IL both call it.</summary>
    private static ulong ImulLow(long a, long b, int s, out ulong overflow)
    {
        ulong lo;
        bool of;
        if (s == 8)
        {
            long hi = Math.BigMul(a, b, out long l);
            lo = (ulong)l;
            of = hi != (l >> 63);
        }
        else
        {
            long p = a * b;
            lo = (ulong)p & Mask(s);
            of = SignExtend(lo, s) != p;
        }
        overflow = of ? 1UL : 0;
        return lo;
    }

    /// <summary>Generates one block's IL (see the theory statement above).</summary>
    private sealed class BlockEmitter
    {
        private const BindingFlags Inst = BindingFlags.NonPublic | BindingFlags.Instance;
        private static readonly FieldInfo FFop = typeof(Interpreter).GetField(nameof(_fop), Inst)!;
        private static readonly FieldInfo FFsize = typeof(Interpreter).GetField(nameof(_fsize), Inst)!;
        private static readonly FieldInfo FFa = typeof(Interpreter).GetField(nameof(_fa), Inst)!;
        private static readonly FieldInfo FFb = typeof(Interpreter).GetField(nameof(_fb), Inst)!;
        private static readonly FieldInfo FFr = typeof(Interpreter).GetField(nameof(_fr), Inst)!;
        private static readonly FieldInfo FFc = typeof(Interpreter).GetField(nameof(_fc), Inst)!;
        private static readonly FieldInfo FEnd = typeof(Interpreter).GetField(nameof(_end), Inst)!;
        private static readonly FieldInfo FRetired = typeof(Interpreter).GetField(nameof(_retired), Inst)!;
        private static readonly FieldInfo FTlb = typeof(Interpreter).GetField(nameof(_tlb), Inst)!;
        private static readonly MethodInfo MReadSlow = typeof(Interpreter).GetMethod(nameof(BlockReadSlow), Inst)!;
        private static readonly MethodInfo MWriteSlow = typeof(Interpreter).GetMethod(nameof(BlockWriteSlow), Inst)!;
        private static readonly MethodInfo MCond = typeof(Interpreter).GetMethod(nameof(Cond), Inst)!;
        private static readonly MethodInfo MGetCF = typeof(Interpreter).GetMethod(nameof(GetCF), Inst)!;
        private static readonly MethodInfo MImul = typeof(Interpreter).GetMethod(nameof(ImulLow), BindingFlags.NonPublic | BindingFlags.Static)!;
        private static readonly int TlbEntrySize = sizeof(TlbEntry);
        private const int WriteTagOffset = 8, AddendOffset = 16;

        /// <summary>Flags of the last flag-writing instruction held in locals (null operand = 0).</summary>
        private sealed class Pending
        {
            public FlagKind Kind;
            public int Size;
            public LocalBuilder? A, B, R, C;
            public bool Stored;
        }

        private readonly ulong _pageBase;
        private readonly Op[] _ops;
        private readonly List<int> _offsets;
        private readonly DynamicMethod _method;
        private readonly ILGenerator _il;
        private LocalBuilder _tlb = null!, _base = null!, _entry = null!;
        private Label _top;
        private Pending? _p;
        // The instruction being emitted: its rip, the next rip and its 1-based index.
        private ulong _rip, _next;
        private int _k;

        public BlockEmitter(ulong pageBase, Op[] ops, List<int> offsets)
        {
            _pageBase = pageBase;
            _ops = ops;
            _offsets = offsets;
            _method = new DynamicMethod($"block_{pageBase + (ulong)offsets[0]:x}", typeof(ulong),
                [typeof(Interpreter), typeof(ulong*), typeof(long)], typeof(Interpreter), skipVisibility: true);
            _il = _method.GetILGenerator();
        }

        public static bool EndsBlock(K kind) => kind is K.JmpRel or K.JmpRm or K.CallRel or K.CallRm or K.Ret;

        public static bool Covers(ref Op op)
        {
            switch (op.Kind)
            {
                case K.MovRR: case K.MovRM: case K.MovMR: case K.MovRI: case K.MovMI:
                case K.AluRR: case K.AluRM: case K.AluRI: case K.AluMR: case K.AluMI:
                case K.AddRR: case K.OrRR: case K.AndRR: case K.SubRR: case K.XorRR: case K.CmpRR: case K.TestRR:
                case K.AddRI: case K.OrRI: case K.AndRI: case K.SubRI: case K.XorRI: case K.CmpRI: case K.TestRI:
                case K.Lea: case K.Movzx: case K.Movsx:
                case K.PushR: case K.PushI: case K.PopR:
                case K.CallRel: case K.CallRm: case K.Ret: case K.JmpRel: case K.JmpRm: case K.Jcc:
                case K.Setcc: case K.Cmov: case K.Imul2: case K.Xchg:
                case K.SignExtendAcc: case K.SignExtendIntoDx: case K.Nop:
                    return true;
                case K.Unary:
                    return true;
                case K.Shift:
                    return op.HasImm && op.Sub is 4 or 5 or 7;
                default:
                    return false;
            }
        }

        public BlockCode Emit()
        {
            var il = _il;
            _tlb = il.DeclareLocal(typeof(byte*));
            _base = il.DeclareLocal(typeof(long));
            _entry = il.DeclareLocal(typeof(byte*));
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldfld, FTlb);
            il.Emit(OpCodes.Stloc, _tlb);
            il.Emit(OpCodes.Ldarg_2);
            il.Emit(OpCodes.Stloc, _base);
            _top = il.DefineLabel();
            il.MarkLabel(_top);
            bool ended = false;
            for (int i = 0; i < _offsets.Count; i++)
            {
                ref Op op = ref _ops[_offsets[i]];
                _rip = _pageBase + (ulong)_offsets[i];
                _next = _rip + op.Len;
                _k = i + 1;
                ended = Instruction(ref op);
                if (!ended && op.IsMem && op.Kind != K.Lea) EndCheck();
            }
            if (!ended) Exit(() => Ldc(_next));
            return (BlockCode)_method.CreateDelegate(typeof(BlockCode));
        }

        private ulong StartRip => _pageBase + (ulong)_offsets[0];

        // ---- IL building blocks ---------------------------------------------------------------

        private void Ldc(ulong v) => _il.Emit(OpCodes.Ldc_I8, (long)v);
        private void Ldc(long v) => _il.Emit(OpCodes.Ldc_I8, v);
        private void Ld(LocalBuilder l) => _il.Emit(OpCodes.Ldloc, l);
        private void St(LocalBuilder l) => _il.Emit(OpCodes.Stloc, l);
        private LocalBuilder NewLocal() => _il.DeclareLocal(typeof(ulong));

        private LocalBuilder Tmp(Action push)
        {
            var l = NewLocal();
            push();
            St(l);
            return l;
        }

        private LocalBuilder Const(ulong v) => Tmp(() => Ldc(v));

        /// <summary>Pushes the address of _r[reg].</summary>
        private void RegAddr(int reg)
        {
            _il.Emit(OpCodes.Ldarg_1);
            if (reg != 0)
            {
                _il.Emit(OpCodes.Ldc_I4, reg * 8);
                _il.Emit(OpCodes.Add);
            }
        }

        private void LdR(int reg)
        {
            RegAddr(reg);
            _il.Emit(OpCodes.Ldind_I8);
        }

        /// <summary>GetReg: pushes register <paramref name="reg"/> of <paramref name="size"/> bytes, zero-extended.</summary>
        private void GetReg(int reg, int size)
        {
            if (reg >= 16)
            {
                LdR(reg - 16);
                _il.Emit(OpCodes.Ldc_I4_8);
                _il.Emit(OpCodes.Shr_Un);
                _il.Emit(OpCodes.Conv_U1);
                _il.Emit(OpCodes.Conv_U8);
                return;
            }
            LdR(reg);
            switch (size)
            {
                case 4: _il.Emit(OpCodes.Conv_U4); _il.Emit(OpCodes.Conv_U8); break;
                case 2: _il.Emit(OpCodes.Conv_U2); _il.Emit(OpCodes.Conv_U8); break;
                case 1: _il.Emit(OpCodes.Conv_U1); _il.Emit(OpCodes.Conv_U8); break;
            }
        }

        private LocalBuilder GetRegL(int reg, int size) => Tmp(() => GetReg(reg, size));

        /// <summary>SetReg: register <paramref name="reg"/> of <paramref name="size"/> bytes from local <paramref name="v"/>.</summary>
        private void SetReg(int reg, int size, LocalBuilder v)
        {
            var il = _il;
            if (reg >= 16)
            {
                RegAddr(reg - 16);
                LdR(reg - 16);
                Ldc(~0xFF00UL);
                il.Emit(OpCodes.And);
                Ld(v);
                Ldc(0xFFUL);
                il.Emit(OpCodes.And);
                il.Emit(OpCodes.Ldc_I4_8);
                il.Emit(OpCodes.Shl);
                il.Emit(OpCodes.Or);
                il.Emit(OpCodes.Stind_I8);
                return;
            }
            RegAddr(reg);
            if (size == 8) Ld(v);
            else if (size == 4)
            {
                Ld(v);
                il.Emit(OpCodes.Conv_U4);
                il.Emit(OpCodes.Conv_U8);
            }
            else
            {
                ulong m = size == 2 ? 0xFFFFUL : 0xFFUL;
                LdR(reg);
                Ldc(~m);
                il.Emit(OpCodes.And);
                Ld(v);
                Ldc(m);
                il.Emit(OpCodes.And);
                il.Emit(OpCodes.Or);
            }
            il.Emit(OpCodes.Stind_I8);
        }

        private void SetR64(int reg, Action push)
        {
            RegAddr(reg);
            push();
            _il.Emit(OpCodes.Stind_I8);
        }

        /// <summary>Ea: pushes the operand's linear address.</summary>
        private void Ea(ref Op op)
        {
            Ldc(op.Disp);
            if (op.Base != Op.NoReg) { LdR(op.Base); _il.Emit(OpCodes.Add); }
            if (op.Index != Op.NoReg)
            {
                LdR(op.Index);
                if (op.Scale != 0) { _il.Emit(OpCodes.Ldc_I4, (int)op.Scale); _il.Emit(OpCodes.Shl); }
                _il.Emit(OpCodes.Add);
            }
            if (op.Seg != 0) { LdR(op.Seg); _il.Emit(OpCodes.Add); }
        }

        private LocalBuilder EaL(ref Op op)
        {
            var l = NewLocal();
            Ea(ref op);
            St(l);
            return l;
        }

        /// <summary>_entry = the TLB entry for address local <paramref name="a"/>.</summary>
        private void FindEntry(LocalBuilder a)
        {
            var il = _il;
            Ld(a);
            il.Emit(OpCodes.Ldc_I4_S, (sbyte)12);
            il.Emit(OpCodes.Shr_Un);
            il.Emit(OpCodes.Conv_I4);
            il.Emit(OpCodes.Ldc_I4, TlbSize - 1);
            il.Emit(OpCodes.And);
            il.Emit(OpCodes.Ldc_I4, TlbEntrySize);
            il.Emit(OpCodes.Mul);
            il.Emit(OpCodes.Conv_I);
            Ld(_tlb);
            il.Emit(OpCodes.Add);
            St(_entry);
        }

        /// <summary>Read: a load of <paramref name="size"/> bytes at local <paramref name="a"/> into a new local.</summary>
        private LocalBuilder Load(LocalBuilder a, int size)
        {
            var il = _il;
            var v = NewLocal();
            Label slow = il.DefineLabel(), done = il.DefineLabel();
            HostAddress(a, size, tagOffset: 0, slow);
            switch (size)
            {
                case 1: il.Emit(OpCodes.Ldind_U1); il.Emit(OpCodes.Conv_U8); break;
                case 2: il.Emit(OpCodes.Ldind_U2); il.Emit(OpCodes.Conv_U8); break;
                case 4: il.Emit(OpCodes.Ldind_U4); il.Emit(OpCodes.Conv_U8); break;
                default: il.Emit(OpCodes.Ldind_I8); break;
            }
            St(v);
            il.Emit(OpCodes.Br, done);
            il.MarkLabel(slow);
            StoreFlags(mark: false);
            il.Emit(OpCodes.Ldarg_0);
            Ld(a);
            il.Emit(OpCodes.Ldc_I4, size);
            Ldc(_rip);
            Retired(_k);
            il.Emit(OpCodes.Call, MReadSlow);
            St(v);
            il.MarkLabel(done);
            return v;
        }

        /// <summary>The software TLB's fast path shared by loads and stores: finds the entry for local
        /// <paramref name="a"/>, branches to <paramref name="slow"/> unless the tag at
        /// <paramref name="tagOffset"/> (read or write) matches the page and the access stays inside it,
        /// and leaves the host address of the guest bytes on the stack.</summary>
        private void HostAddress(LocalBuilder a, int size, int tagOffset, Label slow)
        {
            var il = _il;
            FindEntry(a);
            Ld(_entry);
            if (tagOffset != 0)
            {
                il.Emit(OpCodes.Ldc_I4, tagOffset);
                il.Emit(OpCodes.Add);
            }
            il.Emit(OpCodes.Ldind_I8);
            Ld(a);
            Ldc(PageMask | (ulong)(size - 1));
            il.Emit(OpCodes.And);
            il.Emit(OpCodes.Bne_Un, slow);
            Ld(_entry);
            il.Emit(OpCodes.Ldc_I4, AddendOffset);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Ldind_I8);
            Ld(a);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Conv_U);
        }

        /// <summary>Write: a store of <paramref name="size"/> bytes of local <paramref name="v"/> at local <paramref name="a"/>.</summary>
        private void Store(LocalBuilder a, int size, LocalBuilder v)
        {
            var il = _il;
            Label slow = il.DefineLabel(), done = il.DefineLabel();
            HostAddress(a, size, WriteTagOffset, slow);
            Ld(v);
            switch (size)
            {
                case 1: il.Emit(OpCodes.Conv_U1); il.Emit(OpCodes.Stind_I1); break;
                case 2: il.Emit(OpCodes.Conv_U2); il.Emit(OpCodes.Stind_I2); break;
                case 4: il.Emit(OpCodes.Conv_U4); il.Emit(OpCodes.Stind_I4); break;
                default: il.Emit(OpCodes.Stind_I8); break;
            }
            il.Emit(OpCodes.Br, done);
            il.MarkLabel(slow);
            StoreFlags(mark: false);
            il.Emit(OpCodes.Ldarg_0);
            Ld(a);
            il.Emit(OpCodes.Ldc_I4, size);
            Ld(v);
            Ldc(_rip);
            Retired(_k);
            il.Emit(OpCodes.Call, MWriteSlow);
            il.MarkLabel(done);
        }

        /// <summary>Pushes base + k: the retired count once the k-th instruction of this pass is counted.</summary>
        private void Retired(int k)
        {
            Ld(_base);
            Ldc((long)k);
            _il.Emit(OpCodes.Add);
        }

        private LocalBuilder ReadRm(ref Op op, LocalBuilder? ea, int size)
            => op.IsMem ? Load(ea!, size) : GetRegL(op.Rm, size);

        private void WriteRm(ref Op op, LocalBuilder? ea, int size, LocalBuilder v)
        {
            if (op.IsMem) Store(ea!, size, v);
            else SetReg(op.Rm, size, v);
        }

        // ---- flags ------------------------------------------------------------------------------

        private void SetFlags(FlagKind kind, int size, LocalBuilder? a, LocalBuilder? b, LocalBuilder r, LocalBuilder? c = null)
            => _p = new Pending { Kind = kind, Size = size, A = a, B = b, R = r, C = c };

        /// <summary>Stores the pending flags into the fields; <paramref name="mark"/> on straight-line code only.</summary>
        private void StoreFlags(bool mark)
        {
            var p = _p;
            if (p == null || p.Stored) return;
            var il = _il;
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldc_I4, (int)p.Kind);
            il.Emit(OpCodes.Stfld, FFop);
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldc_I4, p.Size);
            il.Emit(OpCodes.Stfld, FFsize);
            StoreField(FFa, p.A);
            StoreField(FFb, p.B);
            StoreField(FFr, p.R);
            StoreField(FFc, p.C);
            if (mark) p.Stored = true;
        }

        private void StoreField(FieldInfo f, LocalBuilder? v)
        {
            _il.Emit(OpCodes.Ldarg_0);
            if (v == null) Ldc(0UL);
            else Ld(v);
            _il.Emit(OpCodes.Stfld, f);
        }

        /// <summary>Pushes a sign-extended copy of local <paramref name="v"/> of <paramref name="size"/> bytes.</summary>
        private void Signed(LocalBuilder v, int size)
        {
            Ld(v);
            switch (size)
            {
                case 4: _il.Emit(OpCodes.Conv_I4); _il.Emit(OpCodes.Conv_I8); break;
                case 2: _il.Emit(OpCodes.Conv_I2); _il.Emit(OpCodes.Conv_I8); break;
                case 1: _il.Emit(OpCodes.Conv_I1); _il.Emit(OpCodes.Conv_I8); break;
            }
        }

        private void Not() { _il.Emit(OpCodes.Ldc_I4_0); _il.Emit(OpCodes.Ceq); }

        private void IsZero(LocalBuilder v) { Ld(v); Ldc(0UL); _il.Emit(OpCodes.Ceq); }

        private void SignBit(LocalBuilder v, int size)
        {
            Ld(v);
            Ldc(1UL << (size * 8 - 1));
            _il.Emit(OpCodes.And);
            Ldc(0UL);
            _il.Emit(OpCodes.Cgt_Un);
        }

        /// <summary>Cond: pushes condition <paramref name="cc"/> (0 or 1), from the pending locals when
        /// their kind answers it directly (as Interpreter.Flags.cs's fast paths do), else through Cond.</summary>
        private void Cond(int cc)
        {
            var p = _p;
            var il = _il;
            if (p != null && p.C == null && p.A != null && p.B != null && p.Kind == FlagKind.Sub && cc is >= 2 and <= 7 or >= 12)
            {
                bool signed = cc >= 12;
                if (signed) { Signed(p.A, p.Size); Signed(p.B, p.Size); }
                else { Ld(p.A); Ld(p.B); }
                switch (cc)
                {
                    case 2: il.Emit(OpCodes.Clt_Un); break;
                    case 3: il.Emit(OpCodes.Clt_Un); Not(); break;
                    case 4: il.Emit(OpCodes.Ceq); break;
                    case 5: il.Emit(OpCodes.Ceq); Not(); break;
                    case 6: il.Emit(OpCodes.Cgt_Un); Not(); break;
                    case 7: il.Emit(OpCodes.Cgt_Un); break;
                    case 12: il.Emit(OpCodes.Clt); break;
                    case 13: il.Emit(OpCodes.Clt); Not(); break;
                    case 14: il.Emit(OpCodes.Cgt); Not(); break;
                    default: il.Emit(OpCodes.Cgt); break;
                }
                return;
            }
            if (p != null && p.Kind == FlagKind.Logic && cc is not (10 or 11))
            {
                switch (cc)
                {
                    case 0: case 2: il.Emit(OpCodes.Ldc_I4_0); break;
                    case 1: case 3: il.Emit(OpCodes.Ldc_I4_1); break;
                    case 4: case 6: IsZero(p.R!); break;
                    case 5: case 7: IsZero(p.R!); Not(); break;
                    case 8: case 12: SignBit(p.R!, p.Size); break;
                    case 9: case 13: SignBit(p.R!, p.Size); Not(); break;
                    case 14: Signed(p.R!, p.Size); Ldc(0L); il.Emit(OpCodes.Cgt); Not(); break;
                    default: Signed(p.R!, p.Size); Ldc(0L); il.Emit(OpCodes.Cgt); break;
                }
                return;
            }
            if (p != null && p.Kind is FlagKind.Add or FlagKind.Sub or FlagKind.Inc or FlagKind.Dec && cc is 4 or 5 or 8 or 9)
            {
                if (cc < 8) IsZero(p.R!);
                else SignBit(p.R!, p.Size);
                if ((cc & 1) != 0) Not();
                return;
            }
            StoreFlags(mark: true);
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldc_I4, cc);
            il.Emit(OpCodes.Call, MCond);
        }

        private LocalBuilder CarryIn()
        {
            StoreFlags(mark: true);
            var c = NewLocal();
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Call, MGetCF);
            _il.Emit(OpCodes.Conv_U8);
            St(c);
            return c;
        }

        // ---- exits --------------------------------------------------------------------------------

        /// <summary>Leaves the block after the current instruction with the rip <paramref name="pushRip"/> pushes.</summary>
        private void Exit(Action pushRip)
        {
            StoreFlags(mark: false);
            _il.Emit(OpCodes.Ldarg_0);
            Retired(_k);
            _il.Emit(OpCodes.Stfld, FRetired);
            pushRip();
            _il.Emit(OpCodes.Ret);
        }

        /// <summary>Rule 1: after a memory instruction, leave if the loop was asked to stop.</summary>
        private void EndCheck()
        {
            Label go = _il.DefineLabel();
            _il.Emit(OpCodes.Ldarg_0);
            _il.Emit(OpCodes.Ldfld, FEnd);
            _il.Emit(OpCodes.Brtrue, go);
            ulong next = _next;
            Exit(() => Ldc(next));
            _il.MarkLabel(go);
        }

        /// <summary>A branch to <paramref name="target"/>: back to the top when it is the block's start
        /// and the whole block fits before _end again, else out.</summary>
        private void Branch(ulong target)
        {
            if (target != StartRip)
            {
                Exit(() => Ldc(target));
                return;
            }
            var il = _il;
            StoreFlags(mark: false);
            Ld(_base);
            Ldc((long)_k);
            il.Emit(OpCodes.Add);
            St(_base);
            Label stay = il.DefineLabel();
            Ld(_base);
            Ldc((long)_offsets.Count);
            il.Emit(OpCodes.Add);
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Ldfld, FEnd);
            il.Emit(OpCodes.Ble, stay);
            il.Emit(OpCodes.Ldarg_0);
            Ld(_base);
            il.Emit(OpCodes.Stfld, FRetired);
            Ldc(target);
            il.Emit(OpCodes.Ret);
            il.MarkLabel(stay);
            il.Emit(OpCodes.Br, _top);
        }

        // ---- instructions -------------------------------------------------------------------------

        /// <summary>Emits one instruction; true when it ended the block (all its paths exit).</summary>
        private bool Instruction(ref Op op)
        {
            var il = _il;
            int s = op.Size;
            switch (op.Kind)
            {
                case K.MovRR:
                    if (s == 8) { int rm = op.Rm; SetR64(op.Reg, () => LdR(rm)); }
                    else SetReg(op.Reg, s, GetRegL(op.Rm, s));
                    return false;
                case K.MovRM: { var a = EaL(ref op); SetReg(op.Reg, s, Load(a, s)); return false; }
                case K.MovMR: { var a = EaL(ref op); Store(a, s, GetRegL(op.Reg, s)); return false; }
                case K.MovRI: SetReg(op.Reg, s, Const((ulong)op.Imm)); return false;
                case K.MovMI: { var a = EaL(ref op); Store(a, s, Const((ulong)op.Imm)); return false; }
                case K.AluRR: case K.AddRR: case K.OrRR: case K.AndRR: case K.SubRR: case K.XorRR: case K.CmpRR: case K.TestRR:
                {
                    var a = GetRegL(op.Reg, s);
                    var b = GetRegL(op.Rm, s);
                    var r = Alu(op.Sub, s, a, b);
                    if (op.Sub < 7) SetReg(op.Reg, s, r);
                    return false;
                }
                case K.AluRI: case K.AddRI: case K.OrRI: case K.AndRI: case K.SubRI: case K.XorRI: case K.CmpRI: case K.TestRI:
                {
                    var a = GetRegL(op.Reg, s);
                    var r = Alu(op.Sub, s, a, Const((ulong)op.Imm & Mask(s)));
                    if (op.Sub < 7) SetReg(op.Reg, s, r);
                    return false;
                }
                case K.AluRM:
                {
                    var ea = EaL(ref op);
                    var a = GetRegL(op.Reg, s);
                    var r = Alu(op.Sub, s, a, Load(ea, s));
                    if (op.Sub < 7) SetReg(op.Reg, s, r);
                    return false;
                }
                case K.AluMR: case K.AluMI:
                {
                    var ea = EaL(ref op);
                    var a = Load(ea, s);
                    var b = op.Kind == K.AluMR ? GetRegL(op.Reg, s) : Const((ulong)op.Imm & Mask(s));
                    var r = Alu(op.Sub, s, a, b);
                    if (op.Sub < 7) Store(ea, s, r);
                    return false;
                }
                case K.Lea: SetReg(op.Reg, s, EaL(ref op)); return false;
                case K.Movzx: case K.Movsx:
                {
                    var ea = op.IsMem ? EaL(ref op) : null;
                    var v = ReadRm(ref op, ea, op.Size2);
                    if (op.Kind == K.Movsx && op.Size2 < 8)
                    {
                        var w = NewLocal();
                        Signed(v, op.Size2);
                        St(w);
                        v = w;
                    }
                    SetReg(op.Reg, s, v);
                    return false;
                }
                case K.PushR: Push(GetRegL(op.Reg, 8)); return false;
                case K.PushI: Push(Const((ulong)op.Imm)); return false;
                case K.PopR: SetReg(op.Reg, 8, Pop(0)); return false;
                case K.CallRel:
                {
                    Push(Const(_next));
                    ulong target = (ulong)op.Imm;
                    Branch(target);
                    return true;
                }
                case K.CallRm:
                {
                    var target = op.IsMem ? Load(EaL(ref op), 8) : GetRegL(op.Rm, 8);
                    Push(Const(_next));
                    Exit(() => Ld(target));
                    return true;
                }
                case K.Ret:
                {
                    var target = Pop(op.Imm);
                    Exit(() => Ld(target));
                    return true;
                }
                case K.JmpRel: Branch((ulong)op.Imm); return true;
                case K.JmpRm:
                {
                    var target = op.IsMem ? Load(EaL(ref op), 8) : GetRegL(op.Rm, 8);
                    Exit(() => Ld(target));
                    return true;
                }
                case K.Jcc:
                {
                    Label fall = il.DefineLabel();
                    Cond(op.Sub);
                    il.Emit(OpCodes.Brfalse, fall);
                    Branch((ulong)op.Imm);
                    il.MarkLabel(fall);
                    return false;
                }
                case K.Setcc:
                {
                    var ea = op.IsMem ? EaL(ref op) : null;
                    var v = NewLocal();
                    Cond(op.Sub);
                    il.Emit(OpCodes.Conv_U8);
                    St(v);
                    WriteRm(ref op, ea, 1, v);
                    return false;
                }
                case K.Cmov:
                {
                    var v = op.IsMem ? Load(EaL(ref op), s) : GetRegL(op.Rm, s);
                    var res = NewLocal();
                    Label keep = il.DefineLabel(), done = il.DefineLabel();
                    Cond(op.Sub);
                    il.Emit(OpCodes.Brfalse, keep);
                    Ld(v);
                    St(res);
                    il.Emit(OpCodes.Br, done);
                    il.MarkLabel(keep);
                    GetReg(op.Reg, s);
                    St(res);
                    il.MarkLabel(done);
                    SetReg(op.Reg, s, res);
                    return false;
                }
                case K.Unary:
                {
                    var ea = op.IsMem ? EaL(ref op) : null;
                    var a = ReadRm(ref op, ea, s);
                    ulong m = Mask(s);
                    LocalBuilder r;
                    switch (op.Sub)
                    {
                        case 0:
                        case 1:
                        {
                            var cf = CarryIn();
                            var addOrSub = op.Sub == 0 ? OpCodes.Add : OpCodes.Sub;
                            r = Tmp(() => { Ld(a); Ldc(1UL); il.Emit(addOrSub); Ldc(m); il.Emit(OpCodes.And); });
                            SetFlags(op.Sub == 0 ? FlagKind.Inc : FlagKind.Dec, s, a, Const(1), r, cf);
                            break;
                        }
                        case 2:
                            r = Tmp(() => { Ldc(0UL); Ld(a); il.Emit(OpCodes.Sub); Ldc(m); il.Emit(OpCodes.And); });
                            SetFlags(FlagKind.Sub, s, null, a, r);
                            break;
                        default:
                            r = Tmp(() => { Ld(a); il.Emit(OpCodes.Not); Ldc(m); il.Emit(OpCodes.And); });
                            break;
                    }
                    WriteRm(ref op, ea, s, r);
                    return false;
                }
                case K.Shift:
                {
                    int bits = s * 8;
                    int count = (int)((ulong)op.Imm & (s == 8 ? 63UL : 31UL));
                    var ea = op.IsMem ? EaL(ref op) : null;
                    if (count == 0)
                    {
                        if (!op.IsMem && s == 4) SetReg(op.Rm, 4, GetRegL(op.Rm, 4));
                        return false;
                    }
                    var a = ReadRm(ref op, ea, s);
                    ulong m = Mask(s);
                    LocalBuilder r;
                    switch (op.Sub)
                    {
                        case 4:
                            r = count >= bits ? Const(0) : Tmp(() => { Ld(a); il.Emit(OpCodes.Ldc_I4, count); il.Emit(OpCodes.Shl); Ldc(m); il.Emit(OpCodes.And); });
                            SetFlags(FlagKind.Shl, s, a, Const((ulong)count), r);
                            break;
                        case 5:
                            r = count >= bits ? Const(0) : Tmp(() => { Ld(a); il.Emit(OpCodes.Ldc_I4, count); il.Emit(OpCodes.Shr_Un); });
                            SetFlags(FlagKind.Shr, s, a, Const((ulong)count), r);
                            break;
                        default:
                            r = Tmp(() => { Signed(a, s); il.Emit(OpCodes.Ldc_I4, Math.Min(count, 63)); il.Emit(OpCodes.Shr); Ldc(m); il.Emit(OpCodes.And); });
                            SetFlags(FlagKind.Sar, s, a, Const((ulong)Math.Min(count, bits)), r);
                            break;
                    }
                    WriteRm(ref op, ea, s, r);
                    return false;
                }
                case K.Imul2:
                {
                    var src = op.IsMem ? Load(EaL(ref op), s) : GetRegL(op.Rm, s);
                    var of = NewLocal();
                    var lo = NewLocal();
                    if (op.HasImm) { Signed(src, s); Ldc(SignExtend((ulong)op.Imm, s)); }
                    else
                    {
                        var d = GetRegL(op.Reg, s);
                        Signed(d, s);
                        Signed(src, s);
                    }
                    il.Emit(OpCodes.Ldc_I4, s);
                    il.Emit(OpCodes.Ldloca, of);
                    il.Emit(OpCodes.Call, MImul);
                    St(lo);
                    SetReg(op.Reg, s, lo);
                    SetFlags(FlagKind.Mul, s, null, null, lo, of);
                    return false;
                }
                case K.Xchg:
                {
                    var ea = op.IsMem ? EaL(ref op) : null;
                    var a = ReadRm(ref op, ea, s);
                    var b = GetRegL(op.Reg, s);
                    WriteRm(ref op, ea, s, b);
                    SetReg(op.Reg, s, a);
                    return false;
                }
                case K.SignExtendAcc:
                {
                    var r0 = Tmp(() => LdR(0));
                    var v = NewLocal();
                    Signed(r0, s / 2);
                    St(v);
                    SetReg(0, s, v);
                    return false;
                }
                case K.SignExtendIntoDx:
                {
                    var r0 = Tmp(() => LdR(0));
                    var v = NewLocal();
                    Signed(r0, s);
                    il.Emit(OpCodes.Ldc_I4, 63);
                    il.Emit(OpCodes.Shr);
                    St(v);
                    SetReg(2, s, v);
                    return false;
                }
                case K.Nop:
                    return false;
                default:
                    throw new InvalidOperationException($"block translation does not cover {op.Kind}");
            }
        }

        /// <summary>Alu (Interpreter.Execute.cs): the result of ALU operation <paramref name="sub"/> and its pending flags.</summary>
        private LocalBuilder Alu(int sub, int size, LocalBuilder a, LocalBuilder b)
        {
            var il = _il;
            ulong m = Mask(size);
            // b arrives masked (a register read or a masked immediate); a memory load is its size.
            switch (sub)
            {
                case 0:
                {
                    var r = Tmp(() => { Ld(a); Ld(b); il.Emit(OpCodes.Add); Ldc(m); il.Emit(OpCodes.And); });
                    SetFlags(FlagKind.Add, size, a, b, r);
                    return r;
                }
                case 2:
                case 3:
                {
                    var c = CarryIn();
                    var r = Tmp(() =>
                    {
                        Ld(a); Ld(b); il.Emit(sub == 2 ? OpCodes.Add : OpCodes.Sub);
                        Ld(c); il.Emit(sub == 2 ? OpCodes.Add : OpCodes.Sub);
                        Ldc(m); il.Emit(OpCodes.And);
                    });
                    SetFlags(sub == 2 ? FlagKind.Add : FlagKind.Sub, size, a, b, r, c);
                    return r;
                }
                case 1: case 4: case 6: case 8:
                {
                    var r = Tmp(() => { Ld(a); Ld(b); il.Emit(sub == 1 ? OpCodes.Or : sub == 6 ? OpCodes.Xor : OpCodes.And); });
                    SetFlags(FlagKind.Logic, size, null, null, r);
                    return r;
                }
                default:
                {
                    var r = Tmp(() => { Ld(a); Ld(b); il.Emit(OpCodes.Sub); Ldc(m); il.Emit(OpCodes.And); });
                    SetFlags(FlagKind.Sub, size, a, b, r);
                    return r;
                }
            }
        }

        private void Push(LocalBuilder v)
        {
            var sp = Tmp(() => { LdR(4); Ldc(8UL); _il.Emit(OpCodes.Sub); });
            Store(sp, 8, v);
            SetReg(4, 8, sp);
        }

        /// <summary>Pop, then rsp += <paramref name="extra"/> (ret imm16).</summary>
        private LocalBuilder Pop(long extra)
        {
            var sp = Tmp(() => LdR(4));
            var v = Load(sp, 8);
            SetR64(4, () => { Ld(sp); Ldc(8L + extra); _il.Emit(OpCodes.Add); });
            return v;
        }
    }
}
