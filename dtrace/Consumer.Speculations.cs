using SmartOS.Kernel;

namespace SmartOS.Dtrace;

/// <summary>A speculation's state, as dtrace_impl.h's transition diagram names them. There is one
/// CPU here, so ACTIVEMANY and COMMITTINGMANY arise only as dtrace.c reaches them on one CPU: a
/// speculate() whose first record was dropped leaves the buffer empty, and the next one then takes
/// the speculation to ACTIVEMANY.</summary>
internal enum SpecState { Inactive, Active, ActiveOne, ActiveMany, CommittingMany, Discarding }

/// <summary>One speculative buffer: the records speculate() put there, the bytes they take
/// (at most -x specsize) and the records that found no room.</summary>
internal sealed class Speculation
{
    public SpecState State;
    public readonly List<SpecRecord> Records = [];
    public long Used, Drops;
}

/// <summary>A record's room in a speculative buffer, taken by speculate() as dtrace reserves it;
/// its text is filled in when the clause ends (null until then, and for ever if it faulted).</summary>
internal sealed class SpecRecord(long bytes)
{
    public readonly long Bytes = bytes;
    public string? Text;
    public bool Prefixed;
}

/// <summary>
/// Speculative tracing (the Dynamic Tracing Guide's "Speculative Tracing" chapter; dtrace.c's
/// dtrace_speculation, _buffer, _commit, _discard and _clean):
/// <list type="number">
/// <item>speculation() returns the lowest-numbered INACTIVE speculation (1 to -x nspec, 1 by
/// default) and makes it ACTIVE; with none it returns 0 and counts a failed speculation, "busy"
/// when one of them is still being committed or discarded, else "no speculative buffer available".</item>
/// <item>speculate(id) sends the rest of the clause's record to the speculation's buffer, with the
/// CPU/ID/FUNCTION:NAME prefix of the probe that speculated. An id of 0, or of a speculation that
/// is not active, drops the record silently; an id above nspec is an "illegal operation" fault.
/// A record that does not fit in -x specsize (32k by default; Compiler's RecordBytes) is dropped and
/// counted. The room is taken when speculate() runs, so a commit() or discard() later in the same
/// clause acts on the records before it and the clause's own record is lost with the buffer.</item>
/// <item>commit(id) prints the buffer's records where the commit fires, in the order they were
/// speculated, and reports the buffer's drops ("N speculative drops"); discard(id) throws them
/// away, drops included, as dtrace_speculation_discard zeroes them.</item>
/// <item>A speculation discarded before anything was speculated to it (or committed or discarded
/// while ACTIVEMANY) is busy until the cleaner runs, at dtrace's default cleanrate (101 Hz, every
/// 9900990 ns of the host's clock): until then speculation() may fail as busy.</item>
/// <item>Speculations never committed are discarded when tracing ends.</item>
/// </list>
/// </summary>
public sealed partial class Consumer
{
    /// <summary>dtrace_nspec_default and dtrace_specsize_default.</summary>
    public const long DefaultNspec = 1, DefaultSpecSize = 32 * 1024;

    /// <summary>dtrace_cleanrate_default: how often the cleaner frees busy speculations.</summary>
    public const long CleanRate = 9900990;

    /// <summary>`-x nspec`: how many speculations may be active at once.</summary>
    public long Nspec { get; init; } = DefaultNspec;

    /// <summary>`-x specsize`: the bytes of one speculative buffer.</summary>
    public long SpecSize { get; init; } = DefaultSpecSize;

    /// <summary>Set by the compiler when a clause uses speculation(), speculate(), commit() or discard().</summary>
    internal bool UsesSpeculations { get; set; }

    // Made as speculation() first needs them, so a large -x nspec costs nothing until used.
    private readonly List<Speculation> _specs = [];
    private long _specDrops, _specDropsReported, _specBusy, _specBusyReported, _specUnavail, _specUnavailReported;
    private KTimer? _cleaner;

    /// <summary>speculation(): rule 1.</summary>
    internal long NewSpeculation()
    {
        bool busy = false;
        for (int i = 0; i < _specs.Count; i++)
        {
            var s = _specs[i];
            if (s.State == SpecState.Inactive)
            {
                s.State = SpecState.Active;
                return i + 1;
            }
            busy |= s.State is SpecState.CommittingMany or SpecState.Discarding;
        }
        if (_specs.Count < Nspec)
        {
            _specs.Add(new Speculation { State = SpecState.Active });
            return _specs.Count;
        }
        if (busy) _specBusy++;
        else _specUnavail++;
        return 0;
    }

