using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>
/// A full-duplex cable between two physical NICs, possibly on two hosts that share a scheduler.
/// Each direction serialises frames one after another at <see cref="SpeedBps"/> (a frame of n bytes
/// takes n*8/speed), then delivers them <see cref="DelayNs"/> later, dropping a seeded fraction
/// <see cref="Loss"/> of them and any frame whose payload exceeds <see cref="Mtu"/>. The serialiser
/// keeps its clock in picoseconds with the remainder carried, so rates stay exact at multi-gigabit
/// speeds (in 64-bit arithmetic for any frame up to 64 KiB, 128-bit beyond). When a direction is
/// congested its frames wait in priority bands (BandQueue); a frame sent while the wire is idle and
/// nothing waits goes on the wire at once, exactly as a trip through the empty queue would. While
/// all that waits comes from one sender in one band, the queue is a FIFO whose order is known when
/// each frame is sent, so the frame is committed: its start, end and arrival are computed at once
/// and it goes into flight with no event at its end and no trip through the BandQueue; the frames
/// committed that have not started are the queue (its limit, its DRR deficit), and go back into the
/// BandQueue the moment a frame of another sender or band comes (Lane.Commit).
/// Two more impairments, for tests of transports: <see cref="Duplicate"/> delivers a seeded
/// fraction of frames twice, and <see cref="Reorder"/> holds a seeded fraction back for
/// <see cref="ReorderDelayNs"/> so later frames overtake them.
///
/// Each direction (a lane) has a sending half, run by the sending NIC's scheduler (its queue and the
/// serialiser's timer), and a receiving half, run by the receiving NIC's (the frames in flight, the
/// arrival and reorder timers, and the lane's own random source for loss, duplication and reordering:
/// the two directions never share one). Between two hosts of one timeline the wire is a link
/// (kernel/Timeline.cs): when its ends run in different cells, a frame that finishes serialising is
/// copied by the sending half into its batch's staging area, and its packet goes back to the
/// sending host's pool at once (Lane.Keep, Batch); the next barrier only hands the batch over (two
/// batches swap: sent, handed), and at the start of the next window the receiving host's thread
/// copies each frame into a buffer of its own pool and puts it in flight (Lane.Take). When the two
/// cells run on two threads the first copy is made with non-temporal stores, so that a frame's
/// lines cross from one core to the other once and never come back (Batch, with what it measured).
/// Either way a crossing frame holds no buffer of the sender's pool, so a pool runs out at the same
/// frame on any number of threads.
/// No frame can be due before it is taken: it arrives at least DelayNs after it was sent, after the
/// window's end, and the timeline plans the next window from the batch's earliest arrival
/// (ITimelineLink.NextArrival). Copying at the barrier instead, on whichever thread came last,
/// cost 113-127 ms of the 2-thread benchmark's ~600 (serial, and the bytes cold in the other core's
/// cache) against 22 ms on one thread. A frame put in
/// flight while the lanes did not cross (sent between two runs, by a command typed at a barrier) is
/// moved to a buffer of the receiving host's pool when the next run in windows starts, for the same
/// reason (Lane.RehomeInFlight).
/// </summary>
public sealed class Wire : ITimelineLink
{
    private readonly Lane _ab, _ba;
    private readonly Timeline? _timeline;

    /// <param name="scheduler">The scheduler of the world the wire is made in: when it is a domain of a
    /// timeline, the wire registers with it as a link (the NICs' own schedulers run the two halves of
    /// each direction).</param>
    /// <param name="random">Draws for the direction from A to B; the other direction's source is
    /// seeded from its first draw.</param>
    public Wire(Scheduler scheduler, HostRandom random, PhysLink a, PhysLink b, long speedBps = 1_000_000_000, long delayNs = 0, double loss = 0, int mtu = 9000)
    {
        if (speedBps <= 0) throw new ArgumentOutOfRangeException(nameof(speedBps));
        if (loss is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(loss));
        if (delayNs < 0) throw new ArgumentOutOfRangeException(nameof(delayNs));
        A = a; B = b;
        SpeedBps = speedBps;
        DelayNs = delayNs;
        Loss = loss;
        Mtu = mtu;
        var reverse = new HostRandom(random.NextUInt64());
        _ab = new Lane(this, a, b, random);
        _ba = new Lane(this, b, a, reverse);
        a.Attach(new End(this, _ab));
        b.Attach(new End(this, _ba));
        _timeline = scheduler.Timeline;
        _timeline?.AddLink(this);
    }

