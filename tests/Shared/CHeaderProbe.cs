using System.Diagnostics;
using System.Globalization;
using NUnit.Framework;

namespace SmartOS.Testing;

/// <summary>
/// The system headers' view of constants and structure layouts that native calls depend on: gcc
/// builds a C program that prints one "name value" line each, and the test holds the project's own
/// numbers against them. A machine without the headers or gcc (.ci/run installs libc6-dev,
/// linux-libc-dev and gcc) skips with the reason; a program that does not build or run fails.
/// </summary>
internal static class CHeaderProbe
{
    /// <summary>The values the program prints, by name. <paramref name="kernelHeader"/> is the
    /// kernel header the program needs, checked first so that its absence is named.</summary>
    internal static Dictionary<string, ulong> Values(string source, string kernelHeader)
    {
        if (!File.Exists(kernelHeader)) Assert.Ignore($"no kernel headers ({kernelHeader}: linux-libc-dev)");
        if (!File.Exists("/usr/include/stdio.h")) Assert.Ignore("no C library headers (/usr/include/stdio.h: libc6-dev)");
        string dir = Directory.CreateTempSubdirectory("smartos-cprobe-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "probe.c"), source);
            if (Run("gcc", $"-o {dir}/probe {dir}/probe.c", out string built) != 0)
            {
                if (built.Contains("not found", StringComparison.Ordinal)) Assert.Ignore("no gcc");
                Assert.Fail("the probe did not build: " + built);
            }
            Assert.That(Run(Path.Combine(dir, "probe"), "", out string output), Is.Zero, output);
            var values = new Dictionary<string, ulong>();
            foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] f = line.Split(' ');
                values[f[0]] = ulong.Parse(f[1], CultureInfo.InvariantCulture);
            }
            return values;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int Run(string file, string args, out string output)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var stderr = p.StandardError.ReadToEndAsync();
            output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(60_000)) { p.Kill(); output += "timed out"; return -1; }
            output += stderr.Result;
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            output = $"{file}: not found ({e.Message})";
            return -1;
        }
    }
}
