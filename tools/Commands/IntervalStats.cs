using System.Globalization;
using SmartOS.Kernel;

namespace SmartOS.Cli.Commands;

/// <summary>
/// Statistics tables (`dladm show-link -s`, `flowstat`), once or repeated every interval (-i N):
/// the first report is the totals so far, each later one what changed during the last interval,
/// until ^C (exit 0). Intervals are seconds of the host's clock (virtual time in `smartos run`).
/// </summary>
internal static class IntervalStats
{
    /// <summary>Parses an interval operand: whole seconds, 1 or more.</summary>
    public static bool TryParse(string text, out long interval)
    {
        interval = 0;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) || seconds < 1) return false;
        interval = seconds * Time.Second;
        return true;
    }

    /// <param name="interval">Nanoseconds between reports; 0 for one report.</param>
    /// <param name="sample">The rows now: a key (the first column) and the counters, in the order of
    /// <paramref name="counters"/>.</param>
    /// <param name="format">How a counter prints (flowstat's units); plain decimal when null.</param>
    public static async Task<int> RunAsync(CommandContext ctx, long interval, OutputTable table, bool parsable,
        string keyField, string[] counters, Func<List<(string Key, long[] Counts)>> sample, Func<long, string>? format = null)
    {
        format ??= n => n.ToString(CultureInfo.InvariantCulture);
        var previous = new Dictionary<string, long[]>(StringComparer.Ordinal);
        while (true)
        {
            var rows = sample();
            ctx.Out.Write(table.Format(rows.Select(r =>
            {
                previous.TryGetValue(r.Key, out var before);
                var row = new Dictionary<string, string> { [keyField] = r.Key };
                for (int i = 0; i < counters.Length; i++)
                    row[counters[i]] = format(r.Counts[i] - (before?[i] ?? 0));
                return (IReadOnlyDictionary<string, string>)row;
            }), parsable));
            if (interval <= 0) return 0;
            ctx.Out.Flush();
            previous = rows.ToDictionary(r => r.Key, r => r.Counts, StringComparer.Ordinal);
            try { await LoopSynchronizationContext.Delay(ctx.Host.Scheduler, interval, ctx.Cancel); }
            catch (OperationCanceledException) { return 0; }
        }
    }
}
