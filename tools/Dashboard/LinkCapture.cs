using SmartOS.Cli.Snoop;
using SmartOS.Kernel;
using SmartOS.Vnic;
using SmartOS.Zones;

namespace SmartOS.Cli.Dashboard;

/// <summary>How a capture ended.</summary>
internal enum CaptureEnd { Complete, Full, LinkGone, WriteFailed, Abandoned }

/// <summary>A capture's outcome: the pcap bytes (for Complete and Full), the packets taken, the error.</summary>
internal sealed record CaptureResult(CaptureEnd End, byte[] Pcap, long Packets, string? Error);

/// <summary>
/// One capture the dashboard's button asked for (DashboardServer.cs rule 6): a capture tap on the
/// link, as snoop -d puts one, writing pcap into memory for N seconds of the host's clock. It ends
/// at its timer, when MaxCaptureBytes are written (the file so far is served), when the link goes
/// away (the dashboard's tick notices: a deleted link's taps see nothing more, so waiting would
/// only hand back a silently short file), or when the client leaves. Everything but Done is
/// touched on the loop only.
/// </summary>
internal sealed class LinkCapture : ICaptureTap
{
    private readonly Host _host;
    private readonly Datalink _link;
    private readonly MemoryStream _buffer;
    private readonly CaptureFileWriter _writer;
    private readonly int _maxBytes;
    private readonly List<LinkCapture> _active;
    private readonly KTimer _timer;
    private long _packets;
    private bool _ended;

    private LinkCapture(Host host, Datalink link, MemoryStream buffer, CaptureFileWriter writer, int maxBytes, List<LinkCapture> active)
    {
        _host = host;
        _buffer = buffer;
        _link = link;
        _writer = writer;
        _maxBytes = maxBytes;
        _active = active;
        _timer = new KTimer(host.Scheduler, _ => End(CaptureEnd.Complete));
    }

    /// <summary>Completes with the outcome; set on the loop, awaited by the handler.</summary>
    public TaskCompletionSource<CaptureResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Starts capturing <paramref name="name"/> for <paramref name="seconds"/>; null when
    /// there is no such link. On the loop.</summary>
    public static LinkCapture? Start(Host host, string name, int seconds, int maxBytes, List<LinkCapture> active)
    {
        var link = host.Mac.Find(name);
        if (link == null) return null;
        var buffer = new MemoryStream();
        var writer = CaptureFileWriter.Create(buffer, name + ".pcap", CaptureFormat.Pcap, [name], out string error, leaveOpen: true)
            ?? throw new InvalidOperationException("a pcap writer over memory cannot fail to open: " + error);
        var capture = new LinkCapture(host, link, buffer, writer, maxBytes, active);
        link.AddTap(capture);
        active.Add(capture);
        capture._timer.ArmAfter(seconds * 1_000_000_000L);
        return capture;
    }

    public void Capture(Datalink link, ReadOnlySpan<byte> frame, long time, TapDirection direction)
    {
        if (_ended) return;
        if (!_writer.Write(0, frame, time))
        {
            End(CaptureEnd.WriteFailed);
            return;
        }
        _packets++;
        if (_buffer.Length >= _maxBytes) End(CaptureEnd.Full);
    }

    /// <summary>The dashboard's tick: ends the capture when its link is no longer the host's.</summary>
    public void CheckLink()
    {
        if (!ReferenceEquals(_host.Mac.Find(_link.Name), _link)) End(CaptureEnd.LinkGone);
    }

    /// <summary>Ends the capture (once): the tap comes off, the timer stops, the outcome is set.</summary>
    public void End(CaptureEnd how)
    {
        if (_ended) return;
        _ended = true;
        _timer.Cancel();
        _link.RemoveTap(this);
        _active.Remove(this);
        string? error = _writer.Error;
        _writer.Dispose();
        if (how == CaptureEnd.Complete && error != null) how = CaptureEnd.WriteFailed;
        Done.TrySetResult(new CaptureResult(how, how is CaptureEnd.Complete or CaptureEnd.Full ? _buffer.ToArray() : [], _packets, error));
    }
}
