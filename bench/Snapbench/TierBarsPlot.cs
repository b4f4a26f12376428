using System.Globalization;
using ScottPlot;

namespace Snapshots.Snapbench;

/// <summary>tier-bars-SCENARIO.png (ScottPlot): one above the other, restore time p50 / p99 (ms) and fault latency
/// p50 / p99 (us; only when accesses were timed), a group of two bars per strategy, each bar labelled with its
/// value so the figure reads without the axis; a strategy's tier and loader labels, when it has them, a line each
/// under its name.</summary>
public static class TierBarsPlot
{
    private static readonly Color P50 = new("#4C72B0");
    private static readonly Color P99 = new("#DD8452");

    /// <summary>Null (no file) under 2 strategies with restores.</summary>
    public static string? Save(ScenarioResult s, string path)
    {
        var strategies = s.Strategies.Where(t => t.RestoreMs.Count > 0).ToList();
        if (strategies.Count < 2) return null;
        string[] names = [.. strategies.Select(Name)];
        var restore = Panel($"{s.Name}: restore time (ms)", names,
            [.. strategies.Select(t => (t.RestoreMs.P50, t.RestoreMs.P99))]);
        // No access timed (guest: QEMU, no replay-vmm; remap: scripts): no fault panel, rather than bars of 0 us.
        bool timed = strategies.Any(t => t.FaultUs.Count > 0);
        var multi = new Multiplot();
        multi.RemovePlot(multi.GetPlot(0)); // a Multiplot starts with an empty plot of its own
        // Stacked: the strategies' labels read under each panel, and the picture stays wide enough, not a strip.
        multi.Layout = new ScottPlot.MultiplotLayouts.Rows();
        multi.AddPlot(restore);
        if (timed)
        {
            multi.AddPlot(Panel($"{s.Name}: fault latency (us)", names,
                [.. strategies.Select(t => (t.FaultUs.P50, t.FaultUs.P99))]));
        }
        multi.SavePng(path, Math.Max(1200, 170 * strategies.Count), timed ? 1000 : 520);
        return path;
    }

    private static string Name(StrategyResult t)
    {
        var labels = new[] { t.Tier, t.Loader }.Where(l => !string.IsNullOrEmpty(l)).Select(l => l!);
        return string.Join('\n', [t.Name, .. labels]);
    }

    private static Plot Panel(string title, string[] names, (double P50, double P99)[] values)
    {
        var plot = new Plot();
        var bars = new List<Bar>();
        for (int i = 0; i < values.Length; i++)
        {
            bars.Add(Bar(i * 3, values[i].P50, P50));
            bars.Add(Bar((i * 3) + 1, values[i].P99, P99));
        }
        plot.Add.Bars(bars);
        plot.Axes.Bottom.SetTicks([.. Enumerable.Range(0, names.Length).Select(i => (i * 3) + 0.5)], names);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Margins(bottom: 0, top: 0.15);
        plot.Title(title);
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "p50", FillColor = P50 });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "p99", FillColor = P99 });
        plot.ShowLegend(Alignment.UpperLeft);
        return plot;
    }

    private static Bar Bar(double position, double value, Color color) => new()
    {
        Position = position, Value = value, FillColor = color, Size = 0.9,
        Label = value >= 100 ? value.ToString("F0", CultureInfo.InvariantCulture)
            : value.ToString("G3", CultureInfo.InvariantCulture),
    };
}
