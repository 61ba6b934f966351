using SmartOS.Kernel;

namespace SmartOS.Virt.Tests;

/// <summary>The C guests of virt/guests, built with gcc at test time, on the interpreter.</summary>
public class CGuestTests
{
    internal static string GuestsDir => Path.Combine(TestContext.CurrentContext.TestDirectory, "guests");

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<(bool Ok, byte[] Image, string Error)>> s_built = new();

    /// <summary>Builds a guest once per test run (gcc is most of these tests' time; different guests
    /// build in parallel); ignores the test without gcc.</summary>
    internal static byte[] Build(string program, int optimization, params string[] defines)
    {
        if (GuestCompiler.FindGcc(out string why) == null) Assert.Ignore(why);
        string key = $"{program} -O{optimization} {string.Join(' ', defines)}";
        var built = s_built.GetOrAdd(key, _ => new Lazy<(bool, byte[], string)>(() =>
        {
            bool ok = GuestCompiler.TryBuild(GuestsDir, program, optimization, defines, out var image, out string error);
            return (ok, image, error);
        })).Value;
        Assert.That(built.Ok, Is.True, built.Error);
        return built.Image;
    }

    [TestCase(0)]
    [TestCase(2)]
    public void Hello_guest_reads_boot_info_sleeps_on_the_timer_and_powers_off(int opt)
    {
        using var vm = GuestRunner.Run(Build("hello.c", opt), instructionLimit: 0, memory: 8UL << 20);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.ConsoleOutput, Is.EqualTo("hello from the guest\nmemory 8 MiB, nics 0\nslept 2 ms\n"));
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), vm.StopDetail);
            Assert.That(vm.ExitStatus, Is.EqualTo(7UL));
        }
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void Sieve_guest_prints_the_same_primes_and_checksums_as_the_host_computes(int opt)
    {
        const int n = 30000, rounds = 3;
        using var vm = GuestRunner.Run(Build("sieve.c", opt, $"N={n}", $"ROUNDS={rounds}"), instructionLimit: 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), vm.StopDetail);
            Assert.That(vm.ConsoleOutput, Is.EqualTo(SieveExpected(n, rounds)));
        }
        TestContext.Out.WriteLine($"-O{opt}: {vm.InstructionsRetired} instructions");
    }

    /// <summary>sieve.c, in C#.</summary>
    internal static string SieveExpected(int n, int rounds)
    {
        var composite = new byte[n];
        uint primes = 0;
        for (uint i = 2; i < n; i++)
        {
            if (composite[i] != 0) continue;
            primes++;
            for (ulong j = (ulong)i * i; j < (ulong)n; j += i) composite[j] = 1;
        }
        ulong h = 0xcbf29ce484222325UL;
        ulong a = 1, b = 2, c = 3, d = 4;
        for (int r = 0; r < rounds; r++)
        {
            for (uint i = 0; i < n; i++)
            {
                h ^= (ulong)(composite[i] + (byte)i);
                h *= 0x100000001b3UL;
            }
            a ^= h;
            b += a * 0x9E3779B97F4A7C15UL;
            c = (c << 7 | c >> 57) ^ b;
            d += c / (h | 1) + a % 13;
        }
        return $"primes {primes} hash 0x{h:x16} mix 0x{a ^ b ^ c ^ d:x16}\n";
    }

    [Test]
    public void Guest_runs_are_deterministic_in_virtual_time()
    {
        var image = Build("hello.c", 2);
        string Run()
        {
            using var vm = GuestRunner.Run(image, instructionLimit: 0);
            return $"{vm.ConsoleOutput}|{vm.InstructionsRetired}|{vm.StopDetail}";
        }
        string first = Run();
        string second = Run();
        Assert.That(second, Is.EqualTo(first));
    }
}

/// <summary>
/// virt/guests/selftest.c on the interpreter against the same source compiled by the same gcc at
/// the same -O as an ordinary host program: the host CPU's output is the reference.
/// </summary>
public class CGuestAgainstHostTests
{
    private static string BuildAndRunOnHost(int opt)
    {
        string? gcc = GuestCompiler.FindGcc(out string why);
        if (gcc == null) Assert.Ignore(why);
        string exe = Path.Combine(Path.GetTempPath(), $"smartos-selftest-{Guid.NewGuid():N}");
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo(gcc!) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { $"-O{opt}", "-Wall", "-Werror", "-o", exe, Path.Combine(CGuestTests.GuestsDir, "selftest.c"), Path.Combine(CGuestTests.GuestsDir, "host_shim.c") })
                psi.ArgumentList.Add(a);
            using (var p = System.Diagnostics.Process.Start(psi)!)
            {
                string err = p.StandardError.ReadToEnd();
                p.WaitForExit();
                Assert.That(p.ExitCode, Is.Zero, err);
            }
            using var run = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(exe) { RedirectStandardOutput = true })!;
            string output = run.StandardOutput.ReadToEnd();
            run.WaitForExit();
            return output;
        }
        finally
        {
            File.Delete(exe);
        }
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void Selftest_guest_prints_what_the_same_program_prints_on_the_host_cpu(int opt)
    {
        string expected = BuildAndRunOnHost(opt);
        using var vm = GuestRunner.Run(CGuestTests.Build("selftest.c", opt), instructionLimit: 0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(vm.StopReason, Is.EqualTo(VmStopReason.PoweredOff), vm.StopDetail);
            Assert.That(vm.ConsoleOutput, Is.EqualTo(expected));
            Assert.That(expected, Does.StartWith("arith=0x"));
        }
    }
}

public class RealTimeVmTests
{
    [Test]
    public void A_vm_runs_on_the_real_time_driver_with_the_backend_auto_picks()
    {
        var image = CGuestTests.Build("hello.c", 2);
        var scheduler = new Scheduler();
        using var driver = new RealTimeDriver(scheduler);
        var done = new TaskCompletionSource<Vm>(TaskCreationOptions.RunContinuationsAsynchronously);
        driver.Start("vmm-test");
        driver.Invoke(() =>
        {
            var vm = new Vm(scheduler, new VmConfig { Image = image, RealTime = true, MemorySize = 8UL << 20 });
            vm.Stopped += v => done.TrySetResult(v);
            vm.Start();
        });
        Assert.That(done.Task.Wait(TimeSpan.FromSeconds(20)), Is.True, "the guest did not power off in 20 s");
        using var stopped = done.Task.Result;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(stopped.StopReason, Is.EqualTo(VmStopReason.PoweredOff), stopped.StopDetail);
            Assert.That(stopped.ConsoleOutput, Does.EndWith("slept 2 ms\n"));
            Assert.That(stopped.BackendName, Is.EqualTo(Vm.KvmAvailable(out _) ? "kvm" : "interpreter"));
        }
    }
}
