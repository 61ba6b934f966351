using System.Text;

namespace SmartOS.Kernel;

/// <summary>
/// illumos libofmt (ofmt(3OFMT)) output, as usr/src/lib/libofmt/common/ofmt.c prints it:
/// <list type="bullet">
/// <item>Human-readable: a header of the field names, then one line per row. A field is printed in its
/// width, left-justified, or right-justified with a space after it when the table is
/// <see cref="RightJustify"/> (OFMT_RIGHTJUST, as flowstat asks). A value as wide as its field or wider
/// is printed with one space after it and the excess is taken back from the padding of the fields that
/// follow (os_overflow), so later columns return to their places as soon as they can. The last field
/// is printed bare (right-justified in its width under RightJustify). An empty value prints as "--".
/// The header is printed again every 24 lines (libofmt's window size when standard output is not a
/// terminal, which is always the case here). With no rows nothing is printed, not even the header.</item>
/// <item>Parsable (-p): the selected fields joined by ':', with ':' and '\' in values escaped by '\'
/// unless only one field is selected. Fields must be named (-o), and "all" is refused.</item>
/// </list>
/// </summary>
public sealed class OutputTable
{
    /// <summary>A field: its name (printed upper-case in the header) and its width.</summary>
    public sealed record Field(string Name, int Width);

    /// <summary>libofmt's rows per screen when TIOCGWINSZ fails.</summary>
    private const int WindowRows = 24;

    private readonly Field[] _all;
    private Field[] _selected;
    /// <summary>Lines printed so far (os_nrow): a table printed again (every interval of flowstat -i)
    /// repeats its header only when a screenful has passed.</summary>
    private int _nrow;

    public OutputTable(params Field[] fields)
    {
        _all = fields;
        _selected = fields;
    }

    /// <summary>OFMT_RIGHTJUST: every field right-justified in its width.</summary>
    public bool RightJustify { get; init; }

    public IReadOnlyList<Field> Selected => _selected;

    /// <summary>
    /// ofmt_open and ofmt_check: selects the fields of a comma list (or "all"), case-insensitively.
    /// Returns a fatal message (parsable output without fields or with "all", an unknown field in
    /// parsable output, no valid field at all) or a warning naming the unknown fields that human-readable
    /// output leaves out, in ofmt_strerror's wording; callers prefix their name (and "warning: ").
    /// </summary>
    public (string? Fatal, string? Warning) Open(string? spec, bool parsable)
    {
        if (CheckParsable(parsable, spec) is string e) return (e, null);
        if (spec == null || spec.Equals("all", StringComparison.OrdinalIgnoreCase)) { _selected = _all; return (null, null); }
        var list = new List<Field>();
        var bad = new List<string>();
        foreach (string name in spec.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = Array.Find(_all, x => x.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
            if (f == null) bad.Add(name);
            else list.Add(f);
        }
        if (list.Count == 0) return ("no valid output fields", null);
        _selected = [.. list];
        if (bad.Count == 0) return (null, null);
        string names = string.Concat(bad.Select(b => $" `{b}'"));
        string what = parsable
            ? (bad.Count > 1 ? "unknown output fields:" : "unknown output field:")
            : (bad.Count > 1 ? "ignoring unknown output fields:" : "ignoring unknown output field:");
        return parsable ? (what + names, null) : (null, what + names);
    }

    /// <summary>
    /// ofmt_open's checks for parsable output: returns libofmt's message when -p is given without -o
    /// fields or with "all" (ofmt_strerror's wording), else null. Commands prefix their name.
    /// </summary>
    private static string? CheckParsable(bool parsable, string? spec)
    {
        if (!parsable) return null;
        if (string.IsNullOrEmpty(spec)) return "output fields must be specified in parsable mode";
        if (spec.Equals("all", StringComparison.OrdinalIgnoreCase)) return "output field `all' invalid in parsable mode";
        return null;
    }

    /// <summary>Formats rows; each row gives a value per field of the full field list, by name. Successive
    /// calls continue one listing, as successive ofmt_print calls on one handle do.</summary>
    public string Format(IEnumerable<IReadOnlyDictionary<string, string>> rows, bool parsable, bool header = true)
    {
        var sb = new StringBuilder();
        foreach (var row in rows)
        {
            if (!parsable && header && _nrow++ % WindowRows == 0)
            {
                AppendHuman(sb, _selected.Select(f => f.Name.ToUpperInvariant()).ToArray());
                _nrow++;
            }
            var values = _selected.Select(f => row.TryGetValue(f.Name, out var v) ? v : "").ToArray();
            if (parsable) AppendParsable(sb, values);
            else AppendHuman(sb, values.Select(v => v.Length == 0 ? "--" : v).ToArray());
        }
        return sb.ToString();
    }

    private void AppendParsable(StringBuilder sb, string[] values)
    {
        if (values.Length == 1) sb.Append(values[0]);
        else
        {
            for (int i = 0; i < values.Length; i++)
            {
                foreach (char c in values[i])
                {
                    if (c is ':' or '\\') sb.Append('\\');
                    sb.Append(c);
                }
                if (i < values.Length - 1) sb.Append(':');
            }
        }
        sb.Append('\n');
    }

    /// <summary>One line as ofmt_print_field prints it, carrying the overflow from field to field.</summary>
    private void AppendHuman(StringBuilder sb, string[] values)
    {
        int overflow = 0;
        for (int i = 0; i < values.Length; i++)
        {
            string v = values[i];
            int width = _selected[i].Width;
            if (i == values.Length - 1)
            {
                sb.Append(RightJustify ? v.PadLeft(width) : v);
                break;
            }
            if (v.Length + overflow >= width)
            {
                overflow += v.Length - width + 1;
                sb.Append(RightJustify ? v.PadLeft(width) : v).Append(' ');
                continue;
            }
            if (overflow > 0)
            {
                int compress = Math.Min(overflow, width - v.Length);
                overflow -= compress;
                width -= compress;
            }
            if (RightJustify) sb.Append(v.PadLeft(width)).Append(' ');
            else sb.Append(v.PadRight(width));
        }
        sb.Append('\n');
    }
}
