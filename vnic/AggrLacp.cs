using System.Buffers.Binary;
using SmartOS.Kernel;
using SmartOS.Kernel.Wire;

namespace SmartOS.Vnic;

/// <summary>The actor/partner state octet of an LACPDU (IEEE 802.1AX-2008 5.4.2.2 item k).</summary>
[Flags]
public enum LacpState : byte
{
    Activity = 0x01,
    /// <summary>Short timeout (1 s periodic, 3 s expiry) when set.</summary>
    Timeout = 0x02,
    Aggregation = 0x04,
    Synchronization = 0x08,
    Collecting = 0x10,
    Distributing = 0x20,
    Defaulted = 0x40,
    Expired = 0x80,
}

/// <summary>One side's information in an LACPDU: system, key, port and state.</summary>
public readonly record struct LacpInfo(ushort SystemPriority, MacAddress System, ushort Key, ushort PortPriority, ushort Port, LacpState State)
{
    /// <summary>Whether the two describe the same system, key and port (the state aside).</summary>
    public bool SameParameters(in LacpInfo o)
        => SystemPriority == o.SystemPriority && System == o.System && Key == o.Key && PortPriority == o.PortPriority && Port == o.Port;
}

/// <summary>
/// The LACPDU (802.1AX-2008 5.4.2): a Slow Protocols frame (EtherType 0x8809, subtype 1, version 1)
/// to 01:80:C2:00:00:02 with the actor, partner and collector TLVs and a terminator: 110 bytes after
/// the Ethernet header. <see cref="TryParse"/> checks the lengths once; <see cref="Write"/> fills a
/// buffer of <see cref="FrameLength"/> bytes.
/// </summary>
public static class LacpPdu
{
    public const ushort SlowProtocolsType = 0x8809;
    public const byte SubtypeLacp = 1, Version = 1;
    public static readonly MacAddress Group = new(0x0180_C200_0002UL);
    public const int PayloadLength = 110;
    public const int FrameLength = EthernetView.HeaderLength + PayloadLength;
    private const byte TlvActor = 1, TlvPartner = 2, TlvCollector = 3, InfoLength = 20, CollectorLength = 16;

    /// <summary>Whether the frame is a Slow Protocols frame (LACP, marker): never data for the aggregation.</summary>
    public static bool IsSlowProtocol(ReadOnlySpan<byte> frame)
        => frame.Length >= EthernetView.HeaderLength + 1 && BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == SlowProtocolsType;

    /// <summary>Parses an LACPDU; false for another subtype or a frame too short or with bad TLV lengths.</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, out LacpInfo actor, out LacpInfo partner)
    {
        actor = partner = default;
        if (frame.Length < FrameLength || !IsSlowProtocol(frame)) return false;
        var b = frame[EthernetView.HeaderLength..];
        if (b[0] != SubtypeLacp || b[2] != TlvActor || b[3] != InfoLength || b[22] != TlvPartner || b[23] != InfoLength
            || b[42] != TlvCollector || b[43] != CollectorLength)
            return false;
        actor = ReadInfo(b[4..]);
        partner = ReadInfo(b[24..]);
        return true;
    }

    private static LacpInfo ReadInfo(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt16BigEndian(b), MacAddress.Read(b[2..]), BinaryPrimitives.ReadUInt16BigEndian(b[8..]),
        BinaryPrimitives.ReadUInt16BigEndian(b[10..]), BinaryPrimitives.ReadUInt16BigEndian(b[12..]), (LacpState)b[14]);

    private static void WriteInfo(Span<byte> b, byte type, in LacpInfo i)
    {
        b[0] = type;
        b[1] = InfoLength;
        BinaryPrimitives.WriteUInt16BigEndian(b[2..], i.SystemPriority);
        i.System.Write(b[4..]);
        BinaryPrimitives.WriteUInt16BigEndian(b[10..], i.Key);
        BinaryPrimitives.WriteUInt16BigEndian(b[12..], i.PortPriority);
        BinaryPrimitives.WriteUInt16BigEndian(b[14..], i.Port);
        b[16] = (byte)i.State;
        b[17..20].Clear();
    }

