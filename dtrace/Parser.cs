namespace SmartOS.Dtrace;

internal abstract record Node(int Line, int Column);
internal abstract record Expr(int Line, int Column) : Node(Line, Column);
internal sealed record IntLit(long Value, int Line, int Column) : Expr(Line, Column);
internal sealed record StrLit(string Value, int Line, int Column) : Expr(Line, Column);
internal sealed record Ident(string Name, int Line, int Column) : Expr(Line, Column);
internal sealed record ThisVar(string Name, int Line, int Column) : Expr(Line, Column);
internal sealed record SelfVar(string Name, int Line, int Column) : Expr(Line, Column);
internal sealed record Member(Expr Target, string Name, int Line, int Column) : Expr(Line, Column);
internal sealed record Cast(string Type, Expr Operand, int Line, int Column) : Expr(Line, Column);
internal sealed record Index(string Name, List<Expr> Keys, int Line, int Column) : Expr(Line, Column);
internal sealed record Call(string Name, List<Expr> Args, int Line, int Column) : Expr(Line, Column);
internal sealed record AggRef(string Name, int Line, int Column) : Expr(Line, Column);
internal sealed record Unary(T Op, Expr Operand, int Line, int Column) : Expr(Line, Column);
internal sealed record Binary(T Op, Expr Left, Expr Right, int Line, int Column) : Expr(Line, Column);
internal sealed record Cond(Expr Test, Expr Then, Expr Else, int Line, int Column) : Expr(Line, Column);
internal sealed record Assign(T Op, Expr Target, Expr Value, int Line, int Column) : Expr(Line, Column);
internal sealed record IncDec(T Op, bool Prefix, Expr Target, int Line, int Column) : Expr(Line, Column);
internal sealed record AggAssign(string Name, List<Expr> Keys, Call Func, int Line, int Column) : Expr(Line, Column);

internal sealed record ProbeSpec(string Text, int Line, int Column);
internal sealed record Clause(List<ProbeSpec> Probes, Expr? Predicate, List<Expr> Statements, int Line);

/// <summary>D's grammar (dt_grammar.y), by recursive descent, for the subset Syntax.cs names.</summary>
internal sealed class Parser
{
    private readonly Lexer _lex;
    private Token _tok;

    private Parser(string src)
    {
        _lex = new Lexer(src);
    }

    public static List<Clause> Parse(string src)
    {
        var p = new Parser(src);
        return p.Program();
    }

    private DCompileError Near(Token t) =>
        t.Kind == T.End ? new DCompileError("syntax error near end of input", t.Line, t.Column) : new DCompileError($"syntax error near \"{t.Text}\"", t.Line, t.Column);

    private void Advance() => _tok = _lex.Next();

    private Token Expect(T kind)
    {
        if (_tok.Kind != kind) throw Near(_tok);
        var t = _tok;
        Advance();
        return t;
    }

    private List<Clause> Program()
    {
        var clauses = new List<Clause>();
        _tok = _lex.NextPSpec();
        while (_tok.Kind != T.End)
        {
            var probes = new List<ProbeSpec>();
            int line = _tok.Line;
            while (true)
            {
                if (_tok.Kind is not (T.PSpec or T.Ident)) throw Near(_tok);
                probes.Add(new ProbeSpec(_tok.Text, _tok.Line, _tok.Column));
                _tok = _lex.NextPSpec();
                if (_tok.Kind == T.Comma) { _tok = _lex.NextPSpec(); continue; }
                break;
            }
            Expr? pred = null;
            if (_tok.Kind == T.Slash)
            {
                Advance();
                pred = Expression(noSlash: true);
                if (_tok.Kind != T.Slash) throw Near(_tok);
                Advance();
            }
            var stmts = new List<Expr>();
            if (_tok.Kind == T.LBrace)
            {
                Advance();
                while (_tok.Kind != T.RBrace)
                {
                    if (_tok.Kind == T.End) throw Near(_tok);
                    if (_tok.Kind == T.Semi) { Advance(); continue; }
                    stmts.Add(Statement());
                    if (_tok.Kind == T.Semi) Advance();
                    else if (_tok.Kind != T.RBrace) throw Near(_tok);
                }
                _tok = _lex.NextPSpec();
            }
            else if (_tok.Kind != T.End && _tok.Kind != T.PSpec) throw Near(_tok);
            clauses.Add(new Clause(probes, pred, stmts, line));
        }
        return clauses;
    }

    private Expr Statement()
    {
        if (_tok.Kind == T.Agg)
        {
            var at = _tok;
            Advance();
            var keys = new List<Expr>();
            if (_tok.Kind == T.LBracket)
            {
                Advance();
                keys.Add(Assignment());
                while (_tok.Kind == T.Comma) { Advance(); keys.Add(Assignment()); }
                Expect(T.RBracket);
            }
            Expect(T.Assign);
            var f = Postfix();
            if (f is not Call call) throw new DCompileError($"{at.Text} must be assigned the result of an aggregating function", at.Line, at.Column);
            return new AggAssign(at.Text, keys, call, at.Line, at.Column);
        }
        return Expression(noSlash: false);
    }

    private bool _noSlash;

