namespace SmartOS.Benchmarks;

/// <summary>A minimal entry point so the project builds and the resource-control figures can be
/// printed; the lead's harness replaces it.</summary>
internal static class Program
{
    private static void Main() => ResourceControlBenchmarks.Run(Console.Out);
}
