namespace SmartOS.Kernel;

/// <summary>
/// getopt(3C) for commands: a spec like "tl:m:" (a colon after a letter means it takes a value),
/// combined flags ("-pt"), attached values ("-ofoo"), "--" ending options, and optional long options
/// ("dst:" in <paramref name="longSpec"/> takes "--dst VALUE" or "--dst=VALUE"). Repeated options keep
/// every value. Operands may be interleaved only when <paramref name="permute"/> is set.
/// </summary>
public sealed class Getopt
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    public List<string> Operands { get; } = [];
    public string? Error { get; private set; }
    /// <summary>The option letter an <see cref="Error"/> is about, as getopt(3C) leaves it in optopt.</summary>
    public char ErrorOption { get; private set; }
    /// <summary>True when the error is a missing value (getopt returns ':' with a leading ':' in its
    /// spec), false for an unknown option ('?').</summary>
    public bool ErrorMissingValue { get; private set; }

    public bool Has(string opt) => _values.ContainsKey(opt);
    public string? Value(string opt) => _values.TryGetValue(opt, out var v) ? v[^1] : null;
    public IReadOnlyList<string> Values(string opt) => _values.TryGetValue(opt, out var v) ? v : [];

    public static Getopt Parse(string[] args, string spec, string[]? longSpec = null, bool permute = false)
    {
        var g = new Getopt();
        int i = 0;
        for (; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--") { i++; break; }
            if (a.StartsWith("--", StringComparison.Ordinal) && longSpec != null)
            {
                string name = a[2..];
                string? inline = null;
                int eq = name.IndexOf('=');
                if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
                string? decl = Array.Find(longSpec, s => s.TrimEnd(':') == name);
                if (decl == null) { g.Error = $"illegal option -- {name}"; return g; }
                if (decl.EndsWith(':'))
                {
                    string? v = inline ?? (i + 1 < args.Length ? args[++i] : null);
                    if (v == null) { g.Error = $"option requires an argument -- {name}"; return g; }
                    g.Add(name, v);
                }
                else g.Add(name, "");
                continue;
            }
            if (a.Length < 2 || a[0] != '-')
            {
                if (!permute) break;
                g.Operands.Add(a);
                continue;
            }
            for (int k = 1; k < a.Length; k++)
            {
                char c = a[k];
                int at = spec.IndexOf(c);
                if (at < 0 || c == ':') { g.Error = $"illegal option -- {c}"; g.ErrorOption = c; return g; }
                bool takesValue = at + 1 < spec.Length && spec[at + 1] == ':';
                if (!takesValue) { g.Add(c.ToString(), ""); continue; }
                string? value = k + 1 < a.Length ? a[(k + 1)..] : (i + 1 < args.Length ? args[++i] : null);
                if (value == null) { g.Error = $"option requires an argument -- {c}"; g.ErrorOption = c; g.ErrorMissingValue = true; return g; }
                g.Add(c.ToString(), value);
                break;
            }
        }
        for (; i < args.Length; i++) g.Operands.Add(args[i]);
        return g;
    }

    private void Add(string opt, string value)
    {
        if (!_values.TryGetValue(opt, out var list)) _values[opt] = list = [];
        list.Add(value);
    }
}
