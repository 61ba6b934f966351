using System.Globalization;
using System.Text;

namespace SmartOS.Ztest;

/// <summary>
/// One line of the log (ZtestState.cs rule 1): "intent D k what" (about to commit up to k txgs that end
/// at state D; Txg holds k) or "done T D ops what" (txg T with state D is durable, after ops operations).
/// </summary>
public readonly record struct ZtestRecord(bool Done, long Txg, string Digest, long Operations, string What)
{
    public override string ToString() => Done
        ? string.Create(CultureInfo.InvariantCulture, $"done {Txg} {Digest} {Operations} {What}")
        : string.Create(CultureInfo.InvariantCulture, $"intent {Digest} {Txg} {What}");

    /// <summary>Parses a whole line; false for anything else (a line cut short by the kill ends the log).</summary>
    public static bool TryParse(string line, out ZtestRecord record)
    {
        record = default;
        var parts = line.Split(' ', 5);
        if (parts.Length >= 4 && parts[0] == "intent"
            && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out long txgs))
        {
            record = new ZtestRecord(false, txgs, parts[1], 0, line[(parts[0].Length + parts[1].Length + parts[2].Length + 3)..]);
            return true;
        }
        if (parts.Length == 5 && parts[0] == "done"
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long txg)
            && long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out long ops))
        {
            record = new ZtestRecord(true, txg, parts[2], ops, parts[4]);
            return true;
        }
        return false;
    }
}

/// <summary>
/// The append-only log of what is durable: every record is written with its newline and fsynced
/// before the child goes on, so the parent reads exactly the records that were on disk at the kill
/// (a record cut short has no newline and is not read).
/// </summary>
public sealed class ZtestLog : IDisposable
{
    private readonly FileStream _file;

    public ZtestLog(string path)
    {
        _file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
    }

    public void Append(ZtestRecord record)
    {
        _file.Write(Encoding.UTF8.GetBytes(record + "\n"));
        _file.Flush(flushToDisk: true);
    }

    public void Dispose() => _file.Dispose();

    /// <summary>The whole records of a log, in order; a last line without its newline is left out.</summary>
    public static List<ZtestRecord> Read(string path)
    {
        var records = new List<ZtestRecord>();
        if (!File.Exists(path)) return records;
        string text = File.ReadAllText(path);
        int end = text.LastIndexOf('\n');
        if (end < 0) return records;
        foreach (string line in text[..end].Split('\n'))
        {
            if (!ZtestRecord.TryParse(line, out var record)) throw new InvalidDataException($"{path}: bad record '{line}'");
            records.Add(record);
        }
        return records;
    }
}
