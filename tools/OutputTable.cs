using System.Text;

namespace SmartOS.Cli;

/// <summary>
/// illumos ofmt(3OFMT) output: a header of upper-case field names in fixed-width columns, or with
/// -p one line per row of the -o fields joined by ':' with ':' and '\' in values escaped by '\'.
/// </summary>
public sealed class OutputTable
{
    public sealed record Field(string Name, int Width);

    private readonly Field[] _all;
    private Field[] _selected;

    public OutputTable(params Field[] fields)
    {
        _all = fields;
        _selected = fields;
    }

    public IReadOnlyList<Field> Selected => _selected;

    /// <summary>Selects the -o fields ("all" or a comma list, case-insensitive). Returns the first unknown field, or null.</summary>
    public string? Select(string? spec)
    {
        if (spec == null || spec.Equals("all", StringComparison.OrdinalIgnoreCase)) { _selected = _all; return null; }
        var list = new List<Field>();
        foreach (string raw in spec.Split(','))
        {
            var f = Array.Find(_all, x => x.Name.Equals(raw.Trim(), StringComparison.OrdinalIgnoreCase));
            if (f == null) return raw;
            list.Add(f);
        }
        _selected = [.. list];
        return null;
    }

    /// <summary>Formats rows; each row gives a value per field of the full field list, by name.</summary>
    public string Format(IEnumerable<IReadOnlyDictionary<string, string>> rows, bool parsable, bool header = true)
    {
        var sb = new StringBuilder();
        if (!parsable && header)
        {
            AppendLine(sb, _selected.Select(f => f.Name.ToUpperInvariant()).ToArray());
        }
        foreach (var row in rows)
        {
            var values = _selected.Select(f => row.TryGetValue(f.Name, out var v) ? v : "--").ToArray();
            if (parsable)
            {
                if (_selected.Length == 1) sb.Append(values[0]);
                else sb.Append(string.Join(':', values.Select(Escape)));
                sb.Append('\n');
            }
            else AppendLine(sb, values);
        }
        return sb.ToString();
    }

    private void AppendLine(StringBuilder sb, string[] values)
    {
        var line = new StringBuilder();
        for (int i = 0; i < values.Length; i++)
        {
            string v = values[i];
            if (i == values.Length - 1) { line.Append(v); break; }
            line.Append(v);
            int pad = _selected[i].Width - v.Length;
            line.Append(' ', Math.Max(1, pad));
        }
        sb.Append(line.ToString().TrimEnd()).Append('\n');
    }

    private static string Escape(string v) => v.Replace("\\", "\\\\").Replace(":", "\\:");
}