    /// <summary>Writes a whole frame from <paramref name="source"/> (the port's own address).</summary>
    public static void Write(Span<byte> frame, MacAddress source, in LacpInfo actor, in LacpInfo partner, ushort collectorMaxDelay = 0)
    {
        Group.Write(frame);
        source.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], SlowProtocolsType);
        var b = frame[EthernetView.HeaderLength..FrameLength];
        b.Clear();
        b[0] = SubtypeLacp;
        b[1] = Version;
        WriteInfo(b[2..], TlvActor, actor);
        WriteInfo(b[22..], TlvPartner, partner);
        b[42] = TlvCollector;
        b[43] = CollectorLength;
        BinaryPrimitives.WriteUInt16BigEndian(b[44..], collectorMaxDelay);
        // b[58..60] is the terminator TLV (type 0, length 0), b[60..110] the reserved octets: all zero.
    }
}

/// <summary>
/// The Marker PDU and Marker Response PDU (802.1AX-2008 5.5.3): Slow Protocols subtype 2, version 1,
/// one Marker Information (1) or Marker Response Information (2) TLV of 16 octets (the requester's
/// port, system and transaction id, two octets of pad), a terminator and 90 reserved octets: 110
/// bytes after the Ethernet header, as an LACPDU. A response is the request with its TLV type
/// changed, sent from the responding port's own address to the Slow Protocols group.
/// </summary>
public static class MarkerPdu
{
    public const byte SubtypeMarker = 2, Version = 1, TlvInformation = 1, TlvResponse = 2, InfoLength = 16;
    public const int FrameLength = LacpPdu.FrameLength;

    /// <summary>Parses a Marker or Marker Response PDU; false for another subtype or version, a short
    /// frame, or a TLV that is neither of the two or of another length.</summary>
    public static bool TryParse(ReadOnlySpan<byte> frame, out byte tlv, out ushort requesterPort, out MacAddress requesterSystem, out uint transaction)
    {
        tlv = 0;
        requesterPort = 0;
        requesterSystem = default;
        transaction = 0;
        if (frame.Length < FrameLength || !LacpPdu.IsSlowProtocol(frame)) return false;
        var b = frame[EthernetView.HeaderLength..];
        if (b[0] != SubtypeMarker || b[1] != Version || b[2] is not (TlvInformation or TlvResponse) || b[3] != InfoLength) return false;
        tlv = b[2];
        requesterPort = BinaryPrimitives.ReadUInt16BigEndian(b[4..]);
        requesterSystem = MacAddress.Read(b[6..]);
        transaction = BinaryPrimitives.ReadUInt32BigEndian(b[12..]);
        return true;
    }

    /// <summary>Writes a whole Marker (<paramref name="tlv"/> 1) or Marker Response (2) frame.</summary>
    public static void Write(Span<byte> frame, MacAddress source, byte tlv, ushort requesterPort, MacAddress requesterSystem, uint transaction)
    {
        LacpPdu.Group.Write(frame);
        source.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], LacpPdu.SlowProtocolsType);
        var b = frame[EthernetView.HeaderLength..FrameLength];
        b.Clear(); // pad, terminator (type 0, length 0) and reserved octets are zero
        b[0] = SubtypeMarker;
        b[1] = Version;
        b[2] = tlv;
        b[3] = InfoLength;
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], requesterPort);
        requesterSystem.Write(b[6..]);
        BinaryPrimitives.WriteUInt32BigEndian(b[12..], transaction);
    }
}

