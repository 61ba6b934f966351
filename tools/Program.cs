using System.Globalization;
using SmartOS.Cli.Scenario;
using SmartOS.Kernel;
using SmartOS.Zones;

namespace SmartOS.Cli;

/// <summary>The `smartos` executable (see Dispatcher.cs for the front ends).</summary>
internal static class Program
{
    private const string UsageText = """
        usage: smartos run [--seed N] [--outdir DIR] FILE
               smartos [--root DIR] [--nics N] COMMAND [ARGS ...]
        commands:
        """;

    private static int Main(string[] args)
    {
        var stdout = Console.Out;
        var stderr = Console.Error;
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            stderr.WriteLine(UsageText + "  " + string.Join(" ", Dispatcher.CommandNames));
            return args.Length == 0 ? 2 : 0;
        }
        if (args[0] == "run") return Run(args[1..], stdout, stderr);

        string? root = null;
        int nics = 2;
        int i = 0;
        while (i < args.Length && args[i].StartsWith("--", StringComparison.Ordinal))
        {
            switch (args[i])
            {
                case "--root" when i + 1 < args.Length:
                    root = args[i + 1]; i += 2; break;
                case "--nics" when i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out nics) && nics <= 64:
                    i += 2; break;
                default:
                    stderr.WriteLine($"smartos: bad option '{args[i]}'");
                    stderr.WriteLine(UsageText + "  " + string.Join(" ", Dispatcher.CommandNames));
                    return 2;
            }
        }
        if (i >= args.Length) { stderr.WriteLine("smartos: a command is required"); return 2; }
        // One-shot: a host booted from its root directory (persistent configuration), in virtual time.
        var world = new World();
        IConfigStore store = root != null ? new FileConfigStore(root) : new MemoryConfigStore();
        var host = world.AddHost("global", nics, store);
        foreach (var p in host.BootProblems) stderr.WriteLine("smartos: boot: " + p);
        var result = Dispatcher.Run(world, host, args[i..]);
        stdout.Write(result.Stdout);
        stderr.Write(result.Stderr);
        return result.ExitCode;
    }

    private static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var g = Getopt.Parse(args, "", ["seed:", "outdir:"], permute: true);
        if (g.Error != null || g.Operands.Count != 1)
        {
            stderr.WriteLine("usage: smartos run [--seed N] [--outdir DIR] FILE");
            return 2;
        }
        ulong seed = 1;
        if (g.Has("seed") && !ulong.TryParse(g.Value("seed"), NumberStyles.None, CultureInfo.InvariantCulture, out seed))
        {
            stderr.WriteLine($"smartos run: bad seed '{g.Value("seed")}'");
            return 2;
        }
        string file = g.Operands[0];
        string script;
        try { script = File.ReadAllText(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"smartos run: {file}: {e.Message}");
            return 1;
        }
        string outdir = g.Value("outdir") ?? Environment.CurrentDirectory;
        Directory.CreateDirectory(outdir);
        var runner = new ScenarioRunner(stdout, stderr, Path.GetFullPath(outdir), seed);
        return runner.Run(script, file);
    }
}
