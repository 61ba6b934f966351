using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// A full-duplex cable between two physical NICs, possibly on two hosts that share a scheduler.
/// Each direction serialises frames one after another at <see cref="SpeedBps"/> (a frame of n bytes
/// takes n*8/speed), then delivers them <see cref="DelayNs"/> later, dropping a seeded fraction
/// <see cref="Loss"/> of them and any frame whose payload exceeds <see cref="Mtu"/>. The serialiser
/// keeps its clock in picoseconds so rates stay exact at multi-gigabit speeds.
/// </summary>
public sealed class Wire
{
    private readonly Lane _ab, _ba;

    public Wire(Scheduler scheduler, HostRandom random, PhysLink a, PhysLink b, long speedBps = 1_000_000_000, long delayNs = 0, double loss = 0, int mtu = 9000)
    {
        if (speedBps <= 0) throw new ArgumentOutOfRangeException(nameof(speedBps));
        if (loss is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(loss));
        A = a; B = b;
        SpeedBps = speedBps;
        DelayNs = delayNs;
        Loss = loss;
        Mtu = mtu;
        _ab = new Lane(this, scheduler, random, b);
        _ba = new Lane(this, scheduler, random, a);
        a.Attach(new End(this, _ab));
        b.Attach(new End(this, _ba));
    }

    public PhysLink A { get; }
    public PhysLink B { get; }
    public long SpeedBps { get; }
    public long DelayNs { get; }
    public double Loss { get; }
    public int Mtu { get; }

    /// <summary>Frames a direction may hold waiting for the wire before it drops (a NIC's tx ring).</summary>
    public int QueueFrames { get; init; } = 1000;

    public long FramesCarried => _ab.Carried + _ba.Carried;

    public void Disconnect()
    {
        A.DetachBackend();
        B.DetachBackend();
    }

    private sealed class End(Wire wire, Lane lane) : IPhysBackend
    {
        public long SpeedBps => wire.SpeedBps;
        public void Transmit(PhysLink from, Packet frame) => lane.Send(frame);
        public void Detach(PhysLink phys) { }
    }

    /// <summary>One direction: a FIFO of frames in flight and one timer armed for the head's arrival.</summary>
    private sealed class Lane
    {
        private readonly Wire _wire;
        private readonly Scheduler _scheduler;
        private readonly HostRandom _random;
        private readonly PhysLink _to;
        private readonly KTimer _timer;
        private Packet[] _ring = new Packet[64];
        private long[] _arrival = new long[64];
        private int _head, _count;
        private long _busyUntilPs;
        public long Carried;

        public Lane(Wire wire, Scheduler scheduler, HostRandom random, PhysLink to)
        {
            _wire = wire; _scheduler = scheduler; _random = random; _to = to;
            _timer = new KTimer(scheduler, static s => ((Lane)s!).Arrive(), this);
        }

        public void Send(Packet p)
        {
            long nowPs = _scheduler.Now * 1000;
            long startPs = Math.Max(nowPs, _busyUntilPs);
            long txPs = (long)((Int128)p.Length * 8_000_000_000_000L / _wire.SpeedBps);
            long maxBacklogPs = (long)((Int128)_wire.QueueFrames * 1518 * 8_000_000_000_000L / _wire.SpeedBps);
            if (startPs - nowPs > maxBacklogPs)
            {
                // The sending NIC's queue is full (counted at the sender: rule 3).
                (_to == _wire.A ? _wire.B : _wire.A).Stats.DropTxQueue++;
                p.Free();
                return;
            }
            _busyUntilPs = startPs + txPs;
            long arrival = (_busyUntilPs + 999) / 1000 + _wire.DelayNs;
            if (_count == _ring.Length) Grow();
            int tail = (_head + _count) & (_ring.Length - 1);
            _ring[tail] = p;
            _arrival[tail] = arrival;
            _count++;
            if (!_timer.IsArmed) _timer.ArmAt(_arrival[_head]);
        }

        private void Grow()
        {
            var ring = new Packet[_ring.Length * 2];
            var arrival = new long[_ring.Length * 2];
            for (int i = 0; i < _count; i++)
            {
                ring[i] = _ring[(_head + i) & (_ring.Length - 1)];
                arrival[i] = _arrival[(_head + i) & (_ring.Length - 1)];
            }
            _ring = ring; _arrival = arrival; _head = 0;
        }

        private void Arrive()
        {
            long now = _scheduler.Now;
            while (_count > 0 && _arrival[_head] <= now)
            {
                var p = _ring[_head];
                _ring[_head] = null!;
                _head = (_head + 1) & (_ring.Length - 1);
                _count--;
                Deliver(p);
            }
            if (_count > 0) _timer.ArmAt(_arrival[_head]);
        }

        private void Deliver(Packet p)
        {
            if (_wire.Loss > 0 && _random.NextDouble() < _wire.Loss)
            {
                _to.Stats.IErrors++;
                _to.Stats.DropWireLoss++;
                p.Free();
                return;
            }
            int header = EthernetView.HeaderLength;
            if (p.Length >= 14 && p.Buffer[p.Offset + 12] == 0x81 && p.Buffer[p.Offset + 13] == 0x00) header += EthernetView.TagLength;
            if (p.Length - header > _wire.Mtu)
            {
                _to.Stats.IErrors++;
                _to.Stats.DropWireMtu++;
                p.Free();
                return;
            }
            Carried++;
            _to.ReceiveFromWire(p);
        }
    }
}
