using System.Net.Sockets;
using System.Security.Cryptography;
using SmartOS.Cli.Daemon;
using SmartOS.Testing;

namespace SmartOS.Cli.Tests.Streams;

/// <summary>A host in real time with its daemon socket, in-process, and `smartos` clients that talk
/// to it as the command line does (DaemonClient). Every wait is bounded.</summary>
internal sealed class DaemonRig : IDisposable
{
    private readonly string _dir;

    public DaemonRig(DaemonLimits? limits = null)
    {
        _dir = Directory.CreateTempSubdirectory("smartos-daemon-").FullName;
        Rt = new RealTimeHost(nics: 0);
        SocketPath = Path.Combine(_dir, Protocol.SocketName);
        Server = new DaemonServer(Rt.World, Rt.Host, SocketPath, limits);
        Server.Start();
    }

    public RealTimeHost Rt { get; }
    public DaemonServer Server { get; }
    public string SocketPath { get; }

    /// <summary>Runs a command through the socket on a thread of its own, as a `smartos` process
    /// would (a client blocks on its socket; on the pool it would starve the daemon's own work).</summary>
    public Task<(int Code, string Err)> Client(Stream? stdin, Stream stdout, params string[] argv) => Task.Factory.StartNew(() =>
    {
        var socket = DaemonClient.TryConnect(SocketPath) ?? throw new InvalidOperationException("no daemon on " + SocketPath);
        var err = new OutputCapture();
        int code = DaemonClient.Run(socket, argv, stdin, stdout, err);
        return (code, err.ToString());
    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Runs a command through the socket to completion (bounded); its output as text.</summary>
    public (int Code, string Out, string Err) Sh(params string[] argv)
    {
        var o = new OutputCapture();
        var t = Client(null, o, argv);
        if (!t.Wait(RealTimeHost.Wait)) throw new TimeoutException($"{string.Join(' ', argv)} did not answer through the daemon");
        return (t.Result.Code, o.ToString(), t.Result.Err);
    }

    /// <summary>A raw connection to the socket, for clients that misbehave.</summary>
    public Socket Connect()
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(SocketPath));
        return s;
    }

    /// <summary>Two joyent VMs, server (198.18.3.3) and client (198.18.3.2), on an etherstub nic tag,
    /// running and answering ping.</summary>
    public void TwoZones()
    {
        Rt.Ok("nictagadm", "add", "-l", "stub0");
        foreach (var (alias, ip) in (ReadOnlySpan<(string, string)>)[("server", "198.18.3.3"), ("client", "198.18.3.2")])
        {
            var r = Rt.ShIn($$"""{ "alias": "{{alias}}", "autoboot": true, "nics": [ { "nic_tag": "stub0", "ips": ["{{ip}}/24"] } ] }""", "vmadm", "create");
            if (r.Code != 0) throw new InvalidOperationException("vmadm create: " + r.Err);
        }
        for (int i = 0; i < 50; i++)
        {
            if (Rt.Sh("zlogin", "client", "ping", "-s", "198.18.3.3", "56", "1").Code == 0) return;
            Thread.Sleep(100);
        }
        throw new InvalidOperationException("the zones never answered ping");
    }

    public void Dispose()
    {
        Server.Dispose();
        Rt.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>N pseudo-random bytes (every value 0-255 within each 64 KiB), made as they are read, with
/// a running SHA-256 of what was read.</summary>
internal sealed class GeneratedInput(long length, int seed) : Stream
{
    private readonly Random _random = new(seed);
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _position;

    public string Sha => Convert.ToHexString(_sha.GetCurrentHash());

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = (int)Math.Min(count, length - _position);
        var span = buffer.AsSpan(offset, n);
        _random.NextBytes(span);
        for (int i = 0; i < n; i++)
            if (((_position + i) & 0xFFFF) < 256) span[i] = (byte)((_position + i) & 0xFF);
        _position += n;
        _sha.AppendData(span);
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Counts and hashes what is written, keeping none of it; optionally slow.</summary>
internal sealed class HashingSink(TimeSpan pause = default) : Stream
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _length;

    public string Sha
    {
        get { lock (_sha) return Convert.ToHexString(_sha.GetCurrentHash()); }
    }

    public long Written => Interlocked.Read(ref _length);

    public override void Write(byte[] buffer, int offset, int count)
    {
        if (pause > TimeSpan.Zero) Thread.Sleep(pause);
        lock (_sha) _sha.AppendData(buffer, offset, count);
        Interlocked.Add(ref _length, count);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => Written;
    public override long Position { get => Written; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
