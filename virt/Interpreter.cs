using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Iced.Intel;
using SmartOS.Virt.Internal;

namespace SmartOS.Virt;

/// <summary>
/// The x86-64 interpreter backend (Vmm.cs, "interpreter"). Executes 64-bit long-mode code as gcc
/// emits it for freestanding C.
///
/// Decode cache: every RAM page that has been executed from holds an array of 4096 <see cref="Op"/>
/// slots, one per byte offset; a slot is decoded by Iced the first time control reaches it and is
/// dispatched from the cached form afterwards. A store to a page marked as code clears the slots
/// whose instruction could overlap the stored bytes (up to 14 bytes before them: an instruction is
/// at most 15 bytes), so self-modifying code and data sharing a page with code both stay correct
/// while unrelated stores to the page cost a few slot clears.
///
/// Block translation (Interpreter.Blocks.cs): an instruction the loop has reached BlockThreshold
/// times starts a block, the run of covered instructions from there, compiled into a .NET method
/// (DynamicMethod) that the loop calls instead of dispatching them; the same registers, memory,
/// flags, faults and retired count as dispatching, and dropped with the decode cache's slots when
/// its bytes are written. SMARTOS_VIRT_TRANSLATE=0 turns it off.
///
/// Flags are lazy: arithmetic records its operands and result and the flags are computed when
/// something reads them (Jcc, setcc, cmovcc, pushf, adc); the compare-and-branch pair reads its
/// answer straight from the recorded operands.
///
/// Memory: every load, store and fetch names a linear address, translated through a software TLB
/// (Interpreter.Paging.cs): the common case of Read/Write is one compare of the TLB entry's tag and
/// a load through its host pointer; a miss walks the page tables (or, with CR0.PG clear, maps
/// linear = physical). The decode cache is keyed by physical page. System state (control
/// registers, MSRs, descriptor tables, rings, syscall, iretq) is Interpreter.System.cs; exceptions
/// go through the guest's IDT once it has loaded one, and maskable interrupts come from
/// Vcpu.Interrupts between instructions (Interpreter.System.Exceptions.cs). A guest without an IDT
/// (the flat boot protocol's) still stops with a Fault exit naming the exception.
///
/// Implemented: the integer instructions gcc emits at -O0..-O3 and -Os (ALU, shifts and rotates,
/// shld/shrd, mul/imul/div/idiv, bt*, bsf/bsr/tzcnt/lzcnt/popcnt, setcc/cmovcc, movzx/movsx/movsxd,
/// lea, xchg/cmpxchg/cmpxchg8b/cmpxchg16b/xadd, bswap, movbe, cbw..cqo, push/pop/call/ret/leave/
/// enter/jmp/jcc/jrcxz/loop/loopcc, pushf/popf, lahf/sahf, string ops with rep), BMI1 and BMI2,
/// SSE through SSE4.2 with MXCSR (Interpreter.Sse*.cs; floating point in software, Internal/SoftFloat.cs),
/// the x87/SSE state as fxsave and xsave see it (Interpreter.X87.cs), rdrand/rdseed/rdtscp, cpuid
/// (Interpreter.Cpuid.cs advertises exactly this), rdtsc, in/out, hlt, cli/sti, nop/pause/fences/prefetch.
/// Not implemented (the guest stops with the instruction's name): x87 arithmetic and data movement
/// (CPUID's FPU bit is clear), MMX, AVX, ins/outs, 32-bit address size (0x67), fs/gs overrides on
/// string instructions, real mode and 32-bit code. Differential tests against the real CPU (tests/SmartOS.Virt.Tests/Differential)
/// cover the integer part register by register and flag by flag.
/// </summary>
public sealed unsafe partial class Interpreter : Vcpu
{
    private const ulong CF = 1, PF = 4, AF = 0x10, ZF = 0x40, SF = 0x80, IF = 0x200, DF = 0x400, OF = 0x800;
    private const ulong ArithFlags = CF | PF | AF | ZF | SF | OF;

