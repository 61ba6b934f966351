using System.Globalization;
using System.Text;

namespace SmartOS.Cli.Commands;

/// <summary>
/// What zpool(8) and zfs(8) print alike (libzfs's zfs_nicenum and the tables of print_header): one
/// place, so that both commands write a size or a column the same way.
/// </summary>
internal static class StorageText
{
    /// <summary>zfs_nicenum: 1023, 1K, 1.50K, 12.5M, 512G.</summary>
    public static string Nicenum(long num)
    {
        const string units = " KMGTPE";
        int index = 0;
        ulong n = (ulong)num;
        while (n >= 1024 && index < 6) { n /= 1024; index++; }
        if (index == 0) return n.ToString(CultureInfo.InvariantCulture);
        char u = units[index];
        if (((ulong)num & ((1UL << (10 * index)) - 1)) == 0) return n.ToString(CultureInfo.InvariantCulture) + u;
        double value = num / (double)(1UL << (10 * index));
        for (int precision = 2; precision > 0; precision--)
        {
            string s = value.ToString("F" + precision.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + u;
            if (s.Length <= 5) return s;
        }
        return value.ToString("F0", CultureInfo.InvariantCulture) + u;
    }

    /// <summary>A column: its header, whether it is right-justified, and the least width zprop_width gives it.</summary>
    public readonly record struct Column(string Header, bool Right, int MinWidth);

    /// <summary>
    /// Prints rows as print_header and the list callbacks do: columns two spaces apart, each as wide as
    /// the widest of its header, its values and its least width, right-justified ones padded on the
    /// left, the last left-justified column bare; scripted (-H): tab-separated, no header.
    /// </summary>
    public static void PrintTable(TextWriter output, IReadOnlyList<Column> columns, List<string[]> rows, bool scripted)
    {
        var sb = new StringBuilder();
        if (scripted)
        {
            foreach (var row in rows) sb.Append(string.Join('\t', row)).Append('\n');
            output.Write(sb.ToString());
            return;
        }
        var widths = new int[columns.Count];
        for (int i = 0; i < widths.Length; i++) widths[i] = Math.Max(columns[i].MinWidth, columns[i].Header.Length);
        foreach (var row in rows)
            for (int i = 0; i < row.Length; i++) widths[i] = Math.Max(widths[i], row[i].Length);
        void Line(IReadOnlyList<string> cells)
        {
            for (int i = 0; i < cells.Count; i++)
            {
                bool last = i == cells.Count - 1;
                string cell = cells[i];
                if (columns[i].Right) sb.Append(cell.PadLeft(widths[i]));
                else sb.Append(last ? cell : cell.PadRight(widths[i]));
                if (!last) sb.Append("  ");
            }
            sb.Append('\n');
        }
        var headers = new string[columns.Count];
        for (int i = 0; i < headers.Length; i++) headers[i] = columns[i].Header;
        Line(headers);
        foreach (var row in rows) Line(row);
        output.Write(sb.ToString());
    }
}