    private Expr Expression(bool noSlash)
    {
        bool saved = _noSlash;
        _noSlash = noSlash;
        try { return Assignment(); }
        finally { _noSlash = saved; }
    }

    private Expr Assignment()
    {
        var left = Conditional();
        if (_tok.Kind is T.Assign or T.PlusEq or T.MinusEq or T.StarEq or T.SlashEq or T.PercentEq or T.AmpEq or T.PipeEq or T.CaretEq or T.ShlEq or T.ShrEq)
        {
            var op = _tok;
            if (left is not (Ident or ThisVar or SelfVar or Index)) throw new DCompileError($"operator {op.Text} can only be applied to a writable variable", op.Line, op.Column);
            Advance();
            var right = Assignment();
            return new Assign(op.Kind, left, right, op.Line, op.Column);
        }
        return left;
    }

    private Expr Conditional()
    {
        var test = Binary(0);
        if (_tok.Kind != T.Question) return test;
        var q = _tok;
        Advance();
        var then = Assignment();
        Expect(T.Colon);
        var other = Conditional();
        return new Cond(test, then, other, q.Line, q.Column);
    }

    private static readonly T[][] s_levels =
    [
        [T.OrOr], [T.XorXor], [T.AndAnd], [T.Pipe], [T.Caret], [T.Amp], [T.EqEq, T.Ne],
        [T.Lt, T.Le, T.Gt, T.Ge], [T.Shl, T.Shr], [T.Plus, T.Minus], [T.Star, T.Slash, T.Percent],
    ];

    private Expr Binary(int level)
    {
        if (level == s_levels.Length) return UnaryExpr();
        var left = Binary(level + 1);
        while (Array.IndexOf(s_levels[level], _tok.Kind) >= 0 && !(_noSlash && _tok.Kind == T.Slash))
        {
            var op = _tok;
            Advance();
            var right = Binary(level + 1);
            left = new Binary(op.Kind, left, right, op.Line, op.Column);
        }
        return left;
    }

    private Expr UnaryExpr()
    {
        var t = _tok;
        switch (t.Kind)
        {
            case T.Bang or T.Tilde or T.Minus or T.Plus or T.Amp:
                Advance();
                return new Unary(t.Kind, UnaryExpr(), t.Line, t.Column);
            case T.LParen when _lex.PeekTypeName(out string type):
            {
                // A cast: "(" type-name ")" unary-expression (dt_grammar.y's cast_expression).
                _lex.SkipTypeName();
                Advance();
                return new Cast(type, UnaryExpr(), t.Line, t.Column);
            }
            case T.Inc or T.Dec:
                Advance();
                return new IncDec(t.Kind, true, UnaryExpr(), t.Line, t.Column);
        }
        return Postfix();
    }

    private Expr Postfix()
    {
        var e = Primary();
        while (true)
        {
            if (_tok.Kind is T.Inc or T.Dec)
            {
                var t = _tok;
                Advance();
                e = new IncDec(t.Kind, false, e, t.Line, t.Column);
            }
            else if (_tok.Kind == T.Arrow)
            {
                var t = _tok;
                Advance();
                var name = Expect(T.Ident);
                e = new Member(e, name.Text, t.Line, t.Column);
            }
            else return e;
        }
    }

    private Expr Primary()
    {
        var t = _tok;
        switch (t.Kind)
        {
            case T.Int: Advance(); return new IntLit(t.Value, t.Line, t.Column);
            case T.Str: Advance(); return new StrLit(t.Text, t.Line, t.Column);
            case T.Agg: Advance(); return new AggRef(t.Text, t.Line, t.Column);
            case T.LParen:
            {
                Advance();
                bool saved = _noSlash;
                _noSlash = false;
                var e = Assignment();
                _noSlash = saved;
                Expect(T.RParen);
                return e;
            }
            case T.Ident:
            {
                Advance();
                if (t.Text == "this" && _tok.Kind == T.Arrow)
                {
                    Advance();
                    var name = Expect(T.Ident);
                    return new ThisVar(name.Text, t.Line, t.Column);
                }
                if (t.Text == "self" && _tok.Kind == T.Arrow)
                {
                    Advance();
                    var name = Expect(T.Ident);
                    return new SelfVar(name.Text, t.Line, t.Column);
                }
                if (_tok.Kind == T.LParen)
                {
                    Advance();
                    var args = new List<Expr>();
                    bool saved = _noSlash;
                    _noSlash = false;
                    if (_tok.Kind != T.RParen)
                    {
                        args.Add(Assignment());
                        while (_tok.Kind == T.Comma) { Advance(); args.Add(Assignment()); }
                    }
                    _noSlash = saved;
                    Expect(T.RParen);
                    return new Call(t.Text, args, t.Line, t.Column);
                }
                if (_tok.Kind == T.LBracket)
                {
                    Advance();
                    var keys = new List<Expr> { Assignment() };
                    while (_tok.Kind == T.Comma) { Advance(); keys.Add(Assignment()); }
                    Expect(T.RBracket);
                    return new Index(t.Text, keys, t.Line, t.Column);
                }
                return new Ident(t.Text, t.Line, t.Column);
            }
        }
        throw Near(t);
    }
}
