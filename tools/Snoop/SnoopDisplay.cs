using System.Globalization;
using System.Text;
using SmartOS.Kernel;

namespace SmartOS.Cli.Snoop;

/// <summary>
/// How snoop shows one packet, after snoop_display.c's process_pkt and snoop.c's show_pktinfo:
/// <list type="number">
/// <item>A summary line is a prefix, then the deepest layer's summary. The prefix is, in order and
/// each only when asked for: the packet number ("%3d ", reading a file), the time ("%3d.%05d "
/// seconds since the previous packet shown by default, since the first with -t r, or the time of
/// day "%02d:%02d:%02d.%05d " with -t a), "VLAN#N: " for a tagged frame, the "%12s -> %-12s "
/// source and destination column, and "length: %4d  " with -S.</item>
/// <item>-V prints a line of underscores, then every layer's summary, each after the same prefix
/// (without the VLAN part, which -V shows in the ETHER line).</item>
/// <item>-v prints every layer's detail lines and a blank line; no prefix.</item>
/// <item>-x offset[,length] then dumps the captured bytes from offset (rounded down to even) in
/// snoop's hexdump layout: 16 bytes a line as 16-bit words, then the printable characters.</item>
/// <item>The time of day (-t a) is printed in UTC: localtime would make the same capture print
/// differently on hosts in different time zones (SmartOS global zones run in UTC).</item>
/// </list>
/// </summary>
public sealed class SnoopDisplay
{
    public enum TimeMode { None, Delta, Relative, Absolute }

    public enum Style { Summary, AllSummaries, Detail }

    public required Style Mode { get; init; }
    public bool Numbered { get; init; }
    public TimeMode Time { get; init; }
    public bool ShowLength { get; init; }

    /// <summary>Where -x starts (-1: no dump) and how many bytes it shows at most.</summary>
    public int HexOffset { get; init; } = -1;
    public int HexLength { get; init; } = int.MaxValue;

    private bool _started;
    private long _previousNs, _firstNs;

    /// <summary>Shows one packet: its captured bytes, its length on the wire, its number and time.</summary>
    public void Show(TextWriter o, ReadOnlySpan<byte> frame, int originalLength, long number, long timestampNs)
    {
        if (!_started)
        {
            _started = true;
            _previousNs = timestampNs;
            _firstNs = timestampNs;
        }
        if (Mode == Style.Detail)
        {
            o.Write(SnoopFormat.Verbose(frame, (int)Math.Min(number, int.MaxValue), timestampNs));
            o.Write("\n\n");
        }
        else
        {
            var found = SnoopFormat.Interpret(frame);
            string prefix = Prefix(found, originalLength, number, timestampNs);
            if (Mode == Style.AllSummaries)
            {
                o.Write("________________________________\n");
                foreach (string line in found.Lines) o.Write($"{prefix}{line}\n");
            }
            else
            {
                o.Write($"{prefix}{found.Lines[^1]}\n");
            }
        }
        if (HexOffset >= 0) o.Write(HexDump(frame, HexOffset, HexLength));
        _previousNs = timestampNs;
    }

    private string Prefix(in SnoopFormat.Interpretation found, int originalLength, long number, long timestampNs)
    {
        var p = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        if (Numbered) p.Append(inv, $"{number,3} ");
        switch (Time)
        {
            case TimeMode.Absolute:
                {
                    long us = Math.Max(0, timestampNs) / 1000;
                    long secondOfDay = us / 1_000_000 % 86_400;
                    p.Append(inv, $"{secondOfDay / 3600:00}:{secondOfDay / 60 % 60:00}:{secondOfDay % 60:00}.{us % 1_000_000 / 10:00000} ");
                    break;
                }
            case TimeMode.Delta or TimeMode.Relative:
                {
                    long since = Time == TimeMode.Delta ? _previousNs : _firstNs;
                    // timeval arithmetic as show_pktinfo does it: microseconds, borrowing a second.
                    long us = timestampNs / 1000 - since / 1000;
                    long sec = Math.DivRem(us, 1_000_000, out long rest);
                    if (rest < 0) { rest += 1_000_000; sec--; }
                    p.Append(inv, $"{sec,3}.{rest / 10:00000} ");
                    break;
                }
        }
        if (Mode == Style.Summary && found.VlanId != 0) p.Append(inv, $"VLAN#{found.VlanId}: ");
        p.Append(SnoopFormat.Who(found.Source, found.Destination));
        if (ShowLength) p.Append(inv, $"length: {originalLength,4}  ");
        return p.ToString();
    }

    /// <summary>snoop_display.c's hexdump of the captured bytes from offset for at most length.</summary>
    public static string HexDump(ReadOnlySpan<byte> frame, int offset, int length)
    {
        offset = Math.Min(offset, frame.Length);
        offset -= offset % 2;
        var data = frame[offset..][..Math.Min(frame.Length - offset, length)];
        var s = new StringBuilder("\n");
        const int Chunk = 16;
        for (int at = 0; at < data.Length; at += Chunk)
        {
            int left = data.Length - at;
            int len = Math.Min(Chunk, left);
            s.Append(CultureInfo.InvariantCulture, $"\t{at,4}: ");
            for (int i = 0; i < len / 2; i++) s.Append(CultureInfo.InvariantCulture, $"{data[at + 2 * i]:x2}{data[at + 2 * i + 1]:x2} ");
            if (len % 2 != 0) s.Append(CultureInfo.InvariantCulture, $"{data[at + len - 1]:x2}   ");
            for (int i = 0; i < (Chunk - left) / 2; i++) s.Append("     ");
            s.Append("   ");
            for (int i = 0; i < len; i++)
            {
                byte b = data[at + i];
                s.Append(b is >= 0x20 and < 0x7F ? (char)b : '.');
            }
            s.Append('\n');
        }
        return s.Append('\n').ToString();
    }
}
