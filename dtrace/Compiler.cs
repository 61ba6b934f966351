using SmartOS.Kernel.Trace;

namespace SmartOS.Dtrace;

internal enum DType { Int, Str }

/// <summary>What a clause runs against when its probe fires.</summary>
internal sealed class Frame
{
    public required Consumer Consumer;
    public Probe Probe = null!;
    public ProbeArgs Args;
    public long[] ThisInt = [];
    public string[] ThisStr = [];

    /// <summary>Set by speculate(): the firing's record goes to <see cref="Spec"/> (null: the
    /// speculation was not active, and the record is dropped as dtrace drops it).</summary>
    public bool Speculating;
    public SpecRecord? Spec;
    public Speculation? SpecOwner;

    /// <summary>The bytes the running clause's record takes (0 when it records nothing).</summary>
    public long RecordBytes;
}

/// <summary>A run-time fault (rule 4 of Syntax.cs): dtrace's fault name, the notional DIF offset,
/// the fault's DTRACEFLT_ code and the value it concerns (the bad address).</summary>
internal sealed class DRuntimeFault(string what, int difOffset, int code = DRuntimeFault.DivideByZero, long value = 0) : Exception(what)
{
    public const int BadAddress = 1, DivideByZero = 4;

    public int DifOffset { get; } = difOffset;
    public int Code { get; } = code;
    public long Value { get; } = value;
}

/// <summary>A typed compiled expression: exactly one of I and S is set.</summary>
internal readonly record struct CExpr(DType Type, Func<Frame, long>? I, Func<Frame, string>? S)
{
    public static CExpr Int(Func<Frame, long> f) => new(DType.Int, f, null);
    public static CExpr Str(Func<Frame, string> f) => new(DType.Str, null, f);
    public object Box(Frame f) => Type == DType.Int ? I!(f) : S!(f);
}

/// <summary>A key of an associative array or aggregation: its parts compared by value.</summary>
internal sealed class Key(object[] parts) : IEquatable<Key>
{
    public static readonly Key Empty = new([]);

    public readonly object[] Parts = parts;

    public bool Equals(Key? other) => other != null && Parts.AsSpan().SequenceEqual(other.Parts);
    public override bool Equals(object? obj) => Equals(obj as Key);

    /// <summary>A key of its own with the same parts: what a table keeps when the caller refills its key.</summary>
    public Key Copy() => Parts.Length == 0 ? this : new((object[])Parts.Clone());

    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var p in Parts) h.Add(p);
        return h.ToHashCode();
    }
}

/// <summary>What a statement is to dt_cc.c's dt_stmt_append checks: an expression records nothing;
/// Record and Exit are data-recording actions.</summary>
internal enum ActionKind { None, Record, Exit, Aggregate, Speculate, Commit, Discard }

/// <param name="Bytes">What the statement adds to the clause's record (Compiler.RecordBytes).</param>
internal sealed record CompiledStatement(Action<Frame> Run, ActionKind Kind, int Bytes = 0);

internal sealed record CompiledClause(Clause Source, Func<Frame, long>? Predicate, CompiledStatement[] Statements, int ThisInts, int ThisStrs)
{
    /// <summary>Whether a firing leaves a record; a clause with no statements takes D's default
    /// action, which records the probe alone.</summary>
    public bool Records { get; } = Statements.Length == 0 || Statements.Any(s => s.Kind is ActionKind.Record or ActionKind.Exit);

    /// <summary>The bytes one firing's record takes in a speculative buffer: the record header
    /// (an EPID and a timestamp, 16 bytes with alignment) and each recorded value, 8 bytes for an
    /// integer and strsize (256) for a string, as the kernel sizes an ECB's record.</summary>
    public long RecordBytes { get; } = 16 + Statements.Sum(s => (long)s.Bytes);
}

/// <summary>Compiles clauses to closures, once (rule 2 of Syntax.cs).</summary>
internal sealed class Compiler
{
    private readonly Consumer _c;
    private readonly Dictionary<string, (DType Type, int Slot)> _globals = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (DType Type, List<DType> Keys, int Slot)> _arrays = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (DType Type, int Slot)> _self = new(StringComparer.Ordinal);
    private Dictionary<string, (DType Type, int Slot)> _this = new(StringComparer.Ordinal);
    private int _thisInts, _thisStrs, _dif;
    private IReadOnlyList<Probe> _probes = [];
    private Clause? _clause;

    public Compiler(Consumer consumer) => _c = consumer;

    private static readonly HashSet<string> s_builtins = ["timestamp", "vtimestamp", "walltimestamp", "probeprov", "probemod", "probefunc", "probename", "zonename", "epid", "id", "cpu",
        "execname", "pid", "ppid", "uid", "gid", "tid", "curthread", "curpsinfo", "curlwpsinfo"];

    /// <summary>Compiles a clause for the probes it matched (their argument types type args[N]).</summary>
    public CompiledClause Compile(Clause clause, IReadOnlyList<Probe> probes)
    {
        _probes = probes;
        _clause = clause;
        _this = new(StringComparer.Ordinal);
        _thisInts = _thisStrs = 0;
        Func<Frame, long>? pred = null;
        if (clause.Predicate != null)
        {
            _dif = 0;
            var p = Expr(clause.Predicate);
            pred = p.Type == DType.Int ? p.I : throw new DCompileError("predicate result must be of scalar type", clause.Predicate.Line, clause.Predicate.Column);
        }
        var stmts = new List<CompiledStatement>();
        foreach (var s in clause.Statements)
        {
            _dif = 0;
            stmts.Add(Statement(s));
            CheckOrder(stmts, s);
        }
        return new CompiledClause(clause, pred, stmts.ToArray(), _thisInts, _thisStrs);
    }

