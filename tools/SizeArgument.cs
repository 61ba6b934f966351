using System.Globalization;

namespace SmartOS.Cli;

/// <summary>Sizes as the front ends take them (`smartos boot --zones-size`, a scenario's `disk FILE SIZE`).</summary>
internal static class SizeArgument
{
    /// <summary>A size as mkfile(8) writes it: bytes, or a number with k, m, g or t (powers of 1024).</summary>
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        if (text.Length == 0) return false;
        long unit = char.ToLowerInvariant(text[^1]) switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, 't' => 1L << 40, _ => 1 };
        string digits = unit == 1 ? text : text[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit) return false;
        bytes = n * unit;
        return true;
    }
}