    Scheduler ITimelineLink.EndA => A.Mac.Scheduler;
    Scheduler ITimelineLink.EndB => B.Mac.Scheduler;

    bool ITimelineLink.Crossing
    {
        set
        {
            _ab.Crossing = value;
            _ba.Crossing = value;
        }
    }

    bool ITimelineLink.Apart
    {
        set
        {
            _ab.Apart = value;
            _ba.Apart = value;
        }
    }

    void ITimelineLink.Exchange()
    {
        _ab.Exchange();
        _ba.Exchange();
    }

    long ITimelineLink.NextArrival => Math.Min(_ab.NextArrival, _ba.NextArrival);

    void ITimelineLink.Receive(Scheduler end)
    {
        // The lane toward this end is taken on its thread.
        (ReferenceEquals(end, B.Mac.Scheduler) ? _ab : _ba).Take();
    }

    void ITimelineLink.Drain()
    {
        _ab.Drain();
        _ba.Drain();
    }

    public PhysLink A { get; }
    public PhysLink B { get; }
    public long SpeedBps { get; }
    public long DelayNs { get; }
    public double Loss { get; }
    public int Mtu { get; }

    /// <summary>Frames one sender (a link or flow, Packet.FairKey) may have waiting for a direction of
    /// the wire before its frames are dropped (a NIC's per-client tx ring).</summary>
    public int QueueFrames { get; init; } = 1000;

    /// <summary>Fraction of delivered frames delivered a second time (0 to 1).</summary>
    public double Duplicate { get; init; }

    /// <summary>Fraction of frames held back <see cref="ReorderDelayNs"/> after their arrival (0 to 1).</summary>
    public double Reorder { get; init; }

    public long ReorderDelayNs { get; init; } = 1_000_000;

    public long FramesCarried => _ab.Carried + _ba.Carried;

    /// <summary>Frames sent across while the wire's ends ran on two threads, each staged for the
    /// other thread with non-temporal stores (Batch).</summary>
    internal long FramesToAnotherThread => _ab.ToAnotherThread + _ba.ToAnotherThread;

    /// <summary>Whether the cable is connected (scenario `wire H/NIC down|up`).</summary>
    public bool IsUp { get; private set; } = true;

    /// <summary>Pulls the cable or plugs it back: both NICs' carrier follows (PhysLink.SetCarrier: their
    /// state shows down, listeners such as an aggregation hear of it), nothing more is sent, and the
    /// frames in flight when it goes down are lost (counted at the receiver as drop_link_down). Call
    /// between windows (a scenario line runs at a barrier), as the two ends may be different hosts'.</summary>
    public void SetUp(bool up)
    {
        if (IsUp == up) return;
        IsUp = up;
        A.SetCarrier(up);
        B.SetCarrier(up);
    }

    /// <summary>The wire a NIC is attached to, or null (a TAP, pcap or no backend).</summary>
    public static Wire? Of(PhysLink nic) => nic.Backend is End e ? e.Wire : null;

    public void Disconnect()
    {
        _timeline?.RemoveLink(this);
        A.DetachBackend();
        B.DetachBackend();
    }

    private sealed class End(Wire wire, Lane lane) : IPhysBackend
    {
        public Wire Wire => wire;
        public long SpeedBps => wire.SpeedBps;
        public void Transmit(PhysLink from, Packet frame) => lane.Send(frame);
        public void Detach(PhysLink phys) { }
    }

