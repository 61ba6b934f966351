using SmartOS.Kernel;
using SmartOS.Virt;
using SmartOS.Zones;

namespace SmartOS.Cli.Commands;

/// <summary>
/// The serial console (COM1) of a bhyve or kvm guest, as `vmadm console` and `zlogin -C` show it
/// (HvmGuest.cs rule 4 keeps it from one start to the next).
///
/// Terms
///   print        write what the guest has written so far and return.
///   follow       print, then each byte as the guest writes it, until the session ends.
///   attach       follow, and send the command's standard input to the guest's UART (keys typed at
///                a terminal, a pipe): an interactive console.
///   escape       zlogin's `~.` at the start of a line (after CR or LF, or as the first input):
///                detach. `~~` there sends one `~`; `~` then anything else sends both.
///
/// Modes
///   `vmadm console UUID`, `zlogin -C ZONE`: attach when the command has standard input (a daemon
///   client's terminal or pipe, a scenario's `<`), else print. Attached, the session shows what the
///   guest writes from then on, as a connection to a live console does (the boot so far is what
///   print and follow show).
///   `vmadm console -f UUID`, `zlogin -C -d ZONE`: follow, and attach if there is input.
///   The end of input ends neither: the guest's answer to the last key is still to come (a
///   scenario's `vmadm console UUID <<KEYS &` sees it until `stop`).
///
/// Rules
///   1. The session is a consumer on the host's loop and never blocks it. The UART hands it each
///      byte inside the guest's port I/O; the byte is buffered and a zero-delay loop event (a
///      KTimer, never a thread-pool continuation) wakes the writer, which writes between the
///      guest's slices. So in virtual time the bytes come at the guest's instructions, a run gives
///      the same output every time, and the guest runs exactly as it would unfollowed.
///   2. A reader slower than the guest delays only this command: at most MaxPending bytes wait for
///      it, and what would go past that is dropped and counted in one line when the reader catches
///      up (the guest never waits for a reader).
///   3. The session ends, exit 0, when the guest stops (what it wrote before stopping included),
///      on `~.`, or on ^C (the command's cancellation: a scenario's `stop`, a daemon client's ^C).
///      The guest goes on after a detach.
///   4. Input reaches the guest's UART receive queue on the loop, between slices (Vm.ConsoleInput);
///      a guest that does not read it loses what passes the UART's bound, counted there.
///   5. Bytes pass as the guest wrote them (Dispatcher.cs rule 5).
///   6. A zone of another brand has no console, and a VM that has never started has none yet:
///      both are refused with the command's prefix, exit 1.
///
/// A front end that has a terminal offers it key by key for these command lines (the descriptors'
/// TerminalInput; Program.cs): ^C then goes to the guest as a byte, as on a real console, and `~.`
/// detaches. The dashboard's command console runs the same commands through the dispatcher, so a
/// followed console there is this session too, cut at the dashboard's command timeout.
/// </summary>
internal static class GuestConsole
{
    public const int MaxPending = 1 << 20;

    /// <summary>The zone's guest, or null after printing why it has no console (rule 6).</summary>
    private static Vm? Find(CommandContext ctx, Zone z, string failure)
    {
        if (!HvmGuest.IsHvm(z.Config.Brand))
        {
            ctx.Err.WriteLine(failure + $"the console of a {z.Config.Brand} zone is not supported; only bhyve and kvm guests have one");
            return null;
        }
        if (z.Guest == null) ctx.Err.WriteLine(failure + "VM has not been started: no console yet");
        return z.Guest;
    }

    /// <summary>Prints, follows or attaches, as the modes in the theory statement say.</summary>
    public static async Task<int> RunAsync(CommandContext ctx, Zone z, string failure, bool follow)
    {
        var vm = Find(ctx, z, failure);
        if (vm == null) return 1;
        if (!follow && ctx.StdinBytes == null)
        {
            ctx.Out.Write(vm.ConsoleOutput);
            return 0;
        }
        var session = new ConsoleSession(vm, ctx.Host.Scheduler, ctx.StdoutBytes, ctx.Out, ctx.StdinBytes, replay: follow);
        return await session.RunAsync(ctx.Cancel);
    }

    /// <summary>Whether a command line of vmadm/zlogin is a console that takes keys (the descriptors'
    /// TerminalInput).</summary>
    public static bool IsConsoleLine(string[] args, bool zlogin)
        => zlogin ? Getopt.Parse(args, Zlogin.Descriptor.Options).Has("C") : args.Length > 0 && args[0] == "console";
}

/// <summary>One follower of a guest's console (GuestConsole.cs rules 1 to 4).</summary>
internal sealed class ConsoleSession
{
    private readonly Vm _vm;
    private readonly Stream _out;
    private readonly TextWriter _text;
    private readonly Stream? _in;
    private readonly bool _replay;
    private readonly KTimer _signal;
    // Two buffers: the guest fills _pending while the writer writes _writing (rule 2).
    private byte[] _pending = new byte[4096], _writing = new byte[4096];
    private int _count;
    private long _dropped;
    private TaskCompletionSource? _wake;
    private int _cancelled;
    private bool _detached, _guestStopped;
    // The escape filter: at the start of a line, and a '~' seen there.
    private bool _lineStart = true, _tilde;