    /// <summary>The speculation an id names; null for 0 and for one never handed out. An id above
    /// nspec is dtrace's DTRACEFLT_ILLOP, raised outside DIF (no DIF offset).</summary>
    private Speculation? SpeculationOf(long id)
    {
        if (id == 0) return null;
        if ((ulong)id > (ulong)Nspec) throw new DRuntimeFault("illegal operation", -1, IllegalOperation);
        return id <= _specs.Count ? _specs[(int)id - 1] : null;
    }

    /// <summary>speculate(): rule 2 (dtrace_speculation_buffer's transitions).</summary>
    internal void Speculate(Frame f, long id)
    {
        var s = SpeculationOf(id);
        f.Speculating = true;
        f.Spec = null;
        if (s == null) return;
        switch (s.State)
        {
            case SpecState.Active: s.State = SpecState.ActiveOne; break;
            case SpecState.ActiveOne: if (s.Used == 0) s.State = SpecState.ActiveMany; break;
            case SpecState.ActiveMany: break;
            default: return;
        }
        if (f.RecordBytes == 0) return;
        if (s.Used + f.RecordBytes > SpecSize)
        {
            s.Drops++;
            return;
        }
        s.Used += f.RecordBytes;
        f.Spec = new SpecRecord(f.RecordBytes);
        s.Records.Add(f.Spec);
        f.SpecOwner = s;
    }

    /// <summary>A faulted clause gives back the room its speculate() took.</summary>
    private static void Unreserve(Frame f)
    {
        if (f.Spec is { } rec && f.SpecOwner is { } s && s.Records.Remove(rec)) s.Used -= rec.Bytes;
    }

    private void EmitAll(Speculation s)
    {
        foreach (var rec in s.Records)
            if (rec.Text != null) Emit(rec.Text, rec.Prefixed);
        s.Records.Clear();
        s.Used = 0;
    }

    /// <summary>commit(): rule 3 (dtrace_speculation_commit on one CPU).</summary>
    internal void Commit(long id)
    {
        var s = SpeculationOf(id);
        if (s == null) return;
        switch (s.State)
        {
            case SpecState.Inactive or SpecState.Discarding: return;
            case SpecState.Active: s.State = SpecState.Inactive; break;
            case SpecState.ActiveOne: s.State = s.Used != 0 ? SpecState.Inactive : SpecState.CommittingMany; break;
            case SpecState.ActiveMany: s.State = SpecState.CommittingMany; break;
        }
        EmitAll(s);
        _specDrops += s.Drops;
        s.Drops = 0;
        if (s.State == SpecState.CommittingMany) ArmCleaner();
    }

    /// <summary>discard(): rule 3 (dtrace_speculation_discard on one CPU).</summary>
    internal void Discard(long id)
    {
        var s = SpeculationOf(id);
        if (s == null) return;
        switch (s.State)
        {
            case SpecState.Active or SpecState.ActiveMany: s.State = SpecState.Discarding; break;
            case SpecState.ActiveOne: s.State = s.Used != 0 ? SpecState.Inactive : SpecState.Discarding; break;
            default: return;
        }
        s.Records.Clear();
        s.Used = 0;
        s.Drops = 0;
        if (s.State == SpecState.Discarding) ArmCleaner();
    }

    /// <summary>Rule 4: the cleaner is dtrace's cyclic, every cleanrate from the start of tracing;
    /// it is armed only for the next of its instants while a speculation is busy, which fires at
    /// the same times.</summary>
    private void ArmCleaner()
    {
        _cleaner ??= new KTimer(_scheduler, _ => Clean());
        if (_cleaner.IsArmed) return;
        long since = _scheduler.Now - _started;
        _cleaner.ArmAt(_started + (since / CleanRate + 1) * CleanRate);
    }

    private long _started;

    /// <summary>dtrace_speculation_clean: busy speculations become INACTIVE (a COMMITTINGMANY one
    /// first commits what it holds).</summary>
    private void Clean()
    {
        if (_stopped) return;
        foreach (var s in _specs)
        {
            if (s.State == SpecState.CommittingMany)
            {
                EmitAll(s);
                _specDrops += s.Drops;
                s.Drops = 0;
            }
            if (s.State is SpecState.CommittingMany or SpecState.Discarding) s.State = SpecState.Inactive;
        }
    }

    /// <summary>The speculation drops since the last report, worded as dt_handle.c's _dt_droptab.</summary>
    private void ReportSpeculationDrops()
    {
        Report(ref _specDropsReported, _specDrops, "speculative drop", "");
        Report(ref _specBusyReported, _specBusy, "failed speculation", " (available buffer(s) still busy)");
        Report(ref _specUnavailReported, _specUnavail, "failed speculation", " (no speculative buffer available)");
    }

    private void Report(ref long reported, long total, string what, string detail)
    {
        long n = total - reported;
        if (n <= 0) return;
        reported = total;
        _err.Write($"dtrace: {n} {what}{(n > 1 ? "s" : "")}{detail}\n");
    }
}
