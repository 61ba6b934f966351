using Iced.Intel;
using SmartOS.Cli.Scenario;
using SmartOS.Kernel;
using static Iced.Intel.AssemblerRegisters;

namespace SmartOS.Cli.Tests.Commands;

/// <summary>`vmadm console` and `zlogin -C` print a guest's console, follow it (-f, -d) as the guest
/// writes it, or attach to it with keys going to the guest (tools/Commands/GuestConsole.cs). Every
/// wait here is bounded in virtual time and each test is cancelled after a wall-clock bound, so a
/// follower that stalled its guest fails instead of hanging the run.</summary>
public class GuestConsoleTests
{
    private static string[] A(string line) => CliHost.Split(line);

    private string _dir = "";

    [SetUp]
    public void MakeDir() => _dir = Directory.CreateTempSubdirectory("smartos-console-").FullName;

    [TearDown]
    public void RemoveDir() => Directory.Delete(_dir, recursive: true);

    private const int Bound = 60_000;

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


    /// <summary>A guest that prints "ready" and then echoes each byte its UART receives with bit 5
    /// flipped (so "hello" comes back as "HELLO": the guest answered, not a local echo), polling with
    /// interrupts off.</summary>
    internal static byte[] EchoKernel() => BadGuestTests.Kernel(a =>
    {
        BadGuestTests.Print(a, "ready\r\n");
        var poll = a.CreateLabel();
        a.Label(ref poll);
        a.mov(dx, (short)0x3FD);
        a.@in(al, dx);
        a.test(al, 1);
        a.jz(poll);
        a.mov(dx, (short)0x3F8);
        a.@in(al, dx);
        a.xor(al, 0x20);
        a.@out(dx, al);
        a.jmp(poll);
    });

    private (CliHost Host, string Uuid) EchoGuest()
    {
        string kernel = Path.Combine(_dir, "echo");
        File.WriteAllBytes(kernel, EchoKernel());
        return Create(kernel, "55555555-5555-4555-8555-555555555555");
    }

    /// <summary>A guest that writes 'x' to its console for ever, as fast as it can.</summary>
    private (CliHost Host, string Uuid) FloodGuest()
    {
        string kernel = Path.Combine(_dir, "flood");
        File.WriteAllBytes(kernel, BadGuestTests.Kernel(a =>
        {
            a.mov(dx, (short)0x3F8);
            a.mov(al, (byte)'x');
            var again = a.CreateLabel();
            a.Label(ref again);
            a.@out(dx, al);
            a.jmp(again);
        }));
        return Create(kernel, "66666666-6666-4666-8666-666666666666");
    }

    private static (CliHost Host, string Uuid) Create(string kernel, string uuid)
    {
        var h = new CliHost();
        var r = h.WithStdin($$"""
            { "alias": "g", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": false,
              "uuid": "{{uuid}}", "image": { "kernel": "{{kernel}}" } }
            """, "vmadm", "create");
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        return (h, uuid);
    }

    private static SmartOS.Virt.Vm Guest(CliHost h, string uuid) => h.Host.Zones.Find(uuid)!.Guest!;

    private sealed record Attached(Task<int> Task, Stream Out, OutputCapture Err, CancellationTokenSource Stop);

    private static Attached Start(CliHost h, string line, Stream? stdin = null, Stream? stdout = null)
    {
        var o = stdout ?? new OutputCapture();
        var e = new OutputCapture();
        var stop = new CancellationTokenSource();
        var ctx = new CommandContext { World = h.World, Host = h.Host, StdoutBytes = o, StderrBytes = e, StdinBytes = stdin, Cancel = stop.Token };
        return new Attached(Dispatcher.StartAsync(ctx, A(line)), o, e, stop);
    }

    /// <summary>Runs virtual time in 1 ms steps until <paramref name="done"/> or
    /// <paramref name="limit"/> ns have passed; the test's own cancellation ends it too.</summary>
    private static bool RunUntil(CliHost h, Func<bool> done, long limit, CancellationToken cancel)
    {
        long end = h.World.Scheduler.Now + limit;
        while (!done())
        {
            cancel.ThrowIfCancellationRequested();
            if (h.World.Scheduler.Now >= end) return false;
            h.World.Scheduler.RunFor(Time.Millisecond);
        }
        return true;
    }