/// <summary>
/// The LACP machines of one aggregation port (802.1AX-2008 5.4): receive (5.4.12), periodic transmit
/// (5.4.13), selection (5.4.14, one aggregator per aggregation), mux with coupled collecting and
/// distributing (5.4.15) and transmit (5.4.16), on the host's scheduler, so virtual time runs them
/// exactly. Timers: periodic 1 s (fast) or 30 s (slow) as the partner asks; current_while 3 s or
/// 90 s as the actor asks (3 x periodic); wait_while 2 s (Aggregate_Wait_Time); at most three
/// LACPDUs in any 1 s (5.4.16). Events (a PDU, a timer, the port's link) run the machines until no
/// transition is left, as the standard's state diagrams are continuously evaluated.
/// The Marker Responder (5.5) answers a Marker PDU with a Marker Response on the same port, as
/// illumos's aggr does: only with LACP on, and only for a requester that is the port's partner (its
/// port number and system as the partner's last LACPDU gave them); any other Marker PDU is counted
/// and dropped. We send no Marker PDUs of our own (neither does illumos): a port leaves at once when
/// its link goes down, and the flows that move were hashed to it, so there is no ordering to flush.
/// One response per request and no more (no amplification), so responses need no rate limit of
/// their own.
/// </summary>
public sealed class AggrLacp
{
    public enum RxState { Initialize, PortDisabled, Expired, LacpDisabled, Defaulted, Current }
    public enum MuxState { Detached, Waiting, Attached, CollectingDistributing }
    public enum Selection { Unselected, Selected, Standby }

    public const long FastPeriodicNs = 1_000_000_000, SlowPeriodicNs = 30_000_000_000;
    public const long ShortTimeoutNs = 3 * FastPeriodicNs, LongTimeoutNs = 3 * SlowPeriodicNs;
    public const long AggregateWaitNs = 2_000_000_000;
    public const int MaxPerSecond = 3;
    public const ushort SystemPriority = 32768, PortPriority = 32768;

    private readonly AggrPort _port;
    private readonly KTimer _currentWhile, _periodic, _waitWhile, _txHold;
    private bool _ntt, _waitExpired;
    private int _txThisSecond;
    private long _txWindowStart = -FastPeriodicNs; // so the first LACPDU opens a window

    internal AggrLacp(AggrPort port)
    {
        _port = port;
        var sched = port.Phys.Mac.Scheduler;
        _currentWhile = new KTimer(sched, static s => ((AggrLacp)s!).CurrentWhileExpired(), this);
        _periodic = new KTimer(sched, static s => ((AggrLacp)s!).PeriodicExpired(), this);
        _waitWhile = new KTimer(sched, static s => ((AggrLacp)s!).WaitWhileExpired(), this);
        _txHold = new KTimer(sched, static s => ((AggrLacp)s!).Run(), this);
    }

    public RxState Rx { get; private set; }
    public MuxState Mux { get; private set; }
    public Selection Selected { get; internal set; }
    /// <summary>The actor's operational state octet as it would be sent now.</summary>
    public LacpState ActorState { get; private set; }
    /// <summary>What was last recorded of the partner (its defaults while none is heard).</summary>
    public LacpInfo Partner { get; private set; }

    public long PdusSent { get; private set; }
    public long PdusReceived { get; private set; }
    /// <summary>When the last LACPDU arrived (scheduler time), or -1.</summary>
    public long LastReceivedAt { get; private set; } = -1;
    /// <summary>Slow Protocols frames that were neither a well-formed LACPDU nor a well-formed Marker PDU.</summary>
    public long PdusBad { get; private set; }
    /// <summary>Marker PDUs received (well-formed, Marker Information TLV).</summary>
    public long MarkersReceived { get; private set; }
    /// <summary>Marker Responses sent, one per Marker PDU from the partner while LACP is on.</summary>
    public long MarkerResponsesSent { get; private set; }
    /// <summary>Marker Responses received (we send no Marker PDUs, so none is expected).</summary>
    public long MarkerResponsesReceived { get; private set; }
    /// <summary>Marker PDUs not answered: LACP off, or a requester that is not the port's partner.</summary>
    public long MarkersIgnored { get; private set; }

