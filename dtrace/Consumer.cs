using System.Globalization;
using System.Text;
using SmartOS.Kernel;
using SmartOS.Kernel.Trace;

namespace SmartOS.Dtrace;

/// <summary>
/// One dtrace run (Syntax.cs): compiles the programs, enables their clauses on the host's probes
/// as enabled probes (ECBs, numbered from 1 as EPIDs), runs them as probes fire and prints as
/// dtrace's consumer does (dt_consume.c): without -q, each firing of a clause that records
/// (trace, printf, printa, exit) opens with "CPU ID FUNCTION:NAME" columns and ends with a newline;
/// at the end, END fires and every aggregation printa has not printed is printed.
/// A clause's output is kept until the clause ends, so a fault discards it, as dtrace discards the
/// ECB's record.
/// </summary>
public sealed partial class Consumer : IProbeConsumer
{
    private sealed record Ecb(int Epid, Probe Probe, CompiledClause Clause, long[] ThisInt, string[] ThisStr);

    private readonly ProbeRegistry _registry;
    private readonly Scheduler _scheduler;
    private readonly string _zone;
    private readonly TextWriter _err;
    private TextWriter _out;
    private readonly Compiler _compiler;
    private readonly Dictionary<Probe, List<Ecb>> _byProbe = [];
    private readonly List<Probe> _ticks = [];
    private readonly List<KTimer> _timers = [];
    private readonly List<Aggregation> _aggs = [];
    private readonly Dictionary<string, Aggregation> _aggByName = new(StringComparer.Ordinal);
    private readonly Frame _frame;
    private readonly StringBuilder _record = new();
    private int _nextEpid = 1;
    private bool _headerDone, _stopped;

    public readonly List<long> GlobalInts = [];
    public readonly List<string?> GlobalStrs = [];
    internal readonly List<Dictionary<Key, object>> Arrays = [];

    public bool Quiet { get; set; }

    /// <summary>--json (this project's output mode, Commands/Dtrace.cs): one JSON object a line for
    /// each record and each aggregation printed, instead of dtrace's text.</summary>
    public bool Json { get; set; }

    private readonly List<Aggregation> _printedInRecord = [];

