using System.Diagnostics;

namespace SmartOS.Virt.Tests;

/// <summary>
/// gcc's output at every level runs on the interpreter (issue 18): virt/guests/fpmath.c (doubles,
/// floats, conversions, -O3's vectorised loops) and selftest.c, built at -O0..-O3, -Os and for
/// x86-64-v2 with BMI1/BMI2, each as a guest and as an ordinary program for this host with
/// host_shim.c. The host CPU's output is the reference; the guest's must be the same text.
/// </summary>
public class GccLevelsTests
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<(bool Ok, string Output, string Error)>> s_host = new();

    /// <summary>The program built for and run on this host (once per flag set per test run).</summary>
    private static string HostOutput(string program, string[] codegen)
    {
        string? gcc = GuestCompiler.FindGcc(out string why);
        if (gcc == null) Assert.Ignore(why);
        var r = s_host.GetOrAdd(program + " " + string.Join(' ', codegen), _ => new Lazy<(bool, string, string)>(() =>
        {
            string exe = Path.Combine(Path.GetTempPath(), $"smartos-gcclevels-{Guid.NewGuid():N}");
            try
            {
                var psi = new ProcessStartInfo(gcc!) { RedirectStandardError = true, RedirectStandardOutput = true };
                foreach (var a in codegen) psi.ArgumentList.Add(a);
                foreach (var a in new[] { "-Wall", "-Werror", "-o", exe, Path.Combine(CGuestTests.GuestsDir, program), Path.Combine(CGuestTests.GuestsDir, "host_shim.c") })
                    psi.ArgumentList.Add(a);
                using (var p = Process.Start(psi)!)
                {
                    string err = p.StandardError.ReadToEnd();
                    p.WaitForExit();
                    if (p.ExitCode != 0) return (false, "", err);
                }
                using var run = Process.Start(new ProcessStartInfo(exe) { RedirectStandardOutput = true })!;
                string output = run.StandardOutput.ReadToEnd();
                run.WaitForExit();
                return (true, output, "");
            }
            finally
            {
                File.Delete(exe);
            }
        })).Value;
        Assert.That(r.Ok, Is.True, r.Error);
        return r.Output;
    }

    private static byte[] GuestImage(string program, string[] codegen)
    {
        if (GuestCompiler.FindGcc(out string why) == null) Assert.Ignore(why);
        bool ok = GuestCompiler.TryBuild(CGuestTests.GuestsDir, program, codegen, [], out var image, out string error);
        Assert.That(ok, Is.True, error);
        return image;
    }

    private static readonly string[] V2Bmi = ["-march=x86-64-v2", "-mbmi", "-mbmi2"];

    private static IEnumerable<TestCaseData> Builds()
    {
        yield return new TestCaseData("fpmath.c", new[] { "-O0" });
        yield return new TestCaseData("fpmath.c", new[] { "-O2" });
        yield return new TestCaseData("fpmath.c", new[] { "-O3" });
        yield return new TestCaseData("fpmath.c", new[] { "-Os" });
        yield return new TestCaseData("fpmath.c", new[] { "-O2", "-march=x86-64-v2" });
        yield return new TestCaseData("fpmath.c", new[] { "-O3" }.Concat(V2Bmi).ToArray());
        yield return new TestCaseData("selftest.c", new[] { "-O3" }.Concat(V2Bmi).ToArray());
        yield return new TestCaseData("selftest.c", new[] { "-Os" });
    }

    [TestCaseSource(nameof(Builds))]
    public void A_guest_built_by_gcc_prints_what_the_same_build_prints_on_the_host_cpu(string program, string[] codegen)
    {
        string expected = HostOutput(program, codegen);
        using var vm = GuestRunner.Run(GuestImage(program, codegen), instructionLimit: 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(SmartOS.Virt.VmStopReason.PoweredOff), vm.StopDetail);
            Assert.That(vm.ConsoleOutput, Is.EqualTo(expected));
            Assert.That(expected, Is.Not.Empty);
        }
        TestContext.Out.WriteLine($"{program} {string.Join(' ', codegen)}: {vm.InstructionsRetired} instructions");
    }
}
