using System.Diagnostics;

namespace SmartOS.Virt;

/// <summary>
/// Builds the C guests of virt/guests into flat images with the host's gcc (a development tool for
/// tests and benchmarks, not part of a running host): the runtime plus one program, compiled
/// freestanding (-ffreestanding -nostdlib -fno-pic -mno-red-zone), linked by guests/link.ld at the
/// boot address and turned into a flat binary by objcopy. Builds go to a temporary directory.
/// </summary>
public static class GuestCompiler
{
    /// <summary>The gcc on PATH, or null with the reason.</summary>
    public static string? FindGcc(out string why)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string gcc = Path.Combine(dir, "gcc");
            if (File.Exists(gcc) && File.Exists(Path.Combine(dir, "objcopy")))
            {
                why = "";
                return gcc;
            }
        }
        why = "gcc and objcopy are not on PATH (.ci/run installs them)";
        return null;
    }

    /// <summary>Compiles <paramref name="program"/> (a file in <paramref name="guestsDir"/>) with the runtime
    /// sources; -O<paramref name="optimization"/>; defines as NAME=VALUE. Returns the image or the error.</summary>
    public static bool TryBuild(string guestsDir, string program, int optimization, IEnumerable<string> defines, out byte[] image, out string error)
        => TryBuild(guestsDir, program, ["-O" + optimization], defines, out image, out error);

    /// <summary>As above with the code-generation options given whole (["-Os"], ["-O3",
    /// "-march=x86-64-v2", "-mbmi", "-mbmi2"]): the CPU features the guest may use are the caller's choice.</summary>
    public static bool TryBuild(string guestsDir, string program, IReadOnlyList<string> codegen, IEnumerable<string> defines, out byte[] image, out string error)
    {
        image = [];
        string? gcc = FindGcc(out error);
        if (gcc == null) return false;
        string work = Path.Combine(Path.GetTempPath(), "smartos-guest-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(work);
        try
        {
            string elf = Path.Combine(work, "guest.elf"), bin = Path.Combine(work, "guest.bin");
            var args = new List<string>
            {
                "-ffreestanding", "-nostdlib", "-static", "-fno-pic", "-fno-pie", "-no-pie", "-mno-red-zone",
                "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fcf-protection=none",
                "-Wall", "-Werror", "-Wl,--build-id=none", "-T", Path.Combine(guestsDir, "link.ld"), "-o", elf,
            };
            args.AddRange(codegen);
            foreach (var d in defines) args.Add("-D" + d);
            foreach (var src in Directory.GetFiles(Path.Combine(guestsDir, "runtime"), "*.c").Order(StringComparer.Ordinal)) args.Add(src);
            args.Add(Path.Combine(guestsDir, program));
            // libgcc: helpers gcc calls even in freestanding code (__popcountdi2 without -mpopcnt).
            args.Add("-lgcc");
            if (!RunTool(gcc, args, out error)) return false;
            string objcopy = Path.Combine(Path.GetDirectoryName(gcc)!, "objcopy");
            if (!RunTool(objcopy, ["-O", "binary", elf, bin], out error)) return false;
            image = File.ReadAllBytes(bin);
            return true;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static bool RunTool(string tool, IEnumerable<string> args, out string error)
    {
        var psi = new ProcessStartInfo(tool) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        error = p.ExitCode == 0 ? "" : $"{Path.GetFileName(tool)} failed ({p.ExitCode}): {stderr}";
        return p.ExitCode == 0;
    }
}