    /// <summary>
    /// dt_cc.c's dt_stmt_append: once a statement is added, the clause's actions must still jibe.
    /// speculate() comes before any data-recording action and once; no aggregation or exit() after
    /// it; commit() once, before any data-recording action, and nothing that records after it.
    /// Expressions and discard() record nothing and may go anywhere.
    /// </summary>
    private static void CheckOrder(List<CompiledStatement> stmts, Expr at)
    {
        bool commit = false, speculate = false, datarec = false;
        foreach (var st in stmts)
        {
            string? error = null;
            switch (st.Kind)
            {
                case ActionKind.Commit:
                    error = commit ? "commit( ) may not follow commit( )" : datarec ? "commit( ) may not follow data-recording action(s)" : null;
                    commit = true;
                    break;
                case ActionKind.Speculate:
                    error = speculate ? "speculate( ) may not follow speculate( )" : commit ? "speculate( ) may not follow commit( )"
                        : datarec ? "speculate( ) may not follow data-recording action(s)" : null;
                    speculate = true;
                    break;
                case ActionKind.Aggregate:
                    error = commit ? "aggregating actions may not follow commit( )" : speculate ? "aggregating actions may not follow speculate( )" : null;
                    datarec = true;
                    break;
                case ActionKind.Record or ActionKind.Exit:
                    error = speculate && st.Kind == ActionKind.Exit ? "exit( ) may not follow speculate( )"
                        : commit ? "data-recording actions may not follow commit( )" : null;
                    if (!speculate) datarec = true;
                    break;
            }
            if (error != null) throw new DCompileError(error, at.Line, at.Column);
        }
    }

    private int NextDif() => (_dif++) * 4;

    private CompiledStatement Statement(Expr s)
    {
        switch (s)
        {
            case AggAssign a: return new(AggregationStatement(a), ActionKind.Aggregate);
            case Call { Name: "trace" } call:
            {
                if (call.Args.Count != 1) throw Proto(call, "trace", call.Args.Count, 1);
                var e = Expr(call.Args[0]);
                var c = _c;
                return e.Type == DType.Int
                    ? new(f => c.TraceInt(e.I!(f)), ActionKind.Record, 8)
                    : new(f => c.TraceStr(e.S!(f)), ActionKind.Record, StrSize);
            }
            case Call { Name: "printf" } call:
            {
                if (call.Args.Count < 1 || call.Args[0] is not StrLit fmt)
                    throw new DCompileError("printf( ) argument #1 is incompatible with prototype:\n\tprototype: string\n\t argument: " + (call.Args.Count == 0 ? "none" : "expression"), call.Line, call.Column);
                var args = call.Args.Skip(1).Select(Expr).ToArray();
                var format = DFormat.Parse(fmt.Value, args.Select(a => a.Type).ToArray(), "printf", fmt.Line, fmt.Column);
                var c = _c;
                return new(f =>
                {
                    var values = new object[args.Length];
                    for (int i = 0; i < args.Length; i++) values[i] = args[i].Box(f);
                    c.Print(format.Format(values));
                }, ActionKind.Record, args.Length == 0 ? 8 : args.Sum(a => a.Type == DType.Int ? 8 : StrSize));
            }
            case Call { Name: "printa" } call:
            {
                int at = call.Args.Count > 0 && call.Args[0] is StrLit ? 1 : 0;
                // dt_action_printa words this one "%d args passed" whatever the count.
                if (call.Args.Count - at < 1) throw new DCompileError($"printa( ) prototype mismatch: {call.Args.Count} args passed, {at + 1} expected", call.Line, call.Column);
                var names = new string[call.Args.Count - at];
                AggRef? first = null;
                for (int i = at; i < call.Args.Count; i++)
                {
                    if (call.Args[i] is not AggRef agg)
                        throw new DCompileError("printa( ) argument #" + (i + 1) + " is incompatible with prototype:\n\tprototype: aggregation\n\t argument: " + (Expr(call.Args[i]).Type == DType.Str ? "string" : "int64_t"), call.Line, call.Column);
                    _c.RequireAggregation(agg.Name, agg);
                    if (first != null) CheckKeySignatures(first, agg, call);
                    first ??= agg;
                    names[i - at] = agg.Name;
                }
                DFormat? format = at == 1 ? DFormat.Parse(((StrLit)call.Args[0]).Value, null, "printa", call.Line, call.Column) : null;
                var c = _c;
                return new(f => c.PrintA(names, format), ActionKind.Record, 8 * names.Length);
            }
            case Call { Name: "trunc" or "clear" or "normalize" or "denormalize" } call:
            {
                string fn = call.Name;
                int want = fn == "normalize" ? 2 : 1;
                if (call.Args.Count != want && !(fn == "trunc" && call.Args.Count == 2)) throw Proto(call, fn, call.Args.Count, want);
                if (call.Args[0] is not AggRef agg)
                    throw new DCompileError($"{fn}( ) argument #1 is incompatible with prototype:\n\tprototype: aggregation\n\t argument: expression", call.Line, call.Column);
                _c.RequireAggregation(agg.Name, agg);
                var n = call.Args.Count == 2 ? IntArg(call, 1) : null;
                var c = _c;
                string name = agg.Name;
                return fn switch
                {
                    "trunc" => new(f => c.Trunc(name, n?.Invoke(f)), ActionKind.Record, 16),
                    "clear" => new(f => c.ClearAggregation(name), ActionKind.Record, 8),
                    "normalize" => new(f => c.Normalize(name, n!(f)), ActionKind.Record, 16),
                    _ => new(f => c.Normalize(name, 1), ActionKind.Record, 8),
                };
            }
            case Call { Name: "exit" } call:
            {
                if (call.Args.Count != 1) throw Proto(call, "exit", call.Args.Count, 1);
                var e = Expr(call.Args[0]);
                if (e.Type != DType.Int) throw new DCompileError("exit( ) argument #1 is incompatible with prototype:\n\tprototype: int\n\t argument: string", call.Line, call.Column);
                var c = _c;
                return new(f => c.Exit(e.I!(f)), ActionKind.Exit, 8);
            }
            case Call { Name: "speculate" or "commit" or "discard" } call:
            {
                if (call.Args.Count != 1) throw Proto(call, call.Name, call.Args.Count, 1);
                var e = Expr(call.Args[0]);
                if (e.Type != DType.Int) throw new DCompileError($"{call.Name}( ) argument #1 is incompatible with prototype:\n\tprototype: int\n\t argument: string", call.Line, call.Column);
                var id = e.I!;
                var c = _c;
                _c.UsesSpeculations = true;
                return call.Name switch
                {
                    "speculate" => new(f => c.Speculate(f, id(f)), ActionKind.Speculate),
                    "commit" => new(f => c.Commit(id(f)), ActionKind.Commit),
                    _ => new(f => c.Discard(id(f)), ActionKind.Discard),
                };
            }
            default:
            {
                var e = Expr(s);
                return e.Type == DType.Int ? new(f => e.I!(f), ActionKind.None) : new(f => e.S!(f), ActionKind.None);
            }
        }
    }