    private readonly GuestMemory _memory;
    private readonly IVcpuExitHandler _handler;
    private readonly byte* _mem;
    private readonly ulong _memSize;
    private readonly ulong* _r;
    private readonly ulong* _xmm;
    private readonly Op[]?[] _pages;
    private readonly byte[] _codePage;
    private readonly Decoder _decoder;
    private readonly GuestCodeReader _reader;

    private ulong _rip;
    private ulong _rflags = 2;
    private long _retired;

    /// <summary>The vmm probes its CPUID, MSR, exception and interrupt sites fire (VmProbes.cs).</summary>
    public VmProbes Probes { get; init; } = VmProbes.None;

    public Interpreter(GuestMemory memory, IVcpuExitHandler handler)
    {
        _memory = memory;
        _handler = handler;
        _mem = memory.Base;
        _memSize = memory.Size;
        // 16 general registers, then the FS and GS bases (segment-override operands add _r[op.Seg]).
        _r = (ulong*)NativeMemory.AllocZeroed(18 * 8);
        _xmm = (ulong*)NativeMemory.AllocZeroed(32 * 8);
        int pages = (int)(memory.Size / GuestMemory.PageSize);
        _pages = new Op[]?[pages];
        _codePage = new byte[pages + 1];
        _pageLinear = new ulong[pages];
        Array.Fill(_pageLinear, NoTag);
        _tlbSupervisor = NewTlb();
        _tlbUser = NewTlb();
        _tlb = _tlbSupervisor;
        FlushItlb();
        ResetSystemState();
        _reader = new GuestCodeReader(this);
        _decoder = Decoder.Create(64, _reader);
        memory.Written += OnHostWrite;
    }

    public override string BackendName => "interpreter";
    public ulong MemorySize => _memSize;
    public override long Retired => _retired;
    public override ulong Rip { get => _rip; set => _rip = value; }

    public override ulong Rflags
    {
        get => GetFlags();
        set { _fop = FlagKind.None; _rflags = (value & (ArithFlags | DF | IF)) | 2; }
    }

    public override ulong GetRegister(Reg r) => _r[(int)r];
    public override void SetRegister(Reg r, ulong value) => _r[(int)r] = value;

    /// <summary>The low and high halves of XMM register <paramref name="i"/>.</summary>
    public (ulong Low, ulong High) GetXmm(int i) => (_xmm[2 * i], _xmm[2 * i + 1]);
    public void SetXmm(int i, ulong low, ulong high) { _xmm[2 * i] = low; _xmm[2 * i + 1] = high; }

    /// <summary>Guest TSC = <see cref="TscBase"/> + instructions retired since <see cref="TscRetiredBase"/>
    /// (one instruction is one nanosecond of guest time; the TSC runs at 1 GHz).</summary>
    public long TscBase { get; set; }
    public long TscRetiredBase { get; set; }

    /// <summary>Number of pages holding decoded code (for tests of the cache).</summary>
    public int CachedCodePages
    {
        get
        {
            int n = 0;
            foreach (var p in _pages) if (p != null) n++;
            return n;
        }
    }

    /// <summary>Decoded instructions dropped because their bytes were written.</summary>
    public long Invalidations { get; private set; }

    /// <summary>Instructions decoded by Iced so far (a cache hit decodes nothing).</summary>
    public long Decodes { get; private set; }

    private void OnHostWrite(ulong address, ulong length)
    {
        if (length == 0) return;
        ulong end = address + length;
        for (ulong page = address >> 12; page <= (end - 1) >> 12 && page < (ulong)_pages.Length; page++)
        {
            if (_codePage[page] == 0) continue;
            ulong lo = Math.Max(address, page << 12), hi = Math.Min(end, (page + 1) << 12);
            InvalidateCode(lo, (int)(hi - lo));
        }
    }

