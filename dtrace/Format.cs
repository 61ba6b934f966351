using System.Globalization;
using System.Text;

namespace SmartOS.Dtrace;

/// <summary>
/// printf/printa formats as dt_printf.c reads them: flags (-+ 0#), width, precision, length
/// modifiers (h, l, ll, which only check here since every integer is 64 bits) and the conversions
/// d i u x X o c s Y %; printa's %@ takes the aggregation's value. %Y prints nanoseconds since the
/// epoch (walltimestamp) as dt_printf.c's pfprint_time does: "2026 Dec  2 22:59:00". Types are checked when the clause
/// is compiled, with dtrace's wording.
/// </summary>
internal sealed class DFormat
{
    private readonly List<object> _parts = []; // string literal text, or Conv
    public int AggConversions { get; private set; }
    public int Conversions { get; private set; }

    private sealed record Conv(string Flags, int Width, int Precision, char Kind, bool Agg, string Text);

    private DFormat() { }

    /// <summary>Parses a format; args are the types of the value arguments (null: printa, checked per key later).</summary>
    public static DFormat Parse(string fmt, DType[]? args, string func, int line, int column)
    {
        var f = new DFormat();
        var lit = new StringBuilder();
        int i = 0, argIndex = 0;
        while (i < fmt.Length)
        {
            char c = fmt[i++];
            if (c != '%') { lit.Append(c); continue; }
            if (i < fmt.Length && fmt[i] == '%') { lit.Append('%'); i++; continue; }
            int start = i - 1;
            string flags = "";
            while (i < fmt.Length && "-+ 0#'".Contains(fmt[i])) flags += fmt[i++];
            int width = 0, precision = -1;
            while (i < fmt.Length && char.IsAsciiDigit(fmt[i])) width = width * 10 + (fmt[i++] - '0');
            if (i < fmt.Length && fmt[i] == '.')
            {
                i++;
                precision = 0;
                while (i < fmt.Length && char.IsAsciiDigit(fmt[i])) precision = precision * 10 + (fmt[i++] - '0');
            }
            bool agg = false;
            if (i < fmt.Length && fmt[i] == '@') { agg = true; i++; }
            while (i < fmt.Length && fmt[i] is 'h' or 'l' or 'L' or 'z' or 'j' or 't') i++;
            if (i >= fmt.Length) throw new DCompileError($"{func}( ) format conversion #{f.Conversions + 1} is incomplete", line, column);
            char kind = fmt[i++];
            string text = fmt[start..i];
            if ("diuxXocsY".IndexOf(kind) < 0)
                throw new DCompileError($"{func}( ) format conversion #{f.Conversions + 1} is undefined: %{kind}", line, column);
            if (lit.Length > 0) { f._parts.Add(lit.ToString()); lit.Clear(); }
            f.Conversions++;
            if (agg) f.AggConversions++;
            f._parts.Add(new Conv(flags, width, precision, kind, agg, text));
            if (args != null && !agg)
            {
                if (argIndex >= args.Length)
                    throw new DCompileError($"{func}( ) prototype mismatch: conversion #{f.Conversions} ({text}) is missing a corresponding value argument", line, column);
                CheckType(kind, args[argIndex], func, argIndex + 2, f.Conversions, text, line, column);
                argIndex++;
            }
        }
        if (lit.Length > 0) f._parts.Add(lit.ToString());
        if (args != null && argIndex < args.Length)
            throw new DCompileError($"{func}( ) prototype mismatch: only {argIndex} arguments required by this format string", line, column);
        return f;
    }

    internal static void CheckType(char kind, DType type, string func, int argNumber, int conversion, string text, int line, int column)
    {
        bool wantsString = kind == 's';
        if (wantsString == (type == DType.Str)) return;
        throw new DCompileError(
            $"{func}( ) argument #{argNumber} is incompatible with conversion #{conversion} prototype:\n\tconversion: {text}\n\t prototype: {(wantsString ? "char [] or string (or use stringof)" : "char, short, int, long, long long, ...")}\n\t  argument: {(type == DType.Str ? "string" : "int64_t")}",
            line, column);
    }

    /// <summary>The types the non-aggregation conversions want, in order (printa's keys).</summary>
    public IEnumerable<char> KeyKinds() => _parts.OfType<Conv>().Where(c => !c.Agg).Select(c => c.Kind);

    public string Format(object[] values, object? aggValue = null) => Format(values, [aggValue]);

    /// <summary>printa of several aggregations: each %@ takes the next aggregation's value, and
    /// those beyond the last take the last's again (dt_printf.c's dt_printf_format).</summary>
    public string Format(object[] values, IReadOnlyList<object?> aggValues)
    {
        var sb = new StringBuilder();
        int v = 0, a = 0;
        foreach (var p in _parts)
        {
            if (p is string s) { sb.Append(s); continue; }
            var c = (Conv)p;
            object? value = c.Agg ? aggValues[a < aggValues.Count - 1 ? a++ : a] : v < values.Length ? values[v++] : null;
            sb.Append(One(c, value));
        }
        return sb.ToString();
    }

    private static string One(Conv c, object? value)
    {
        string body;
        bool left = c.Flags.Contains('-');
        bool zero = c.Flags.Contains('0') && !left;
        string sign = "";
        if (c.Kind == 'Y')
        {
            // dt_printf.c's pfprint_time: strftime's "%Y %b %e %T" of nanoseconds since the epoch.
            var t = DateTime.UnixEpoch.AddTicks((value is long ns ? ns : 0) / 100);
            body = t.ToString("yyyy MMM ", CultureInfo.InvariantCulture) + t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2)
                + t.ToString(" HH:mm:ss", CultureInfo.InvariantCulture);
            zero = false;
        }
        else if (c.Kind == 's')
        {
            body = value as string ?? Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
            if (c.Precision >= 0 && body.Length > c.Precision) body = body[..c.Precision];
            zero = false;
        }
        else if (c.Kind == 'c')
        {
            body = ((char)(byte)(value is long lc ? lc : 0)).ToString();
            zero = false;
        }
        else
        {
            long n = value is long l ? l : 0;
            switch (c.Kind)
            {
                case 'd' or 'i':
                    body = n < 0 ? ((ulong)(-(n + 1)) + 1UL).ToString(CultureInfo.InvariantCulture) : n.ToString(CultureInfo.InvariantCulture);
                    sign = n < 0 ? "-" : c.Flags.Contains('+') ? "+" : c.Flags.Contains(' ') ? " " : "";
                    break;
                case 'u': body = ((ulong)n).ToString(CultureInfo.InvariantCulture); break;
                case 'x': body = ((ulong)n).ToString("x", CultureInfo.InvariantCulture); if (c.Flags.Contains('#') && n != 0) sign = "0x"; break;
                case 'X': body = ((ulong)n).ToString("X", CultureInfo.InvariantCulture); if (c.Flags.Contains('#') && n != 0) sign = "0X"; break;
                default: body = Convert.ToString(n, 8); if (c.Flags.Contains('#') && body[0] != '0') body = "0" + body; break;
            }
            if (c.Precision >= 0)
            {
                zero = false;
                if (body.Length < c.Precision) body = body.PadLeft(c.Precision, '0');
                if (c.Precision == 0 && n == 0) body = "";
            }
        }
        int pad = c.Width - sign.Length - body.Length;
        if (pad <= 0) return sign + body;
        if (left) return sign + body + new string(' ', pad);
        if (zero) return sign + new string('0', pad) + body;
        return new string(' ', pad) + sign + body;
    }
}
