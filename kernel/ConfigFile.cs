/*
 * ConfigFile: the one reader and writer of a host's JSON configuration files (datalink.conf,
 * flowadm.conf, nictags.conf, zones.conf; ARCHITECTURE.md, "Persistent state").
 *
 * A configuration file is untrusted input: a person may edit it, a disk may damage it. It is read
 * record by record, so that one bad field costs one record, not the file.
 *
 * Glossary
 *   record      one element of the file's top-level JSON array: one datalink, flow, tag or zone.
 *   position    a record's 1-based index in the array and a line: the line of its bad field, or
 *               else of its first character. Every problem names the file and the position.
 *   kept        a record the reader could not turn into a value (bad JSON type, null, not an
 *               object) or that its owner could not apply (Reject: a VNIC over a missing link, a
 *               zone that fails its checks). Its text is kept verbatim.
 *   unreadable  a file that could not be read whole: missing read permission, a directory, a
 *               syntax error, or a top-level value that is not an array.
 *
 * Rules
 *   1. Each record is deserialized on its own: a bad record is reported ("FILE: record N (line L):
 *      reason") and kept; the records before and after it apply.
 *   2. Kept records are written back verbatim, after the good ones and in their original order,
 *      every time the file is saved: a later change never makes a loss permanent, and fixing a
 *      kept record by hand brings it back at the next boot. (Chosen over moving the file aside as
 *      NAME.bad-TIMESTAMP: nothing needs a clock, the evidence stays where the operator looks, and
 *      each boot names the record again until it is fixed.)
 *   3. An unreadable file is reported, the records read before the fault apply, and every later
 *      Save is refused with an IOException that says why: what could not be read is never
 *      overwritten. Repair or remove the file, then boot again.
 *   4. What a problem echoes from the file is cut to EchoLimit characters: a 5 MB bad line costs a
 *      line of output, not 5 MB.
 *   5. Reading is linear in the file's size: one pass of Utf8JsonReader, lines counted as it goes.
 *   6. Writing may be deferred where nothing outside the process can read the store (SaveDeferred,
 *      IDeferredConfigStore): a memory store keeps how to render the document and renders it when
 *      it is first read. A table that is saved after every change (zones.conf: three saves per
 *      vmadm create) would otherwise serialise all N records N times, O(N^2) for N zones
 *      (tests/SmartOS.Benchmarks zones). What a read returns is the same either way.
 */
using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace SmartOS.Kernel;

/// <summary>One record read from a configuration file, with its position (ConfigFile.cs).</summary>
public readonly record struct ConfigRecord<T>(T Value, int Index, int Line, ReadOnlyMemory<byte> Raw);

/// <summary>Helpers every configuration reader shares (ConfigFile.cs rule 4).</summary>
public static class ConfigText
{
    /// <summary>The most characters a problem echoes from a file or a command line.</summary>
    public const int EchoLimit = 64;

    /// <summary>Text as a message may echo it: cut to <see cref="EchoLimit"/> characters with "...".</summary>
    public static string Echo(string? text)
    {
        if (text == null) return "";
        return text.Length <= EchoLimit ? text : string.Concat(text.AsSpan(0, EchoLimit), "...");
    }

    /// <summary>Reads a whole configuration document, turning the store's faults into a reason
    /// (rule 3). Null text and null reason: the file does not exist.</summary>
    public static string? Read(IConfigStore store, string name, out string? unreadable)
    {
        unreadable = null;
        try { return store.Read(name); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unreadable = Echo(e.Message);
            return null;
        }
    }

    /// <summary>The exception a Save of an unreadable file throws (rule 3).</summary>
    public static IOException Refusal(string name, string unreadable)
        => new($"cannot update {name}: it could not be read at boot ({unreadable}); repair or remove it, then boot again");
}

/// <summary>The reader and writer of one JSON configuration file (see the theory statement above).</summary>
public sealed class ConfigFile<T> where T : class
{
    private readonly JsonTypeInfo<T> _info;
    private readonly List<ReadOnlyMemory<byte>> _kept = [];

    public ConfigFile(string name, JsonTypeInfo<T> info)
    {
        Name = name;
        _info = info;
    }

    public string Name { get; }

    /// <summary>Why the file could not be read whole at the last Load, or null (rule 3).</summary>
    public string? Unreadable { get; private set; }

    /// <summary>How many records are kept verbatim (rule 2).</summary>
    public int KeptCount => _kept.Count;