    /// <summary>Where records and aggregations go (standard output, or -o FILE).</summary>
    public TextWriter Output { get => _out; set => _out = value; }
    public TaskCompletionSource<int> Exited { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public long Now => _scheduler.Now;

    /// <summary>The host's kernel (pid 0, sched): the process of a firing no program's code made.</summary>
    internal TraceProcess Kernel => _registry.Kernel;

    /// <summary>`-x aggsize`: the bytes aggregations may take before new keys are dropped (AggSpace).</summary>
    public long AggSize
    {
        get => _aggSize;
        init { _aggSize = value; _aggSpace = new AggSpace(value); }
    }

    private readonly long _aggSize = DefaultAggSize;
    private readonly AggSpace _aggSpace = new(DefaultAggSize);

    /// <summary>dtrace's default aggsize, 4m.</summary>
    public const long DefaultAggSize = 4L << 20;

    /// <summary>
    /// `-x dynvarsize`: the bytes associative array elements and self-> variables may take (1m by
    /// default, as dtrace's). Each takes a record's size (DynamicSize); a new one that finds no room is
    /// not stored and is counted as a dynamic variable drop; deleting one (assigning 0) gives room back.
    /// </summary>
    public long DynVarSize
    {
        get => _dynSize;
        init { _dynSize = value; _dynFree = value; }
    }

    public const long DefaultDynVarSize = 1L << 20;
    private readonly long _dynSize = DefaultDynVarSize;
    private long _dynFree = DefaultDynVarSize, _dynDrops, _dynReported;

    /// <summary>A dynamic variable's record: a 64-byte header (dtrace_dynvar_t and its hash chain), the keys
    /// (8 bytes each, a string strsize, 256) and the value.</summary>
    internal static long DynamicSize(IEnumerable<DType> keys, long valueBytes)
    {
        long n = 64 + valueBytes;
        foreach (var k in keys) n += k == DType.Str ? 256 : 8;
        return n;
    }

    /// <summary>Takes room for a new dynamic variable; false (and a drop counted) when there is none.</summary>
    internal bool TakeDynamic(long bytes)
    {
        if (_dynFree < bytes) { _dynDrops++; return false; }
        _dynFree -= bytes;
        return true;
    }

    internal void GiveDynamic(long bytes) => _dynFree += bytes;

    /// <summary>Reports the drops since the last report, as dtrace's drop handlers do (dt_handle_cpudrop, dt_handle_status).</summary>
    private void ReportDrops()
    {
        long n = _aggSpace.Drops - _aggSpace.Reported;
        if (n > 0)
        {
            _aggSpace.Reported = _aggSpace.Drops;
            _err.Write($"dtrace: {n} aggregation drop{(n > 1 ? "s" : "")} on CPU 0\n");
        }
        n = _dynDrops - _dynReported;
        if (n > 0)
        {
            _dynReported = _dynDrops;
            _err.Write($"dtrace: {n} dynamic variable drop{(n > 1 ? "s" : "")}\n");
        }
        ReportSpeculationDrops();
    }

    /// <summary>Unix time, in nanoseconds, at scheduler time 0 (the host's WallClock epoch): walltimestamp
    /// is this plus Now. 0 in virtual time, where the date starts at the Unix epoch.</summary>
    public long WallEpoch { get; init; }

    public Consumer(ProbeRegistry registry, Scheduler scheduler, string zone, TextWriter output, TextWriter errors)
    {
        _registry = registry;
        _scheduler = scheduler;
        _zone = zone;
        _out = output;
        _err = errors;
        _compiler = new Compiler(this);
        _frame = new Frame { Consumer = this };
    }

    public int NewGlobalInt() { GlobalInts.Add(0); return GlobalInts.Count - 1; }
    public int NewGlobalStr() { GlobalStrs.Add(null); return GlobalStrs.Count - 1; }
    public int NewArray() { Arrays.Add([]); return Arrays.Count - 1; }

    // Thread-local variables (Syntax.cs rule 5): per thread, one slot per self variable.
    private sealed class SelfVars(int ints, int strs)
    {
        public long[] Ints = new long[ints];
        public string?[] Strs = new string?[strs];
        public int Set;
        public readonly long Size = DynamicSize([], ints * 8L + strs * 256L);
    }

    private static readonly object s_noThread = new();
    private readonly Dictionary<object, SelfVars> _self = new(ReferenceEqualityComparer.Instance);
    private int _selfInts, _selfStrs;

    internal int NewSelfInt() => _selfInts++;
    internal int NewSelfStr() => _selfStrs++;

    internal long SelfInt(object? thread, int slot) =>
        _self.TryGetValue(thread ?? s_noThread, out var v) && slot < v.Ints.Length ? v.Ints[slot] : 0;

    internal string SelfStr(object? thread, int slot) =>
        _self.TryGetValue(thread ?? s_noThread, out var v) && slot < v.Strs.Length ? v.Strs[slot] ?? "" : "";

    /// <summary>The thread's self variables, made on first use if there is room (null: dropped).</summary>
    private SelfVars? SelfOf(object? thread)
    {
        var key = thread ?? s_noThread;
        if (!_self.TryGetValue(key, out var v))
        {
            v = new SelfVars(_selfInts, _selfStrs);
            if (!TakeDynamic(v.Size)) return null;
            _self[key] = v;
        }
        if (v.Ints.Length < _selfInts) Array.Resize(ref v.Ints, _selfInts);
        if (v.Strs.Length < _selfStrs) Array.Resize(ref v.Strs, _selfStrs);
        return v;
    }

    /// <summary>Sets a self variable; 0 frees it, and a thread with none left is forgotten.</summary>
    internal long SetSelfInt(object? thread, int slot, long value)
    {
        if (value == 0 && !_self.ContainsKey(thread ?? s_noThread)) return 0;
        var v = SelfOf(thread);
        if (v == null) return value;
        if ((v.Ints[slot] != 0) != (value != 0)) v.Set += value != 0 ? 1 : -1;
        v.Ints[slot] = value;
        if (v.Set == 0 && _self.Remove(thread ?? s_noThread)) GiveDynamic(v.Size);
        return value;
    }

    internal string SetSelfStr(object? thread, int slot, string value)
    {
        if (value.Length == 0 && !_self.ContainsKey(thread ?? s_noThread)) return value;
        var v = SelfOf(thread);
        if (v == null) return value;
        if ((v.Strs[slot] != null) != (value.Length != 0)) v.Set += value.Length != 0 ? 1 : -1;
        v.Strs[slot] = value.Length == 0 ? null : value;
        if (v.Set == 0 && _self.Remove(thread ?? s_noThread)) GiveDynamic(v.Size);
        return value;
    }

    /// <summary>How many threads hold self variables (a test's view that 0 frees them).</summary>
    internal int ThreadsWithSelfVariables => _self.Count;

    internal Aggregation DeclareAggregation(string name, AggKind kind, DType[] keys, long low, long high, long step, Node at, long steps = 0)
    {
        if (_aggByName.TryGetValue(name, out var agg))
        {
            if (agg.Kind == AggKind.Llquantize && kind == AggKind.Llquantize)
            {
                (string What, long Was, long Now)[] args = [("factor", agg.Step, step), ("low magnitude", agg.Low, low), ("high magnitude", agg.High, high), ("linear steps per magnitude", agg.Steps, steps)];
                for (int i = 0; i < args.Length; i++)
                    if (args[i].Was != args[i].Now)
                        throw new DCompileError($"llquantize( ) {args[i].What} (argument #{i + 1}) doesn't match previous declaration: expected {args[i].Was}, found {args[i].Now}", at.Line, at.Column);
            }
            if (agg.Kind != kind || agg.Low != low || agg.Step != step)
                throw new DCompileError($"{name} already has a different aggregating function", at.Line, at.Column);
            if (!agg.KeyTypes.SequenceEqual(keys))
                throw new DCompileError($"{name}[ ] key types do not match its earlier use", at.Line, at.Column);
            return agg;
        }
        agg = kind == AggKind.Llquantize
            ? new Aggregation(name, _aggs.Count + 1, kind, keys, low, high, step) { Sort = _sort, Steps = steps, Space = _aggSpace }
            : new Aggregation(name, _aggs.Count + 1, kind, keys, low, high, step) { Sort = _sort, Space = _aggSpace };
        _aggs.Add(agg);
        _aggByName[name] = agg;
        return agg;
    }

    internal void RequireAggregation(string name, Node at)
    {
        if (!_aggByName.ContainsKey(name)) throw new DCompileError($"failed to resolve {name}: Unknown variable name", at.Line, at.Column);
    }

    /// <summary>Whether the zone may see the probe: its own, a shared one (whose firings it hears
    /// only for itself), or the dtrace and profile providers'.</summary>
    public bool Sees(Probe p) => _zone == "global" || p.Shared || p.Provider is "dtrace" or "profile" || p.Zone == _zone;

    /// <summary>The probes a description names (dt_gmatch: an empty field matches all), creating
    /// profile:::tick-N and profile-N on demand as the profile provider does.</summary>
    internal List<Probe> Match(ProbeSpec spec)
    {
        var f = Fields(spec);
        string tickName = f[3];
        if ((f[0] is "" or "profile") && f[1] == "" && f[2] == "" && TickInterval(tickName) is long interval)
        {
            var existing = _ticks.Find(t => t.Name == tickName);
            if (existing == null)
            {
                existing = _registry.Add("profile", static () => "", "", tickName, static () => "global");
                _ticks.Add(existing);
                var probe = existing;
                var timer = new KTimer(_scheduler, _ => Tick(probe, interval));
                _timers.Add(timer);
            }
            return [existing];
        }
        var matched = new List<Probe>();
        foreach (var p in _registry.All)
            if (Sees(p) && Glob(p.Provider, f[0]) && Glob(p.Module, f[1]) && Glob(p.Function, f[2]) && Glob(p.Name, f[3]))
                matched.Add(p);
        return matched;
    }

    internal static string[] Fields(ProbeSpec spec)
    {
        var parts = spec.Text.Split(':');
        if (parts.Length > 4) throw new DCompileError($"invalid probe description \"{spec.Text}\": Overspecified probe description", spec.Line, spec.Column);
        var f = new string[4] { "", "", "", "" };
        for (int i = 0; i < parts.Length; i++) f[4 - parts.Length + i] = parts[i];
        return f;
    }

    internal static string FullName(ProbeSpec spec) => string.Join(':', Fields(spec));

    /// <summary>tick-N and profile-N with the profile provider's suffixes; no suffix is hertz. The
    /// host has one CPU (its loop), so profile-N, which fires on every CPU, fires as tick-N does,
    /// between the loop's events (arg0 and arg1, the interrupted PCs, are 0: there are none).</summary>
    private static long? TickInterval(string name)
    {
        string s;
        if (name.StartsWith("tick-", StringComparison.Ordinal)) s = name[5..];
        else if (name.StartsWith("profile-", StringComparison.Ordinal)) s = name[8..];
        else return null;
        int i = 0;
        while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
        if (i == 0 || !long.TryParse(s[..i], NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0) return null;
        long? unit = s[i..] switch
        {
            "ns" or "nsec" => 1, "us" or "usec" => Time.Microsecond, "ms" or "msec" => Time.Millisecond,
            "s" or "sec" => Time.Second, "m" or "min" => 60 * Time.Second, "h" or "hour" => 3600 * Time.Second,
            "d" or "day" => 86400 * Time.Second, "" or "hz" => null, _ => -1,
        };
        if (unit == -1) return null;
        long interval = unit == null ? Time.Second / n : n * unit.Value;
        // The profile provider refuses intervals under 200 microseconds.
        return interval < 200 * Time.Microsecond ? null : interval;
    }

    internal static bool Glob(string s, string p) => p.Length == 0 || GlobAt(s, 0, p, 0);

    private static bool GlobAt(string s, int i, string p, int j)
    {
        while (j < p.Length)
        {
            char c = p[j];
            if (c == '*')
            {
                for (int k = i; k <= s.Length; k++)
                    if (GlobAt(s, k, p, j + 1)) return true;
                return false;
            }
            if (i >= s.Length) return false;
            if (c == '?') { i++; j++; continue; }
            if (c == '[')
            {
                int end = p.IndexOf(']', j + 1);
                if (end < 0) return false;
                string set = p[(j + 1)..end];
                bool negate = set.StartsWith('!');
                if (negate) set = set[1..];
                bool hit = false;
                for (int k = 0; k < set.Length; k++)
                {
                    if (k + 2 < set.Length && set[k + 1] == '-') { hit |= s[i] >= set[k] && s[i] <= set[k + 2]; k += 2; }
                    else hit |= s[i] == set[k];
                }
                if (hit == negate) return false;
                i++;
                j = end + 1;
                continue;
            }
            if (c != s[i]) return false;
            i++;
            j++;
        }
        return i == s.Length;
    }

    /// <summary>Compiles a program and enables its clauses; returns how many probes they matched.</summary>
    internal int Enable(List<Clause> clauses)
    {
        int matched = 0;
        foreach (var clause in clauses)
        {
            var probes = new List<Probe>();
            foreach (var spec in clause.Probes)
            {
                var m = Match(spec);
                if (m.Count == 0) throw new DCompileError($"probe description {FullName(spec)} does not match any probes", spec.Line, spec.Column);
                foreach (var p in m) if (!probes.Contains(p)) probes.Add(p);
            }
            var compiled = _compiler.Compile(clause, probes);
            foreach (var p in probes)
            {
                if (!_byProbe.TryGetValue(p, out var list)) _byProbe[p] = list = [];
                list.Add(new Ecb(_nextEpid++, p, compiled, new long[compiled.ThisInts], new string[compiled.ThisStrs]));
                matched++;
            }
        }
        return matched;
    }

    /// <summary>Fires BEGIN, attaches to the probes, starts the tick timers.</summary>
    public void Start()
    {
        _started = _scheduler.Now;
        if (_byProbe.TryGetValue(_registry.Begin, out var begin)) Run(begin, _registry.Begin, default);
        if (_stopped) return;
        foreach (var p in _byProbe.Keys)
            if (p.Provider is not ("dtrace" or "profile")) p.Attach(this);
        for (int i = 0; i < _ticks.Count; i++)
            _timers[i].ArmAfter(TickInterval(_ticks[i].Name)!.Value);
    }

    private void Tick(Probe probe, long interval)
    {
        if (_stopped) return;
        if (_byProbe.TryGetValue(probe, out var ecbs)) Run(ecbs, probe, default);
        if (!_stopped) _timers[_ticks.IndexOf(probe)].ArmAfter(interval);
    }

    public void Fired(Probe probe, in ProbeArgs args)
    {
        if (_stopped) return;
        if (probe.Shared && _zone != "global" && args.Zone != _zone) return;
        if (_byProbe.TryGetValue(probe, out var ecbs)) Run(ecbs, probe, args);
    }

    private void Run(List<Ecb> ecbs, Probe probe, in ProbeArgs args)
    {
        var f = _frame;
        f.Probe = probe;
        f.Args = args;
        foreach (var ecb in ecbs)
        {
            if (_stopped && probe != _registry.End) return;
            Array.Clear(ecb.ThisInt);
            Array.Clear(ecb.ThisStr);
            f.ThisInt = ecb.ThisInt;
            f.ThisStr = ecb.ThisStr;
            f.Speculating = false;
            f.Spec = null;
            f.SpecOwner = null;
            var clause = ecb.Clause;
            f.RecordBytes = clause.Records ? clause.RecordBytes : 0;
            _record.Clear();
            int action = -1;
            try
            {
                if (clause.Predicate != null && clause.Predicate(f) == 0) continue;
                bool prefixed = !Quiet && !Json && clause.Records;
                if (prefixed) _record.Append($"{0,3} {probe.Id,6} {probe.Function + ":" + probe.Name,32} ");
                _printedInRecord.Clear();
                for (action = 0; action < clause.Statements.Length; action++) clause.Statements[action].Run(f);
                if (!clause.Records) continue;
                string text;
                if (Json) text = JsonRecord(ecb.Epid, probe);
                else
                {
                    if (prefixed) _record.Append('\n');
                    text = _record.ToString();
                }
                if (!f.Speculating) Emit(text, prefixed);
                else if (f.Spec != null)
                {
                    f.Spec.Text = text;
                    f.Spec.Prefixed = prefixed;
                }
            }
            catch (DRuntimeFault fault)
            {
                Unreserve(f);
                string where = action < 0 ? "in predicate" : $"in action #{action + 1}";
                string offset = fault.DifOffset < 0 ? "" : $" at DIF offset {fault.DifOffset}";
                _err.Write($"dtrace: error on enabled probe ID {ecb.Epid} (ID {probe.Id}: {probe.FullName}): {fault.Message} {where}{offset}\n");
                FireError(ecb.Epid, action + 1, fault);
                f.Probe = probe;
                f.Args = args;
            }
            finally
            {
                _record.Clear();
            }
        }
    }

    /// <summary>Writes a record as dtrace's consumer prints it, opening the output with the
    /// "CPU ID FUNCTION:NAME" heading before the first prefixed record.</summary>
    private void Emit(string text, bool prefixed)
    {
        if (prefixed && !_headerDone)
        {
            _out.Write($"{"CPU",3} {"ID",6} {"FUNCTION:NAME",32}\n");
            _headerDone = true;
        }
        _out.Write(text);
    }

    /// <summary>dtrace:::ERROR, as dtrace_probe_error fires it: arg1 the EPID, arg2 the action (0:
    /// the predicate), arg3 the DIF offset, arg4 the fault (DTRACEFLT_BADADDR 1, DTRACEFLT_DIVZERO
    /// 4), arg5 the bad address. A fault inside an ERROR clause does not fire ERROR again.</summary>
    private void FireError(int epid, int action, DRuntimeFault fault)
    {
        if (_inError || !_byProbe.TryGetValue(_registry.Error, out var ecbs)) return;
        _inError = true;
        try { Run(ecbs, _registry.Error, new ProbeArgs(0, epid, action, fault.DifOffset, fault.Code, fault.Value)); }
        finally { _inError = false; }
    }

    private bool _inError;

    private string JsonRecord(int epid, Probe probe)
    {
        var o = new System.Text.Json.Nodes.JsonObject
        {
            ["cpu"] = 0, ["epid"] = epid, ["id"] = probe.Id, ["probe"] = probe.FullName, ["output"] = _record.ToString(),
        };
        var text = new StringBuilder(o.ToJsonString(Aggregation.JsonOptions)).Append('\n');
        foreach (var agg in _printedInRecord) text.Append(agg.ToJson().ToJsonString(Aggregation.JsonOptions)).Append('\n');
        return text.ToString();
    }

    // Actions, called by compiled statements.
    public void TraceInt(long v) => _record.Append(Quiet || Json ? v.ToString(CultureInfo.InvariantCulture) : " " + v.ToString(CultureInfo.InvariantCulture).PadLeft(16));
    public void TraceStr(string s) => _record.Append(Quiet || Json ? s : "  " + s.PadRight(33));
    public void Print(string s) => _record.Append(s);

    internal void PrintA(string[] names, DFormat? format)
    {
        ReportDrops();
        if (names.Length > 1 && !(Json && format == null))
        {
            var aggs = new Aggregation[names.Length];
            for (int i = 0; i < names.Length; i++) (aggs[i] = _aggByName[names[i]]).Printed = true;
            if (format == null) _record.Append('\n');
            Aggregation.PrintJoined(_record, aggs, _sort, format);
            return;
        }
        foreach (var name in names)
        {
            var agg = _aggByName[name];
            agg.Printed = true;
            if (Json && format == null) _printedInRecord.Add(agg);
            else if (format == null)
            {
                _record.Append('\n');
                agg.Print(_record);
            }
            else agg.Print(_record, format);
        }
    }

    internal DType[] KeyTypesOf(string name) => _aggByName[name].KeyTypes;

    internal void Trunc(string name, long? keep) => _aggByName[name].Trunc(keep);
    internal void ClearAggregation(string name) => _aggByName[name].Clear();

    /// <summary>normalize(@a, n); a factor of zero or less is dtrace's "illegal operation" fault.</summary>
    internal void Normalize(string name, long normal)
    {
        if (normal <= 0) throw new DRuntimeFault("illegal operation", 0, IllegalOperation);
        _aggByName[name].Normal = normal;
    }

    private const int IllegalOperation = 3; // DTRACEFLT_ILLOP

    /// <summary>How aggregations sort when printed (-x aggsortkey and friends).</summary>
    public void SetSort(bool byKey, bool reverse, int keyPos, int pos = 0)
    {
        _sort.ByKey = byKey;
        _sort.Reverse = reverse;
        _sort.KeyPos = keyPos;
        _sort.Pos = pos;
    }

    private readonly AggSort _sort = new();

    public void Exit(long status)
    {
        if (_stopped) return;
        _stopped = true;
        Exited.TrySetResult((int)status);
    }

    /// <summary>
    /// Stops tracing, fires END and prints what printa has not printed, as dtrace.c's main does: an
    /// interruption (^C, the end of a scenario) first prints a newline "to make the output look
    /// slightly cleaner"; after END one more newline, even in quiet mode, then the aggregations in
    /// the order they were declared.
    /// </summary>
    public void Finish(bool interrupted)
    {
        bool wasStopped = _stopped;
        _stopped = true;
        foreach (var p in _byProbe.Keys) p.Detach(this);
        foreach (var t in _timers) t.Cancel();
        _cleaner?.Cancel();
        foreach (var t in _ticks) _registry.Remove(t);
        if (interrupted && !wasStopped && !Json) _out.Write("\n");
        if (_byProbe.TryGetValue(_registry.End, out var end)) Run(end, _registry.End, default);
        ReportDrops();
        var o = new StringBuilder(Json ? "" : "\n");
        foreach (var agg in _aggs)
            if (!agg.Printed)
            {
                if (Json) o.Append(agg.ToJson().ToJsonString(Aggregation.JsonOptions)).Append('\n');
                else agg.Print(o);
            }
        _out.Write(o.ToString());
        _out.Flush();
    }

    /// <summary>Removes what Match created without starting (dtrace -l, a failed compile).</summary>
    public void Discard()
    {
        foreach (var t in _ticks) _registry.Remove(t);
    }

    /// <summary>Enables every clause of a parsed program; returns how many probes it matched.</summary>
    public int Enable(DProgram program) => Enable(program.Clauses);

    /// <summary>The probes an option's partial description matches: -P provider, -m [provider:]module,
    /// -f [[provider:]module:]function (last: the field the description ends at, 0 to 2).</summary>
    public List<Probe> Matching(string description, int last)
    {
        var parts = description.Split(':');
        if (parts.Length > last + 1) throw new DCompileError($"invalid probe description \"{description}\": Overspecified probe description", 1, 1);
        var f = new string[4] { "", "", "", "" };
        for (int i = 0; i < parts.Length; i++) f[last + 1 - parts.Length + i] = parts[i];
        var found = new List<Probe>();
        foreach (var p in _registry.All)
            if (Sees(p) && Glob(p.Provider, f[0]) && Glob(p.Module, f[1]) && Glob(p.Function, f[2]))
                found.Add(p);
        return found;
    }

    /// <summary>The probes a program's descriptions match (dtrace -l -n), each once.</summary>
    public List<Probe> Matching(DProgram program)
    {
        var found = new List<Probe>();
        foreach (var clause in program.Clauses)
            foreach (var spec in clause.Probes)
                foreach (var p in Match(spec))
                    if (!found.Contains(p)) found.Add(p);
        return found;
    }
}
