using System.Globalization;
using System.Text;

namespace SmartOS.Testing;

/// <summary>
/// Test cases kept in text files, one case a line, as iced keeps its decoder and formatter tests.
///
/// The format, for every file under a test project's Data/ folder:
///   1. Fields are separated by '|'; spaces around a field are dropped. A field written in double
///      quotes keeps its spaces ("  1   0.00000 ").
///   2. Inside a field, \| is a bar, \n a newline, \t a tab, \" a quote and \\ a backslash.
///   3. A line whose first non-blank character is '#' is a comment; blank lines are skipped.
///   4. The file opens with a comment saying what its cases check and which source they follow.
///
/// A line that breaks a rule is not dropped: it becomes a case that fails naming file:line, so a
/// typo in a data file shows up as a red test and never as a case silently lost. The same holds for
/// a field a test cannot read (<see cref="DataCase.Int"/>, <see cref="DataCase.Bool"/>).
/// </summary>
internal static class DataFile
{
    public const char Separator = '|';

    /// <summary>The cases of <paramref name="name"/> (relative to the test assembly's Data/ folder),
    /// each with <paramref name="fields"/> fields, as NUnit cases named after the method and the
    /// line's fields.</summary>
    public static IEnumerable<TestCaseData> Cases(string name, int fields) => Cases(name, fields, fields);

    /// <summary>As <see cref="Cases(string,int)"/>, for a file whose lines have between
    /// <paramref name="minFields"/> and <paramref name="maxFields"/> fields.</summary>
    public static IEnumerable<TestCaseData> Cases(string name, int minFields, int maxFields)
    {
        foreach (var c in Read(name, minFields, maxFields))
            yield return new TestCaseData(c).SetName("{m}(" + c.Title + ")");
    }

    /// <summary>Reads the lines of a data file into cases; a missing file or a bad line is a case
    /// that fails when run.</summary>
    public static IEnumerable<DataCase> Read(string name, int minFields, int maxFields)
        => Read(Path.Combine(AppContext.BaseDirectory, "Data", name), name, minFields, maxFields);

    /// <summary>Reads the data file at <paramref name="path"/>, naming it <paramref name="name"/>
    /// in messages.</summary>
    internal static IEnumerable<DataCase> Read(string path, string name, int minFields, int maxFields)
    {
        if (!File.Exists(path))
        {
            yield return DataCase.Broken(name, 0, $"{name}: no such data file beside the tests ({path})");
            yield break;
        }
        string[] lines = File.ReadAllLines(path);
        bool seenComment = false;
        for (int i = 0; i < lines.Length; i++)
        {
            int number = i + 1;
            string line = lines[i].Trim();
            if (line.Length == 0) continue;
            if (line[0] == '#')
            {
                seenComment = true;
                continue;
            }
            if (!seenComment)
            {
                yield return DataCase.Broken(name, number, "the file must open with a comment saying what its cases check");
                seenComment = true;
            }
            if (!TrySplit(line, out var parsed, out string error))
                yield return DataCase.Broken(name, number, error);
            else if (parsed.Count < minFields || parsed.Count > maxFields)
                yield return DataCase.Broken(name, number, $"{parsed.Count} fields, expected " +
                    (minFields == maxFields ? $"{minFields}" : $"{minFields} to {maxFields}") + $" separated by '{Separator}'");
            else
                yield return new DataCase(name, number, parsed.ToArray(), null);
        }
    }