    /// <summary>
    /// One direction. Frames wait in the sending NIC's BandQueue (priority bands, fair within a band)
    /// until the wire is free, then serialise one after another and fly for DelayNs; or, in commit
    /// mode (Commit), go into flight when sent with the times they would have had. Two timers: one
    /// for the end of the current frame's serialisation (the sender's; only while the BandQueue
    /// holds frames, or while a crossing lane's frame is on the wire), one for the head of the
    /// in-flight FIFO (the receiver's).
    /// </summary>
    private sealed class Lane
    {
        private readonly Wire _wire;
        private readonly Scheduler _sender, _receiver;
        private readonly HostRandom _random;
        private readonly PhysLink _from, _to;
        private readonly KTimer _arrivalTimer, _txTimer, _heldTimer;
        // Frames held back for reordering: all wait the same extra delay, so a FIFO keeps them in order.
        private readonly Queue<(Packet Packet, long Due)> _held = new();
        private BandQueue? _queue;
        private Packet[] _ring = new Packet[64];
        private long[] _arrival = new long[64];
        // For a frame committed ahead (Send): when its serialisation starts (ps), the serialiser's
        // remainder before it, and its FIFO's DRR deficit while it heads the FIFO (BandQueue.Restore).
        private long[] _startPs = new long[64];
        private long[] _remainderBefore = new long[64];
        private int[] _deficitBefore = new int[64];
        // Sent across cells since the last barrier (the sending half's), and handed over at the
        // barrier (Exchange) for the receiving half to take at the start of the next window (Take).
        // Exchange swaps the two: in a window each is touched by one thread.
        private Batch _out = new(), _in = new();
        private int _inCount;
        private const int MaxLongFrame = 65536;
        private const long MaxLongRemainder = 1L << 62;
        public long Carried => Rx.Carried;
        public long ToAnotherThread => Tx.ToAnotherThread;
        // What each half writes as frames pass, a cache line away from everything else: across cells
        // the two halves run on two threads (SendHalf, ReceiveHalf; KTimer does the same for timers).
        private Padded<SendHalf> _send;
        private Padded<ReceiveHalf> _receive;
        private ref SendHalf Tx => ref _send.Value;
        private ref ReceiveHalf Rx => ref _receive.Value;
        private bool _crossing;

        /// <summary>Set with Crossing (ITimelineLink.Apart): the two halves run on two threads, so a
        /// frame kept for the barrier is staged (Keep).</summary>
        public bool Apart;

        /// <summary>The sending half's scalars (the serialiser's clock, the batch kept for the barrier).</summary>
        private struct SendHalf
        {
            public long BusyUntilPs;
            public long Remainder;
            public long ToAnotherThread;
            public int OutCount;
            // How many frames at the ring's tail were committed and had not started at the last look
            // (AdvanceWaiting): the NIC's queue, in commit mode.
            public int Waiting;
        }

        /// <summary>The receiving half's scalars (the in-flight ring's head and count).</summary>
        private struct ReceiveHalf
        {
            public long Carried;
            public int Head;
            public int Count;
            public bool InTaken;
        }

        public bool Crossing
        {
            get => _crossing;
            set
            {
                bool starts = value && !_crossing;
                // Frames committed ahead go back to the queue: across cells the ring is the
                // receiving host's, so nothing could be taken back out of it (Send).
                if (starts) LeaveCommit();
                _crossing = value;
                if (starts && (Rx.Count > 0 || _held.Count > 0)) RehomeInFlight();
            }
        }

        public Lane(Wire wire, PhysLink from, PhysLink to, HostRandom random)
        {
            _wire = wire; _from = from; _to = to; _random = random;
            _sender = from.Mac.Scheduler;
            _receiver = to.Mac.Scheduler;
            _arrivalTimer = new KTimer(_receiver, static s => ((Lane)s!).Arrive(), this);
            _txTimer = new KTimer(_sender, static s => ((Lane)s!).TxDone(), this);
            _heldTimer = new KTimer(_receiver, static s => ((Lane)s!).ReleaseHeld(), this);
        }

        private void ReleaseHeld()
        {
            long now = _receiver.Now;
            while (_held.Count > 0 && _held.Peek().Due <= now) DeliverNow(_held.Dequeue().Packet);
            if (_held.Count > 0) _heldTimer.ArmAt(_held.Peek().Due);
        }

        public void Send(Packet p)
        {
            _queue ??= new BandQueue(_wire.QueueFrames);
            if (_queue.Count == 0 && _queue.PerSenderLimit > 0 && !_crossing)
            {
                if (Commit(p)) return;
            }
            else if (!_txTimer.IsArmed && _queue.Count == 0 && _queue.PerSenderLimit > 0)
            {
                // The wire is idle and nothing waits: the frame would be queued and taken straight
                // back out (BandQueue leaves no trace of that), so it goes on the wire at once.
                Start(p, waited: false);
                return;
            }
            if (!_queue.TryEnqueue(p))
            {
                // The sender's queue on this NIC is full (counted at the sender: rule 3).
                _from.Stats.DropTxQueue++;
                p.Free();
                return;
            }
            if (!_txTimer.IsArmed) StartNext(waited: false);
        }