    public ConsoleSession(Vm vm, Scheduler scheduler, Stream output, TextWriter text, Stream? input, bool replay)
    {
        _vm = vm;
        _out = output;
        _text = text;
        _in = input;
        _replay = replay;
        _signal = new KTimer(scheduler, static s => ((ConsoleSession)s!).Signal(), this);
    }

    public async Task<int> RunAsync(CancellationToken cancel)
    {
        if (_replay) Add(_vm.Uart.CapturedBytes());
        _vm.Uart.ByteWritten += OnByte;
        _vm.Stopped += OnStop;
        _guestStopped = _vm.IsStopped;
        using var registration = cancel.Register(static s => ((ConsoleSession)s!).CancelFromAnyThread(), this);
        // The input pump ends with the session: its pending read is cancelled, not awaited (a read
        // that ignored its token must not keep the command alive).
        using var inputEnd = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        if (_in != null) _ = PumpInputAsync(_in, inputEnd.Token);
        try
        {
            while (true)
            {
                if (_count > 0 || _dropped > 0)
                {
                    // What waits came before the drop (once full, every later byte is dropped until
                    // this swap), so the notice follows it and precedes what comes next.
                    (_pending, _writing) = (_writing, _pending);
                    int n = _count;
                    long dropped = _dropped;
                    _count = 0;
                    _dropped = 0;
                    if (n > 0) await _out.WriteAsync(_writing.AsMemory(0, n), cancel);
                    if (dropped > 0) await _text.WriteLineAsync($"[console: {dropped} bytes dropped while the reader was behind]");
                    continue;
                }
                if (_guestStopped || _detached || Volatile.Read(ref _cancelled) != 0) return 0;
                // Published before the flag is read again: a cancel from another thread either sees
                // this wake or is seen by the check below.
                var wake = new TaskCompletionSource();
                Interlocked.Exchange(ref _wake, wake);
                if (Volatile.Read(ref _cancelled) != 0) return 0;
                await wake.Task;
            }
        }
        catch (OperationCanceledException)
        {
            return 0; // ^C detaches from the console: the guest goes on.
        }
        finally
        {
            _vm.Uart.ByteWritten -= OnByte;
            _vm.Stopped -= OnStop;
            _signal.Cancel();
            _detached = true;
            inputEnd.Cancel();
        }
    }

    /// <summary>Rule 4: input to the guest, through the escape filter, until the session ends.</summary>
    private async Task PumpInputAsync(Stream input, CancellationToken cancel)
    {
        var buffer = new byte[256];
        var deliver = new byte[512];
        try
        {
            while (!_detached)
            {
                int n = await input.ReadAsync(buffer, cancel);
                if (_detached) return;
                if (n == 0) return;
                int m = Filter(buffer.AsSpan(0, n), deliver, out bool escape);
                if (m > 0 && !_vm.IsStopped) _vm.ConsoleInput(deliver.AsSpan(0, m));
                if (escape)
                {
                    Detach();
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // The session ended or the client went away: its output side says so.
        }
    }

    /// <summary>The escape filter (the theory statement's "escape"): copies keys to
    /// <paramref name="output"/> (at least twice the input's length), and says whether `~.` came.</summary>
    private int Filter(ReadOnlySpan<byte> keys, Span<byte> output, out bool escape)
    {
        int m = 0;
        escape = false;
        foreach (byte b in keys)
        {
            if (_tilde)
            {
                _tilde = false;
                if (b == (byte)'.') { escape = true; return m; }
                output[m++] = (byte)'~';
                if (b == (byte)'~') { _lineStart = false; continue; }
            }
            else if (_lineStart && b == (byte)'~')
            {
                _tilde = true;
                continue;
            }
            output[m++] = b;
            _lineStart = b is (byte)'\r' or (byte)'\n';
        }
        return m;
    }

    private void Detach()
    {
        _detached = true;
        ArmSignal();
    }

    private void OnByte(byte b)
    {
        if (_count == _pending.Length && _count < GuestConsole.MaxPending) Array.Resize(ref _pending, Math.Min(_count * 2, GuestConsole.MaxPending));
        if (_count < _pending.Length) _pending[_count++] = b;
        else _dropped++;
        ArmSignal();
    }

    private void Add(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) OnByte(b);
    }

    private void OnStop(Vm _)
    {
        _guestStopped = true;
        ArmSignal();
    }

    /// <summary>Rule 1: the writer is woken by a loop event, never from inside the guest's I/O.</summary>
    private void ArmSignal()
    {
        if (!_signal.IsArmed) _signal.ArmAfter(0);
    }

    private void Signal() => Interlocked.Exchange(ref _wake, null)?.TrySetResult();

    /// <summary>^C, from whatever thread cancels the command.</summary>
    private void CancelFromAnyThread()
    {
        Volatile.Write(ref _cancelled, 1);
        Interlocked.Exchange(ref _wake, null)?.TrySetResult();
    }
}
