using System.Globalization;
using System.Text.RegularExpressions;
using ScottPlot;
using SkiaSharp;
using SmartOS.Cli.Observe;

namespace SmartOS.Cli.Report;

/// <summary>
/// A chart per link of throughput over virtual time (ReportWriter.cs rule 3), drawn with ScottPlot
/// and written as SVG. SVG rather than PNG: its bytes are coordinates and text, with no rasteriser
/// whose anti-aliasing could differ between CPUs, and no date in any header.
///
/// Rules
///   1. One font, shipped inside the assembly (DejaVu Sans Mono, Fonts/), resolved before any
///      font of the machine: the text's positions come from its metrics, so a chart has the same
///      bytes on a machine with other fonts, or with none (SkiaSharp's NoDependencies native
///      library, which ScottPlot brings, loads no fontconfig: ldd shows only libc, libm, libdl and
///      libpthread). Labels are ASCII, so no glyph falls back to another font.
///   2. Skia's SVG canvas numbers its clip paths from a counter that lives as long as the process,
///      so the same chart drawn twice carries different ids: they are renumbered from 1 in order of
///      appearance, and two runs give the same bytes.
///   3. A rate is the difference of two cumulative samples over their interval (LinkHistory.Throughput),
///      plotted at the end of the interval, in Mbit/s.
/// </summary>
public static partial class Charts
{
    /// <summary>The family name the shipped font answers to.</summary>
    public const string FontName = "SmartOS Chart Mono";

    public const int Width = 720, Height = 280;

    private static readonly object s_fontGate = new();
    private static bool s_fontAdded;

    /// <summary>The SVG of one link's chart (rules 1 to 3).</summary>
    public static string LinkChartSvg(LinkHistory link, long startNs, long endNs)
    {
        EnsureFont();
        int n = link.Samples.Count;
        var xs = new double[n];
        var rx = new double[n];
        var tx = new double[n];
        double top = 0;
        for (int i = 0; i < n; i++)
        {
            xs[i] = (link.Samples[i].TimeNs - startNs) / 1e9;
            var (r, t) = link.Throughput(i);
            rx[i] = r / 1e6;
            tx[i] = t / 1e6;
            top = Math.Max(top, Math.Max(rx[i], tx[i]));
        }
        var plot = new Plot();
        try
        {
            var received = plot.Add.Scatter(xs, rx);
            received.LegendText = "received";
            received.MarkerSize = 0;
            received.LineWidth = 2;
            var sent = plot.Add.Scatter(xs, tx);
            sent.LegendText = "sent";
            sent.MarkerSize = 0;
            sent.LineWidth = 2;
            sent.LinePattern = LinePattern.Dashed;
            plot.Title($"{link.Host} {link.Name} ({link.Class})");
            plot.XLabel("virtual time (s)");
            plot.YLabel("Mbit/s");
            plot.Font.Set(FontName);
            plot.ShowLegend(Alignment.UpperRight);
            plot.Axes.SetLimitsX(0, Math.Max((endNs - startNs) / 1e9, 1e-3));
            plot.Axes.SetLimitsY(0, top > 0 ? top * 1.15 : 1);
            return Renumber(plot.GetSvgXml(Width, Height));
        }
        finally
        {
            plot.Dispose();
        }
    }

    /// <summary>Rule 2: clip-path ids renumbered in order of appearance.</summary>
    internal static string Renumber(string svg)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        return ClipId().Replace(svg, m =>
        {
            if (!map.TryGetValue(m.Value, out var id))
            {
                id = "cl_" + (map.Count + 1).ToString(CultureInfo.InvariantCulture);
                map.Add(m.Value, id);
            }
            return id;
        });
    }

    [GeneratedRegex(@"(?<=id=""|url\(#)cl_[0-9a-fA-F]+")]
    private static partial Regex ClipId();

    /// <summary>Rule 1: the shipped font, put first among ScottPlot's resolvers once per process.</summary>
    private static void EnsureFont()
    {
        lock (s_fontGate)
        {
            if (s_fontAdded) return;
            Fonts.FontResolvers.Insert(0, new ShippedFont());
            s_fontAdded = true;
        }
    }

    /// <summary>Answers <see cref="FontName"/> with DejaVu Sans Mono from the assembly's resources.</summary>
    private sealed class ShippedFont : IFontResolver
    {
        private const string Resource = "SmartOS.Cli.Report.Fonts.DejaVuSansMono.ttf";

        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic)
            => fontName == FontName ? Load() : null;

        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing width)
            => fontName == FontName ? Load() : null;

        private static SKTypeface Load()
        {
            using var stream = typeof(Charts).Assembly.GetManifestResourceStream(Resource)
                ?? throw new InvalidOperationException($"the chart font {Resource} is missing from the assembly");
            return SKTypeface.FromStream(stream) ?? throw new InvalidOperationException("the chart font could not be read");
        }
    }
}
