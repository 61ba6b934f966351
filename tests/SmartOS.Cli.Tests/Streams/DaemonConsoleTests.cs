using System.Collections.Concurrent;
using SmartOS.Cli.Tests.Commands;
using SmartOS.Testing;

namespace SmartOS.Cli.Tests.Streams;

/// <summary>`smartos vmadm console UUID` against a running daemon (tools/Commands/GuestConsole.cs):
/// the client's input goes to the guest's UART, the guest's answer comes back as it writes it, and
/// `~.` detaches with the guest still running. Every wait is bounded.</summary>
[NonParallelizable]
public class DaemonConsoleTests
{
    private const string Uuid = "77777777-7777-4777-8777-777777777777";
    private DaemonRig? _rig;
    private string _dir = "";

    [SetUp]
    public void Boot()
    {
        _dir = Directory.CreateTempSubdirectory("smartos-console-").FullName;
        _rig = new DaemonRig();
    }

    [TearDown]
    public void Halt()
    {
        _rig?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Keys a test types, read by the client's input thread as a pipe would be.</summary>
    private sealed class TypedKeys : InputOnlyStream
    {
        private readonly BlockingCollection<byte[]> _typed = new();
        private byte[] _left = [];

        public void Type(string text) => _typed.Add(System.Text.Encoding.ASCII.GetBytes(text));

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_left.Length == 0 && !_typed.TryTake(out _left!, RealTimeHost.Wait)) return 0;
            int n = Math.Min(count, _left.Length);
            _left.AsSpan(0, n).CopyTo(buffer.AsSpan(offset));
            _left = _left[n..];
            return n;
        }

    }

    private static bool WaitFor(Func<bool> done)
    {
        for (int i = 0; i < 400; i++)
        {
            if (done()) return true;
            Thread.Sleep(50);
        }
        return done();
    }

    [Test]
    public void Keys_through_the_daemon_reach_the_guest_and_tilde_dot_detaches()
    {
        string kernel = Path.Combine(_dir, "echo");
        File.WriteAllBytes(kernel, GuestConsoleTests.EchoKernel());
        var r = _rig!.Rt.ShIn($$"""
            { "alias": "echo", "brand": "bhyve", "ram": 64, "vcpus": 1, "autoboot": true,
              "uuid": "{{Uuid}}", "image": { "kernel": "{{kernel}}" } }
            """, "vmadm", "create");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(WaitFor(() => _rig.Sh("vmadm", "console", Uuid).Out == "ready\r\n"), Is.True, "the guest booted and printed");

        var keys = new TypedKeys();
        var output = new OutputCapture();
        var console = _rig.Client(keys, output, "vmadm", "console", Uuid);
        keys.Type("hello");
        Assert.That(WaitFor(() => output.ToString() == "HELLO"), Is.True, "the guest answered the keys: " + output);
        keys.Type("\r~.");
        Assert.That(console.Wait(RealTimeHost.Wait), Is.True, "~. detached");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(console.Result.Code, Is.Zero, console.Result.Err);
            Assert.That(output.ToString(), Is.EqualTo("HELLO-"), "an attach shows the live console, not the boot so far");
            Assert.That(_rig.Sh("vmadm", "list", "-p", "-o", "state", "uuid=" + Uuid).Out, Is.EqualTo("running\n"), "the guest goes on");
        }
    }
}
