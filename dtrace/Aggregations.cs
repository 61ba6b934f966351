using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace SmartOS.Dtrace;

internal enum AggKind { Count, Sum, Min, Max, Avg, Stddev, Quantize, Lquantize, Llquantize }

/// <summary>How aggregations are sorted for printing (-x aggsortkey, aggsortrev, aggsortpos,
/// aggsortkeypos; dt_aggregate.c's dt_aggregate_varcmp and friends).</summary>
internal sealed class AggSort
{
    public bool ByKey, Reverse;
    public int KeyPos;

    /// <summary>-x aggsortpos: which of printa's aggregations sorts first (0, the first; beyond
    /// the last is 0, as dt_aggregate.c's dtrace_aggregate_walk_joined silently makes it).</summary>
    public int Pos;
}

/// <summary>
/// One aggregation variable and how dtrace prints it (dt_consume.c's dt_print_aggs, dt_print_datum,
/// dt_print_quantize, dt_print_lquantize, dt_print_average): a string key as "  %-50s", an integer
/// key and a scalar value as " %16lld", a distribution under the "value / Distribution / count"
/// header with one row per bucket from the one before the first non-zero bucket to the one after
/// the last, each row's @ bar 40 characters at most. Entries print in ascending order of value,
/// ties by key (dtrace_aggregate_walk_sorted); -x aggsortkey sorts by key (from aggsortkeypos)
/// first, aggsortrev reverses.
/// normalize() divides every printed value (and bucket count) by its factor, as dt_print_datum
/// does, until denormalize(); trunc() keeps the entries with the greatest values (the least for a
/// negative count); clear() zeroes values and keeps keys. stddev is dt_stddev: the square root of
/// the mean of squares (the sum of squares over the normal, over the count) less the square of the
/// normalised mean, in 128-bit integers, rounded down. llquantize(v, factor, low, high, steps) cuts
/// each order of magnitude [factor^k, factor^(k+1)), k from low to high, into linear steps, with
/// one bucket below factor^low and one from factor^(high+1) (dt_print_llquantize's walk).
/// </summary>
/// <summary>
/// The aggregation buffer of one consumer, `-x aggsize` bytes (4m by default, as dtrace's): each
/// entry a new key makes takes its record's size, and a key that finds no room is dropped and
/// counted, as the kernel does (dtrace_aggregate), not stored. The consumer reports drops as dtrace
/// does ("N aggregation drops on CPU 0") before it prints aggregations.
/// </summary>
internal sealed class AggSpace(long size)
{
    public long Free = size;
    public long Drops, Reported;
}

internal sealed class Aggregation(string name, int varId, AggKind kind, DType[] keyTypes, long low, long high, long step)
{
    /// <summary>The buffer new entries take room from; null for no bound.</summary>
    public AggSpace? Space { get; init; }

    /// <summary>
    /// Bytes one entry takes, as the kernel's record: each key 8 bytes (a string strsize, 256), the
    /// data (8 for count/sum/min/max, 16 avg, 32 stddev, 8 per bucket for the distributions, with
    /// lquantize's and llquantize's 8-byte argument word) and 40 for the aggregation key's header.
    /// </summary>
    private long EntrySize
    {
        get
        {
            long keys = 0;
            foreach (var t in KeyTypes) keys += t == DType.Str ? 256 : 8;
            long data = Kind switch
            {
                AggKind.Avg => 16,
                AggKind.Stddev => 32,
                AggKind.Quantize => QuantizeBuckets * 8,
                AggKind.Llquantize => (_llqBounds.Length + 2) * 8 + 8,
                AggKind.Count or AggKind.Sum or AggKind.Min or AggKind.Max => 8,
                _ => (Levels + 2) * 8 + 8,
            };
            return keys + data + 40;
        }
    }

    public const int QuantizeBuckets = 127, ZeroBucket = 63;

    public string Name { get; } = name;
    public int VarId { get; } = varId;
    public AggKind Kind { get; } = kind;
    public DType[] KeyTypes { get; } = keyTypes;
    public long Low { get; } = low;
    public long Step { get; } = step;
    public int Levels { get; } = kind == AggKind.Lquantize ? (int)((high - low) / step) : 0;
    public long High { get; } = high;