        /// <summary>
        /// Commit mode: while every frame waiting for the wire comes from one FIFO (one sender in one
        /// band), the queue is that FIFO and its order is known when a frame is sent, so the frame's
        /// start, end and arrival are computed at once and it goes straight into flight, with no
        /// event at the end of each frame's serialisation and no trip through the BandQueue (issue
        /// 17: a 1 Gbit/s TCP transfer ran such an event per frame, a quarter of all its events).
        /// The frames that have not started yet are the NIC's queue: its per-sender limit is
        /// counted on them, and the DRR deficit their FIFO would have is carried along (the
        /// arithmetic of BandQueue.Dequeue for a lone sender). When a frame from another FIFO comes,
        /// or the lane starts crossing between cells, those frames go back into the BandQueue in
        /// their order with that deficit (Uncommit) and the frame on the wire ends with its
        /// transmit event, so from then on the queue serves bands and senders as it always has.
        /// A frame whose start is the current instant has started (as the end-of-frame event of
        /// that instant would have run before the send), so only frames starting later are taken
        /// back. Returns false when the frame is to take the BandQueue's path.
        /// </summary>
        private bool Commit(Packet p)
        {
            long nowPs = _sender.Now * 1000;
            int waiting = AdvanceWaiting();
            if (waiting > 0 && !BandQueue.SameFifo(_ring[(Rx.Head + Rx.Count - 1) & (_ring.Length - 1)], p))
            {
                LeaveCommit();
                return false;
            }
            if (waiting >= _queue!.PerSenderLimit)
            {
                _from.Stats.DropTxQueue++; // as BandQueue.TryEnqueue's refusal (rule 3)
                p.Free();
                return true;
            }
            long startPs;
            int deficit = BandQueue.Quantum;
            if (Tx.BusyUntilPs <= nowPs)
            {
                // The wire is idle: the frame starts now, as Start does for a frame that did not wait.
                startPs = nowPs;
                if (startPs != Tx.BusyUntilPs) Tx.Remainder = 0;
            }
            else
            {
                // It waits for the frames before it. Its FIFO's deficit when it heads it: what the
                // previous frame left, or a fresh quantum if the FIFO was empty when it came.
                startPs = Tx.BusyUntilPs;
                if (waiting > 0)
                {
                    int last = (Rx.Head + Rx.Count - 1) & (_ring.Length - 1);
                    deficit = BandQueue.DeficitAfter(_deficitBefore[last], _ring[last].Length);
                }
            }
            long remainder = Tx.Remainder;
            int tail = Fly(p, Serialise(p, startPs));
            _startPs[tail] = startPs;
            _remainderBefore[tail] = remainder;
            _deficitBefore[tail] = deficit;
            if (startPs > nowPs) Tx.Waiting++;
            return true;
        }

        /// <summary>Counts the committed frames that have not started by now (they are the ring's last).</summary>
        private int AdvanceWaiting()
        {
            long nowPs = _sender.Now * 1000;
            while (Tx.Waiting > 0 && _startPs[(Rx.Head + Rx.Count - Tx.Waiting) & (_ring.Length - 1)] <= nowPs) Tx.Waiting--;
            return Tx.Waiting;
        }

        /// <summary>Ends commit mode (Commit): the committed frames that have not started go back into
        /// the BandQueue, and the frame on the wire ends with a transmit event, which starts the next.</summary>
        private void LeaveCommit()
        {
            if (AdvanceWaiting() > 0)
            {
                int mask = _ring.Length - 1;
                int first = (Rx.Head + Rx.Count - Tx.Waiting) & mask;
                int deficit = _deficitBefore[first];
                for (int i = 0; i < Tx.Waiting; i++)
                {
                    int at = (first + i) & mask;
                    _queue!.Restore(_ring[at], deficit);
                    _ring[at] = null!;
                }
                Rx.Count -= Tx.Waiting;
                Tx.Waiting = 0;
                Tx.BusyUntilPs = _startPs[first];
                Tx.Remainder = _remainderBefore[first];
            }
            if (Tx.BusyUntilPs > _sender.Now * 1000 && !_txTimer.IsArmed) _txTimer.ArmAt((Tx.BusyUntilPs + 999) / 1000);
        }

