using System.Runtime.InteropServices;
using Iced.Intel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Virt.Tests.Differential;

/// <summary>
/// The real CPU of this x86-64 host as a reference: a register-only instruction sequence is
/// wrapped in a prologue that loads all general registers (but rsp) and RFLAGS from a buffer and
/// an epilogue that stores them back, written to an RWX page from mmap(2), and called through a
/// function pointer. Sequences must not touch rsp, memory, DF or TF, and must not fault: the
/// generator guarantees that (a #DE here would kill the test host).
/// </summary>
internal sealed unsafe class NativeCpu : IDisposable
{
    private const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;
    private const int PageBytes = 1 << 16;
    /// <summary>The largest memory-mode scratch (the x87 tests' fxsave area needs more than the generator's), 64-byte aligned.</summary>
    public const int ScratchCapacity = 4096;

    [DllImport("libc", SetLastError = true)] private static extern void* mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);
    [DllImport("libc", SetLastError = true)] private static extern int munmap(void* addr, nuint length);

    private readonly byte* _code;
    private readonly byte[] _prologue, _epilogue;
    private readonly ulong* _buffer;
    private readonly byte* _scratch;

    private NativeCpu(byte* code)
    {
        _code = code;
        _buffer = (ulong*)NativeMemory.AllocZeroed(17 * 8);
        _scratch = (byte*)NativeMemory.AlignedAlloc(ScratchCapacity, 64);
        new Span<byte>(_scratch, ScratchCapacity).Clear();
        _prologue = GuestRunner.Assemble(BuildPrologue, 0);
        _epilogue = GuestRunner.Assemble(BuildEpilogue, 0);
    }

    /// <summary>Where rbx points in memory mode (a cmpxchg8b/16b that succeeds stores rbx).</summary>
    public ulong ScratchAddress => (ulong)_scratch;

    public static bool IsUsable(out string why)
    {
        if (RuntimeInformation.ProcessArchitecture != Architecture.X64) { why = "the host CPU is not x86-64"; return false; }
        if (!OperatingSystem.IsLinux()) { why = "mmap of an executable page needs Linux here"; return false; }
        why = "";
        return true;
    }

    public static NativeCpu Create()
    {
        void* p = mmap(null, PageBytes, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == (void*)-1) throw new InvalidOperationException($"mmap RWX failed (errno {Marshal.GetLastPInvokeError()})");
        return new NativeCpu((byte*)p);
    }

    private static readonly AssemblerRegister64[] s_regs = [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15];

    private static void BuildPrologue(Assembler a)
    {
        a.push(rbx); a.push(rbp); a.push(r12); a.push(r13); a.push(r14); a.push(r15);
        a.push(rdi);
        a.push(__qword_ptr[rdi + 16 * 8]);
        a.popfq();
        for (int i = 0; i < 16; i++)
            if (i != 4 && i != 7) a.mov(s_regs[i], __qword_ptr[rdi + i * 8]);
        a.mov(rdi, __qword_ptr[rdi + 7 * 8]);
    }

    private static void BuildEpilogue(Assembler a)
    {
        a.pushfq();
        a.push(rax);
        a.mov(rax, __qword_ptr[rsp + 16]);
        for (int i = 1; i < 16; i++)
            if (i != 4) a.mov(__qword_ptr[rax + i * 8], s_regs[i]);
        a.pop(rcx);
        a.mov(__qword_ptr[rax], rcx);
        a.pop(rcx);
        a.mov(__qword_ptr[rax + 16 * 8], rcx);
        a.pop(rcx);
        a.pop(r15); a.pop(r14); a.pop(r13); a.pop(r12); a.pop(rbp); a.pop(rbx);
        a.ret();
    }

    /// <summary>Runs <paramref name="sequence"/> from <paramref name="regs"/> (16, rsp ignored) and
    /// <paramref name="flags"/>; returns the registers and RFLAGS after it.</summary>
    /// <summary>Memory mode: rbx points at a native copy of <paramref name="scratch"/>, copied back after.</summary>
    public (ulong[] Regs, ulong Flags) Run(byte[] sequence, ulong[] regs, ulong flags, byte[] scratch)
    {
        if (scratch.Length > ScratchCapacity) throw new ArgumentException("scratch too large", nameof(scratch));
        scratch.CopyTo(new Span<byte>(_scratch, scratch.Length));
        ulong saved = regs[SequenceGenerator.ScratchBase];
        regs[SequenceGenerator.ScratchBase] = (ulong)_scratch;
        var result = Run(sequence, regs, flags);
        regs[SequenceGenerator.ScratchBase] = saved;
        result.Regs[SequenceGenerator.ScratchBase] = saved;
        new Span<byte>(_scratch, scratch.Length).CopyTo(scratch);
        return result;
    }

    public (ulong[] Regs, ulong Flags) Run(byte[] sequence, ulong[] regs, ulong flags)
    {
        int n = _prologue.Length + sequence.Length + _epilogue.Length;
        if (n > PageBytes) throw new ArgumentException("sequence too long", nameof(sequence));
        var code = new Span<byte>(_code, PageBytes);
        _prologue.CopyTo(code);
        sequence.CopyTo(code[_prologue.Length..]);
        _epilogue.CopyTo(code[(_prologue.Length + sequence.Length)..]);
        for (int i = 0; i < 16; i++) _buffer[i] = regs[i];
        _buffer[16] = flags;
        ((delegate* unmanaged<ulong*, void>)_code)(_buffer);
        var outRegs = new ulong[16];
        for (int i = 0; i < 16; i++) outRegs[i] = _buffer[i];
        outRegs[4] = regs[4];
        return (outRegs, _buffer[16]);
    }

    // The vector state lives in the code page itself, past any sequence, so the wrapper reaches it
    // RIP-relative without a register: 16 XMM registers in, 16 out, MXCSR in, out, and the host's.
    private const int VectorArea = PageBytes - 1024, XmmIn = 0, XmmOut = 256, MxcsrIn = 512, MxcsrOut = 516, MxcsrHost = 520;

    /// <summary>As <see cref="Run(byte[], ulong[], ulong, byte[])"/> with the SSE state too: XMM0-15
    /// (<paramref name="xmm"/>, 32 halves, replaced by the result) and MXCSR. The host's MXCSR is
    /// restored before the epilogue returns to .NET.</summary>
    public (ulong[] Regs, ulong Flags, uint Mxcsr) RunVector(byte[] sequence, ulong[] regs, ulong flags, ulong[] xmm, uint mxcsr, byte[] scratch)
    {
        byte* area = _code + VectorArea;
        for (int i = 0; i < 32; i++) ((ulong*)(area + XmmIn))[i] = xmm[i];
        *(uint*)(area + MxcsrIn) = mxcsr;
        ulong at = (ulong)_code + (ulong)_prologue.Length, data = (ulong)area;
        var list = new List<Instruction> { Instruction.Create(Code.Stmxcsr_m32, new MemoryOperand(Register.RIP, (long)(data + MxcsrHost))) };
        for (int i = 0; i < 16; i++)
            list.Add(Instruction.Create(Code.Movdqu_xmm_xmmm128, Register.XMM0 + i, new MemoryOperand(Register.RIP, (long)(data + XmmIn + (ulong)(16 * i)))));
        list.Add(Instruction.Create(Code.Ldmxcsr_m32, new MemoryOperand(Register.RIP, (long)(data + MxcsrIn))));
        var head = Encode(list, at);
        list.Clear();
        for (int i = 0; i < 16; i++)
            list.Add(Instruction.Create(Code.Movdqu_xmmm128_xmm, new MemoryOperand(Register.RIP, (long)(data + XmmOut + (ulong)(16 * i))), Register.XMM0 + i));
        list.Add(Instruction.Create(Code.Stmxcsr_m32, new MemoryOperand(Register.RIP, (long)(data + MxcsrOut))));
        list.Add(Instruction.Create(Code.Ldmxcsr_m32, new MemoryOperand(Register.RIP, (long)(data + MxcsrHost))));
        var tail = Encode(list, at + (ulong)head.Length + (ulong)sequence.Length);
        var wrapped = new byte[head.Length + sequence.Length + tail.Length];
        head.CopyTo(wrapped, 0);
        sequence.CopyTo(wrapped, head.Length);
        tail.CopyTo(wrapped, head.Length + sequence.Length);
        if (_prologue.Length + wrapped.Length + _epilogue.Length > VectorArea) throw new ArgumentException("sequence too long", nameof(sequence));
        var (outRegs, outFlags) = Run(wrapped, regs, flags, scratch);
        for (int i = 0; i < 32; i++) xmm[i] = ((ulong*)(area + XmmOut))[i];
        return (outRegs, outFlags, *(uint*)(area + MxcsrOut));
    }

    private static byte[] Encode(List<Instruction> list, ulong ip)
    {
        var w = new ListWriter();
        var enc = Encoder.Create(64, w);
        foreach (var ins in list) ip += enc.Encode(ins, ip);
        return w.Bytes.ToArray();
    }

    private sealed class ListWriter : CodeWriter
    {
        public readonly List<byte> Bytes = new();
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    public void Dispose()
    {
        munmap(_code, PageBytes);
        NativeMemory.Free(_buffer);
        NativeMemory.AlignedFree(_scratch);
    }
}
