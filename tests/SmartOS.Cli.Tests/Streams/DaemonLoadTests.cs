using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using SmartOS.Cli.Daemon;
using SmartOS.Testing;

namespace SmartOS.Cli.Tests.Streams;

/// <summary>Bad clients cannot starve the daemon (DaemonServer.cs rules 1 to 4): silent ones, slow
/// readers and ones that never read hold no thread and delay no one, past the bounds they are
/// refused or dropped with a message, and an oversized frame is refused with one.</summary>
[NonParallelizable]
public class DaemonLoadTests
{
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(20);

    /// <summary>Sends W and A frames for <paramref name="argv"/> on a raw socket and reads nothing.</summary>
    internal static void SendRequest(Socket s, params string[] argv)
    {
        using var stream = new NetworkStream(s, ownsSocket: false);
        Protocol.WriteString(stream, Protocol.WorkingDirectory, "/");
        Protocol.Write(stream, Protocol.Argv, Protocol.EncodeArgv(argv));
    }

    /// <summary>Reads frames until X or the end: what the client was told on stderr, and its exit status.</summary>
    internal static (string Err, int? Code) ReadAnswer(Socket s)
    {
        s.ReceiveTimeout = (int)s_bound.TotalMilliseconds;
        using var stream = new NetworkStream(s, ownsSocket: false);
        var err = new StringBuilder();
        try
        {
            while (Protocol.Read(stream) is { } f)
            {
                if (f.Type == Protocol.Stderr) err.Append(Encoding.UTF8.GetString(f.Payload));
                if (f.Type == Protocol.Exit) return (err.ToString(), BinaryPrimitives.ReadInt32BigEndian(f.Payload));
            }
        }
        catch (IOException) { }
        return (err.ToString(), null);
    }