    /// <summary>dt_printf.c's dt_printa_validate: printa's aggregations must have the same keys.</summary>
    private void CheckKeySignatures(AggRef lhs, AggRef rhs, Call at)
    {
        var l = _c.KeyTypesOf(lhs.Name);
        var r = _c.KeyTypesOf(rhs.Name);
        if (l.Length != r.Length)
            throw new DCompileError($"printa( ): {lhs.Name} and {rhs.Name} do not have matching key signatures: {lhs.Name} has {l.Length} key{(l.Length == 1 ? "" : "s")}, {rhs.Name} has {r.Length} key{(r.Length == 1 ? "" : "s")}", at.Line, at.Column);
        for (int i = 0; i < l.Length; i++)
            if (l[i] != r[i])
                throw new DCompileError($"printa( ): {rhs.Name}[ ] key #{i + 1} is incompatible with {lhs.Name}:\n{lhs.Name[1..],9} key #{i + 1}: {Name(l[i])}\n{rhs.Name[1..],9} key #{i + 1}: {Name(r[i])}", at.Line, at.Column);
    }

    /// <summary>dtrace's default strsize: the bytes a string takes in a record.</summary>
    private const int StrSize = 256;

    /// <summary>dt_parser.c's "%s( ) prototype mismatch: %d arg%s passed, %s%d expected".</summary>
    private static DCompileError Proto(Node at, string name, int passed, int expected, bool atLeast = false) =>
        new($"{name}( ) prototype mismatch: {passed} arg{(passed == 1 ? "" : "s")} passed, {(atLeast ? "at least " : "")}{expected} expected", at.Line, at.Column);

    private Action<Frame> AggregationStatement(AggAssign a)
    {
        var keys = a.Keys.Select(Expr).ToArray();
        var args = a.Func.Args.Select(Expr).ToArray();
        foreach (var arg in args)
            if (arg.Type != DType.Int) throw new DCompileError($"{a.Func.Name}( ) argument #{Array.IndexOf(args, arg) + 1} is incompatible with prototype:\n\tprototype: uint64_t\n\t argument: string", a.Line, a.Column);
        AggKind kind = a.Func.Name switch
        {
            "count" => AggKind.Count, "sum" => AggKind.Sum, "min" => AggKind.Min, "max" => AggKind.Max, "avg" => AggKind.Avg, "stddev" => AggKind.Stddev,
            "quantize" => AggKind.Quantize, "lquantize" => AggKind.Lquantize, "llquantize" => AggKind.Llquantize,
            _ => throw new DCompileError($"{a.Func.Name}( ) may not be used as an aggregating function", a.Func.Line, a.Func.Column),
        };
        int want = kind switch { AggKind.Count => 0, AggKind.Lquantize or AggKind.Llquantize => -1, _ => 1 };
        if (kind == AggKind.Llquantize && args.Length is not (5 or 6)) throw Proto(a.Func, a.Func.Name, args.Length, args.Length < 5 ? 5 : 6, atLeast: args.Length < 5);
        if (want >= 0 && args.Length != want) throw Proto(a.Func, a.Func.Name, args.Length, want);
        if (kind == AggKind.Lquantize && args.Length is not (4 or 5)) throw Proto(a.Func, a.Func.Name, args.Length, args.Length < 4 ? 4 : 5, atLeast: args.Length < 4);
        long low = 0, high = 0, step = 1;
        if (kind == AggKind.Lquantize)
        {
            if (a.Func.Args[1] is not IntLit l || a.Func.Args[2] is not IntLit h || a.Func.Args[3] is not IntLit s)
                throw new DCompileError("lquantize( ) argument #2 must be a non-zero constant", a.Func.Line, a.Func.Column);
            (low, high, step) = (l.Value, h.Value, s.Value);
            if (step <= 0) throw new DCompileError("lquantize( ) step must be greater than zero", a.Func.Line, a.Func.Column);
            if (high <= low) throw new DCompileError("lquantize( ) upper bound must be greater than lower bound", a.Func.Line, a.Func.Column);
            if ((high - low) / step > 10000) throw new DCompileError("lquantize( ) number of levels must be less than 65536", a.Func.Line, a.Func.Column);
        }
        long steps = 0;
        if (kind == AggKind.Llquantize) (low, high, step, steps) = LlquantizeArguments(a.Func);
        var agg = _c.DeclareAggregation(a.Name, kind, keys.Select(k => k.Type).ToArray(), low, high, step, a, steps);
        var value = args.Length > 0 ? args[0].I! : null;
        var incr = kind == AggKind.Lquantize && args.Length == 5 || kind == AggKind.Llquantize && args.Length == 6 ? args[^1].I! : null;
        if (keys.Length == 0)
            return f => agg.Add(Key.Empty, value == null ? 1 : value(f), incr == null ? 1 : incr(f));
        // One key, refilled per firing: the aggregation copies it only when it makes a new entry, so
        // a firing that finds its entry allocates nothing for the key (an integer part is still boxed).
        // Firings of one consumer never overlap (they run on the host's loop), as the entries' table assumes.
        var scratch = new object[keys.Length];
        var probeKey = new Key(scratch);
        return f =>
        {
            for (int i = 0; i < keys.Length; i++) scratch[i] = keys[i].Box(f);
            agg.Add(probeKey, value == null ? 1 : value(f), incr == null ? 1 : incr(f));
        };
    }

