/*
 * The D language: lexer, parser and compiler (issue 14). The command is Commands/Dtrace.cs.
 *
 * Terms
 *   program    clauses read from -n or -s: probe descriptions, an optional /predicate/ and a
 *              { statement; ... } block (dt_grammar.y's d_program).
 *   clause     compiled once (Compiler.cs) into closures over a Frame: a predicate Func and one
 *              Action per statement. Nothing walks the tree when a probe fires.
 *   consumer   Consumer.cs: enables the clauses on the host's probes, runs them when a probe fires,
 *              prints records and, at the end, the aggregations (Aggregations.cs), as dtrace does.
 *
 * Rules
 *   1. Compile errors carry dtrace's wording (dt_errtags.h, dt_grammar.y): "syntax error near
 *      "TOKEN"", "failed to resolve NAME: Unknown variable name" ..., and the line (and column,
 *      kept for tools; dtrace itself prints only the line) where they were found.
 *   2. Values are 64-bit signed integers or strings; every expression's type is known when it is
 *      compiled, so a clause holds typed closures (Func<Frame,long>, Func<Frame,string>).
 *   3. A global variable's type is that of its first assignment in the program, as D infers it.
 *   4. A run-time fault (division by zero) ends the clause for that firing, reports dtrace's
 *      "error on enabled probe ID" line and tracing goes on.
 *
 *   5. Thread-local variables (self->x) belong to the firing's thread (ProbeArgs.Thread): the TCP
 *      connection a tcp probe fires for, the UDP socket of a delivered datagram, else the zone's
 *      stack for ip probes; BEGIN, END, tick and probes without a thread share one. Like a global,
 *      a self variable takes the type of its first assignment; unset, it reads 0 or "", and
 *      assigning 0 frees it, as D's dynamic variables are freed.
 *   6. args[N]->member reads a typed argument (kernel/Trace/ProbeTypes.cs); the probes a clause
 *      matches must agree on args[N]'s type. A NULL argument read faults with "invalid address".
 *   7. Casts to C integer types truncate and sign-extend as C does: (uint8_t)300 is 44, (char)200 is -56.
 *
 *   8. Speculations (Consumer.Speculations.cs): speculation() hands out one of -x nspec buffers of
 *      -x specsize bytes; speculate() sends the clause's record there, commit() prints it where the
 *      commit fires, discard() drops it. The order of these among a clause's actions is checked as
 *      dt_cc.c checks it ("speculate( ) may not follow data-recording action(s)", ...).
 *   9. printa(@a, @b, ...) prints the aggregations joined on their keys (Aggregation.PrintJoined),
 *      which must match in number and type; -x aggsortpos picks the one that sorts first.
 */
using System.Globalization;
using System.Text;

namespace SmartOS.Dtrace;

/// <summary>A compile error (rule 1).</summary>
public sealed class DCompileError(string message, int line, int column) : Exception(message)
{
    public int Line { get; } = line;
    public int Column { get; } = column;
}

internal enum T
{
    End, Ident, Int, Str, PSpec, Agg,
    LBrace, RBrace, LParen, RParen, LBracket, RBracket, Comma, Semi, Slash, Question, Colon,
    Plus, Minus, Star, Percent, Amp, Pipe, Caret, Tilde, Bang, Lt, Gt, Le, Ge, EqEq, Ne,
    AndAnd, OrOr, XorXor, Shl, Shr, Assign, PlusEq, MinusEq, StarEq, SlashEq, PercentEq,
    AmpEq, PipeEq, CaretEq, ShlEq, ShrEq, Inc, Dec, Arrow, Dot,
}

internal readonly record struct Token(T Kind, string Text, long Value, int Line, int Column);

/// <summary>D's lexer (dt_lex.l): C tokens in clause bodies, probe specifiers before them.</summary>
internal sealed class Lexer(string src)
{
    private int _pos, _line = 1, _lineStart;

    private static bool IsPSpecStart(char c) => char.IsAsciiLetter(c) || c is '-' or '$' or ':' or '_' or '.' or '?' or '*' or '[' or ']' or '!';
    private static bool IsPSpec(char c) => IsPSpecStart(c) || char.IsAsciiDigit(c);

    private void SkipSpace()
    {
        while (_pos < src.Length)
        {
            char c = src[_pos];
            if (c == '\n') { _pos++; _line++; _lineStart = _pos; }
            else if (char.IsWhiteSpace(c)) _pos++;
            else if (c == '/' && _pos + 1 < src.Length && src[_pos + 1] == '*')
            {
                int start = _line, col = _pos - _lineStart + 1;
                _pos += 2;
                while (_pos < src.Length && !(src[_pos] == '*' && _pos + 1 < src.Length && src[_pos + 1] == '/'))
                {
                    if (src[_pos] == '\n') { _line++; _lineStart = _pos + 1; }
                    _pos++;
                }
                if (_pos >= src.Length) throw new DCompileError("end-of-file encountered before matching */", start, col);
                _pos += 2;
            }
            else if (c == '/' && _pos + 1 < src.Length && src[_pos + 1] == '/')
                while (_pos < src.Length && src[_pos] != '\n') _pos++;
            else break;
        }
    }

    /// <summary>A probe specifier (outside clause bodies), or an ordinary token when none starts here.</summary>
    public Token NextPSpec()
    {
        SkipSpace();
        if (_pos < src.Length && IsPSpecStart(src[_pos]) || _pos < src.Length && char.IsAsciiDigit(src[_pos]))
        {
            int start = _pos, col = _pos - _lineStart + 1;
            while (_pos < src.Length && IsPSpec(src[_pos])) _pos++;
            return new Token(T.PSpec, src[start.._pos], 0, _line, col);
        }
        return Next();
    }