    // ---- memory -------------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Read(ulong a, int size)
    {
        TlbEntry* e = _tlb + (int)((a >> 12) & (TlbSize - 1));
        if (e->ReadTag == (a & (PageMask | (ulong)(size - 1))))
        {
            byte* p = (byte*)(e->Addend + a);
            return size switch { 1 => *p, 2 => *(ushort*)p, 4 => *(uint*)p, _ => *(ulong*)p };
        }
        return ReadSlow(a, size);
    }

    /// <summary>A store of <paramref name="size"/> bytes (1, 2, 4 or 8) at a host pointer into RAM.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(byte* p, int size, ulong v)
    {
        switch (size)
        {
            case 1: *p = (byte)v; break;
            case 2: *(ushort*)p = (ushort)v; break;
            case 4: *(uint*)p = (uint)v; break;
            default: *(ulong*)p = v; break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Write(ulong a, int size, ulong v)
    {
        TlbEntry* e = _tlb + (int)((a >> 12) & (TlbSize - 1));
        if (e->WriteTag == (a & (PageMask | (ulong)(size - 1))))
        {
            Store((byte*)(e->Addend + a), size, v);
            return;
        }
        WriteSlow(a, size, v);
    }

    /// <summary>A load from a physical address that is not RAM: the device behind it, or a fault.</summary>
    private ulong ReadDevice(ulong a, int size)
    {
        var exit = new VcpuExit { Reason = VcpuExitReason.Mmio, Address = a, Size = (byte)size, IsWrite = false, Rip = _instrRip };
        if (!_handler.HandleAccess(ref exit)) throw WildAccess(a, size, "read");
        RequestBoundary();
        return exit.Data & Mask(size);
    }

    private void WriteDevice(ulong a, int size, ulong v)
    {
        var exit = new VcpuExit { Reason = VcpuExitReason.Mmio, Address = a, Size = (byte)size, IsWrite = true, Data = v & Mask(size), Rip = _instrRip };
        if (!_handler.HandleAccess(ref exit)) throw WildAccess(a, size, "write");
        RequestBoundary();
    }

    private GuestFault WildAccess(ulong a, int size, string what)
        => new(VcpuExitReason.Fault, _instrRip, $"#PF: {what} of {size} bytes at 0x{a:x}, outside RAM and every device");

    private void InvalidateCode(ulong a, int size)
    {
        ulong start = a >= 14 ? a - 14 : 0;
        ulong end = Math.Min(a + (ulong)size, _memSize);
        for (ulong x = start; x < end; x++)
        {
            var ops = _pages[x >> 12];
            if (ops != null && ops[x & 0xFFF].Kind != Internal.OpKind.Undecoded)
            {
                ops[x & 0xFFF].Kind = Internal.OpKind.Undecoded;
                Invalidations++;
            }
        }
        // Translated blocks over the written bytes go too (Interpreter.Blocks.cs, rule 2).
        if (_blockLists != null && end > start)
            for (ulong page = start >> 12; page <= (end - 1) >> 12; page++)
                DropBlocks(page, (int)(Math.Max(start, page << 12) - (page << 12)), (int)(Math.Min(end, (page + 1) << 12) - (page << 12)));
    }

    // ---- registers ----------------------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Mask(int size) => ulong.MaxValue >> (64 - size * 8);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long SignExtend(ulong v, int size) => size == 8 ? (long)v : (long)(v << (64 - size * 8)) >> (64 - size * 8);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong GetReg(int r, int size)
    {
        if (r < 16) return _r[r] & Mask(size);
        return (_r[r - 16] >> 8) & 0xFF;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetReg(int r, int size, ulong v)
    {
        if (size == 8) _r[r] = v;
        else if (size == 4) _r[r] = (uint)v;
        else SetRegNarrow(r, size, v);
    }

    private void SetRegNarrow(int r, int size, ulong v)
    {
        if (size == 2) _r[r] = (_r[r] & ~0xFFFFUL) | (v & 0xFFFF);
        else if (r < 16) _r[r] = (_r[r] & ~0xFFUL) | (v & 0xFF);
        else _r[r - 16] = (_r[r - 16] & ~0xFF00UL) | ((v & 0xFF) << 8);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Ea(ref Op op)
    {
        ulong a = (ulong)op.Disp;
        if (op.Base != Op.NoReg) a += _r[op.Base];
        if (op.Index != Op.NoReg) a += _r[op.Index] << op.Scale;
        if (op.Seg != 0) a += _r[op.Seg];
        return a;
    }

    private ulong ReadRm(ref Op op, ulong ea, int size) => op.IsMem ? Read(ea, size) : GetReg(op.Rm, size);

    private void WriteRm(ref Op op, ulong ea, int size, ulong v)
    {
        if (op.IsMem) Write(ea, size, v);
        else SetReg(op.Rm, size, v);
    }

    private void Push(ulong v)
    {
        ulong sp = _r[4] - 8;
        Write(sp, 8, v);
        _r[4] = sp;
    }

    private ulong Pop()
    {
        ulong sp = _r[4];
        ulong v = Read(sp, 8);
        _r[4] = sp + 8;
        return v;
    }

    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _memory.Written -= OnHostWrite;
        NativeMemory.Free(_r);
        NativeMemory.Free(_xmm);
        NativeMemory.Free(_tlbSupervisor);
        NativeMemory.Free(_tlbUser);
        base.Dispose();
    }

    private bool _disposed;

    /// <summary>A guest exception or a guest-caused stop raised inside an instruction and caught by
    /// Run (never leaves it). With a <see cref="Vector"/> (0-31) it is an x86 exception that a guest
    /// with an IDT takes (Interpreter.System.Exceptions.cs); without one, or without an IDT, it
    /// stops the vCPU with <see cref="Reason"/> and the message.</summary>
    private sealed class GuestFault(VcpuExitReason reason, ulong rip, string message, int vector = -1, uint? errorCode = null, ulong cr2 = 0)
        : Exception(message)
    {
        public VcpuExitReason Reason { get; } = reason;
        public ulong Rip { get; } = rip;
        public int Vector { get; } = vector;
        public uint? ErrorCode { get; } = errorCode;
        /// <summary>The faulting linear address of a #PF.</summary>
        public ulong Cr2 { get; } = cr2;
        /// <summary>Where the guest resumes after a trap (int n, int3): the next instruction; 0 for faults.</summary>
        public ulong TrapRip { get; init; }
        /// <summary>int n or int3: the gate's DPL must allow the current ring.</summary>
        public bool Software { get; init; }
    }

    /// <summary>Feeds Iced's decoder from guest code at a linear address (the decoder's IP): each
    /// byte is translated for execute, so an instruction may straddle two pages that are not
    /// physically adjacent; -1 where the code runs out of RAM.</summary>
    private sealed class GuestCodeReader(Interpreter cpu) : CodeReader
    {
        public ulong Position;
        private ulong _page = NoTag, _physPage;
        /// <summary>The physical address of the last byte read.</summary>
        public ulong LastPhysical;

        public void Reset(ulong linear)
        {
            Position = linear;
            _page = NoTag;
        }

        public override int ReadByte()
        {
            if ((Position & PageMask) != _page)
            {
                ulong phys = cpu.FetchPhysical(Position & PageMask);
                if (phys == ulong.MaxValue) return -1;
                _page = Position & PageMask;
                _physPage = phys;
            }
            ulong a = _physPage + (Position & 0xFFF);
            if (a >= cpu._memSize) return -1;
            Position++;
            LastPhysical = a;
            return cpu._mem[a];
        }
    }

    private static bool Parity(ulong r) => (BitOperations.PopCount(r & 0xFF) & 1) == 0;
}