        /// <summary>Puts the next frame on the wire. A frame that waited for the wire starts exactly when
        /// the previous one ended, so back-to-back frames keep the wire's exact rate.</summary>
        private void StartNext(bool waited)
        {
            var p = _queue!.Dequeue();
            if (p != null) Start(p, waited);
        }

        private void Start(Packet p, bool waited)
        {
            long nowPs = _sender.Now * 1000;
            long startPs = waited ? Tx.BusyUntilPs : Math.Max(nowPs, Tx.BusyUntilPs);
            if (!waited && startPs != Tx.BusyUntilPs) Tx.Remainder = 0;
            long arrival = Serialise(p, startPs);
            if (_crossing) Keep(p, arrival);
            else Fly(p, arrival);
            _txTimer.ArmAt((Tx.BusyUntilPs + 999) / 1000);
        }

        /// <summary>Serialises a frame from <paramref name="startPs"/> (the serialiser's remainder carried):
        /// sets the end of the wire's busy time and returns the frame's arrival.</summary>
        private long Serialise(Packet p, long startPs)
        {
            if (p.Length <= MaxLongFrame && Tx.Remainder < MaxLongRemainder)
            {
                // The same division in 64 bits (a frame of up to 64 KiB times 8e12 ps plus a
                // remainder below 2^62 cannot overflow), which is several times cheaper than 128.
                long num = p.Length * 8_000_000_000_000L + Tx.Remainder;
                long q = num / _wire.SpeedBps;
                Tx.BusyUntilPs = startPs + q;
                Tx.Remainder = num - q * _wire.SpeedBps;
            }
            else
            {
                Int128 num = (Int128)p.Length * 8_000_000_000_000L + Tx.Remainder;
                Tx.BusyUntilPs = startPs + (long)(num / _wire.SpeedBps);
                Tx.Remainder = (long)(num % _wire.SpeedBps);
            }
            return (Tx.BusyUntilPs + 999) / 1000 + _wire.DelayNs;
        }

        /// <summary>Puts a frame in flight to the receiving NIC (the receiver's half, or a barrier);
        /// returns its place in the ring.</summary>
        private int Fly(Packet p, long arrival)
        {
            if (Rx.Count == _ring.Length) Grow();
            int tail = (Rx.Head + Rx.Count) & (_ring.Length - 1);
            _ring[tail] = p;
            _arrival[tail] = arrival;
            Rx.Count++;
            if (!_arrivalTimer.IsArmed) _arrivalTimer.ArmAt(_arrival[Rx.Head]);
            return tail;
        }

        /// <summary>The sending half keeps a frame sent across cells until the barrier: a copy of it in
        /// the batch's staging area, and the packet goes back to its pool at once (Batch).</summary>
        private void Keep(Packet p, long arrival)
        {
            // Its checksum now, on the sender's thread with the bytes in its cache, not on the receiver's (Take).
            p.FinishChecksum();
            if (Tx.OutCount == 0) _out.Begin(arrival);
            _out.Stage(p, arrival, nonTemporal: Apart);
            p.Free();
            Tx.OutCount++;
            if (Apart) Tx.ToAnotherThread++;
        }

        /// <summary>At a barrier: the frames kept since the last one are handed over, for the
        /// receiving host's thread to take at the start of the next window (Take). A batch still
        /// untaken (no window ran since the last barrier) is taken here first, on the barrier's thread.</summary>
        public void Exchange()
        {
            Take();
            (_in, _out) = (_out, _in);
            _inCount = Tx.OutCount;
            Tx.OutCount = 0;
            Rx.InTaken = false;
        }

        /// <summary>The earliest arrival of the frames handed over and not yet taken (long.MaxValue: none):
        /// the first's, as a lane's frames leave its serialiser in order and all fly the same delay.</summary>
        public long NextArrival => Rx.InTaken || _inCount == 0 ? long.MaxValue : _in.FirstArrival;

