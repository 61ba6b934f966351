using Iced.Intel;
using SmartOS.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>`vmadm console -f` and `zlogin -C -d` follow a guest's console as it writes it
/// (tools/Commands/GuestConsole.cs); without them both print what is there and return.</summary>
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

    private static (Task<int> Task, OutputCapture Out, OutputCapture Err, CancellationTokenSource Stop) Start(CliHost h, string line)
    {
        var o = new OutputCapture();
        var e = new OutputCapture();
        var stop = new CancellationTokenSource();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, Cancel = stop.Token };
        return (Dispatcher.StartAsync(ctx, A(line)), o, e, stop);
    }

    [TestCase("vmadm console -f {0}")]
    [TestCase("zlogin -C -d {0}")]
    public void Following_shows_each_line_as_the_guest_writes_it_and_ends_when_the_guest_stops(string command)
    {
        var (h, uuid) = TwoLineGuest();
        h.Ok(A($"vmadm start {uuid}"));
        var follow = Start(h, string.Format(System.Globalization.CultureInfo.InvariantCulture, command, uuid));
        h.World.Scheduler.RunFor(Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(follow.Out.ToString(), Is.EqualTo("one\r\n"), "the first line, before the second is written");
            Assert.That(follow.Task.IsCompleted, Is.False, "still attached while the guest runs");
            Assert.That(h.Ok(A($"vmadm console {uuid}")), Is.EqualTo("one\r\n"), "without -f: what is there, at once");
        }
        h.World.Scheduler.RunFor(100 * Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(follow.Task.IsCompleted, Is.True, "the guest halted: the console ends");
            Assert.That(follow.Task.Result, Is.Zero);
            Assert.That(follow.Out.ToString(), Is.EqualTo("one\r\ntwo\r\n"));
            Assert.That(follow.Err.ToString(), Is.Empty);
        }
    }

    [Test]
    public void Interrupting_a_followed_console_detaches_and_leaves_the_guest_running()
    {
        var (h, uuid) = TwoLineGuest(forever: true);
        h.Ok(A($"vmadm start {uuid}"));
        var follow = Start(h, $"vmadm console -f {uuid}");
        h.World.Scheduler.RunFor(100 * Time.Millisecond);
        Assert.That(follow.Task.IsCompleted, Is.False, "the guest waits for ever: so does the console");
        follow.Stop.Cancel();
        h.World.Scheduler.RunFor(Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(follow.Task.IsCompleted, Is.True);
            Assert.That(follow.Task.Result, Is.Zero, "^C detaches");
            Assert.That(follow.Out.ToString(), Is.EqualTo("one\r\ntwo\r\n"));
            Assert.That(h.Ok(A($"vmadm list -p -o state uuid={uuid}")), Is.EqualTo("running\n"));
        }
    }

    [Test]
    public void A_stopped_guests_console_is_printed_whole_when_followed()
    {
        var (h, uuid) = TwoLineGuest();
        h.Ok(A($"vmadm start {uuid}"));
        h.World.Scheduler.RunFor(100 * Time.Millisecond);
        var r = h.Run(A($"vmadm console -f {uuid}"));
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "one\r\ntwo\r\n")));
    }

    [TestCase("zlogin -d {0}", 2, "zlogin: -d may only be used with -C\n")]
    [TestCase("vmadm console -f {0}", 1, "Failed to console VM {0}: VM has not been started: no console yet\n")]
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