    /// <summary>Reads the file: the records that deserialized, in order; a problem for each other
    /// record (kept) and for a file that could not be read whole.</summary>
    public List<ConfigRecord<T>> Load(IConfigStore store, List<string> problems)
    {
        _kept.Clear();
        Unreadable = null;
        var records = new List<ConfigRecord<T>>();
        string? text = ConfigText.Read(store, Name, out string? unreadable);
        if (unreadable != null)
        {
            Fail(problems, unreadable);
            return records;
        }
        if (text == null) return records;
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var reader = new Utf8JsonReader(bytes);
        int line = 1;
        long counted = 0;
        int LineAt(long offset)
        {
            line += bytes.AsSpan((int)counted, (int)(offset - counted)).Count((byte)'\n');
            counted = offset;
            return line;
        }
        try
        {
            // Read throws on a file with no JSON in it; None is left only if it does not.
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                Fail(problems, $"line {LineAt(reader.TokenStartIndex)}: not an array of records");
                return records;
            }
            int index = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                index++;
                int start = (int)reader.TokenStartIndex;
                int at = LineAt(start);
                var kind = reader.TokenType;
                reader.Skip();
                var raw = new ReadOnlyMemory<byte>(bytes, start, (int)reader.BytesConsumed - start);
                string? why = kind switch
                {
                    JsonTokenType.Null => "empty record (null)",
                    JsonTokenType.StartObject => null,
                    _ => "not an object",
                };
                T? value = null;
                if (why == null)
                {
                    try { value = JsonSerializer.Deserialize(raw.Span, _info); }
                    catch (JsonException e) { why = Describe(e, at, out at); }
                }
                if (why != null)
                {
                    _kept.Add(raw.ToArray());
                    problems.Add($"{Name}: record {index} (line {at}): {why}");
                    continue;
                }
                records.Add(new ConfigRecord<T>(value!, index, at, raw));
            }
            // Whatever follows the array is a syntax error, thrown here.
            reader.Read();
        }
        catch (JsonException e)
        {
            // A syntax error: the records before it apply, the rest cannot be read (rule 3).
            Fail(problems, $"line {(e.LineNumber ?? 0) + 1}: {ConfigText.Echo(StripPosition(e.Message))}");
        }
        return records;
    }

    private void Fail(List<string> problems, string reason)
    {
        Unreadable = reason;
        problems.Add($"{Name}: {reason}");
    }

    /// <summary>"$.Vid: The JSON value could not be converted to System.Int32." and the line of the bad
    /// field (a record's exception counts lines from the record's first).</summary>
    private static string Describe(JsonException e, int recordLine, out int line)
    {
        line = recordLine + (int)(e.LineNumber ?? 0);
        string message = ConfigText.Echo(StripPosition(e.Message));
        return e.Path is { Length: > 0 } path ? $"{ConfigText.Echo(path)}: {message}" : message;
    }

    /// <summary>System.Text.Json appends " Path: ... | LineNumber: ..." to its messages; the problem
    /// gives the position itself.</summary>
    private static string StripPosition(string message)
    {
        int cut = message.IndexOf(" Path: ", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf(" LineNumber: ", StringComparison.Ordinal);
        return cut < 0 ? message : message[..cut];
    }

    /// <summary>The owner could not apply a record it read: reported with its position and kept (rule 2).</summary>
    public void Reject(in ConfigRecord<T> record, string reason, List<string> problems)
    {
        _kept.Add(record.Raw.ToArray());
        problems.Add($"{Name}: record {record.Index} (line {record.Line}): {reason}");
    }

    /// <summary>Writes the file: the given records, then the kept ones verbatim. Refused when the
    /// file could not be read whole (rule 3).</summary>
    public void Save(IConfigStore store, IEnumerable<T> records)
    {
        if (Unreadable != null) throw ConfigText.Refusal(Name, Unreadable);
        store.Write(Name, Render(records));
    }

    /// <summary>
    /// Saves the file as <paramref name="records"/> will give it when read (rule 6): a store that
    /// can defer (MemoryConfigStore) renders the document only when someone reads it, so a table
    /// of N records that changes N times costs N renders only if it is read N times; any other
    /// store gets the document now. The refusal of rule 3 is still immediate.
    /// </summary>
    public void SaveDeferred(IConfigStore store, Func<IEnumerable<T>> records)
    {
        if (Unreadable != null) throw ConfigText.Refusal(Name, Unreadable);
        if (store is IDeferredConfigStore deferred) deferred.WriteDeferred(Name, () => Render(records()));
        else store.Write(Name, Render(records()));
    }

    /// <summary>The file's text: the given records, then the kept ones verbatim.</summary>
    public string Render(IEnumerable<T> records)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, SkipValidation = true }))
        {
            writer.WriteStartArray();
            foreach (var r in records) JsonSerializer.Serialize(writer, r, _info);
            // Each kept record on a line of its own, as an indented writer would place it.
            foreach (var raw in _kept) writer.WriteRawValue([.. "\n  "u8, .. raw.Span], skipInputValidation: true);
            writer.WriteEndArray();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