    public bool Enabled => _port.Aggr.Mode != LacpMode.Off;
    public bool Collecting => (ActorState & LacpState.Collecting) != 0;
    public bool Distributing => (ActorState & LacpState.Distributing) != 0;

    /// <summary>The actor's information: the aggregation's address is the system, its key the key.</summary>
    public LacpInfo Actor => new(SystemPriority, _port.Aggr.MacAddress, _port.Aggr.Key, PortPriority, _port.Number, ActorState);

    private bool PartnerSync => (Partner.State & LacpState.Synchronization) != 0;

    /// <summary>BEGIN: every machine to its initial state, then run.</summary>
    internal void Begin()
    {
        Stop();
        var state = LacpState.Aggregation;
        if (_port.Aggr.Mode == LacpMode.Active) state |= LacpState.Activity;
        if (_port.Aggr.Timer == LacpTimer.Short) state |= LacpState.Timeout;
        ActorState = state;
        Selected = Selection.Unselected;
        _ntt = false;
        EnterDetached(); // sets NTT: a port tells its partner about itself at once
        RecordDefault();
        Rx = RxState.Initialize;
        EnterRx(RxState.PortDisabled);
        Run();
    }

    /// <summary>Cancels the timers (the port leaves the aggregation).</summary>
    internal void Stop()
    {
        _currentWhile.Cancel();
        _periodic.Cancel();
        _waitWhile.Cancel();
        _txHold.Cancel();
    }

    internal void PortEnabledChanged()
    {
        if (!_port.PortEnabled) EnterRx(RxState.PortDisabled);
        Run();
    }

    /// <summary>A Slow Protocols frame from the port's wire.</summary>
    internal void Receive(ReadOnlySpan<byte> frame)
    {
        if (frame.Length > EthernetView.HeaderLength && frame[EthernetView.HeaderLength] == MarkerPdu.SubtypeMarker)
        {
            ReceiveMarker(frame);
            return;
        }
        if (!LacpPdu.TryParse(frame, out var actor, out var partner))
        {
            PdusBad++;
            return;
        }
        PdusReceived++;
        LastReceivedAt = _port.Phys.Mac.Scheduler.Now;
        if (!Enabled || !_port.PortEnabled) return;
        // CURRENT on every PDU, from EXPIRED, DEFAULTED or CURRENT (5.4.12).
        if (Rx is RxState.Expired or RxState.Defaulted or RxState.Current)
        {
            UpdateSelected(actor);
            UpdateNtt(partner);
            RecordPdu(actor, partner);
            SetActor(LacpState.Expired, false);
            SetActor(LacpState.Defaulted, false);
            Rx = RxState.Current;
            _currentWhile.ArmAfter((ActorState & LacpState.Timeout) != 0 ? ShortTimeoutNs : LongTimeoutNs);
        }
        Run();
    }

    /// <summary>The Marker Responder (see the class comment).</summary>
    private void ReceiveMarker(ReadOnlySpan<byte> frame)
    {
        if (!MarkerPdu.TryParse(frame, out byte tlv, out ushort port, out var system, out uint transaction))
        {
            PdusBad++;
            return;
        }
        if (tlv == MarkerPdu.TlvResponse)
        {
            MarkerResponsesReceived++;
            return;
        }
        MarkersReceived++;
        if (!Enabled || port != Partner.Port || system != Partner.System)
        {
            MarkersIgnored++;
            return;
        }
        var p = _port.Phys.Mac.Pool.Rent(MarkerPdu.FrameLength);
        if (p == null)
        {
            _port.Phys.Stats.DropNoBuf++;
            return;
        }
        MarkerPdu.Write(p.Data, _port.Phys.MacAddress, MarkerPdu.TlvResponse, port, system, transaction);
        p.Vid = 0;
        p.Band = (byte)MacPriority.High;
        p.FairKey = _port.Phys.LinkId;
        MarkerResponsesSent++;
        _port.Phys.SendToWire(p);
    }

