namespace SmartOS.Cli;

// Temporary entry point so the tools project compiles; the lead replaces it with the dispatcher.
internal static class Program
{
    private static int Main() => 0;
}
