using System.Globalization;

namespace SmartOS.Cli;

/// <summary>
/// Sizes as commands and front ends take them: a number with an optional suffix, illumos's k (1024),
/// b (512), w (2), m, g and t, each command allowing its own set (mkfile: gkbm; dd: kbwmg; dtrace's
/// size options, `smartos boot --zones-size` and a scenario's `disk FILE SIZE`: kmgt).
/// </summary>
internal static class SizeArgument
{
    /// <summary>A size with a k, m, g or t suffix or none (mkfile(8)'s form, as the front ends take it).</summary>
    public static bool TryParse(string text, out long bytes) => TryParse(text, "kmgt", out bytes);

    /// <summary>A size with one of suffixes (any case) or none; false when malformed or too large.</summary>
    public static bool TryParse(string text, string suffixes, out long bytes)
    {
        bytes = 0;
        if (text.Length == 0) return false;
        long unit = 1;
        char last = char.ToLowerInvariant(text[^1]);
        if (!char.IsAsciiDigit(last))
        {
            if (!suffixes.Contains(last)) return false;
            unit = last switch { 'k' => 1L << 10, 'b' => 512, 'w' => 2, 'm' => 1L << 20, 'g' => 1L << 30, 't' => 1L << 40, _ => 1 };
            text = text[..^1];
        }
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit) return false;
        bytes = n * unit;
        return true;
    }
}