    private void CurrentWhileExpired()
    {
        if (Rx == RxState.Current) EnterRx(RxState.Expired);
        else if (Rx == RxState.Expired) EnterRx(RxState.Defaulted);
        Run();
    }

    private void PeriodicExpired()
    {
        _ntt = true; // PERIODIC_TX
        Run();
    }

    private void WaitWhileExpired()
    {
        _waitExpired = true;
        Run();
    }

    private void EnterRx(RxState s)
    {
        Rx = s;
        switch (s)
        {
            case RxState.PortDisabled:
                _currentWhile.Cancel();
                Partner = Partner with { State = Partner.State & ~LacpState.Synchronization };
                break;
            case RxState.Expired:
                Partner = Partner with { State = (Partner.State & ~LacpState.Synchronization) | LacpState.Timeout };
                SetActor(LacpState.Expired, true);
                _currentWhile.ArmAfter(ShortTimeoutNs);
                break;
            case RxState.LacpDisabled:
                Selected = Selection.Unselected;
                RecordDefault();
                Partner = Partner with { State = Partner.State & ~LacpState.Aggregation };
                SetActor(LacpState.Expired, false);
                break;
            case RxState.Defaulted:
                Selected = Selection.Unselected; // update_Default_Selected: the defaults are no partner
                RecordDefault();
                SetActor(LacpState.Expired, false);
                break;
        }
    }

    /// <summary>recordDefault: the partner's administrative values (none known, not in sync).</summary>
    private void RecordDefault()
    {
        Partner = new LacpInfo(0, default, 0, 0, 0, LacpState.Aggregation);
        SetActor(LacpState.Defaulted, true);
    }

    /// <summary>recordPDU (5.4.9): the partner's actor information, and whether it is in sync with us.</summary>
    private void RecordPdu(in LacpInfo actor, in LacpInfo partner)
    {
        var me = Actor;
        bool matches = partner.SameParameters(me) && (partner.State & LacpState.Aggregation) == (me.State & LacpState.Aggregation);
        bool sync = (actor.State & LacpState.Synchronization) != 0
            && (matches || (actor.State & LacpState.Aggregation) == 0);
        var state = actor.State & ~LacpState.Synchronization;
        if (sync) state |= LacpState.Synchronization;
        Partner = actor with { State = state };
    }

    /// <summary>update_Selected: a partner with other parameters unselects the port.</summary>
    private void UpdateSelected(in LacpInfo actor)
    {
        if (!actor.SameParameters(Partner) || (actor.State & LacpState.Aggregation) != (Partner.State & LacpState.Aggregation))
            Selected = Selection.Unselected;
    }

    /// <summary>update_NTT: the partner's view of us is stale, so tell it.</summary>
    private void UpdateNtt(in LacpInfo partner)
    {
        var me = Actor;
        const LacpState watched = LacpState.Activity | LacpState.Timeout | LacpState.Synchronization | LacpState.Aggregation;
        if (!partner.SameParameters(me) || (partner.State & watched) != (me.State & watched)) _ntt = true;
    }

    private void SetActor(LacpState bit, bool on) => ActorState = on ? ActorState | bit : ActorState & ~bit;

    /// <summary>Runs the machines until none moves (bounded: each pass either changes a state or stops).</summary>
    internal void Run()
    {
        for (int pass = 0; pass < 16; pass++)
        {
            bool moved = StepRx() | StepPeriodic() | _port.Aggr.Select(_port) | StepMux();
            if (!moved) break;
        }
        Transmit();
        _port.Aggr.RebuildDistribution();
    }

    private bool StepRx()
    {
        if (Rx != RxState.PortDisabled || !_port.PortEnabled) return false;
        EnterRx(Enabled ? RxState.Expired : RxState.LacpDisabled);
        return true;
    }

