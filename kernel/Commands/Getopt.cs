namespace SmartOS.Kernel;

/// <summary>
/// getopt(3C) for commands, the one option parser every command uses.
/// <list type="number">
/// <item>The spec is getopt's: "tl:m:" (a colon after a letter: it takes a value), "x::" (two colons:
/// an optional value, only when attached, "-xVAL"), and a leading ':' (getopt then prints nothing:
/// the command words the error itself, <see cref="Quiet"/>).</item>
/// <item>Combined flags ("-pt"), attached values ("-ofoo"), a value as the next word even when it
/// starts with '-' (as getopt takes it), "--" ending options, a lone "-" as an operand. Options end
/// at the first operand unless <c>permute</c> is set (GNU getopt's default, which some upstream
/// tools rely on).</item>
/// <item>Long options, where the command has any: "dst:" takes "--dst VALUE" or "--dst=VALUE",
/// "dst::" only "--dst=VALUE", "dst" none; "client:=c" is also the short option -c (its values are
/// kept under "c"). A value given to a long option that takes none is an error.</item>
/// <item>Repeated options keep every value, in order.</item>
/// <item>Errors are worded as getopt(3C) prints them (<see cref="Parse"/>: "illegal option -- x",
/// "option requires an argument -- x"), or as getopt_long(3) does for the upstream tools that use
/// it (<see cref="ParseLong"/>: "invalid option -- 'x'", "unrecognized option '--x'", "option
/// '--x' requires an argument", "option '--x' doesn't allow an argument"). Parsing stops at the
/// first error, as the commands exit there. <see cref="ReportError"/> prints it for a command name,
/// as getopt does on standard error before returning '?'.</item>
/// </list>
/// </summary>
public sealed class Getopt
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly bool _gnuWording;

    private Getopt(bool gnuWording, bool quiet)
    {
        _gnuWording = gnuWording;
        Quiet = quiet;
    }

    public List<string> Operands { get; } = [];
    /// <summary>getopt's diagnostic without the command name; null when the arguments parsed.</summary>
    public string? Error { get; private set; }
    /// <summary>The option letter an <see cref="Error"/> is about, as getopt(3C) leaves it in optopt
    /// ('\0' for a long option: see <see cref="ErrorLongOption"/>).</summary>
    public char ErrorOption { get; private set; }
    /// <summary>The long option name an <see cref="Error"/> is about, null for a short one.</summary>
    public string? ErrorLongOption { get; private set; }
    /// <summary>True when the error is a missing value (getopt returns ':' with a leading ':' in its
    /// spec), false for an unknown option ('?').</summary>
    public bool ErrorMissingValue { get; private set; }
    /// <summary>The spec began with ':': getopt prints no diagnostic and the command words its own.</summary>
    public bool Quiet { get; }

    public bool Has(string opt) => _values.ContainsKey(opt);
    public string? Value(string opt) => _values.TryGetValue(opt, out var v) ? v[^1] : null;
    public IReadOnlyList<string> Values(string opt) => _values.TryGetValue(opt, out var v) ? v : [];

    /// <summary>Parses <paramref name="args"/> as getopt(3C) does, with its wording for errors.</summary>
    public static Getopt Parse(string[] args, string spec, string[]? longSpec = null, bool permute = false)
        => Run(args, spec, longSpec, permute, gnuWording: false);

    /// <summary>Parses <paramref name="args"/> as getopt_long(3) does, with its wording for errors
    /// (for the upstream tools that use it: iperf3, nc's long options).</summary>
    public static Getopt ParseLong(string[] args, string spec, string[] longSpec, bool permute = false)
        => Run(args, spec, longSpec, permute, gnuWording: true);

    /// <summary>Writes "<paramref name="command"/>: <see cref="Error"/>" on <paramref name="err"/>
    /// when there is an error, unless the spec began with ':' (<see cref="Quiet"/>); true when there
    /// was an error, so the command goes on to its usage: <c>if (g.ReportError(err, "ping")) return Usage();</c></summary>
    public bool ReportError(TextWriter err, string command)
    {
        if (Error == null) return false;
        if (!Quiet) err.WriteLine($"{command}: {Error}");
        return true;
    }

    private static Getopt Run(string[] args, string spec, string[]? longSpec, bool permute, bool gnuWording)
    {
        var g = new Getopt(gnuWording, spec.StartsWith(':'));
        int i = 0;
        for (; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--") { i++; break; }
            if (a.StartsWith("--", StringComparison.Ordinal) && longSpec != null)
            {
                if (!g.LongOption(args, ref i, longSpec)) return g;
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
                int at = c == ':' ? -1 : spec.IndexOf(c, spec.StartsWith(':') ? 1 : 0);
                if (at < 0) { g.Fail(c, null, missing: false); return g; }
                int colons = at + 1 < spec.Length && spec[at + 1] == ':' ? (at + 2 < spec.Length && spec[at + 2] == ':' ? 2 : 1) : 0;
                if (colons == 0) { g.Add(c.ToString(), ""); continue; }
                string? value = k + 1 < a.Length ? a[(k + 1)..] : colons == 2 ? "" : (i + 1 < args.Length ? args[++i] : null);
                if (value == null) { g.Fail(c, null, missing: true); return g; }
                g.Add(c.ToString(), value);
                break;
            }
        }
        for (; i < args.Length; i++) g.Operands.Add(args[i]);
        return g;
    }

    /// <summary>One "--name[=value]" at <paramref name="i"/>; false (with <see cref="Error"/> set) when it is bad.</summary>
    private bool LongOption(string[] args, ref int i, string[] longSpec)
    {
        string name = args[i][2..];
        string? inline = null;
        int eq = name.IndexOf('=');
        if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
        foreach (string decl in longSpec)
        {
            int alias = decl.IndexOf('=');
            string head = alias < 0 ? decl : decl[..alias];
            if (head.TrimEnd(':') != name) continue;
            string key = alias < 0 ? name : decl[(alias + 1)..];
            int colons = head.Length - head.TrimEnd(':').Length;
            if (colons == 0)
            {
                if (inline != null) { Fail('\0', name, missing: false, unwantedValue: true); return false; }
                Add(key, "");
                return true;
            }
            string? v = inline ?? (colons == 2 ? "" : i + 1 < args.Length ? args[++i] : null);
            if (v == null) { Fail('\0', name, missing: true); return false; }
            Add(key, v);
            return true;
        }
        Fail('\0', name, missing: false);
        return false;
    }

    private void Fail(char option, string? longName, bool missing, bool unwantedValue = false)
    {
        ErrorOption = option;
        ErrorLongOption = longName;
        ErrorMissingValue = missing;
        Error = (_gnuWording, longName, missing) switch
        {
            (false, null, false) => $"illegal option -- {option}",
            (false, null, true) => $"option requires an argument -- {option}",
            (false, _, _) when unwantedValue => $"option doesn't take an argument -- {longName}",
            (false, _, false) => $"illegal option -- {longName}",
            (false, _, true) => $"option requires an argument -- {longName}",
            (true, null, false) => $"invalid option -- '{option}'",
            (true, null, true) => $"option requires an argument -- '{option}'",
            (true, _, _) when unwantedValue => $"option '--{longName}' doesn't allow an argument",
            (true, _, false) => $"unrecognized option '--{longName}'",
            (true, _, true) => $"option '--{longName}' requires an argument",
        };
    }

    private void Add(string opt, string value)
    {
        if (!_values.TryGetValue(opt, out var list)) _values[opt] = list = [];
        list.Add(value);
    }
}
