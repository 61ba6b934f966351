using SmartOS.Kernel;
using SmartOS.Kernel.Wire;
using SmartOS.Netstack.Tcp;

namespace SmartOS.Netstack.Tests.Tcp;

/// <summary>An IP layer that hands TCP segments to a delegate: the wire, or a test playing the peer.</summary>
internal sealed class FakeIpLayer : IIpLayer
{
    public FakeIpLayer(Scheduler scheduler, HostRandom random, PacketPool pool, IpAddress address)
    {
        Scheduler = scheduler;
        Random = random;
        Pool = pool;
        Address = address;
    }

    public Scheduler Scheduler { get; }
    public HostRandom Random { get; }
    public PacketPool Pool { get; }
    public IpAddress Address { get; }
    public int HeaderRoom => Address.IsV4 ? 14 + 20 : 14 + 40;
    public int Mtu { get; set; } = 1500;
    public Action<Packet, IpAddress, IpAddress>? Output { get; set; }
    public TcpProtocol Tcp { get; set; } = null!;

    public bool TrySelectSource(IpAddress destination, out IpAddress source)
    {
        source = Address;
        return destination.IsV4 == Address.IsV4;
    }

    public int PathMtu(IpAddress destination) => Mtu;

    public bool IsLocalAddress(IpAddress address) => address == Address;

    /// <summary>What OnLink says of every peer (TCP's deferred ACKs, TcpProtocol rule 9).</summary>
    public bool PeersOnLink { get; set; }

    public bool OnLink(IpAddress destination) => PeersOnLink;

    public bool Send(Packet packet, IpAddress source, IpAddress destination, byte protocol)
    {
        if (protocol != IpProtocol.Tcp || packet.Offset < HeaderRoom) throw new InvalidOperationException("bad segment from TCP");
        if (Output == null)
        {
            packet.Free();
            return false;
        }
        Output(packet, source, destination);
        return true;
    }
}

/// <summary>A point-to-point wire between two fake IP layers, driven by the scheduler, with seeded
/// delay, loss, reordering (extra delay for some packets) and duplication.</summary>
internal sealed class TcpWire
{
    private readonly Scheduler _scheduler;
    private readonly HostRandom _random;

    public TcpWire(Scheduler scheduler, ulong seed, FakeIpLayer a, FakeIpLayer b)
    {
        _scheduler = scheduler;
        _random = new HostRandom(seed);
        a.Output = (p, s, d) => Carry(b, p, s, d);
        b.Output = (p, s, d) => Carry(a, p, s, d);
    }

    public long Delay { get; set; } = 1 * Time.Millisecond;
    public double Loss { get; set; }
    public double Duplicate { get; set; }
    public double Reorder { get; set; }
    public long ReorderDelay { get; set; } = 3 * Time.Millisecond;

    /// <summary>Everything sent while this returns true is lost.</summary>
    public Func<long, bool>? Blackout { get; set; }

    public long Carried { get; private set; }

    /// <summary>True while a stack is processing a segment from this wire.</summary>
    public bool Receiving { get; private set; }
    public long Lost { get; private set; }

    private void Carry(FakeIpLayer to, Packet p, IpAddress source, IpAddress destination)
    {
        Carried++;
        if ((Loss > 0 && _random.NextDouble() < Loss) || (Blackout != null && Blackout(_scheduler.Now)))
        {
            Lost++;
            p.Free();
            return;
        }
        if (Duplicate > 0 && _random.NextDouble() < Duplicate)
        {
            var copy = p.Clone();
            if (copy != null) Schedule(to, copy, source, destination);
        }
        Schedule(to, p, source, destination);
    }

    private void Schedule(FakeIpLayer to, Packet p, IpAddress source, IpAddress destination)
    {
        long delay = Delay;
        if (Reorder > 0 && _random.NextDouble() < Reorder) delay += ReorderDelay;
        var d = _free.Count > 0 ? _free.Pop() : new Delivery(this);
        d.To = to;
        d.Packet = p;
        d.Source = source;
        d.Destination = destination;
        d.Timer.ArmAfter(delay);
    }

    // Deliveries are recycled so the wire itself allocates nothing in steady state (the allocation test needs that).
    private readonly Stack<Delivery> _free = new();

    private sealed class Delivery
    {
        public readonly KTimer Timer;
        public FakeIpLayer? To;
        public Packet? Packet;
        public IpAddress Source, Destination;

        public Delivery(TcpWire wire)
        {
            Timer = new KTimer(wire._scheduler, static s =>
            {
                var d = (Delivery)s!;
                var to = d.To!;
                var p = d.Packet!;
                d.To = null;
                d.Packet = null;
                d.Wire._free.Push(d);
                d.Wire.Receiving = true;
                try { to.Tcp.Receive(p, d.Source, d.Destination); }
                finally { d.Wire.Receiving = false; }
            }, this);
            Wire = wire;
        }

        public TcpWire Wire { get; }
    }
}

/// <summary>Two TCP stacks joined by a wire, in virtual time.</summary>
internal sealed class TcpWorld
{
    public static readonly IpAddress AddressA = IpAddress.V4(0x0A000001);
    public static readonly IpAddress AddressB = IpAddress.V4(0x0A000002);
    public static readonly IpAddress AddressA6 = IpAddress.V6(0xFD00_0000_0000_0000, 1);
    public static readonly IpAddress AddressB6 = IpAddress.V6(0xFD00_0000_0000_0000, 2);

