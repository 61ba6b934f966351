using Iced.Intel;
using SmartOS.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>`vmadm console` and `zlogin -C` print what a guest's console holds so far and return
/// (tools/Commands/GuestConsole.cs); following it (-f, -d) is refused.</summary>
public class GuestConsoleTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-console-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    /// <summary>A guest that prints "one", works for about 4 ms of guest time, prints "two" and
    /// halts (or, <paramref name="forever"/>, waits for ever with interrupts on).</summary>
    private (CliHost Host, string Uuid) TwoLineGuest(bool forever = false)
    {
        string kernel = Path.Combine(_dir, "vmlinuz");
        File.WriteAllBytes(kernel, BadGuestTests.Kernel(a =>
        {
            var spin = a.CreateLabel();
            BadGuestTests.Print(a, "one\r\n");
            a.mov(ecx, 2_000_000);
            a.Label(ref spin);
            a.dec(ecx);
            a.jnz(spin);
            BadGuestTests.Print(a, "two\r\n");
            if (forever) a.sti(); else a.cli();
            var halt = a.CreateLabel();
            a.Label(ref halt);
            a.hlt();
            a.jmp(halt);
        }));
        var h = new CliHost();
        var r = h.WithStdin($$"""
            { "alias": "two", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": false,
              "uuid": "44444444-4444-4444-8444-444444444444", "image": { "kernel": "{{kernel}}" } }
            """, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return (h, "44444444-4444-4444-8444-444444444444");
    }

    [TestCase("vmadm console {0}")]
    [TestCase("zlogin -C {0}")]
    public void The_console_so_far_is_printed_while_the_guest_runs_and_whole_once_it_stops(string command)
    {
        var (h, uuid) = TwoLineGuest();
        h.Ok(A($"vmadm start {uuid}"));
        string line = string.Format(System.Globalization.CultureInfo.InvariantCulture, command, uuid);
        h.World.Scheduler.RunFor(Time.Millisecond);
        Assert.That(h.Ok(A(line)), Is.EqualTo("one\r\n"), "the first line, before the second is written");
        h.World.Scheduler.RunFor(100 * Time.Millisecond);
        Assert.That(h.Ok(A(line)), Is.EqualTo("one\r\ntwo\r\n"));
    }

    [TestCase("zlogin -d {0}", 2, "zlogin: -d may only be used with -C\n")]
    [TestCase("zlogin -C -d {0}", 2, "zlogin: -C -d (following the console) is not supported here: zlogin -C prints it so far\n")]
    [TestCase("vmadm console {0}", 1, "Failed to console VM {0}: VM has not been started: no console yet\n")]
    [TestCase("vmadm console -f {0}", 2, "vmadm: console -f (following the console) is not supported here: vmadm console prints it so far\n")]
    [TestCase("vmadm console -x {0}", 2, "vmadm: ")]
    public void Bad_console_requests_are_refused(string line, int code, string message)
    {
        var (h, uuid) = TwoLineGuest();
        var r = h.Run(A(string.Format(System.Globalization.CultureInfo.InvariantCulture, line, uuid)));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(r.ExitCode, Is.EqualTo(code));
            Assert.That(r.Stderr, Does.StartWith(string.Format(System.Globalization.CultureInfo.InvariantCulture, message, uuid)));
            Assert.That(r.Stdout, Is.Empty);
        }
    }
}
