using System.Diagnostics;
using SmartOS.Testing;
namespace SmartOS.Cli.Tests.Streams;
public class TmpSpeed
{
    [Test]
    public void Speed()
    {
        using var rig = new DaemonRig();
        rig.TwoZones();
        var sink = new HashingSink();
        var clock = Stopwatch.StartNew();
        var (task, cts, o, e) = rig.Rt.Begin(null, ["zlogin", "server", "nc", "-l", "9000", "--count"]);
        Thread.Sleep(200);
        var r = rig.Rt.ShBytes(null, "zlogin", "client", "nc", "--bytes", "64M", "198.18.3.3", "9000");
        task.Wait(60000);
        TestContext.Out.WriteLine($"direct: {clock.Elapsed.TotalSeconds} s {o}");
        clock.Restart();
        (task, cts, o, e) = rig.Rt.Begin(null, ["zlogin", "server", "nc", "-l", "9000", "--count"]);
        Thread.Sleep(200);
        var t2 = rig.Rt.Begin(new YieldingInput(new GeneratedInput(64 << 20, 1)), ["zlogin", "client", "nc", "198.18.3.3", "9000"]);
        task.Wait(60000);
        TestContext.Out.WriteLine($"direct yielding stdin: {clock.Elapsed.TotalSeconds} s {o}");
        clock.Restart();
        var server = rig.Client(null, sink, "zlogin", "server", "nc", "-l", "9000");
        Thread.Sleep(200);
        var client = rig.Client(null, Stream.Null, "zlogin", "client", "nc", "--bytes", "64M", "198.18.3.3", "9000");
        Task.WaitAll([server, client], 120000);
        TestContext.Out.WriteLine($"daemon out only: {clock.Elapsed.TotalSeconds} s {sink.Written}");
        clock.Restart();
        var server2 = rig.Client(null, Stream.Null, "zlogin", "server", "nc", "-l", "9000", "--count");
        Thread.Sleep(200);
        var client2 = rig.Client(new GeneratedInput(64 << 20, 1), Stream.Null, "zlogin", "client", "nc", "198.18.3.3", "9000");
        Task.WaitAll([server2, client2], 120000);
        TestContext.Out.WriteLine($"daemon in only: {clock.Elapsed.TotalSeconds} s {server2.Result}");
    }
}

internal sealed class YieldingInput(Stream inner) : Stream
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Task.Yield();
        await Task.Delay(0).ConfigureAwait(false);
        return await Task.Run(() => inner.Read(buffer.Span)).ConfigureAwait(false);
    }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => 0;
    public override long Position { get => 0; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