        /// <summary>On the receiving host's thread (start of a window, or a barrier): the frames
        /// handed over fly, each copied from the staging area into a buffer of that host's pool
        /// (CopyToReceiver). Neither host's pool is ever touched by the other's thread.</summary>
        public void Take()
        {
            if (Rx.InTaken) return;
            Rx.InTaken = true;
            var reader = _in.Read();
            for (int i = 0; i < _inCount; i++)
            {
                ref readonly var r = ref reader.Next(out var bytes);
                if (CopyToReceiver(bytes, r) is { } copy) Fly(copy, r.Arrival);
            }
        }

        /// <summary>Everything kept goes into flight at once (before the world's own events at a
        /// barrier, and at the end of a run in windows).</summary>
        public void Drain()
        {
            Exchange(); // the last batch taken, this one handed over
            Take();
        }

        /// <summary>The frame in a buffer of the receiving host's pool (the original goes back to its
        /// own pool), or null, counted, when that pool is exhausted. Only at a barrier or between runs.</summary>
        private Packet? Rehome(Packet p)
        {
            p.FinishChecksum();
            var copy = CopyToReceiver(p.Data, Record.Of(p, arrival: 0));
            p.Free();
            return copy;
        }

        /// <summary>A frame's bytes in a buffer of the receiving host's pool, with what its packet
        /// carried besides them (<paramref name="r"/>), or null, counted, when that pool is exhausted.</summary>
        private Packet? CopyToReceiver(ReadOnlySpan<byte> bytes, in Record r)
        {
            var copy = _to.Mac.Pool.Rent(bytes);
            if (copy == null)
            {
                _to.Stats.DropNoBuf++;
                return null;
            }
            copy.Vid = r.Vid;
            copy.Pcp = r.Pcp;
            copy.Timestamp = r.Timestamp;
            copy.Band = r.Band;
            copy.FairKey = r.FairKey;
            if (r.KnownGood) copy.MarkChecksumKnownGood();
            return copy;
        }

        /// <summary>
        /// The timeline starts a run in windows with this lane's ends in different cells (Crossing set
        /// to true, at the barrier before the first window). Frames put in flight while it ran as
        /// one (between runs: a command typed at a barrier, such as iperf's first ARP request, sends
        /// at once) are still in the sender's buffers; from now on the receiving host's thread would
        /// free them, and clone them when it floods one, into the sender's pool while the sender's
        /// thread rents from it. So they move to the receiver's buffers here, as Exchange moves the
        /// frames it hands over, in the same order and with the same arrival times.
        /// </summary>
        private void RehomeInFlight()
        {
            var pool = _to.Mac.Pool;
            int n = Rx.Count;
            for (int i = 0; i < n; i++)
            {
                var p = _ring[Rx.Head];
                long arrival = _arrival[Rx.Head];
                _ring[Rx.Head] = null!;
                Rx.Head = (Rx.Head + 1) & (_ring.Length - 1);
                Rx.Count--;
                var q = p.BelongsTo(pool) ? p : Rehome(p);
                if (q == null) continue;
                int tail = (Rx.Head + Rx.Count) & (_ring.Length - 1);
                _ring[tail] = q;
                _arrival[tail] = arrival;
                Rx.Count++;
            }
            for (int i = _held.Count; i > 0; i--)
            {
                var (p, due) = _held.Dequeue();
                var q = p.BelongsTo(pool) ? p : Rehome(p);
                if (q != null) _held.Enqueue((q, due));
            }
            // A frame dropped at the head leaves the arrival timer early: Arrive finds nothing due and re-arms.
        }

        private void TxDone()
        {
            if (_queue!.Count > 0) StartNext(waited: true);
        }

        private void Grow()
        {
            int n = _ring.Length * 2;
            var ring = new Packet[n];
            var arrival = new long[n];
            var startPs = new long[n];
            var remainderBefore = new long[n];
            var deficitBefore = new int[n];
            for (int i = 0; i < Rx.Count; i++)
            {
                int from = (Rx.Head + i) & (_ring.Length - 1);
                ring[i] = _ring[from];
                arrival[i] = _arrival[from];
                startPs[i] = _startPs[from];
                remainderBefore[i] = _remainderBefore[from];
                deficitBefore[i] = _deficitBefore[from];
            }
            _ring = ring; _arrival = arrival; Rx.Head = 0;
            _startPs = startPs; _remainderBefore = remainderBefore; _deficitBefore = deficitBefore;
        }