    /// <summary>llquantize's linear steps per order of magnitude (Low and High are then the
    /// magnitudes, Step the factor).</summary>
    public long Steps
    {
        get => _steps;
        init
        {
            _steps = value;
            (_llqBounds, _llqTop) = LlquantizeBounds(Step, Low, High, value);
        }
    }

    private readonly long _steps;
    private readonly long[] _llqBounds = [];
    private readonly long _llqTop;

    /// <summary>llquantize's bucket bases in order, as dt_print_llquantize walks them: from
    /// factor^low, each order of magnitude [f^k, f^(k+1)) cut in steps of f^(k+1)/nsteps (1 when
    /// that is smaller), up to factor^(high+1), the overflow bucket's base.</summary>
    private static (long[] Bounds, long Top) LlquantizeBounds(long factor, long low, long high, long nsteps)
    {
        var bounds = new List<long>();
        long value = 1;
        long order = 0;
        for (; order < low; order++) value *= factor;
        long next = value * factor, step = next > nsteps ? next / nsteps : 1;
        while (order <= high)
        {
            bounds.Add(value);
            value += step;
            if (value != next) continue;
            next = value * factor;
            step = next > nsteps ? next / nsteps : 1;
            order++;
        }
        return (bounds.ToArray(), value);
    }

    private int LlquantizeBucket(long v)
    {
        var b = _llqBounds;
        if (v < b[0]) return 0;
        if (v >= _llqTop) return b.Length + 1;
        int at = Array.BinarySearch(b, v);
        return (at >= 0 ? at : ~at - 1) + 1;
    }
    public bool Printed { get; set; }

    /// <summary>normalize()'s factor, 1 until it is called (or after denormalize()).</summary>
    public long Normal { get; set; } = 1;

    public AggSort Sort { get; set; } = new();

    private sealed class Entry
    {
        public long Count, Sum, Min = long.MaxValue, Max = long.MinValue;
        public UInt128 SumOfSquares;
        public long[]? Buckets;
        public Key Key = Key.Empty;   // the key the table holds this entry under
    }

    private readonly Dictionary<Key, Entry> _entries = [];

    public int Count => _entries.Count;

    // The entry the last firing added to, with its key as the table holds it: a firing whose key parts
    // are the same objects (a probe's own strings) or equal integers takes it without hashing the key.
    // Reset wherever entries are removed or replaced.
    private Key? _lastKey;
    private Entry? _lastEntry;

    private static bool SameParts(object[] a, object[] b)
    {
        for (int i = 0; i < a.Length; i++)
        {
            object x = a[i], y = b[i];
            if (ReferenceEquals(x, y)) continue;
            if (x is long lx && y is long ly && lx == ly) continue;
            return false;
        }
        return true;
    }

    public void Add(Key key, long value, long incr)
    {
        Entry? e;
        if (_lastEntry != null && SameParts(key.Parts, _lastKey!.Parts)) e = _lastEntry;
        else if (_entries.TryGetValue(key, out e)) { _lastKey = e.Key; _lastEntry = e; }
        else
        {
            if (Space is { } space)
            {
                long size = EntrySize;
                if (space.Free < size) { space.Drops++; return; }
                space.Free -= size;
            }
            var kept = key.Copy();   // the caller may refill its key (Compiler's scratch key)
            _entries[kept] = e = new Entry { Key = kept };
            _lastKey = kept;
            _lastEntry = e;
        }
        switch (Kind)
        {
            case AggKind.Count: e.Count++; break;
            case AggKind.Sum: e.Sum = unchecked(e.Sum + value); break;
            case AggKind.Min: if (value < e.Min) e.Min = value; break;
            case AggKind.Max: if (value > e.Max) e.Max = value; break;
            case AggKind.Avg: e.Count++; e.Sum = unchecked(e.Sum + value); break;
            case AggKind.Stddev:
            {
                e.Count++;
                e.Sum = unchecked(e.Sum + value);
                ulong m = value < 0 ? (ulong)-(value + 1) + 1 : (ulong)value;
                e.SumOfSquares = unchecked(e.SumOfSquares + (UInt128)m * m);
                break;
            }
            case AggKind.Quantize: (e.Buckets ??= new long[QuantizeBuckets])[QuantizeBucket(value)] += incr; break;
            case AggKind.Llquantize: (e.Buckets ??= new long[_llqBounds.Length + 2])[LlquantizeBucket(value)] += incr; break;
            default: (e.Buckets ??= new long[Levels + 2])[LquantizeBucket(value)] += incr; break;
        }
    }

