using System.Globalization;
using SmartOS.Cli.Scenario;

namespace SmartOS.Cli.Tests.Scenario;

/// <summary>
/// A stress harness for kernel/Timeline.cs rule 3, run by hand (its first test is explicit: many
/// runs, minutes of work; the stack-size cases are deterministic and run with the suite): random
/// topologies (ParallelScenarioTests' generator) and the multi-host examples, each run once on one
/// thread and then again and again on 2 and 3 threads, every run's transcript and pcaps compared
/// with the first's. Meant to be run beside artificial CPU load (a few busy processes), so that the
/// threads of a window are descheduled at random points. Knobs (environment):
/// SMARTOS_PAR_STRESS_SEEDS (comma-separated, default "11,23,37,5,7,13"), SMARTOS_PAR_STRESS_ROUNDS
/// (runs per thread count, default 3), SMARTOS_PAR_STRESS_KEEP (a directory where the outputs of a run
/// that differs are kept, for a diff).
/// </summary>
public class ParallelStressTests
{
    private sealed record Result(string Out, string Err, Dictionary<string, byte[]> Files);

    private static Result Run(string script, int threads, string fileName, string dir)
    {
        Directory.CreateDirectory(dir);
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var runner = new ScenarioRunner(o, e, dir, 1, threads);
        int code = runner.Run(script, fileName);
        var files = Directory.GetFiles(dir, "*.pcap*").ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        return new Result($"exit {code}\n" + o, e.ToString(), files);
    }

    private static string? Difference(Result one, Result other)
    {
        if (other.Out != one.Out) return "transcript";
        if (other.Err != one.Err) return "stderr";
        foreach (var (name, bytes) in one.Files)
            if (!other.Files.TryGetValue(name, out var b) || !b.AsSpan().SequenceEqual(bytes)) return name;
        return other.Files.Count != one.Files.Count ? "pcap set" : null;
    }

    [Test]
    [Explicit("a stress harness: many runs of each scenario; run it by hand, under load")]
    public void Every_run_gives_the_bytes_of_the_first()
    {
        var seeds = (Environment.GetEnvironmentVariable("SMARTOS_PAR_STRESS_SEEDS") ?? "11,23,37,5,7,13")
            .Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture));
        int rounds = int.Parse(Environment.GetEnvironmentVariable("SMARTOS_PAR_STRESS_ROUNDS") ?? "3", CultureInfo.InvariantCulture);
        string? keep = Environment.GetEnvironmentVariable("SMARTOS_PAR_STRESS_KEEP");
        var cases = seeds.Select(s => ($"seed {s}", ParallelScenarioTests.RandomTopology(s), "random.scn")).ToList();
        foreach (var example in new[] { "ip-stack.scn", "vlan-isolation.scn" })
        {
            string path = Path.Combine(ScenarioRunnerTests.RepoRoot(), "examples", example);
            cases.Add((example, File.ReadAllText(path), path));
        }
        var diffs = new List<string>();
        int runs = 0;
        string root = Directory.CreateTempSubdirectory("smartos-parstress-").FullName;
        try
        {
            foreach (var (name, script, file) in cases)
            {
                var one = Run(script, 1, file, Path.Combine(root, "ref"));
                for (int round = 0; round < rounds; round++)
                {
                    foreach (int threads in new[] { 2, 3, 1 })
                    {
                        string dir = Path.Combine(root, $"r{runs}");
                        var other = Run(script, threads, file, dir);
                        runs++;
                        string? what = Difference(one, other);
                        if (what != null)
                        {
                            diffs.Add($"{name}, {threads} threads, round {round}: {what}");
                            TestContext.Out.WriteLine($"DIFFERS: {name}, {threads} threads, round {round}: {what}");
                            if (keep != null) Save(keep, $"{name.Replace(' ', '-')}-t{threads}-r{round}", one, other);
                        }
                        Directory.Delete(dir, recursive: true);
                    }
                }
                Directory.Delete(Path.Combine(root, "ref"), recursive: true);
                TestContext.Out.WriteLine($"{name}: {rounds * 3} runs compared");
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
        TestContext.Out.WriteLine($"{runs} runs, {diffs.Count} differing");
        Assert.That(diffs, Is.Empty);
    }

    /// <summary>The same scenario on one thread, run on a thread of 16 MiB of stack and on a small one:
    /// where the stack runs short .NET stops running task continuations inline (they go to the
    /// thread pool or are posted), which would change the order of events. Seed 37's depth stays well
    /// inside 256 KiB.</summary>
    [TestCase(37, 256 * 1024)]
    [TestCase(37, 512 * 1024)]
    public void The_stack_size_of_the_thread_does_not_change_the_bytes(int seed, int stack)
    {
        string script = ParallelScenarioTests.RandomTopology(seed);
        string root = Directory.CreateTempSubdirectory("smartos-parstack-").FullName;
        try
        {
            Result? big = null, small = null;
            var t1 = new Thread(() => big = Run(script, 1, "random.scn", Path.Combine(root, "big")), 16 << 20);
            t1.Start();
            t1.Join();
            var t2 = new Thread(() => small = Run(script, 1, "random.scn", Path.Combine(root, "small")), stack);
            t2.Start();
            t2.Join();
            TestContext.Out.WriteLine($"difference: {Difference(big!, small!) ?? "none"}");
            string? keep = Environment.GetEnvironmentVariable("SMARTOS_PAR_STRESS_KEEP");
            if (keep != null && Difference(big!, small!) != null) Save(keep, $"stack-{seed}-{stack}", big!, small!);
            Assert.That(Difference(big!, small!), Is.Null);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static void Save(string keep, string tag, Result one, Result other)
    {
        string dir = Path.Combine(keep, tag);
        Directory.CreateDirectory(Path.Combine(dir, "one"));
        Directory.CreateDirectory(Path.Combine(dir, "other"));
        foreach (var (r, sub) in new[] { (one, "one"), (other, "other") })
        {
            File.WriteAllText(Path.Combine(dir, sub, "transcript.txt"), r.Out + "\n--- stderr\n" + r.Err);
            foreach (var (n, b) in r.Files) File.WriteAllBytes(Path.Combine(dir, sub, n), b);
        }
    }
}