    /// <summary>llquantize's factor, low and high magnitudes and steps, checked as dt_cc.c checks
    /// them; returned as (low, high, factor, steps).</summary>
    private static (long Low, long High, long Factor, long Steps) LlquantizeArguments(Call f)
    {
        string[] names = ["factor", "low magnitude", "high magnitude", "linear steps per magnitude"];
        var v = new long[4];
        for (int i = 0; i < 4; i++)
        {
            if (f.Args[i + 1] is not IntLit lit) throw new DCompileError($"llquantize( ) argument #{i + 1} ({names[i]}) must be an integer constant", f.Line, f.Column);
            if ((ulong)lit.Value > ushort.MaxValue) throw new DCompileError($"llquantize( ) argument #{i + 1} ({names[i]}) must be an unsigned 16-bit quantity", f.Line, f.Column);
            v[i] = lit.Value;
        }
        long factor = v[0], low = v[1], high = v[2], steps = v[3];
        if (factor < 2) throw new DCompileError("llquantize( ) factor (argument #1) must be two or more", f.Line, f.Column);
        if (low >= high) throw new DCompileError("llquantize( ) high magnitude (argument #3) must be greater than low magnitude (argument #2)", f.Line, f.Column);
        if (steps < factor) throw new DCompileError("llquantize( ) factor (argument #1) must be less than or equal to the number of linear steps per magnitude (argument #4)", f.Line, f.Column);
        long p = factor;
        while (p < steps) p *= factor;
        if (steps % factor != 0 || p % steps != 0)
            throw new DCompileError("llquantize( ) factor (argument #1) must evenly divide the number of steps per magnitude (argument #4), and the number of steps per magnitude must evenly divide a power of the factor", f.Line, f.Column);
        ulong order = 1;
        for (long i = 0; i <= high + 1; i++)
        {
            if (order * (ulong)factor > order && order * (ulong)factor / (ulong)factor == order) { order *= (ulong)factor; continue; }
            throw new DCompileError($"llquantize( ) factor ({factor}) raised to power of high magnitude ({high}) plus 1 overflows 64-bits", f.Line, f.Column);
        }
        return (low, high, factor, steps);
    }

    internal CExpr Expr(Expr e)
    {
        switch (e)
        {
            case IntLit i: { long v = i.Value; return CExpr.Int(_ => v); }
            case StrLit s: { string v = s.Value; return CExpr.Str(_ => v); }
            case Ident id: return Identifier(id);
            case ThisVar tv:
            {
                if (!_this.TryGetValue(tv.Name, out var slot)) throw new DCompileError($"failed to resolve this->{tv.Name}: Unknown variable name", tv.Line, tv.Column);
                int n = slot.Slot;
                return slot.Type == DType.Int ? CExpr.Int(f => f.ThisInt[n]) : CExpr.Str(f => f.ThisStr[n] ?? "");
            }
            case SelfVar sv:
            {
                if (!_self.TryGetValue(sv.Name, out var slot)) throw new DCompileError($"failed to resolve self->{sv.Name}: Unknown variable name", sv.Line, sv.Column);
                int n = slot.Slot;
                var c = _c;
                return slot.Type == DType.Int ? CExpr.Int(f => c.SelfInt(f.Args.Thread, n)) : CExpr.Str(f => c.SelfStr(f.Args.Thread, n));
            }
            case Member m: return MemberExpr(m);
            case Cast cast: return CastExpr(cast);
            case Index { Name: "args" } ax: return ArgsExpr(ax);
            case Index { Name: "tcp_state_string" } ts:
            {
                if (ts.Keys.Count != 1) throw new DCompileError($"tcp_state_string[ ] prototype mismatch: {ts.Keys.Count} args passed, 1 expected", ts.Line, ts.Column);
                var k = Expr(ts.Keys[0]);
                if (k.Type != DType.Int) throw new DCompileError("tcp_state_string[ ] argument #1 is incompatible with prototype:\n\tprototype: int32_t\n\t argument: string", ts.Line, ts.Column);
                var g = k.I!;
                return CExpr.Str(f => DLibrary.TcpStateString(g(f)));
            }
            case Index ix:
            {
                if (!_arrays.TryGetValue(ix.Name, out var arr)) throw new DCompileError($"failed to resolve {ix.Name}: Unknown variable name", ix.Line, ix.Column);
                var keys = KeysOf(ix, arr.Keys);
                var store = _c.Arrays[arr.Slot];
                return arr.Type == DType.Int
                    ? CExpr.Int(f => store.TryGetValue(keys(f), out var v) ? (long)v : 0)
                    : CExpr.Str(f => store.TryGetValue(keys(f), out var v) ? (string)v : "");
            }
            case AggRef ar: throw new DCompileError($"aggregation {ar.Name} may only be used as an argument to printa( )", ar.Line, ar.Column);
            case Call call: return Function(call);
            case Unary u:
            {
                if (u.Op == T.Amp) throw new DCompileError("operator & may only be applied to a member read by inet_ntoa( ) or inet_ntop( ) here", u.Line, u.Column);
                var x = Expr(u.Operand);
                if (x.Type != DType.Int) throw new DCompileError($"operator {Text(u.Op)} requires an operand of arithmetic type", u.Line, u.Column);
                var g = x.I!;
                return u.Op switch
                {
                    T.Bang => CExpr.Int(f => g(f) == 0 ? 1 : 0),
                    T.Tilde => CExpr.Int(f => ~g(f)),
                    T.Minus => CExpr.Int(f => unchecked(-g(f))),
                    _ => x,
                };
            }
            case Binary b: return BinaryExpr(b);
            case Cond c:
            {
                var t = Expr(c.Test);
                if (t.Type != DType.Int) throw new DCompileError("operator ?: expression must be of scalar type", c.Line, c.Column);
                var a = Expr(c.Then);
                var o = Expr(c.Else);
                if (a.Type != o.Type) throw new DCompileError("operator ?: operands must have compatible types", c.Line, c.Column);
                var ti = t.I!;
                return a.Type == DType.Int
                    ? CExpr.Int(f => ti(f) != 0 ? a.I!(f) : o.I!(f))
                    : CExpr.Str(f => ti(f) != 0 ? a.S!(f) : o.S!(f));
            }
            case Assign asg: return Assignment(asg);
            case IncDec inc:
            {
                var one = new IntLit(1, inc.Line, inc.Column);
                var asg = Assignment(new Assign(inc.Op == T.Inc ? T.PlusEq : T.MinusEq, inc.Target, one, inc.Line, inc.Column));
                if (inc.Prefix) return asg;
                var g = asg.I!;
                long delta = inc.Op == T.Inc ? 1 : -1;
                return CExpr.Int(f => g(f) - delta);
            }
            case AggAssign aa: throw new DCompileError("aggregations may only be assigned in a statement of their own", aa.Line, aa.Column);
        }
        throw new DCompileError("syntax error", e.Line, e.Column);
    }