        private void Arrive()
        {
            long now = _receiver.Now;
            while (Rx.Count > 0 && _arrival[Rx.Head] <= now)
            {
                var p = _ring[Rx.Head];
                _ring[Rx.Head] = null!;
                Rx.Head = (Rx.Head + 1) & (_ring.Length - 1);
                Rx.Count--;
                Deliver(p);
            }
            if (Rx.Count > 0) _arrivalTimer.ArmAt(_arrival[Rx.Head]);
        }

        private void Deliver(Packet p)
        {
            if (!_wire.IsUp)
            {
                _to.Stats.DropLinkDown++; // in flight when the cable was pulled
                p.Free();
                return;
            }
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
            if (_wire.Reorder > 0 && _random.NextDouble() < _wire.Reorder)
            {
                _held.Enqueue((p, _receiver.Now + _wire.ReorderDelayNs));
                if (!_heldTimer.IsArmed) _heldTimer.ArmAt(_held.Peek().Due);
                return;
            }
            DeliverNow(p);
        }

        private void DeliverNow(Packet p)
        {
            if (_wire.Duplicate > 0 && _random.NextDouble() < _wire.Duplicate && p.Clone() is { } copy)
            {
                Rx.Carried++;
                _to.ReceiveFromWire(copy);
            }
            Rx.Carried++;
            _to.ReceiveFromWire(p);
        }
    }

    /// <summary>A staged frame's header in a batch's staging area (Batch): when the frame arrives, its
    /// length, and what its packet carried besides the bytes. The frame follows it.</summary>
    [StructLayout(LayoutKind.Sequential, Size = Batch.HeaderSize)]
    private struct Record
    {
        public long Arrival;
        public long Timestamp;
        public int Length;
        public int FairKey;
        public ushort Vid;
        public byte Pcp;
        public byte Band;
        public bool KnownGood;

        /// <summary>What <paramref name="p"/> carries besides its bytes (its checksum finished), arriving at
        /// <paramref name="arrival"/>.</summary>
        public static Record Of(Packet p, long arrival) => new()
        {
            Arrival = arrival,
            Timestamp = p.Timestamp,
            Length = p.Length,
            FairKey = p.FairKey,
            Vid = p.Vid,
            Pcp = p.Pcp,
            Band = p.Band,
            KnownGood = p.ChecksumKnownGood && !p.ChecksumPending,
        };
    }

    /// <summary>
    /// The frames a lane keeps from one barrier to the next (Lane.Keep), in send order, each copied
    /// into a staging area: a Record, then the frame's bytes, each record on a line of its own.
    ///
    /// Why a copy: kept as itself, a frame was copied by the receiving thread out of the sender's
    /// buffer, which went back to the sender's pool a window later; the sender rented it again at
    /// once (the pool is a stack) and wrote the next frame into lines the receiver's core still
    /// held, waiting on each for the other core, and the arrays of the batch went the same way.
    /// Where the two vCPUs are far apart that was most of the cost of two threads (kernel/
    /// Timeline.cs, "What this machine allows"). Copied, the packet goes back to the sender's pool
    /// at once and its lines never leave the sender's core. Between two threads (Lane.Apart) the
    /// staging area is written with non-temporal stores, which send the lines toward memory without
    /// waiting for the other core to give them up (a C program on this machine, the vCPUs far
    /// apart: 23 ns to write a frame so, against 202-233 ns with ordinary stores into lines the
    /// other core had read), and the receiver reads it in order, asking for the lines ahead (Read).
    /// Nothing else of a batch is written per frame. Such stores are ordered only by a fence, which
    /// each partition's thread runs before the barrier (kernel/Timeline.cs). On one thread the copy
    /// is an ordinary one, which keeps the lines in the one core's cache for the receiving half.
    /// The copy is made on one thread too so that the sender's pool is used alike on any number of
    /// threads: a packet kept as itself until the receiver had copied it held a buffer for two
    /// windows, and a pool near its limit would have dropped other frames on one thread than on two.
    ///
    /// The area is pinned (the stores take addresses), line-aligned, and grows by doubling, so a
    /// run allocates only while its batches grow.
    /// </summary>
    private sealed class Batch
    {
        public const int HeaderSize = 32;
        private const int Line = CacheLine.Size;
        private const int ReadAhead = 8192;
        private byte[] _area = [];
        private int _base, _used;