    /// <summary>Splits a line at unescaped bars, trims each field, removes enclosing quotes and
    /// decodes escapes.</summary>
    internal static bool TrySplit(string line, out List<string> fields, out string error)
    {
        fields = [];
        error = "";
        var raw = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i <= line.Length; i++)
        {
            if (i == line.Length && quoted)
            {
                error = "a quoted field is not closed";
                return false;
            }
            if (i == line.Length || (line[i] == Separator && !quoted))
            {
                if (!TryField(raw.ToString(), out string field, out error)) return false;
                fields.Add(field);
                raw.Clear();
                continue;
            }
            char ch = line[i];
            if (ch == '\\' && i + 1 < line.Length)
            {
                raw.Append(ch).Append(line[++i]);
                continue;
            }
            // A quote opens a field only as its first character; anywhere else TryField refuses it.
            if (ch == '"' && (quoted || raw.ToString().Trim().Length == 0)) quoted = !quoted;
            raw.Append(ch);
        }
        return true;
    }

    private static bool TryField(string raw, out string field, out string error)
    {
        string s = raw.Trim();
        error = "";
        if (s.Length >= 2 && s[0] == '"' && s[^1] == '"' && s[^2] != '\\') s = s[1..^1];
        var b = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '"')
            {
                field = "";
                error = $"a quote inside field '{s}' (write \\\" for a quote)";
                return false;
            }
            if (s[i] != '\\')
            {
                b.Append(s[i]);
                continue;
            }
            if (i + 1 == s.Length)
            {
                field = "";
                error = $"a backslash ends field '{s}'";
                return false;
            }
            char e = s[++i];
            switch (e)
            {
                case 'n': b.Append('\n'); break;
                case 't': b.Append('\t'); break;
                case '|' or '"' or '\\': b.Append(e); break;
                default:
                    field = "";
                    error = $"unknown escape '\\{e}' in field '{s}'";
                    return false;
            }
        }
        field = b.ToString();
        return true;
    }
}

/// <summary>One line of a data file: its place (for messages) and its fields. Reading a field of a
/// broken line, or a field that does not hold what the test asks for, fails the test naming
/// file:line.</summary>
public sealed class DataCase
{
    private readonly string[] _fields;
    private readonly string? _error;

    internal DataCase(string file, int line, string[] fields, string? error)
    {
        File = file;
        Line = line;
        _fields = fields;
        _error = error;
    }

    internal static DataCase Broken(string file, int line, string error) => new(file, line, [], error);

    public string File { get; }
    public int Line { get; }
    public string Where => $"{File}:{Line}";

    /// <summary>The name NUnit shows: the fields as written, or where the broken line is.</summary>
    public string Title => _error is null
        ? string.Join(", ", _fields.Select(f => f.Replace("\n", "\\n", StringComparison.Ordinal)))
        : $"{Where} malformed";

    public string this[int index] => index < Check()._fields.Length
        ? _fields[index]
        : Fail<string>($"no field {index + 1}");

    public int Int(int index)
    {
        string s = this[index];
        bool hex = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        return int.TryParse(hex ? s[2..] : s, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v)
            ? v
            : Fail<int>($"field {index + 1} '{s}' is not a number");
    }

    public ulong UInt64(int index)
    {
        string s = this[index];
        bool hex = s.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        return ulong.TryParse(hex ? s[2..] : s, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
            ? v
            : Fail<ulong>($"field {index + 1} '{s}' is not an unsigned number");
    }

    /// <summary>"yes"/"no" or "true"/"false".</summary>
    public bool Bool(int index) => this[index] switch
    {
        "yes" or "true" => true,
        "no" or "false" => false,
        var s => Fail<bool>($"field {index + 1} '{s}' is not yes or no"),
    };

    /// <summary>A field holding a list separated by <paramref name="separator"/>; an empty field is
    /// an empty list.</summary>
    public string[] List(int index, char separator = ',')
        => this[index].Length == 0 ? [] : this[index].Split(separator, StringSplitOptions.TrimEntries);

    /// <summary>Fails the running test with the line's place in front of the message.</summary>
    public T Fail<T>(string message)
    {
        Assert.Fail($"{Where}: {message}");
        return default!;
    }

    private DataCase Check()
    {
        if (_error is not null) Assert.Fail($"{Where}: {_error}");
        return this;
    }

    public override string ToString() => Where;
}
