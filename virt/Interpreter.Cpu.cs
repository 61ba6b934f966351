using Iced.Intel;
using SmartOS.Virt.Internal;
using K = SmartOS.Virt.Internal.OpKind;

namespace SmartOS.Virt;

// The instruction-set extensions beyond Interpreter.Decode.cs's integer core: one decode entry and
// one execute entry, so that the core files carry a single line each for all of them.
//   Interpreter.Sse.cs, Interpreter.SseExecute.cs, Interpreter.SseFloat.cs: SSE..SSE4.2, MXCSR.
//   Interpreter.Bmi.cs: BMI1, BMI2, MOVBE, cmpxchg8b/16b, loop/loopcc, enter.
//   Interpreter.X87.cs: the x87 state, fxsave/fxrstor, xsave/xrstor/xgetbv/xsetbv.
//   Interpreter.X87Data.cs: x87 loads, stores, exchanges and compares.
//   Interpreter.Random.cs: rdrand/rdseed from the VM's seeded source, rdtscp.
//   Interpreter.Cpuid.cs: what CPUID advertises of all this.
public sealed unsafe partial class Interpreter
{
    private static bool TryDecodeCpu(in Instruction ins, ref Op op)
    {
        byte len = op.Len;
        op = default;
        op.Base = op.Index = Op.NoReg;
        op.Len = len;
        return TryDecodeSse(in ins, ref op) || TryDecodeBmi(in ins, ref op) || TryDecodeX87State(in ins, ref op)
            || TryDecodeX87Data(in ins, ref op)
            || TryDecodeRandom(in ins, ref op);
    }

    /// <summary>Executes one of these instructions; a branch (loop) sets <paramref name="next"/>.</summary>
    private void ExecuteCpu(ref Op op, ref ulong next)
    {
        switch (op.Kind)
        {
            case K.Sse: ExecuteSse(ref op); break;
            case K.X87: ExecuteX87Data(ref op); break;
            case K.CpuMisc:
                if (op.Imm == 0x100) ExecuteRandom(ref op);
                else ExecuteX87State(ref op);
                break;
            default:
                if (IsLoop(ref op)) { if (LoopTaken(ref op)) next = (ulong)op.Disp; }
                else ExecuteBmi(ref op);
                break;
        }
    }
}