    [TestCase("vmadm console -f {0}")]
    [TestCase("zlogin -C -d {0}")]
    [CancelAfter(Bound)]
    public void Following_shows_each_line_as_the_guest_writes_it_and_ends_when_the_guest_stops(string command, CancellationToken cancel)
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
        Assert.That(RunUntil(h, () => follow.Task.IsCompleted, 100 * Time.Millisecond, cancel), Is.True, "the guest halted: the console ends");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(follow.Task.Result, Is.Zero);
            Assert.That(follow.Out.ToString(), Is.EqualTo("one\r\ntwo\r\n"));
            Assert.That(follow.Err.ToString(), Is.Empty);
        }
    }

    [Test]
    [CancelAfter(Bound)]
    public void Interrupting_a_followed_console_detaches_and_leaves_the_guest_running(CancellationToken cancel)
    {
        var (h, uuid) = TwoLineGuest(forever: true);
        h.Ok(A($"vmadm start {uuid}"));
        var follow = Start(h, $"vmadm console -f {uuid}");
        Assert.That(RunUntil(h, () => follow.Task.IsCompleted, 100 * Time.Millisecond, cancel), Is.False, "the guest waits for ever: so does the console");
        follow.Stop.Cancel();
        Assert.That(RunUntil(h, () => follow.Task.IsCompleted, Time.Millisecond, cancel), Is.True, "^C detaches at once");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(follow.Task.Result, Is.Zero, "^C detaches");
            Assert.That(follow.Out.ToString(), Is.EqualTo("one\r\ntwo\r\n"));
            Assert.That(h.Ok(A($"vmadm list -p -o state uuid={uuid}")), Is.EqualTo("running\n"));
        }
    }

    [Test]
    [CancelAfter(Bound)]
    public void A_stopped_guests_console_is_printed_whole_when_followed(CancellationToken cancel)
    {
        var (h, uuid) = TwoLineGuest();
        h.Ok(A($"vmadm start {uuid}"));
        RunUntil(h, () => Guest(h, uuid).IsStopped, 100 * Time.Millisecond, cancel);
        var r = h.Run(A($"vmadm console -f {uuid}"));
        Assert.That((r.ExitCode, r.Stdout), Is.EqualTo((0, "one\r\ntwo\r\n")));
    }

    /// <summary>The proof that a follower does not stall its guest: the same guest, followed on one
    /// host and not on another, has retired exactly the same instructions and written the same bytes
    /// at every millisecond of virtual time.</summary>
    [Test]
    [CancelAfter(Bound)]
    public void A_followed_guest_runs_exactly_as_an_unfollowed_one(CancellationToken cancel)
    {
        var (followed, uuid) = TwoLineGuest(forever: true);
        var (alone, _) = TwoLineGuest(forever: true);
        followed.Ok(A($"vmadm start {uuid}"));
        alone.Ok(A($"vmadm start {uuid}"));
        var follow = Start(followed, $"vmadm console -f {uuid}");
        for (int ms = 0; ms < 8; ms++)
        {
            cancel.ThrowIfCancellationRequested();
            followed.World.Scheduler.RunFor(Time.Millisecond);
            alone.World.Scheduler.RunFor(Time.Millisecond);
            Assert.That(Guest(followed, uuid).InstructionsRetired, Is.EqualTo(Guest(alone, uuid).InstructionsRetired), $"after {ms + 1} ms");
            Assert.That(follow.Out.ToString(), Is.EqualTo(Guest(alone, uuid).ConsoleOutput), $"the follower has every byte after {ms + 1} ms");
        }
        Assert.That(Guest(followed, uuid).InstructionsRetired, Is.GreaterThan(2_000_000), "the guest ran through its spin loop");
        follow.Stop.Cancel();
        Assert.That(RunUntil(followed, () => follow.Task.IsCompleted, Time.Millisecond, cancel), Is.True);
    }

    /// <summary>A stdout whose writes wait until the test lets them go: a reader that has stopped
    /// reading (a suspended terminal, a full socket).</summary>
    private sealed class StalledReader : OutputOnlyStream
    {
        private readonly MemoryStream _got = new();
        private TaskCompletionSource? _gate;
        public int Writes { get; private set; }
        public bool Waiting => _gate != null;
        public override string ToString() => System.Text.Encoding.UTF8.GetString(_got.ToArray());
        public long Bytes => _got.Length;

        public void Release()
        {
            var g = _gate;
            _gate = null;
            g?.TrySetResult();
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _got.Write(buffer.Span);
            Writes++;
            _gate = new TaskCompletionSource();
            return new ValueTask(_gate.Task.WaitAsync(cancellationToken));
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override void Write(byte[] buffer, int offset, int count) => _got.Write(buffer, offset, count);
    }

    [Test]
    [CancelAfter(Bound)]
    public void A_reader_that_stops_reading_delays_only_its_console_and_learns_what_it_lost(CancellationToken cancel)
    {
        var (h, uuid) = FloodGuest();
        var (alone, _) = FloodGuest();
        h.Ok(A($"vmadm start {uuid}"));
        alone.Ok(A($"vmadm start {uuid}"));
        var reader = new StalledReader();
        var follow = Start(h, $"vmadm console -f {uuid}", stdout: reader);
        h.World.Scheduler.RunFor(5 * Time.Millisecond);
        alone.World.Scheduler.RunFor(5 * Time.Millisecond);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reader.Writes, Is.EqualTo(1), "one write went out and has not come back");
            Assert.That(Guest(h, uuid).InstructionsRetired, Is.EqualTo(Guest(alone, uuid).InstructionsRetired), "the guest never waited for the reader");
            Assert.That(Guest(h, uuid).InstructionsRetired, Is.GreaterThan(4_000_000));
        }
        for (int i = 0; i < 8 && !follow.Task.IsCompleted; i++)
        {
            if (i == 2) follow.Stop.Cancel();
            reader.Release();
            RunUntil(h, () => reader.Waiting || follow.Task.IsCompleted, Time.Millisecond, cancel);
        }
        Assert.That(RunUntil(h, () => follow.Task.IsCompleted, Time.Millisecond, cancel), Is.True);
        string got = reader.ToString();
        var dropped = System.Text.RegularExpressions.Regex.Match(got, @"\[console: (\d+) bytes dropped while the reader was behind\]\n");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(follow.Task.Result, Is.Zero);
            Assert.That(dropped.Success, Is.True, "the reader is told what it lost");
            Assert.That(dropped.Index, Is.LessThanOrEqualTo(2 * SmartOS.Cli.Commands.GuestConsole.MaxPending), "at most the first write and MaxPending bytes came before it");
            Assert.That(long.Parse(dropped.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0));
        }
    }

    /// <summary>Standard input that the test types into, chunk by chunk, between runs of virtual time.</summary>
    private sealed class Keyboard : InputOnlyStream
    {
        private readonly Queue<byte[]> _typed = new();
        private bool _ended;
        private TaskCompletionSource<int>? _reader;
        private Memory<byte> _into;

        public void Type(string text)
        {
            _typed.Enqueue(System.Text.Encoding.ASCII.GetBytes(text));
            Answer();
        }

        public void End()
        {
            _ended = true;
            Answer();
        }

        private void Answer()
        {
            var r = _reader;
            if (r == null) return;
            _reader = null;
            r.TrySetResult(Take(_into.Span));
        }

        private int Take(Span<byte> into)
        {
            if (_typed.Count == 0) return 0;
            byte[] chunk = _typed.Dequeue();
            chunk.CopyTo(into);
            return chunk.Length;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_typed.Count > 0 || _ended) return ValueTask.FromResult(Take(buffer.Span));
            _into = buffer;
            _reader = new TaskCompletionSource<int>();
            return new ValueTask<int>(_reader.Task.WaitAsync(cancellationToken));
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("read asynchronously, as from a daemon client");
    }

    [TestCase("vmadm console {0}")]
    [TestCase("zlogin -C {0}")]
    [CancelAfter(Bound)]
    public void Keys_go_to_the_guest_and_tilde_dot_detaches_leaving_it_running(string command, CancellationToken cancel)
    {
        var (h, uuid) = EchoGuest();
        h.Ok(A($"vmadm start {uuid}"));
        h.World.Scheduler.RunFor(Time.Millisecond);
        var keys = new Keyboard();
        var console = Start(h, string.Format(System.Globalization.CultureInfo.InvariantCulture, command, uuid), stdin: keys);
        h.World.Scheduler.RunFor(Time.Millisecond);
        Assert.That(console.Out.ToString(), Is.Empty, "attached: the live console, not what the guest wrote before");
        Assert.That(console.Task.IsCompleted, Is.False);
        keys.Type("hello");
        h.World.Scheduler.RunFor(Time.Millisecond);
        Assert.That(console.Out.ToString(), Is.EqualTo("HELLO"), "the guest read the keys and answered");
        // Only at the start of a line is '~' an escape: "a~." is sent as typed; "~~" sends one '~'.
        keys.Type("a~.\r");
        keys.Type("~~\r");
        h.World.Scheduler.RunFor(Time.Millisecond);
        keys.Type("~.");
        Assert.That(RunUntil(h, () => console.Task.IsCompleted, 10 * Time.Millisecond, cancel), Is.True, "~. detached");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(console.Task.Result, Is.Zero);
            Assert.That(console.Out.ToString(), Is.EqualTo("HELLOA^\u000e-^-"));
            Assert.That(h.Ok(A($"vmadm list -p -o state uuid={uuid}")), Is.EqualTo("running\n"), "the guest goes on");
        }
        h.World.Scheduler.RunFor(Time.Millisecond);
        Assert.That(Guest(h, uuid).ConsoleOutput, Is.EqualTo("ready\r\nHELLOA^\u000e-^-"), "nothing after the escape reached the guest");
    }

    [TestCase("vmadm console {0}", "OK")]
    [TestCase("vmadm console -f {0}", "ready\r\nOK")]
    [TestCase("zlogin -C {0}", "OK")]
    [TestCase("zlogin -C -d {0}", "ready\r\nOK")]
    [CancelAfter(Bound)]
    public void The_end_of_input_leaves_the_console_attached_for_the_guests_answer(string command, string seen, CancellationToken cancel)
    {
        var (h, uuid) = EchoGuest();
        h.Ok(A($"vmadm start {uuid}"));
        h.World.Scheduler.RunFor(Time.Millisecond);
        var keys = new Keyboard();
        var console = Start(h, string.Format(System.Globalization.CultureInfo.InvariantCulture, command, uuid), stdin: keys);
        keys.Type("ok");
        keys.End();
        Assert.That(RunUntil(h, () => console.Task.IsCompleted, 10 * Time.Millisecond, cancel), Is.False, "still attached after the input ended");
        Assert.That(console.Out.ToString(), Is.EqualTo(seen), "-f/-d replay the console so far; an attach shows it live");
        console.Stop.Cancel();
        Assert.That(RunUntil(h, () => console.Task.IsCompleted, Time.Millisecond, cancel), Is.True);
        Assert.That(console.Task.Result, Is.Zero);
    }

    [Test]
    [CancelAfter(Bound)]
    public void A_scenario_follows_a_console_in_the_background_for_as_long_as_it_sleeps(CancellationToken cancel)
    {
        string kernel = Path.Combine(_dir, "vmlinuz");
        TwoLineGuest(forever: true);
        File.WriteAllText(Path.Combine(_dir, "vm.json"), $$"""
            { "alias": "two", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": false,
              "uuid": "44444444-4444-4444-8444-444444444444", "image": { "kernel": "{{kernel}}" } }
            """);
        string script = string.Join('\n',
            "host h1",
            "vmadm create -f vm.json",
            "vmadm start 44444444-4444-4444-8444-444444444444",
            "vmadm console -f 44444444-4444-4444-8444-444444444444 &",
            "sleep 1ms",
            "vmadm console 44444444-4444-4444-8444-444444444444",
            "sleep 100ms",
            "stop",
            "vmadm list -p -o state",
            "");
        var o = new StringWriter();
        var e = new StringWriter();
        cancel.ThrowIfCancellationRequested();
        int code = new ScenarioRunner(o, e, _dir).Run(script, "console.scn");
        string transcript = o.ToString();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, e.ToString());
            Assert.That(transcript, Does.Contain("h1# vmadm console 44444444-4444-4444-8444-444444444444\none\r\n"), "printed after 1 ms");
            Assert.That(transcript, Does.Contain("[background, line 4] h1# vmadm console -f 44444444-4444-4444-8444-444444444444\none\r\ntwo\r\n"), "followed for 100 ms, then stopped");
            Assert.That(transcript, Does.Contain("h1# vmadm list -p -o state\nrunning\n"));
        }
    }

    [TestCase("zlogin -d {0}", 2, "zlogin: -d may only be used with -C\n")]
    [TestCase("zlogin -C -d {0}", 1, "zlogin: VM has not been started: no console yet\n")]
    [TestCase("vmadm console {0}", 1, "Failed to console VM {0}: VM has not been started: no console yet\n")]
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
