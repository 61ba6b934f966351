using Iced.Intel;
using SmartOS.Virt.Internal;

namespace SmartOS.Virt;

public sealed unsafe partial class Interpreter
{
    private static bool TryDecodeBmi(in Instruction ins, ref Op op) => false;
    private void ExecuteBmi(ref Op op) { }
}