    private static readonly HashSet<string> s_typeWords = ["char", "short", "int", "long", "signed", "unsigned",
        "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "intptr_t", "uintptr_t",
        "size_t", "ssize_t", "string"];

    /// <summary>After a "(": whether a type name and ")" follow (a cast), and the name normalised
    /// ("unsigned long long"); the lexer does not move.</summary>
    public bool PeekTypeName(out string type)
    {
        int pos = _pos;
        var words = new List<string>();
        while (true)
        {
            while (pos < src.Length && char.IsWhiteSpace(src[pos]) && src[pos] != '\n') pos++;
            int start = pos;
            while (pos < src.Length && (char.IsAsciiLetterOrDigit(src[pos]) || src[pos] == '_')) pos++;
            string w = src[start..pos];
            if (w.Length == 0 || !s_typeWords.Contains(w)) break;
            words.Add(w);
        }
        type = string.Join(' ', words);
        return words.Count > 0 && pos < src.Length && src[pos] == ')';
    }

    /// <summary>Moves past the type name and ")" that PeekTypeName found.</summary>
    public void SkipTypeName()
    {
        while (src[_pos] != ')') _pos++;
        _pos++;
    }

    public Token Next()
    {
        SkipSpace();
        int col = _pos - _lineStart + 1;
        if (_pos >= src.Length) return new Token(T.End, "", 0, _line, col);
        char c = src[_pos];
        if (char.IsAsciiLetter(c) || c == '_' || (c == '@'))
        {
            int start = _pos++;
            while (_pos < src.Length && (char.IsAsciiLetterOrDigit(src[_pos]) || src[_pos] == '_')) _pos++;
            string text = src[start.._pos];
            return new Token(c == '@' ? T.Agg : T.Ident, text, 0, _line, col);
        }
        if (char.IsAsciiDigit(c))
        {
            int start = _pos;
            while (_pos < src.Length && char.IsAsciiLetterOrDigit(src[_pos])) _pos++;
            string text = src[start.._pos];
            string digits = text.TrimEnd('u', 'U', 'l', 'L');
            bool ok;
            long v;
            if (digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
                ok = ulong.TryParse(digits.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong u) & (v = (long)u) == v;
            else if (digits.Length > 1 && digits[0] == '0')
            {
                ok = digits.All(d => d is >= '0' and <= '7');
                v = 0;
                if (ok) foreach (char d in digits) v = v * 8 + (d - '0');
            }
            else ok = ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out ulong u2) & (v = (long)u2) == v;
            if (!ok) throw new DCompileError($"invalid digit in constant \"{text}\"", _line, col);
            return new Token(T.Int, text, v, _line, col);
        }
        if (c == '"')
        {
            var sb = new StringBuilder();
            _pos++;
            while (true)
            {
                if (_pos >= src.Length || src[_pos] == '\n') throw new DCompileError("newline encountered in string literal", _line, col);
                char d = src[_pos++];
                if (d == '"') break;
                if (d == '\\' && _pos < src.Length)
                {
                    char e = src[_pos++];
                    sb.Append(e switch { 'n' => '\n', 't' => '\t', 'r' => '\r', '0' => '\0', 'a' => '\a', 'b' => '\b', 'f' => '\f', 'v' => '\v', _ => e });
                }
                else sb.Append(d);
            }
            return new Token(T.Str, sb.ToString(), 0, _line, col);
        }
        if (c == '\'')
        {
            int end = src.IndexOf('\'', _pos + 1);
            if (end < 0 || end == _pos + 1) throw new DCompileError("invalid character constant", _line, col);
            string body = src[(_pos + 1)..end];
            long v = body.Length == 2 && body[0] == '\\' ? body[1] switch { 'n' => '\n', 't' => '\t', '0' => 0, _ => body[1] } : body[0];
            _pos = end + 1;
            return new Token(T.Int, src[(end - body.Length - 1)..(end + 1)], v, _line, col);
        }
        (string op, T kind)[] ops =
        [
            ("<<=", T.ShlEq), (">>=", T.ShrEq), ("&&", T.AndAnd), ("||", T.OrOr), ("^^", T.XorXor), ("<<", T.Shl), (">>", T.Shr),
            ("<=", T.Le), (">=", T.Ge), ("==", T.EqEq), ("!=", T.Ne), ("+=", T.PlusEq), ("-=", T.MinusEq), ("*=", T.StarEq),
            ("/=", T.SlashEq), ("%=", T.PercentEq), ("&=", T.AmpEq), ("|=", T.PipeEq), ("^=", T.CaretEq), ("++", T.Inc), ("--", T.Dec),
            ("->", T.Arrow), ("{", T.LBrace), ("}", T.RBrace), ("(", T.LParen), (")", T.RParen), ("[", T.LBracket), ("]", T.RBracket),
            (",", T.Comma), (";", T.Semi), ("/", T.Slash), ("?", T.Question), (":", T.Colon), ("+", T.Plus), ("-", T.Minus), ("*", T.Star),
            ("%", T.Percent), ("&", T.Amp), ("|", T.Pipe), ("^", T.Caret), ("~", T.Tilde), ("!", T.Bang), ("<", T.Lt), (">", T.Gt),
            ("=", T.Assign), (".", T.Dot),
        ];
        foreach (var (op, kind) in ops)
            if (string.CompareOrdinal(src, _pos, op, 0, op.Length) == 0)
            {
                _pos += op.Length;
                return new Token(kind, op, 0, _line, col);
            }
        throw new DCompileError($"syntax error near \"{c}\"", _line, col);
    }
}