    /// <summary>Power-of-two buckets: 0 alone, then [2^k, 2^(k+1)) each way from it.</summary>
    public static int QuantizeBucket(long v)
    {
        if (v == 0) return ZeroBucket;
        if (v > 0) return ZeroBucket + 1 + (63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)v));
        ulong m = v == long.MinValue ? 1UL << 63 : (ulong)(-v);
        return ZeroBucket - 1 - (63 - System.Numerics.BitOperations.LeadingZeroCount(m));
    }

    public static long QuantizeBucketValue(int b) =>
        b < ZeroBucket ? -(1L << (ZeroBucket - 1 - b)) : b == ZeroBucket ? 0 : 1L << (b - ZeroBucket - 1);

    private int LquantizeBucket(long v)
    {
        if (v < Low) return 0;
        long i = (v - Low) / Step;
        return i >= Levels ? Levels + 1 : (int)i + 1;
    }

    private long Value(Entry e) => Kind switch
    {
        AggKind.Count => e.Count,
        AggKind.Sum => e.Sum,
        AggKind.Min => e.Min,
        AggKind.Max => e.Max,
        AggKind.Avg => e.Count == 0 ? 0 : e.Sum / e.Count,
        AggKind.Stddev => Stddev(e, 1),
        _ => Weighted(e),
    };

    /// <summary>The printed value: normalised as dt_print_datum does.</summary>
    private long Printable(Entry e) => Kind switch
    {
        AggKind.Avg => e.Count == 0 ? 0 : e.Sum / Normal / e.Count,
        AggKind.Stddev => Stddev(e, Normal),
        _ => Value(e) / Normal,
    };

    private static long Stddev(Entry e, long normal)
    {
        if (e.Count == 0) return 0;
        UInt128 meanOfSquares = e.SumOfSquares / (ulong)normal / (ulong)e.Count;
        long mean = e.Sum / normal / e.Count;
        ulong m = mean < 0 ? (ulong)-(mean + 1) + 1 : (ulong)mean;
        UInt128 diff = unchecked(meanOfSquares - (UInt128)m * m);
        return (long)Sqrt(diff);
    }

    /// <summary>The integer square root, rounded down (dt_sqrt_128).</summary>
    private static ulong Sqrt(UInt128 n)
    {
        UInt128 r = 0, bit = (UInt128)1 << 126;
        while (bit > n) bit >>= 2;
        while (bit != 0)
        {
            if (n >= r + bit)
            {
                n -= r + bit;
                r = (r >> 1) + bit;
            }
            else r >>= 1;
            bit >>= 2;
        }
        return (ulong)r;
    }

    /// <summary>trunc(@a) empties the aggregation; trunc(@a, n) keeps the n entries with the
    /// greatest values, or for a negative n the -n with the least.</summary>
    public void Trunc(long? keep)
    {
        if (keep == null || keep == 0)
        {
            if (Space != null) Space.Free += _entries.Count * EntrySize;
            _entries.Clear();
            _lastKey = null; _lastEntry = null;
            return;
        }
        var sorted = SortedByValue();
        int n = (int)Math.Min(Math.Abs(keep.Value), sorted.Count);
        var drop = keep > 0 ? sorted.Take(sorted.Count - n) : sorted.Skip(n);
        foreach (var (key, _) in drop.ToList())
        {
            _entries.Remove(key);
            _lastKey = null; _lastEntry = null;
            if (Space != null) Space.Free += EntrySize;
        }
    }

    /// <summary>clear(@a): every value back to zero, the keys kept.</summary>
    public void Clear()
    {
        foreach (var key in _entries.Keys.ToList()) _entries[key] = new Entry { Key = key };
        _lastKey = null; _lastEntry = null;
    }

    private List<KeyValuePair<Key, Entry>> SortedByValue()
    {
        var list = _entries.ToList();
        list.Sort((p, q) =>
        {
            int c = Value(p.Value).CompareTo(Value(q.Value));
            return c != 0 ? c : CompareKeys(p.Key, q.Key, 0);
        });
        return list;
    }

    // dt_aggregate.c sorts a distribution by the sum of bucket value times count.
    private long Weighted(Entry e)
    {
        long total = 0;
        var b = e.Buckets;
        if (b == null) return 0;
        for (int i = 0; i < b.Length; i++)
            total = unchecked(total + b[i] * BucketBase(i));
        return total;
    }

    /// <summary>Compares keys part by part from <paramref name="from"/>, wrapping round (aggsortkeypos).</summary>
    private long BucketBase(int i) => Kind switch
    {
        AggKind.Quantize => QuantizeBucketValue(i),
        AggKind.Llquantize => i == 0 ? 0 : i > _llqBounds.Length ? _llqTop : _llqBounds[i - 1],
        _ => i == 0 ? Low - 1 : Low + (i - 1) * Step,
    };

    internal static int CompareKeys(Key a, Key b, int from)
    {
        int n = a.Parts.Length;
        for (int j = 0; j < n; j++)
        {
            int i = (from + j) % n;
            int c = a.Parts[i] is long x ? x.CompareTo((long)b.Parts[i]) : string.CompareOrdinal((string)a.Parts[i], (string)b.Parts[i]);
            if (c != 0) return c;
        }
        return 0;
    }

    private List<KeyValuePair<Key, Entry>> Sorted()
    {
        var list = _entries.ToList();
        var sort = Sort;
        int from = KeyTypes.Length == 0 ? 0 : Math.Min(sort.KeyPos, KeyTypes.Length - 1);
        list.Sort((p, q) =>
        {
            int byValue = Value(p.Value).CompareTo(Value(q.Value));
            int byKey = CompareKeys(p.Key, q.Key, from);
            int c = sort.ByKey ? (byKey != 0 ? byKey : byValue) : (byValue != 0 ? byValue : byKey);
            return sort.Reverse ? -c : c;
        });
        return list;
    }

    /// <summary>dt_print_aggs for every entry: the keys, the value, a newline (none after a distribution).</summary>
    public void Print(StringBuilder o)
    {
        foreach (var (key, e) in Sorted())
        {
            foreach (var part in key.Parts)
            {
                if (part is string s) o.Append("  ").Append(s.PadRight(50));
                else o.Append(' ').Append(((long)part).ToString(CultureInfo.InvariantCulture).PadLeft(16));
            }
            if (Kind == AggKind.Quantize) PrintQuantize(o, Normalised(e.Buckets));
            else if (Kind == AggKind.Lquantize) PrintLquantize(o, Normalised(e.Buckets));
            else if (Kind == AggKind.Llquantize) PrintLlquantize(o, Normalised(e.Buckets));
            else o.Append(' ').Append(Printable(e).ToString(CultureInfo.InvariantCulture).PadLeft(16));
            o.Append('\n');
        }
    }

    /// <summary>printa with a format: the keys fill the conversions in order, %@ the value.</summary>
    public void Print(StringBuilder o, DFormat format)
    {
        foreach (var (key, e) in Sorted())
        {
            object agg = Printable(e);
            if (Kind is AggKind.Quantize or AggKind.Lquantize or AggKind.Llquantize)
            {
                var d = new StringBuilder();
                if (Kind == AggKind.Quantize) PrintQuantize(d, Normalised(e.Buckets));
                else if (Kind == AggKind.Lquantize) PrintLquantize(d, Normalised(e.Buckets));
                else PrintLlquantize(d, Normalised(e.Buckets));
                agg = d.ToString();
            }
            o.Append(format.Format(key.Parts, agg));
        }
    }

    // dtrace_aggregate_walk_joined's zero-filled data for a key an aggregation lacks: every word 0.
    private static readonly Entry s_zero = new() { Min = 0, Max = 0 };

    private Entry EntryOf(Key key) => _entries.TryGetValue(key, out var e) ? e : s_zero;

    internal IEnumerable<Key> Keys => _entries.Keys;

    /// <summary>The value a joined walk sorts this aggregation's entry for the key by (0 if absent).</summary>
    internal long SortValue(Key key) => Value(EntryOf(key));

    /// <summary>dt_print_datum for the key's entry: " %16lld" or the distribution.</summary>
    internal void AppendDatum(StringBuilder o, Key key)
    {
        var e = EntryOf(key);
        if (Kind == AggKind.Quantize) PrintQuantize(o, Normalised(e.Buckets));
        else if (Kind == AggKind.Lquantize) PrintLquantize(o, Normalised(e.Buckets));
        else if (Kind == AggKind.Llquantize) PrintLlquantize(o, Normalised(e.Buckets));
        else o.Append(' ').Append(Printable(e).ToString(CultureInfo.InvariantCulture).PadLeft(16));
    }

    /// <summary>What a printa format's %@ prints for the key: the value, or the distribution.</summary>
    internal object FormatValue(Key key)
    {
        var e = EntryOf(key);
        if (Kind is not (AggKind.Quantize or AggKind.Lquantize or AggKind.Llquantize)) return Printable(e);
        var d = new StringBuilder();
        AppendDatum(d, key);
        return d.ToString();
    }

    /// <summary>
    /// printa(@a, @b, ...) as dt_aggregate.c's dtrace_aggregate_walk_joined walks them: every key
    /// any of them holds, once, with 0 for an aggregation that lacks it; sorted by the values of
    /// the aggregations from -x aggsortpos on (wrapping round), then by key (aggsortkey: by key
    /// first; aggsortrev reverses). Without a format each row is the keys and each aggregation's
    /// datum in argument order (dt_print_aggs); with one, the keys fill the conversions and each %@
    /// takes the next aggregation.
    /// </summary>
    internal static void PrintJoined(StringBuilder o, Aggregation[] aggs, AggSort sort, DFormat? format)
    {
        var keys = new List<Key>();
        var seen = new HashSet<Key>();
        foreach (var agg in aggs)
            foreach (var k in agg.Keys)
                if (seen.Add(k)) keys.Add(k);
        int n = aggs.Length, pos = sort.Pos < n ? sort.Pos : 0;
        int keyCount = aggs[0].KeyTypes.Length;
        int from = keyCount == 0 ? 0 : Math.Min(sort.KeyPos, keyCount - 1);
        keys.Sort((p, q) =>
        {
            int c = sort.ByKey ? CompareKeys(p, q, from) : 0;
            for (int i = 0; c == 0 && i < n; i++)
            {
                var agg = aggs[(i + pos) % n];
                c = agg.SortValue(p).CompareTo(agg.SortValue(q));
            }
            if (c == 0 && !sort.ByKey) c = CompareKeys(p, q, from);
            return sort.Reverse ? -c : c;
        });
        foreach (var key in keys)
        {
            if (format != null)
            {
                var values = new object?[n];
                for (int i = 0; i < n; i++) values[i] = aggs[i].FormatValue(key);
                o.Append(format.Format(key.Parts, values));
                continue;
            }
            foreach (var part in key.Parts)
            {
                if (part is string s) o.Append("  ").Append(s.PadRight(50));
                else o.Append(' ').Append(((long)part).ToString(CultureInfo.InvariantCulture).PadLeft(16));
            }
            foreach (var agg in aggs) agg.AppendDatum(o, key);
            o.Append('\n');
        }
    }

    /// <summary>A distribution's buckets divided by the normal (a cleared entry has none yet).</summary>
    private long[] Normalised(long[]? buckets)
    {
        var b = buckets ?? new long[Kind switch { AggKind.Quantize => QuantizeBuckets, AggKind.Llquantize => _llqBounds.Length + 2, _ => Levels + 2 }];
        if (Normal == 1) return b;
        var n = new long[b.Length];
        for (int i = 0; i < b.Length; i++) n[i] = b[i] / Normal;
        return n;
    }

    private static void Header(StringBuilder o) =>
        o.Append('\n').Append("value".PadLeft(16)).Append(' ').Append("------------- Distribution -------------".PadLeft(41)).Append(' ').Append("count".PadRight(9)).Append('\n');

    private static void Row(StringBuilder o, string label, long count, long total)
    {
        int ats = total == 0 ? 0 : (int)(Math.Abs((decimal)count) * 40 / total);
        o.Append(label.PadLeft(16)).Append(' ').Append('|').Append('@', ats).Append(' ', 40 - ats).Append(' ')
            .Append(count.ToString(CultureInfo.InvariantCulture).PadRight(9)).Append('\n');
    }

    private void PrintQuantize(StringBuilder o, long[] data)
    {
        int first = 0, last = QuantizeBuckets - 1;
        while (first < QuantizeBuckets - 1 && data[first] == 0) first++;
        if (first == QuantizeBuckets - 1)
        {
            first = ZeroBucket - 1;
            last = ZeroBucket + 1;
        }
        else
        {
            if (first > 0) first--;
            while (last > 0 && data[last] == 0) last--;
            if (last < QuantizeBuckets - 1) last++;
        }
        long total = 0;
        foreach (long d in data) total += Math.Abs(d);
        Header(o);
        for (int i = first; i <= last; i++)
            Row(o, BucketLabel(i, data.Length), data[i], total);
    }

    private void PrintLquantize(StringBuilder o, long[] data)
    {
        int levels = Levels;
        int first = 0, last = levels + 1;
        while (first <= levels + 1 && data[first] == 0) first++;
        if (first > levels + 1)
        {
            first = 0;
            last = 2;
        }
        else
        {
            if (first > 0) first--;
            while (last > 0 && data[last] == 0) last--;
            if (last < levels + 1) last++;
        }
        long total = 0;
        foreach (long d in data) total += Math.Abs(d);
        Header(o);
        for (int i = first; i <= last; i++)
        {
            Row(o, BucketLabel(i, data.Length), data[i], total);
        }
    }

    /// <summary>dt_print_llquantize: "&lt; factor^low" for the underflow bucket, each bucket's base,
    /// "&gt;= factor^(high+1)" for the overflow bucket; all zero prints the first two buckets.</summary>
    private void PrintLlquantize(StringBuilder o, long[] data)
    {
        int levels = data.Length;
        int first = 0, last = levels - 1;
        while (first < levels && data[first] == 0) first++;
        if (first == levels)
        {
            first = 0;
            last = 1;
        }
        else
        {
            if (first > 0) first--;
            while (last > 0 && data[last] == 0) last--;
            if (last < levels - 1) last++;
        }
        long total = 0;
        for (int i = first; i <= last; i++) total += Math.Abs(data[i]);
        Header(o);
        for (int i = first; i <= last; i++)
        {
            Row(o, BucketLabel(i, data.Length), data[i], total);
        }
    }

    /// <summary>A distribution bucket's label as its row prints it: its base, "&lt; low" for the
    /// underflow bucket and "&gt;= top" for the overflow bucket of lquantize and llquantize.</summary>
    private string BucketLabel(int i, int levels)
    {
        string N(long v) => v.ToString(CultureInfo.InvariantCulture);
        return Kind switch
        {
            AggKind.Quantize => N(QuantizeBucketValue(i)),
            AggKind.Lquantize => i == 0 ? "< " + N(Low) : i == levels - 1 ? ">= " + N(Low + Levels * Step) : N(Low + (i - 1) * Step),
            _ => i == 0 ? "< " + N(_llqBounds[0]) : i == levels - 1 ? ">= " + N(_llqTop) : N(_llqBounds[i - 1]),
        };
    }

    /// <summary>The aggregation for --json (this project's, see Commands/Dtrace.cs): its entries in
    /// printing order, each with its keys and its value, or for a distribution its non-zero
    /// buckets by their printed labels.</summary>
    public static readonly System.Text.Json.JsonSerializerOptions JsonOptions =
        new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public JsonObject ToJson()
    {
        var entries = new JsonArray();
        foreach (var (key, e) in Sorted())
        {
            var keys = new JsonArray();
            foreach (var part in key.Parts) keys.Add(part is long l ? JsonValue.Create(l) : JsonValue.Create((string)part));
            var entry = new JsonObject { ["keys"] = keys };
            if (Kind is AggKind.Quantize or AggKind.Lquantize or AggKind.Llquantize)
            {
                var data = Normalised(e.Buckets);
                var buckets = new JsonArray();
                for (int i = 0; i < data.Length; i++)
                    if (data[i] != 0) buckets.Add(new JsonObject { ["value"] = BucketLabel(i, data.Length), ["count"] = data[i] });
                entry["buckets"] = buckets;
            }
            else entry["value"] = Printable(e);
            entries.Add(entry);
        }
        return new JsonObject { ["aggregation"] = Name, ["entries"] = entries };
    }
}
