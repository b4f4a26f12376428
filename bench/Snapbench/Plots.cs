namespace Snapshots.Snapbench;

/// <summary>PNG plots (ScottPlot): one fault-latency CDF per scenario, a line per strategy, latency on a log10
/// axis.</summary>
public static class Plots
{
    public static string? FaultCdf(ScenarioResult s, string path)
    {
        var series = s.Strategies.Select(t => (t.Name, Values: t.FaultUsSorted)).Where(x => x.Values.Count > 0)
            .ToList();
        if (series.Count == 0) return null;
        var plot = new ScottPlot.Plot();
        foreach (var (name, values) in series)
        {
            int points = Math.Min(values.Count, 2000);
            var xs = new double[points];
            var ys = new double[points];
            for (int i = 0; i < points; i++)
            {
                int k = (int)((long)i * (values.Count - 1) / Math.Max(1, points - 1));
                xs[i] = Math.Log10(Math.Max(values[k], 0.01));
                ys[i] = 100.0 * (k + 1) / values.Count;
            }
            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = name;
            line.LineWidth = 2;
        }
        plot.Title($"{s.Name}: fault latency CDF (every access replay-vmm timed)");
        plot.XLabel("latency (us, log10 axis: 0 = 1 us, 3 = 1 ms)");
        plot.YLabel("percentile");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 1000, 600);
        return path;
    }
}
