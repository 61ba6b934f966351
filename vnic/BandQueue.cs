using SmartOS.Kernel;

namespace SmartOS.Vnic;

/// <summary>
/// The transmit queue of a congested NIC (ResourceControl.cs, "Priority"): three bands served strictly
/// high before medium before low, and inside a band one FIFO per sender (Packet.FairKey) served by
/// deficit round robin, so equal priorities share bytes fairly whatever their frame sizes. Each
/// sender's FIFO is bounded: a flood from one sender fills only its own FIFO and never takes queue
/// room from a higher band or a neighbour.
/// </summary>
internal sealed class BandQueue
{
    /// <summary>Bytes a sender may send per round: one full-size Ethernet frame.</summary>
    public const int Quantum = 1518;
    public const int Bands = 3;

    private sealed class SenderQueue
    {
        public Packet[] Ring = new Packet[16];
        public int Head, Count, Deficit;
        public bool Active;
    }

    private readonly Dictionary<int, SenderQueue>[] _senders = [new(), new(), new()];
    private readonly Queue<SenderQueue>[] _active = [new(), new(), new()];

    public BandQueue(int perSenderLimit) { PerSenderLimit = perSenderLimit; }

    public int PerSenderLimit { get; }
    public int Count { get; private set; }

    /// <summary>Queues a frame in its band; false when the sender's FIFO is full (caller frees and counts).</summary>
    public bool TryEnqueue(Packet p)
    {
        int band = p.Band < Bands ? p.Band : Bands - 1;
        var map = _senders[band];
        if (!map.TryGetValue(p.FairKey, out var q))
        {
            q = new SenderQueue(); // once per sender and band: configuration-time cost, not per frame
            map.Add(p.FairKey, q);
        }
        if (q.Count >= PerSenderLimit) return false;
        if (q.Count == q.Ring.Length)
        {
            var ring = new Packet[q.Ring.Length * 2];
            for (int i = 0; i < q.Count; i++) ring[i] = q.Ring[(q.Head + i) & (q.Ring.Length - 1)];
            q.Ring = ring;
            q.Head = 0;
        }
        q.Ring[(q.Head + q.Count) & (q.Ring.Length - 1)] = p;
        q.Count++;
        Count++;
        if (!q.Active)
        {
            q.Active = true;
            q.Deficit = Quantum;
            _active[band].Enqueue(q);
        }
        return true;
    }

    /// <summary>Puts back a frame that a wire had committed to its transmitter ahead of time (Wire.cs,
    /// Lane) as though it had waited here all along: at the back of its sender's FIFO, that FIFO's
    /// deficit set to <paramref name="deficit"/> (what its dequeues so far would have left). Only on
    /// a queue with no other sender active in the frame's band, and never past the sender's limit
    /// (the wire counted both when it committed the frame).</summary>
    public void Restore(Packet p, int deficit)
    {
        bool queued = TryEnqueue(p);
        System.Diagnostics.Debug.Assert(queued, "a committed frame was within its sender's limit");
        int band = p.Band < Bands ? p.Band : Bands - 1;
        var q = _senders[band][p.FairKey];
        System.Diagnostics.Debug.Assert(_active[band].Count == 1, "committed frames are their band's only sender");
        q.Deficit = deficit;
    }

    /// <summary>The deficit a lone sender's FIFO is left with after its head of <paramref name="length"/>
    /// bytes is dequeued with <paramref name="deficit"/> (Dequeue's arithmetic for one active sender).</summary>
    public static int DeficitAfter(int deficit, int length)
    {
        while (deficit < length) deficit += Quantum;
        return deficit - length;
    }

    /// <summary>Whether two frames wait in the same FIFO (band and sender).</summary>
    public static bool SameFifo(Packet a, Packet b) =>
        Math.Min((int)a.Band, Bands - 1) == Math.Min((int)b.Band, Bands - 1) && a.FairKey == b.FairKey;

    /// <summary>The next frame to put on the wire, or null when empty.</summary>
    public Packet? Dequeue()
    {
        for (int band = 0; band < Bands; band++)
        {
            var active = _active[band];
            while (active.Count > 0)
            {
                var q = active.Peek();
                var head = q.Ring[q.Head];
                if (q.Deficit < head.Length)
                {
                    // Its round is over: to the back of the band with a fresh quantum (DRR). Alone
                    // in its band it is already at the back (the common case: one sender on a
                    // congested wire), so the queue is left as it is.
                    q.Deficit += Quantum;
                    if (active.Count > 1) active.Enqueue(active.Dequeue());
                    continue;
                }
                q.Deficit -= head.Length;
                q.Ring[q.Head] = null!;
                q.Head = (q.Head + 1) & (q.Ring.Length - 1);
                q.Count--;
                Count--;
                if (q.Count == 0)
                {
                    q.Active = false;
                    q.Deficit = 0;
                    active.Dequeue();
                }
                return head;
            }
        }
        return null;
    }
}
