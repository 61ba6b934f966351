namespace SmartOS.Virt.Internal;

/// <summary>What the interpreter executes: one cached decoded instruction (Interpreter.cs, "decode
/// cache"). Built once from Iced's Instruction and dispatched on <see cref="Kind"/>; register
/// numbers are x86 encoding numbers, 16..19 name AH, CH, DH, BH.</summary>
internal struct Op
{
    public const byte NoReg = 0xFF;

    public OpKind Kind;
    public byte Len;
    /// <summary>Operand size in bytes (destination).</summary>
    public byte Size;
    /// <summary>Source size in bytes (movzx/movsx), or the string-op repeat kind.</summary>
    public byte Size2;
    /// <summary>The ModRM reg operand (or the only register operand).</summary>
    public byte Reg;
    /// <summary>The ModRM r/m operand when it is a register.</summary>
    public byte Rm;
    public byte Base;
    public byte Index;
    public byte Scale;
    /// <summary>ALU operation, condition code or sub-operation.</summary>
    public byte Sub;
    public bool IsMem;
    /// <summary>The source is <see cref="Imm"/> (or, for shifts, CL when false).</summary>
    public bool HasImm;
    /// <summary>0, or the _r slot of the fs or gs base for a segment-override memory operand.</summary>
    public byte Seg;
    /// <summary>Times the dispatch loop reached this instruction, up to Interpreter.BlockThreshold
    /// (Interpreter.Blocks.cs); it sits in what would be padding, so Op stays 32 bytes.</summary>
    public ushort Heat;
    public long Disp;
    public long Imm;
}

internal enum OpKind : byte
{
    Undecoded = 0,
    // Hot forms get their own kinds so the dispatch switch does the operand work.
    MovRR, MovRM, MovMR, MovRI, MovMI,
    AluRR, AluRM, AluMR, AluRI, AluMI,
    AddRR, OrRR, AndRR, SubRR, XorRR, CmpRR, TestRR,
    AddRI, OrRI, AndRI, SubRI, XorRI, CmpRI, TestRI,
    Lea, Movzx, Movsx,
    PushR, PushI, PushM, PopR, PopM,
    CallRel, CallRm, Ret, JmpRel, JmpRm, Jcc, Setcc, Cmov, Jrcxz,
    Unary, Shift, ShiftDouble, MulDiv, Imul2, Xchg, Cmpxchg, Xadd, BitTest, BitScan, Bswap,
    SignExtendAcc, SignExtendIntoDx,
    StringOp,
    FlagOp, Nop, Hlt, Cpuid, Rdtsc, In, Out, Pushf, Popf, Leave, Lahf, Sahf,
    SseMove, SseMoveToGpr, SseMoveFromGpr, SseMovqLoad, SseMovqStore, SseLogic,
    // Interpreter.Sse*.cs, Interpreter.Bmi.cs, Interpreter.X87.cs, Interpreter.CpuMisc.cs.
    Sse, Bmi, X87, CpuMisc,
    Fault, Unimplemented,
    /// <summary>Control registers, MSRs, descriptor tables, far transfers, interrupts (Interpreter.System.cs).</summary>
    System,
}
