using ScottPlot;

namespace Snapshots.Snapbench;

/// <summary>timeline-SCENARIO.png (ScottPlot): a panel per sampled restore (<see cref="Timeline"/>), one above the
/// other on the same time axis (ms since its POST): faults, pages copied and pages prefetched on the left axis,
/// parked faults (far fewer) on the right axis so they do not lie flat on zero. A marker per sample shows how
/// dense the sampling was; where GETs failed (the daemon away) the lines break over a shaded span.</summary>
public static class TimelinePlot
{
    private static readonly (string Name, Color Color, bool Right, Func<TimelineSample, long> Value)[] Series =
    [
        ("faults", new Color("#4C72B0"), false, s => s.Faults),
        ("pages copied", new Color("#55A868"), false, s => s.PagesCopied),
        ("pages prefetched", new Color("#DD8452"), false, s => s.PrefetchedPages),
        ("parked faults (right axis)", new Color("#C44E52"), true, s => s.ParkedFaults),
    ];

    /// <summary>Null (no file) when no restore of the scenario was sampled.</summary>
    public static string? Save(ScenarioResult s, string path)
    {
        var timelines = s.Timelines.Where(t => t.Samples.Count > 0).ToList();
        if (timelines.Count == 0) return null;
        var multi = new Multiplot();
        multi.RemovePlot(multi.GetPlot(0)); // a Multiplot starts with an empty plot of its own
        var plots = timelines.Select(t => Panel(s.Name, t)).ToList();
        foreach (var p in plots) multi.AddPlot(p);
        multi.Layout = new ScottPlot.MultiplotLayouts.Rows();
        double end = timelines.Max(t => t.Samples[^1].Ms);
        foreach (var p in plots) p.Axes.SetLimitsX(0, end * 1.02);
        multi.SharedAxes.ShareX(plots);
        multi.SavePng(path, 1200, (320 * plots.Count) + 40);
        return path;
    }

    private static Plot Panel(string scenario, Timeline t)
    {
        var samples = t.Samples;
        var misses = t.MissMs;
        var segments = Segments(samples, misses);
        var plot = new Plot();
        foreach (var (name, color, right, value) in Series)
        {
            for (int k = 0; k < segments.Count; k++)
            {
                var seg = segments[k];
                var line = plot.Add.ScatterLine(seg.Select(x => x.Ms).ToArray(),
                    seg.Select(x => (double)value(x)).ToArray(), color);
                line.LineWidth = 2;
                line.MarkerSize = 4;
                if (right)
                {
                    line.LinePattern = LinePattern.Dashed;
                    line.Axes.YAxis = plot.Axes.Right;
                }
                if (k == 0) line.LegendText = name;
            }
        }
        for (int k = 1; k < segments.Count; k++)
        {
            var span = plot.Add.HorizontalSpan(segments[k - 1][^1].Ms, segments[k][0].Ms);
            span.FillStyle.Color = Colors.Gray.WithAlpha(0.25);
            span.LineStyle.Width = 0;
            if (k == 1) span.LegendText = "no answer from snapd";
        }
        plot.Axes.Right.Label.Text = "parked faults";
        plot.Axes.Left.Label.Text = "pages";
        plot.Axes.Bottom.Label.Text = "ms since POST /v1/restores";
        string gaps = misses.Count > 0 ? $", {misses.Count} GETs unanswered" : "";
        plot.Title($"{scenario}: {t.Strategy} ({t.Label}, restore {t.Id}, {samples[^1].State}{gaps})");
        plot.Axes.Margins(bottom: 0);
        plot.ShowLegend(Edge.Right);
        return plot;
    }

    /// <summary>The samples cut wherever a GET failed between two of them.</summary>
    private static List<List<TimelineSample>> Segments(IReadOnlyList<TimelineSample> samples,
        IReadOnlyList<double> misses)
    {
        var segments = new List<List<TimelineSample>> { new() { samples[0] } };
        for (int i = 1; i < samples.Count; i++)
        {
            double from = samples[i - 1].Ms, to = samples[i].Ms;
            if (misses.Any(m => m > from && m < to)) segments.Add([]);
            segments[^1].Add(samples[i]);
        }
        return segments;
    }
}