    private Func<Frame, Key> KeysOf(Index ix, List<DType> types)
    {
        if (ix.Keys.Count != types.Count)
            throw new DCompileError($"{ix.Name}[ ] prototype mismatch: {ix.Keys.Count} arg{(ix.Keys.Count == 1 ? "" : "s")} passed, {types.Count} expected", ix.Line, ix.Column);
        var keys = ix.Keys.Select(Expr).ToArray();
        for (int i = 0; i < keys.Length; i++)
            if (keys[i].Type != types[i])
                throw new DCompileError($"{ix.Name}[ ] argument #{i + 1} is incompatible with prototype:\n\tprototype: {Name(types[i])}\n\t argument: {Name(keys[i].Type)}", ix.Line, ix.Column);
        return f =>
        {
            var parts = new object[keys.Length];
            for (int i = 0; i < keys.Length; i++) parts[i] = keys[i].Box(f);
            return new Key(parts);
        };
    }

    private static string Name(DType t) => t == DType.Int ? "int64_t" : "string";

    private CExpr Identifier(Ident id)
    {
        string n = id.Name;
        if (n.Length == 4 && n.StartsWith("arg", StringComparison.Ordinal) && char.IsAsciiDigit(n[3]))
        {
            int i = n[3] - '0';
            return CExpr.Int(f => f.Args[i].Int);
        }
        switch (n)
        {
            case "timestamp" or "vtimestamp": return CExpr.Int(f => f.Consumer.Now);
            // The host's clock starts at the epoch (as kstat -T reads it), so wall time is its time.
            case "walltimestamp": return CExpr.Int(f => f.Consumer.WallEpoch + f.Consumer.Now);
            case "probeprov": return CExpr.Str(f => f.Probe.Provider);
            case "probemod": return CExpr.Str(f => f.Probe.Module);
            case "probefunc": return CExpr.Str(f => f.Probe.Function);
            case "probename": return CExpr.Str(f => f.Probe.Name);
            case "zonename": return CExpr.Str(f => f.Args.Zone ?? f.Probe.Zone);
            case "id": return CExpr.Int(f => f.Probe.Id);
            case "cpu": return CExpr.Int(_ => 0);
            // The process the firing happens in (Probe.cs rule 6): the site's, else the program
            // whose code runs, else the host's kernel (sched, pid 0).
            case "execname": return CExpr.Str(f => ProcessOf(f).Fname);
            case "pid": return CExpr.Int(f => ProcessOf(f).Pid);
            case "ppid": return CExpr.Int(f => ProcessOf(f).PPid);
            case "uid" or "gid": return CExpr.Int(_ => 0);
            case "tid": return CExpr.Int(f => ProcessOf(f).Pid == 0 ? 0 : 1);
            case "curthread": return CExpr.Int(f => ProcessOf(f).ThreadAddress);
            case "curpsinfo" or "curlwpsinfo":
                throw new DCompileError($"{n} is a pointer to {(n == "curpsinfo" ? "psinfo_t" : "lwpsinfo_t")}: read a member with ->", id.Line, id.Column);
        }
        if (DLibrary.Inlines.TryGetValue(n, out long inline)) return CExpr.Int(_ => inline);
        if (_globals.TryGetValue(n, out var g))
        {
            int slot = g.Slot;
            var c = _c;
            return g.Type == DType.Int ? CExpr.Int(_ => c.GlobalInts[slot]) : CExpr.Str(_ => c.GlobalStrs[slot] ?? "");
        }
        throw new DCompileError($"failed to resolve {n}: Unknown variable name", id.Line, id.Column);
    }