    /// <summary>Periodic transmission (5.4.13): none when LACP is off, the port down, or both sides
    /// passive; else every 1 s or 30 s as the partner's timeout bit asks.</summary>
    private bool StepPeriodic()
    {
        bool none = !Enabled || !_port.PortEnabled
            || ((ActorState & LacpState.Activity) == 0 && (Partner.State & LacpState.Activity) == 0);
        if (none)
        {
            _periodic.Cancel();
            return false;
        }
        long period = (Partner.State & LacpState.Timeout) != 0 ? FastPeriodicNs : SlowPeriodicNs;
        // A periodic timer longer than the partner now asks for is cut short (SLOW -> PERIODIC_TX).
        long now = _port.Phys.Mac.Scheduler.Now;
        if (!_periodic.IsArmed || _periodic.DueTime - now > period) _periodic.ArmAfter(period);
        return false;
    }

    /// <summary>The mux machine (5.4.15, coupled control).</summary>
    private bool StepMux()
    {
        switch (Mux)
        {
            case MuxState.Detached:
                if (Selected is Selection.Selected or Selection.Standby)
                {
                    Mux = MuxState.Waiting;
                    _waitExpired = false;
                    _waitWhile.ArmAfter(AggregateWaitNs);
                    return true;
                }
                return false;
            case MuxState.Waiting:
                if (Selected == Selection.Unselected)
                {
                    _waitWhile.Cancel();
                    EnterDetached();
                    return true;
                }
                if (Selected == Selection.Selected && _waitExpired)
                {
                    Mux = MuxState.Attached;
                    SetActor(LacpState.Synchronization, true);
                    SetActor(LacpState.Collecting, false);
                    SetActor(LacpState.Distributing, false);
                    _ntt = true;
                    return true;
                }
                return false;
            case MuxState.Attached:
                if (Selected != Selection.Selected)
                {
                    EnterDetached();
                    return true;
                }
                if (PartnerSync)
                {
                    Mux = MuxState.CollectingDistributing;
                    SetActor(LacpState.Collecting, true);
                    SetActor(LacpState.Distributing, true);
                    _ntt = true;
                    return true;
                }
                return false;
            default:
                if (Selected != Selection.Selected || !PartnerSync)
                {
                    Mux = MuxState.Attached;
                    SetActor(LacpState.Collecting, false);
                    SetActor(LacpState.Distributing, false);
                    _ntt = true;
                    return true;
                }
                return false;
        }
    }

    private void EnterDetached()
    {
        Mux = MuxState.Detached;
        SetActor(LacpState.Synchronization, false);
        SetActor(LacpState.Collecting, false);
        SetActor(LacpState.Distributing, false);
        _ntt = true;
    }

    /// <summary>The transmit machine (5.4.16): an LACPDU when one is needed, at most three a second.</summary>
    private void Transmit()
    {
        if (!_ntt) return;
        if (!Enabled || !_port.PortEnabled
            || ((ActorState & LacpState.Activity) == 0 && (Partner.State & LacpState.Activity) == 0))
        {
            _ntt = false;
            return;
        }
        long now = _port.Phys.Mac.Scheduler.Now;
        if (now - _txWindowStart >= FastPeriodicNs)
        {
            _txWindowStart = now;
            _txThisSecond = 0;
        }
        if (_txThisSecond >= MaxPerSecond)
        {
            if (!_txHold.IsArmed) _txHold.ArmAt(_txWindowStart + FastPeriodicNs);
            return;
        }
        var p = _port.Phys.Mac.Pool.Rent(LacpPdu.FrameLength);
        if (p == null)
        {
            _port.Phys.Stats.DropNoBuf++;
            return; // NTT stays set: the next event tries again
        }
        LacpPdu.Write(p.Data, _port.Phys.MacAddress, Actor, Partner);
        p.Vid = 0;
        p.Band = (byte)MacPriority.High;
        p.FairKey = _port.Phys.LinkId;
        _ntt = false;
        _txThisSecond++;
        PdusSent++;
        _port.Phys.SendToWire(p);
    }
}