    [Test]
    public void Hundreds_of_silent_and_slow_clients_do_not_delay_a_well_behaved_command()
    {
        using var rig = new DaemonRig(new DaemonLimits { MaxConnections = 400, RequestTimeout = TimeSpan.FromSeconds(60) });
        rig.TwoZones();
        var bad = new List<Socket>();
        var slow = new List<Task<(int Code, string Err)>>();
        try
        {
            // 200 clients connect and say nothing; 50 send half a request.
            for (int i = 0; i < 250; i++)
            {
                var s = rig.Connect();
                if (i >= 200)
                {
                    using var stream = new NetworkStream(s, ownsSocket: false);
                    Protocol.WriteString(stream, Protocol.WorkingDirectory, "/");
                }
                bad.Add(s);
            }
            // 10 clients start listeners whose output they never read, and 10 senders flood them.
            for (int i = 0; i < 10; i++)
            {
                var s = rig.Connect();
                SendRequest(s, "zlogin", "server", "nc", "-l", (9100 + i).ToString(System.Globalization.CultureInfo.InvariantCulture));
                bad.Add(s);
            }
            Thread.Sleep(300);
            for (int i = 0; i < 10; i++)
                slow.Add(rig.Client(null, Stream.Null, "zlogin", "client", "nc", "--bytes", "64M", "198.18.3.3", (9100 + i).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            // 10 clients that read, slowly (a pause before every frame of output), what 10 more send.
            for (int i = 0; i < 10; i++)
                slow.Add(rig.Client(null, new HashingSink(TimeSpan.FromMilliseconds(50)), "zlogin", "server", "nc", "-l", (9200 + i).ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Thread.Sleep(300);
            for (int i = 0; i < 10; i++)
                slow.Add(rig.Client(new GeneratedInput(2 << 20, i), Stream.Null, "zlogin", "client", "nc", "198.18.3.3", (9200 + i).ToString(System.Globalization.CultureInfo.InvariantCulture)));

            var good = Enumerable.Range(0, 20).Select(_ => rig.Client(null, new OutputCapture(), "dladm", "show-link", "-p", "-o", "link")).ToArray();
            bool answered = Task.WaitAll(good, s_bound);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(answered, Is.True, $"{good.Count(t => !t.IsCompleted)} of 20 commands did not answer within {s_bound.TotalSeconds} s");
                Assert.That(good.Where(t => t.IsCompleted).Select(t => t.Result.Code), Is.All.Zero);
                Assert.That(rig.Server.OpenConnections, Is.GreaterThanOrEqualTo(270), "the bad clients were still connected");
                Assert.That(rig.Rt.Sh("zonename").Out, Is.EqualTo("global\n"), "the loop answers");
            }
        }
        finally
        {
            foreach (var s in bad) s.Dispose();
        }
        Assert.That(Task.WaitAll([.. slow], s_bound), Is.True, "closing the bad clients did not end their commands");
    }

    [Test]
    public void A_client_past_the_connection_bound_is_refused_with_a_message()
    {
        using var rig = new DaemonRig(new DaemonLimits { MaxConnections = 5 });
        var held = Enumerable.Range(0, 5).Select(_ => rig.Connect()).ToList();
        try
        {
            for (int i = 0; i < 100 && rig.Server.OpenConnections < 5; i++) Thread.Sleep(10);
            var refused = rig.Sh("zonename");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(refused.Code, Is.EqualTo(1));
                Assert.That(refused.Err, Is.EqualTo("smartos: the host is serving 5 connections, the most it takes; try again later\n"));
                Assert.That(rig.Server.Refused, Is.EqualTo(1));
            }
        }
        finally
        {
            foreach (var s in held) s.Dispose();
        }
        for (int i = 0; i < 100 && rig.Server.OpenConnections > 0; i++) Thread.Sleep(10);
        Assert.That(rig.Sh("zonename").Out, Is.EqualTo("global\n"), "served again once the others closed");
    }

    [Test]
    public void A_client_that_sends_no_request_in_time_is_told_and_dropped()
    {
        using var rig = new DaemonRig(new DaemonLimits { RequestTimeout = TimeSpan.FromMilliseconds(300) });
        using var silent = rig.Connect();
        var (err, code) = ReadAnswer(silent);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(err, Is.EqualTo("smartos: no command within 0.3s; closing the connection\n"));
            Assert.That(code, Is.EqualTo(1));
            Assert.That(rig.Server.TimedOut, Is.EqualTo(1));
        }
    }

    [Test]
    public void A_frame_over_the_limit_is_refused_with_a_message()
    {
        using var rig = new DaemonRig();
        using var s = rig.Connect();
        var header = new byte[5];
        header[0] = Protocol.Argv;
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(1), 2 << 20);
        s.Send(header);
        var (err, code) = ReadAnswer(s);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(err, Is.EqualTo("smartos: a frame of 2097152 bytes is larger than 1 MiB, the most the socket takes\n"));
            Assert.That(code, Is.EqualTo(2));
        }
    }

    /// <summary>`vmadm create -f FIFO` waits for its writer off the loop: meanwhile the host runs and
    /// answers other commands; `-f /dev/zero` is refused at the limit instead of filling memory.</summary>
    [Test]
    public void Vmadm_reads_its_payload_off_the_loop_and_within_the_limit()
    {
        if (OperatingSystem.IsWindows()) Assert.Ignore("needs mkfifo");
        using var rig = new DaemonRig();
        string fifo = Path.Combine(Path.GetTempPath(), "smartos-fifo-" + Environment.ProcessId);
        using (var mk = System.Diagnostics.Process.Start("mkfifo", [fifo])) mk.WaitForExit();
        try
        {
            var create = rig.Client(null, Stream.Null, "vmadm", "create", "-f", fifo);
            Thread.Sleep(200);
            var meanwhile = rig.Sh("dladm", "show-phys", "-p", "-o", "link");
            bool waitingMeanwhile = !create.IsCompleted;
            File.WriteAllText(fifo, """{ "alias": "late", "autoboot": false }""");
            Assert.That(create.Wait(s_bound), Is.True, "vmadm did not finish after the payload came");
            var zero = rig.Sh("vmadm", "create", "-f", "/dev/zero");
            using (Assert.EnterMultipleScope())
            {
                Assert.That(meanwhile.Code, Is.Zero, meanwhile.Err);
                Assert.That(waitingMeanwhile, Is.True, "vmadm should still be waiting for its writer");
                Assert.That(create.Result.Code, Is.Zero, create.Result.Err);
                Assert.That(create.Result.Err, Does.StartWith("Successfully created VM "));
                Assert.That(zero.Code, Is.EqualTo(1));
                Assert.That(zero.Err, Is.EqualTo("Failed to create VM: unable to read /dev/zero: /dev/zero is larger than 1 MiB, the most a command reads as one payload\n"));
            }
        }
        finally
        {
            File.Delete(fifo);
        }
    }
}
