namespace Snapshots.Snapbench;

/// <summary>PNG plots (ScottPlot), a line per strategy: the fault-latency CDF of each scenario (log10 axis) and
/// its restore-time CDF.</summary>
public static class Plots
{
    public static string? FaultCdf(ScenarioResult s, string path) =>
        Cdf(s.Strategies.Select(t => (t.Name, t.FaultUsSorted)), path, log: true,
            $"{s.Name}: fault latency CDF (every access replay-vmm timed)",
            "fault latency (log axis)");

    public static string? RestoreCdf(ScenarioResult s, string path) =>
        Cdf(s.Strategies.Select(t => (t.Name,
                (IReadOnlyList<double>)[.. t.Runs.Select(r => r.RestoreMs).Order()])), path, log: false,
            $"{s.Name}: restore time CDF (POST or process start to the VMM's exit)", "restore time (ms)");

    private static string? Cdf(IEnumerable<(string Name, IReadOnlyList<double> Values)> all, string path, bool log,
        string title, string xLabel)
    {
        var series = all.Where(x => x.Values.Count > 0).ToList();
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
                xs[i] = log ? Math.Log10(Math.Max(values[k], 0.01)) : values[k];
                ys[i] = 100.0 * (k + 1) / values.Count;
            }
            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = name;
            line.LineWidth = 2;
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        if (log)
        {
            // Ticks named in time units, not log10 exponents: readable without doing the sums.
            string[] names = ["10 ns", "100 ns", "1 us", "10 us", "100 us", "1 ms", "10 ms", "100 ms", "1 s", "10 s"];
            plot.Axes.Bottom.SetTicks([.. Enumerable.Range(-2, names.Length).Select(e => (double)e)], names);
        }
        plot.YLabel("percentile");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 1000, 600);
        return path;
    }
}