        /// <summary>The first frame's arrival (NextArrival asks at the barrier).</summary>
        public long FirstArrival { get; private set; }

        /// <summary>Starts the batch again with its first frame.</summary>
        public void Begin(long firstArrival)
        {
            FirstArrival = firstArrival;
            _used = 0;
        }

        /// <summary>Copies the frame and what it carries into the staging area, with non-temporal
        /// stores when another thread is to read it.</summary>
        public unsafe void Stage(Packet p, long arrival, bool nonTemporal)
        {
            int size = (HeaderSize + p.Length + Line - 1) & ~(Line - 1);
            if (_area.Length - _base - _used < size) Grow(_used + size);
            var r = Record.Of(p, arrival);
            byte* at = Start + _used;
            fixed (byte* frame = &MemoryMarshal.GetArrayDataReference(p.Buffer))
            {
                if (nonTemporal)
                {
                    CopyNonTemporal(at, (byte*)&r, HeaderSize);
                    CopyNonTemporal(at + HeaderSize, frame + p.Offset, p.Length);
                }
                else
                {
                    *(Record*)at = r;
                    Buffer.MemoryCopy(frame + p.Offset, at + HeaderSize, p.Length, p.Length);
                }
            }
            _used += size;
        }

        /// <summary>A reader of the staging area from its first record (only while nothing stages into it).</summary>
        public Reader Read() => new(this);

        /// <summary>Reads the records in order; asks for the area's lines up to ReadAhead bytes past the
        /// record it returns (a frame's lines come from the other core or from memory).</summary>
        public ref struct Reader(Batch batch)
        {
            private int _at, _asked;

            public unsafe ref readonly Record Next(out ReadOnlySpan<byte> bytes)
            {
                int until = Math.Min(batch._used, _at + ReadAhead);
                if (Sse.IsSupported)
                    for (; _asked < until; _asked += Line) Sse.Prefetch0(batch.Start + _asked);
                ref readonly var r = ref Unsafe.As<byte, Record>(ref batch._area[batch._base + _at]);
                bytes = new ReadOnlySpan<byte>(batch._area, batch._base + _at + HeaderSize, r.Length);
                _at += (HeaderSize + r.Length + Line - 1) & ~(Line - 1);
                return ref r;
            }
        }

        private unsafe byte* Start => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_area)) + _base;

        private void Grow(int needed)
        {
            int size = Math.Max(needed, Math.Max(_area.Length - _base, 16 * 1024) * 2);
            var area = GC.AllocateUninitializedArray<byte>(size + Line, pinned: true);
            int at = CacheLine.FirstAligned(area);
            _area.AsSpan(_base, _used).CopyTo(area.AsSpan(at));
            _area = area;
            _base = at;
        }

        /// <summary>Copies <paramref name="length"/> bytes to <paramref name="to"/> (32-byte aligned) with
        /// non-temporal stores where the CPU has them: 32 bytes at a time with AVX, then 16, the last,
        /// partial vector through a buffer on the stack, as the source may end there. An ordinary
        /// copy elsewhere.</summary>
        private static unsafe void CopyNonTemporal(byte* to, byte* from, int length)
        {
            if (!Sse2.IsSupported)
            {
                Buffer.MemoryCopy(from, to, length, length);
                return;
            }
            int i = 0;
            if (Avx.IsSupported)
                for (; i + 32 <= length; i += 32) Avx.StoreAlignedNonTemporal(to + i, Avx.LoadVector256(from + i));
            for (; i + 16 <= length; i += 16) Sse2.StoreAlignedNonTemporal(to + i, Sse2.LoadVector128(from + i));
            if (i < length)
            {
                byte* last = stackalloc byte[16];
                Buffer.MemoryCopy(from + i, last, 16, length - i);
                Sse2.StoreAlignedNonTemporal(to + i, Sse2.LoadVector128(last));
            }
        }
    }
}