    private CExpr Function(Call call)
    {
        switch (call.Name)
        {
            case "stringof" when call.Args.Count == 1 && call.Args[0] is Ident { Name: var a } && a.Length == 4 && a.StartsWith("arg", StringComparison.Ordinal) && char.IsAsciiDigit(a[3]):
            {
                int i = a[3] - '0';
                return CExpr.Str(f => f.Args[i].Str ?? f.Args[i].Int.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            case "strlen" when call.Args.Count == 1:
            {
                var s = Expr(call.Args[0]);
                if (s.Type != DType.Str) throw new DCompileError("strlen( ) argument #1 is incompatible with prototype:\n\tprototype: string\n\t argument: int64_t", call.Line, call.Column);
                return CExpr.Int(f => s.S!(f).Length);
            }
            case "stringof":
            {
                if (call.Args.Count != 1) throw Proto(call, "stringof", call.Args.Count, 1);
                var e = Expr(call.Args[0]);
                if (e.Type == DType.Str) return e;
                var g = e.I!;
                return CExpr.Str(f => g(f).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            case "strjoin":
            {
                if (call.Args.Count != 2) throw Proto(call, "strjoin", call.Args.Count, 2);
                var a = StrArg(call, 0);
                var b = StrArg(call, 1);
                return CExpr.Str(f => DLibrary.Bound(a(f) + b(f)));
            }
            case "substr":
            {
                if (call.Args.Count is not (2 or 3)) throw Proto(call, "substr", call.Args.Count, 3);
                var str = StrArg(call, 0);
                var index = IntArg(call, 1);
                var length = call.Args.Count == 3 ? IntArg(call, 2) : null;
                return CExpr.Str(f => DLibrary.Substr(str(f), index(f), length?.Invoke(f)));
            }
            case "lltostr":
            {
                if (call.Args.Count != 1) throw Proto(call, "lltostr", call.Args.Count, 1);
                var v = IntArg(call, 0);
                return CExpr.Str(f => v(f).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            case "inet_ntoa":
            {
                if (call.Args.Count != 1) throw Proto(call, "inet_ntoa", call.Args.Count, 1);
                return AddressOf(call, call.Args[0], "ipaddr_t *");
            }
            case "inet_ntop":
            {
                if (call.Args.Count != 2) throw Proto(call, "inet_ntop", call.Args.Count, 2);
                IntArg(call, 0);
                return AddressOf(call, call.Args[1], "void *");
            }
            case "speculation":
            {
                if (call.Args.Count != 0) throw Proto(call, "speculation", call.Args.Count, 0);
                var c = _c;
                _c.UsesSpeculations = true;
                return CExpr.Int(_ => c.NewSpeculation());
            }
            case "trace" or "printf" or "printa" or "exit" or "speculate" or "commit" or "discard":
                throw new DCompileError($"{call.Name}( ) may not be used in an expression", call.Line, call.Column);
            case "count" or "sum" or "min" or "max" or "avg" or "stddev" or "quantize" or "lquantize" or "llquantize":
                throw new DCompileError($"{call.Name}( ) may only be used as the value of an aggregation", call.Line, call.Column);
        }
        throw new DCompileError($"failed to resolve {call.Name}: Unknown function name", call.Line, call.Column);
    }

    private CExpr BinaryExpr(Binary b)
    {
        var l = Expr(b.Left);
        var r = Expr(b.Right);
        if (b.Op is T.EqEq or T.Ne or T.Lt or T.Le or T.Gt or T.Ge && l.Type == DType.Str && r.Type == DType.Str)
        {
            var ls = l.S!;
            var rs = r.S!;
            return b.Op switch
            {
                T.EqEq => CExpr.Int(f => ls(f) == rs(f) ? 1 : 0),
                T.Ne => CExpr.Int(f => ls(f) != rs(f) ? 1 : 0),
                T.Lt => CExpr.Int(f => string.CompareOrdinal(ls(f), rs(f)) < 0 ? 1 : 0),
                T.Le => CExpr.Int(f => string.CompareOrdinal(ls(f), rs(f)) <= 0 ? 1 : 0),
                T.Gt => CExpr.Int(f => string.CompareOrdinal(ls(f), rs(f)) > 0 ? 1 : 0),
                _ => CExpr.Int(f => string.CompareOrdinal(ls(f), rs(f)) >= 0 ? 1 : 0),
            };
        }
        if (l.Type != DType.Int || r.Type != DType.Int)
            throw new DCompileError($"operator {Text(b.Op)} {(b.Op is T.EqEq or T.Ne or T.Lt or T.Le or T.Gt or T.Ge ? "operands have incompatible types" : "requires operands of arithmetic type")}: \"{Name(l.Type)}\" {Text(b.Op)} \"{Name(r.Type)}\"", b.Line, b.Column);
        var x = l.I!;
        var y = r.I!;
        int dif = NextDif();
        return b.Op switch
        {
            T.Plus => CExpr.Int(f => unchecked(x(f) + y(f))),
            T.Minus => CExpr.Int(f => unchecked(x(f) - y(f))),
            T.Star => CExpr.Int(f => unchecked(x(f) * y(f))),
            T.Slash => CExpr.Int(f => { long a = x(f), d = y(f); if (d == 0) throw new DRuntimeFault("divide-by-zero", dif); return d == -1 ? unchecked(-a) : a / d; }),
            T.Percent => CExpr.Int(f => { long a = x(f), d = y(f); if (d == 0) throw new DRuntimeFault("divide-by-zero", dif); return d == -1 ? 0 : a % d; }),
            T.Amp => CExpr.Int(f => x(f) & y(f)),
            T.Pipe => CExpr.Int(f => x(f) | y(f)),
            T.Caret => CExpr.Int(f => x(f) ^ y(f)),
            T.Shl => CExpr.Int(f => x(f) << (int)(y(f) & 63)),
            T.Shr => CExpr.Int(f => x(f) >> (int)(y(f) & 63)),
            T.EqEq => CExpr.Int(f => x(f) == y(f) ? 1 : 0),
            T.Ne => CExpr.Int(f => x(f) != y(f) ? 1 : 0),
            T.Lt => CExpr.Int(f => x(f) < y(f) ? 1 : 0),
            T.Le => CExpr.Int(f => x(f) <= y(f) ? 1 : 0),
            T.Gt => CExpr.Int(f => x(f) > y(f) ? 1 : 0),
            T.Ge => CExpr.Int(f => x(f) >= y(f) ? 1 : 0),
            T.AndAnd => CExpr.Int(f => x(f) != 0 && y(f) != 0 ? 1 : 0),
            T.OrOr => CExpr.Int(f => x(f) != 0 || y(f) != 0 ? 1 : 0),
            _ => CExpr.Int(f => (x(f) != 0) ^ (y(f) != 0) ? 1 : 0),
        };
    }

    private static string Text(T op) => op switch
    {
        T.Plus => "+", T.Minus => "-", T.Star => "*", T.Slash => "/", T.Percent => "%", T.Amp => "&", T.Pipe => "|", T.Caret => "^",
        T.Shl => "<<", T.Shr => ">>", T.EqEq => "==", T.Ne => "!=", T.Lt => "<", T.Le => "<=", T.Gt => ">", T.Ge => ">=",
        T.AndAnd => "&&", T.OrOr => "||", T.XorXor => "^^", T.Bang => "!", T.Tilde => "~", _ => op.ToString(),
    };

    private static T Arith(T op) => op switch
    {
        T.PlusEq => T.Plus, T.MinusEq => T.Minus, T.StarEq => T.Star, T.SlashEq => T.Slash, T.PercentEq => T.Percent,
        T.AmpEq => T.Amp, T.PipeEq => T.Pipe, T.CaretEq => T.Caret, T.ShlEq => T.Shl, _ => T.Shr,
    };

    private CExpr Assignment(Assign a)
    {
        Expr valueExpr = a.Op == T.Assign ? a.Value : new Binary(Arith(a.Op), a.Target, a.Value, a.Line, a.Column);
        // The variable comes into being with the type of its first assignment (rule 3), so the
        // right side is compiled first unless the variable already exists.
        CExpr value;
        switch (a.Target)
        {
            case Ident id:
            {
                if (s_builtins.Contains(id.Name) || DLibrary.Inlines.ContainsKey(id.Name) || id.Name.StartsWith("arg", StringComparison.Ordinal) && id.Name.Length == 4 && char.IsAsciiDigit(id.Name[3]))
                    throw new DCompileError($"operator {(a.Op == T.Assign ? "=" : "op=")} can only be applied to a writable variable", a.Line, a.Column);
                if (!_globals.ContainsKey(id.Name) && a.Op != T.Assign) throw new DCompileError($"failed to resolve {id.Name}: Unknown variable name", id.Line, id.Column);
                value = Expr(valueExpr);
                if (!_globals.TryGetValue(id.Name, out var g))
                    _globals[id.Name] = g = (value.Type, value.Type == DType.Int ? _c.NewGlobalInt() : _c.NewGlobalStr());
                Check(g.Type, value, a);
                int slot = g.Slot;
                var c = _c;
                if (g.Type == DType.Int) { var v = value.I!; return CExpr.Int(f => c.GlobalInts[slot] = v(f)); }
                else { var v = value.S!; return CExpr.Str(f => c.GlobalStrs[slot] = v(f)); }
            }
            case ThisVar tv:
            {
                if (!_this.ContainsKey(tv.Name) && a.Op != T.Assign) throw new DCompileError($"failed to resolve this->{tv.Name}: Unknown variable name", tv.Line, tv.Column);
                value = Expr(valueExpr);
                if (!_this.TryGetValue(tv.Name, out var t))
                    _this[tv.Name] = t = (value.Type, value.Type == DType.Int ? _thisInts++ : _thisStrs++);
                Check(t.Type, value, a);
                int slot = t.Slot;
                if (t.Type == DType.Int) { var v = value.I!; return CExpr.Int(f => f.ThisInt[slot] = v(f)); }
                else { var v = value.S!; return CExpr.Str(f => f.ThisStr[slot] = v(f)); }
            }
            case SelfVar sv:
            {
                if (!_self.ContainsKey(sv.Name) && a.Op != T.Assign) throw new DCompileError($"failed to resolve self->{sv.Name}: Unknown variable name", sv.Line, sv.Column);
                value = Expr(valueExpr);
                if (!_self.TryGetValue(sv.Name, out var t))
                    _self[sv.Name] = t = (value.Type, value.Type == DType.Int ? _c.NewSelfInt() : _c.NewSelfStr());
                Check(t.Type, value, a);
                int slot = t.Slot;
                var c = _c;
                if (t.Type == DType.Int) { var v = value.I!; return CExpr.Int(f => c.SetSelfInt(f.Args.Thread, slot, v(f))); }
                else { var v = value.S!; return CExpr.Str(f => c.SetSelfStr(f.Args.Thread, slot, v(f))); }
            }
            case Index ix:
            {
                if (!_arrays.ContainsKey(ix.Name) && a.Op != T.Assign) throw new DCompileError($"failed to resolve {ix.Name}: Unknown variable name", ix.Line, ix.Column);
                if (!_arrays.ContainsKey(ix.Name))
                {
                    var keyTypes = ix.Keys.Select(k => Expr(k).Type).ToList();
                    var v0 = Expr(valueExpr);
                    _arrays[ix.Name] = (v0.Type, keyTypes, _c.NewArray());
                }
                var arr = _arrays[ix.Name];
                value = Expr(valueExpr);
                Check(arr.Type, value, a);
                var keys = KeysOf(ix, arr.Keys);
                var store = _c.Arrays[arr.Slot];
                var consumer = _c;
                // A new element takes room in the dynamic variable space (Consumer.DynVarSize); no room drops it.
                long size = Consumer.DynamicSize(arr.Keys, arr.Type == DType.Int ? 8 : 256);
                if (arr.Type == DType.Int)
                {
                    var v = value.I!;
                    // D: assigning zero deletes the element.
                    return CExpr.Int(f =>
                    {
                        var k = keys(f);
                        long x = v(f);
                        if (x == 0) { if (store.Remove(k)) consumer.GiveDynamic(size); }
                        else if (store.ContainsKey(k) || consumer.TakeDynamic(size)) store[k] = x;
                        return x;
                    });
                }
                else
                {
                    var v = value.S!;
                    return CExpr.Str(f =>
                    {
                        var k = keys(f);
                        string x = v(f);
                        if (store.ContainsKey(k) || consumer.TakeDynamic(size)) store[k] = x;
                        return x;
                    });
                }
            }
        }
        throw new DCompileError("operator = can only be applied to a writable variable", a.Line, a.Column);
    }

    private Func<Frame, string> StrArg(Call call, int i)
    {
        var e = Expr(call.Args[i]);
        if (e.Type != DType.Str) throw new DCompileError($"{call.Name}( ) argument #{i + 1} is incompatible with prototype:\n\tprototype: string\n\t argument: int64_t", call.Line, call.Column);
        return e.S!;
    }

    private Func<Frame, long> IntArg(Call call, int i)
    {
        var e = Expr(call.Args[i]);
        if (e.Type != DType.Int) throw new DCompileError($"{call.Name}( ) argument #{i + 1} is incompatible with prototype:\n\tprototype: int64_t\n\t argument: string", call.Line, call.Column);
        return e.I!;
    }

    /// <summary>The probes' common type of args[n], or null when it is untyped (rule 6 of Syntax.cs).</summary>
    private ProbeType? ArgType(Index ax, out int n)
    {
        if (ax.Keys.Count != 1 || ax.Keys[0] is not IntLit { Value: var v })
            throw new DCompileError("args[ ] index must be an integer constant", ax.Line, ax.Column);
        if (v < 0 || v >= ProbeArgs.Count) throw new DCompileError($"index {v} is out of range for args[ ]", ax.Line, ax.Column);
        n = (int)v;
        ProbeType? type = null;
        for (int i = 0; i < _probes.Count; i++)
        {
            var types = _probes[i].ArgTypes;
            var t = v < types.Count ? types[(int)v] : null;
            if (i > 0 && !ReferenceEquals(t, type))
                throw new DCompileError($"args[ ] may not be referenced because probe description {string.Join(", ", _clause!.Probes.Select(p => p.Text))} matches an unstable set of probes", ax.Line, ax.Column);
            type = t;
        }
        return type;
    }

    /// <summary>args[N] of an untyped probe: argN.</summary>
    private CExpr ArgsExpr(Index ax)
    {
        var type = ArgType(ax, out int n);
        if (type != null) throw new DCompileError($"args[{n}] is a pointer to {type.Name}: read a member with ->", ax.Line, ax.Column);
        return CExpr.Int(f => f.Args[n].Int);
    }

    /// <summary>The process a firing happens in (Probe.cs rule 6).</summary>
    internal static TraceProcess ProcessOf(Frame f) => f.Args.Process ?? TraceProcess.Current ?? f.Consumer.Kernel;

    private (ProbeMember Member, Func<Frame, object?> Target) ResolveMember(Member m)
    {
        if (m.Target is Ident { Name: "curpsinfo" or "curlwpsinfo" } cur)
        {
            var t = cur.Name == "curpsinfo" ? SchedProbes.PsInfo : SchedProbes.LwpsInfo;
            var pm = t.Member(m.Name) ?? throw new DCompileError($"{m.Name} is not a member of {t.Name}", m.Line, m.Column);
            return (pm, static f => ProcessOf(f));
        }
        if (m.Target is not Index { Name: "args" } ax) throw new DCompileError("operator -> must be applied to a pointer", m.Line, m.Column);
        var type = ArgType(ax, out int n) ?? throw new DCompileError("operator -> must be applied to a pointer", m.Line, m.Column);
        var member = type.Member(m.Name) ?? throw new DCompileError($"{m.Name} is not a member of {type.Name}", m.Line, m.Column);
        return (member, f => f.Args[n].Obj);
    }

    /// <summary>args[N]->member, curpsinfo->member (rule 6 of Syntax.cs): a NULL argument faults
    /// at the member's offset.</summary>
    private CExpr MemberExpr(Member m)
    {
        var (member, target) = ResolveMember(m);
        int dif = NextDif();
        long offset = member.Offset;
        if (member.Int is { } gi)
            return CExpr.Int(f => target(f) is { } o ? gi(o) : throw new DRuntimeFault($"invalid address (0x{offset:x})", dif, DRuntimeFault.BadAddress, offset));
        var gs = member.Str!;
        return CExpr.Str(f => target(f) is { } o ? gs(o) : throw new DRuntimeFault($"invalid address (0x{offset:x})", dif, DRuntimeFault.BadAddress, offset));
    }

    /// <summary>inet_ntoa(&amp;args[N]->m) and inet_ntop(af, &amp;args[N]->m): the address member as text
    /// (an ipaddr_t is read as the four bytes it holds in memory).</summary>
    private CExpr AddressOf(Call call, Expr arg, string prototype)
    {
        if (arg is Unary { Op: T.Amp, Operand: Member m })
        {
            var (member, _) = ResolveMember(m);
            var value = MemberExpr(m);
            if (member.Address) return value;
            if (member.CType == "ipaddr_t")
            {
                var g = value.I!;
                return CExpr.Str(f =>
                {
                    long a = g(f);
                    return $"{a & 0xFF}.{(a >> 8) & 0xFF}.{(a >> 16) & 0xFF}.{(a >> 24) & 0xFF}";
                });
            }
            throw new DCompileError($"{call.Name}( ) argument #{call.Args.IndexOf(arg) + 1} is incompatible with prototype:\n\tprototype: {prototype}\n\t argument: {member.CType} *", call.Line, call.Column);
        }
        throw new DCompileError($"{call.Name}( ) argument #{call.Args.IndexOf(arg) + 1} is incompatible with prototype:\n\tprototype: {prototype}\n\t argument: {(Expr(arg).Type == DType.Str ? "string" : "int64_t")}", call.Line, call.Column);
    }

    /// <summary>C's conversion to an integer type (rule 7 of Syntax.cs).</summary>
    private CExpr CastExpr(Cast cast)
    {
        var e = Expr(cast.Operand);
        if (cast.Type == "string")
        {
            if (e.Type == DType.Str) return e;
            throw new DCompileError("invalid cast expression: \"int64_t\" to \"string\"", cast.Line, cast.Column);
        }
        if (e.Type != DType.Int) throw new DCompileError($"invalid cast expression: \"string\" to \"{cast.Type}\"", cast.Line, cast.Column);
        var g = e.I!;
        return DLibrary.IntegerBits(cast.Type) switch
        {
            (8, true) => CExpr.Int(f => (sbyte)g(f)),
            (8, false) => CExpr.Int(f => (byte)g(f)),
            (16, true) => CExpr.Int(f => (short)g(f)),
            (16, false) => CExpr.Int(f => (ushort)g(f)),
            (32, true) => CExpr.Int(f => (int)g(f)),
            (32, false) => CExpr.Int(f => (uint)g(f)),
            (64, _) => e,
            _ => throw new DCompileError($"invalid type name \"{cast.Type}\"", cast.Line, cast.Column),
        };
    }

    private static void Check(DType want, CExpr value, Assign a)
    {
        if (want != value.Type)
            throw new DCompileError($"operator {(a.Op == T.Assign ? "=" : "op=")} operands have incompatible types: \"{Name(want)}\" = \"{Name(value.Type)}\"", a.Line, a.Column);
    }
}
