using System.Text;

namespace SmartOS.Kernel;

/// <summary>
/// A named set of counters (illumos kstat_named): module:instance:name, a class, and statistics
/// read through <see cref="IKstatSource"/> only when someone asks, so the data path just bumps
/// plain long fields.
/// </summary>
public interface IKstatSource
{
    /// <summary>Writes every statistic as (name, value), in a stable order.</summary>
    void Snapshot(List<KeyValuePair<string, long>> into);
}

public sealed class Kstat
{
    public Kstat(string module, int instance, string name, string kstatClass, IKstatSource source, long created = 0)
    {
        Module = module; Instance = instance; Name = name; Class = kstatClass; Source = source; Created = created;
    }

    /// <summary>When the kstat was created (ks_crtime), in nanoseconds of the host's clock.</summary>
    public long Created { get; }

    public string Module { get; }
    public int Instance { get; }
    public string Name { get; set; }
    public string Class { get; }
    public IKstatSource Source { get; }
    /// <summary>The zone that owns the kstat ("global" for the host's own).</summary>
    public string Zone { get; set; } = "global";
}

/// <summary>How a statistic prints (kstat(8)'s data types that this project uses).</summary>
public enum KstatValueKind
{
    /// <summary>A counter or gauge (KSTAT_DATA_UINT64 / INT64): printed as an integer.</summary>
    Integer,
    /// <summary>An hrtime (crtime, snaptime): seconds with nine decimals, or "0".</summary>
    HrTime,
    /// <summary>A string (class, in the parsable forms).</summary>
    String,
}