    public TcpWorld(TcpConfig? config = null, ulong seed = 1, bool v6 = false, ITcpMemoryAccount? memoryA = null)
    {
        A = new FakeIpLayer(Scheduler, new HostRandom(HostRandom.Derive(seed, "a")), Pool, v6 ? AddressA6 : AddressA);
        B = new FakeIpLayer(Scheduler, new HostRandom(HostRandom.Derive(seed, "b")), Pool, v6 ? AddressB6 : AddressB);
        TcpA = A.Tcp = new TcpProtocol(A, config, memoryA);
        TcpB = B.Tcp = new TcpProtocol(B, config);
        Wire = new TcpWire(Scheduler, HostRandom.Derive(seed, "wire"), A, B);
    }

    public Scheduler Scheduler { get; } = new();
    public PacketPool Pool { get; } = new();
    public FakeIpLayer A { get; }
    public FakeIpLayer B { get; }
    public TcpProtocol TcpA { get; }
    public TcpProtocol TcpB { get; }
    public TcpWire Wire { get; }

    /// <summary>Starts async code on the loop (its continuations come back to the loop).</summary>
    public Task<T> Start<T>(Func<Task<T>> body) => TcpA.Context.Start(body);

    public Task Start(Func<Task> body) => TcpA.Context.Start(async () => { await body(); return true; });

    /// <summary>Runs the world until the task finishes or <paramref name="limit"/> of virtual time passes.</summary>
    public void RunUntil(Task task, long limit)
    {
        Scheduler.RunUntil(() => task.IsCompleted, Scheduler.Now + limit);
    }
}

/// <summary>A segment the stack under test sent.</summary>
internal sealed class Sent
{
    public long Time;
    public TcpRepr Repr;
    public byte[] Payload = [];
    public byte[] Raw = [];
    public IpAddress Source, Destination;

    public TcpFlags Flags => Repr.Flags;
    public uint Seq => Repr.Seq;
    public uint Ack => Repr.Ack;
}

/// <summary>
/// One TCP stack and a test that plays its peer segment by segment (smoltcp-style conversation
/// tests): <see cref="Send"/> injects a segment, <see cref="Expect"/> takes the next one the stack sent.
/// </summary>
internal sealed class Conversation
{
    public static readonly IpAddress Local = IpAddress.V4(0x0A000001);
    public static readonly IpAddress Peer = IpAddress.V4(0x0A000002);
    public const ushort PeerPort = 40000;

    public readonly Queue<Sent> Out = new();

    public Conversation(TcpConfig? config = null, ITcpMemoryAccount? memory = null)
    {
        Ip = new FakeIpLayer(Scheduler, new HostRandom(7), Pool, Local) { Output = Capture };
        Tcp = Ip.Tcp = new TcpProtocol(Ip, config, memory);
    }

    public Scheduler Scheduler { get; } = new();
    public PacketPool Pool { get; } = new();
    public FakeIpLayer Ip { get; }
    public TcpProtocol Tcp { get; }

    private void Capture(Packet p, IpAddress source, IpAddress destination)
    {
        var raw = p.Data.ToArray();
        p.Free();
        Assert.That(TcpView.TryCreate(raw, out var view), Is.True, "the stack sent a segment that does not parse");
        Assert.That(view.ChecksumValid(source, destination), Is.True, "bad checksum on a sent segment");
        Assert.That(TcpRepr.TryParse(view, out var repr), Is.True);
        Out.Enqueue(new Sent { Time = Scheduler.Now, Repr = repr, Payload = view.Payload.ToArray(), Raw = raw, Source = source, Destination = destination });
    }

    public Task<T> Start<T>(Func<Task<T>> body)
    {
        var t = Tcp.Context.Start(body);
        Settle();
        return t;
    }

    /// <summary>Runs the events due now (continuations, zero-delay work).</summary>
    public void Settle() => Scheduler.RunUntil(Scheduler.Now);

    public void Run(long duration) => Scheduler.RunFor(duration);

    public Sent Expect(string what)
    {
        Settle();
        Assert.That(Out, Is.Not.Empty, $"expected {what}, but the stack sent nothing");
        return Out.Dequeue();
    }

    public void ExpectNothing(string why)
    {
        Settle();
        Assert.That(Out, Is.Empty, why);
    }

    /// <summary>Injects a segment from the peer.</summary>
    public void Send(ushort localPort, uint seq, uint ack, TcpFlags flags, ushort window = 65535, byte[]? payload = null, TcpOptions options = default, ushort peerPort = PeerPort, IpAddress? from = null)
    {
        var repr = new TcpRepr { SourcePort = peerPort, DestinationPort = localPort, Seq = seq, Ack = ack, Flags = flags, Window = window, Options = options };
        payload ??= [];
        var bytes = new byte[repr.HeaderLength + payload.Length];
        Assert.That(repr.TryEmit(bytes, out int hl), Is.True);
        payload.CopyTo(bytes, hl);
        var src = from ?? Peer;
        TcpView.TryCreate(bytes, out var view);
        view.FillChecksum(src, Local);
        Tcp.Receive(Packet.Unpooled(bytes), src, Local);
        Settle();
    }

    public static TcpOptions SynOptions(ushort mss = 1460, byte? scale = 7, bool sack = true, uint? tsVal = null)
    {
        var o = new TcpOptions { Mss = mss, SackPermitted = sack };
        if (scale is byte s) { o.HasWindowScale = true; o.WindowScale = s; }
        if (tsVal is uint t) { o.HasTimestamp = true; o.TsVal = t; }
        return o;
    }
}
