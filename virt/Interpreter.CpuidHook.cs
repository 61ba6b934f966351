namespace SmartOS.Virt;

// The seam between CPUID (the instruction set's file) and the system state (Interpreter.System.cs):
// CPUID asks for the bits the system part backs. The `cpu` branch declares the same method in
// Interpreter.Cpuid.cs; when both are merged, one declaration stays.
public sealed partial class Interpreter
{
    partial void AddSystemCpuid(uint leaf, uint subleaf, ref uint eax, ref uint ebx, ref uint ecx, ref uint edx);
}