/// <summary>One statistic of a kstat as kstat(8) prints it.</summary>
public readonly record struct KstatValue(string Name, KstatValueKind Kind, long Value, string? Text = null)
{
    /// <summary>The value as kstat(8)'s ks_value_print writes it.</summary>
    public string Format() => Kind switch
    {
        KstatValueKind.String => Text ?? "",
        KstatValueKind.HrTime => Value == 0
            ? "0"
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{Value / Time.Second}.{Value % Time.Second:D9}"),
        _ => Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>The kstat chain of one host.</summary>
public sealed class KstatRegistry
{
    private readonly List<Kstat> _all = [];
    private readonly Func<long>? _clock;

    /// <param name="clock">The host's clock (nanoseconds), for crtime and snaptime; none reads 0.</param>
    public KstatRegistry(Func<long>? clock = null) => _clock = clock;

    private long Now => _clock?.Invoke() ?? 0;

    public Kstat Add(string module, int instance, string name, string kstatClass, IKstatSource source)
    {
        var k = new Kstat(module, instance, name, kstatClass, source, Now);
        _all.Add(k);
        return k;
    }

    /// <summary>The chain sorted as kstat(8) sorts it: module and name without regard to case
    /// (strcasecmp), then instance.</summary>
    public List<Kstat> Sorted()
    {
        var sorted = new List<Kstat>(_all);
        sorted.Sort((a, b) =>
        {
            int c = CaseCompare(a.Module, b.Module);
            if (c != 0) return c;
            c = a.Instance.CompareTo(b.Instance);
            return c != 0 ? c : CaseCompare(a.Name, b.Name);
        });
        return sorted;
    }

    /// <summary>A kstat's statistics as kstat(8) reads them: its counters plus crtime and snaptime (and
    /// class in the parsable forms), in strcasecmp order of their names.</summary>
    public List<KstatValue> Values(Kstat k, bool withClass)
    {
        var buf = new List<KeyValuePair<string, long>>();
        k.Source.Snapshot(buf);
        var values = new List<KstatValue>(buf.Count + 3);
        foreach (var kv in buf) values.Add(new KstatValue(kv.Key, KstatValueKind.Integer, kv.Value));
        values.Add(new KstatValue("crtime", KstatValueKind.HrTime, k.Created));
        values.Add(new KstatValue("snaptime", KstatValueKind.HrTime, Now));
        if (withClass) values.Add(new KstatValue("class", KstatValueKind.String, 0, k.Class));
        // A stable sort: equal names (none expected) keep their source order.
        var ordered = values.Select((v, i) => (v, i)).ToList();
        ordered.Sort((x, y) => { int c = CaseCompare(x.v.Name, y.v.Name); return c != 0 ? c : x.i.CompareTo(y.i); });
        return ordered.ConvertAll(x => x.v);
    }

    /// <summary>strcasecmp: compares ASCII letters as lower case, everything else by byte value.</summary>
    public static int CaseCompare(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            int c = char.ToLowerInvariant(a[i]).CompareTo(char.ToLowerInvariant(b[i]));
            if (c != 0) return c;
        }
        return a.Length.CompareTo(b.Length);
    }

    public void Remove(Kstat k) => _all.Remove(k);

    public IReadOnlyList<Kstat> All => _all;

    /// <summary>Looks a statistic up by its full name, for tests and summaries.</summary>
    public long? Read(string module, string name, string statistic)
    {
        var buf = new List<KeyValuePair<string, long>>();
        foreach (var k in _all)
        {
            if (k.Module != module || k.Name != name) continue;
            buf.Clear();
            k.Source.Snapshot(buf);
            foreach (var kv in buf) if (kv.Key == statistic) return kv.Value;
        }
        return null;
    }

    /// <summary>
    /// The counters alone (no crtime, snaptime or class), in the form of `kstat -p
    /// [module:instance:name:statistic]`, for tests and summaries: one line per statistic, "m:i:n:s" then a tab and
    /// the value, sorted by module, instance, name as kstat(8) prints them. Each pattern field may be
    /// empty (any), a glob with * and ?, or /regex/.
    /// </summary>
    public string FormatParsable(string? pattern)
    {
        string[] fields = (pattern ?? "").Split(':');
        if (fields.Length > 4) throw new FormatException("too many fields in kstat pattern");
        string F(int i) => i < fields.Length ? fields[i] : "";
        var sb = new StringBuilder();
        var buf = new List<KeyValuePair<string, long>>();
        var sorted = new List<Kstat>(_all);
        sorted.Sort((a, b) =>
        {
            int c = string.CompareOrdinal(a.Module, b.Module);
            if (c != 0) return c;
            c = a.Instance.CompareTo(b.Instance);
            return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
        });
        foreach (var k in sorted)
        {
            if (!Glob.Match(F(0), k.Module) || !Glob.Match(F(1), k.Instance.ToString(System.Globalization.CultureInfo.InvariantCulture)) || !Glob.Match(F(2), k.Name))
                continue;
            buf.Clear();
            k.Source.Snapshot(buf);
            var stats = new List<KeyValuePair<string, long>>(buf);
            stats.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
            foreach (var kv in stats)
            {
                if (!Glob.Match(F(3), kv.Key)) continue;
                sb.Append(k.Module).Append(':').Append(k.Instance).Append(':').Append(k.Name).Append(':').Append(kv.Key)
                  .Append('\t').Append(kv.Value).Append('\n');
            }
        }
        return sb.ToString();
    }
}

/// <summary>kstat(8)'s pattern rules: empty matches all, /re/ is a regular expression, else a shell glob.</summary>
public static class Glob
{
    public static bool Match(string pattern, string text)
    {
        if (pattern.Length == 0) return true;
        if (pattern.Length >= 2 && pattern[0] == '/' && pattern[^1] == '/')
            return System.Text.RegularExpressions.Regex.IsMatch(text, pattern[1..^1]);
        return MatchAt(pattern, 0, text, 0);
    }

    private static bool MatchAt(string p, int pi, string t, int ti)
    {
        while (pi < p.Length)
        {
            char c = p[pi];
            if (c == '*')
            {
                for (int k = ti; k <= t.Length; k++)
                    if (MatchAt(p, pi + 1, t, k)) return true;
                return false;
            }
            if (ti >= t.Length) return false;
            if (c != '?' && c != t[ti]) return false;
            pi++; ti++;
        }
        return ti == t.Length;
    }
}
