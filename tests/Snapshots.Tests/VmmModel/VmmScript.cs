using System.Globalization;
using System.Text;

namespace Snapshots.Tests.VmmModel;

/// <summary>One operation of a replay-vmm script (native/replay-vmm/script.c). Pages are pages of the memory
/// file.</summary>
public abstract record VmmOp
{
    public abstract string ToText();
    public sealed override string ToString() => ToText();
}

/// <summary>An operation on pages Start..Start+Count-1.</summary>
public abstract record RangeOp(int Start, int Count) : VmmOp
{
    public int End => Start + Count;
    public abstract RangeOp WithRange(int start, int count);
    public bool Overlaps(RangeOp other) => Start < other.End && other.Start < End;
    protected string Text(string name) => string.Create(CultureInfo.InvariantCulture, $"{name} {Start} {Count}");
}

/// <summary>Touch and read the pages; each is checked against the model.</summary>
public sealed record Read(int Start, int Count) : RangeOp(Start, Count)
{
    public override RangeOp WithRange(int start, int count) => new Read(start, count);
    public override string ToText() => Text("read");
}

/// <summary>Fill each page with a pattern seeded by (page, Value).</summary>
public sealed record Write(int Start, int Count, int Value) : RangeOp(Start, Count)
{
    public override RangeOp WithRange(int start, int count) => new Write(start, count, Value);
    public override string ToText() => Text("write") + " " + Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>madvise(MADV_DONTNEED): the handler gets UFFD_EVENT_REMOVE; the guest reads zeros after.</summary>
public sealed record Free(int Start, int Count) : RangeOp(Start, Count)
{
    public override RangeOp WithRange(int start, int count) => new Free(start, count);
    public override string ToText() => Text("free");
}

/// <summary>Fresh anonymous memory mapped over the range: no longer registered with the uffd.</summary>
public sealed record Remap(int Start, int Count) : RangeOp(Start, Count)
{
    public override RangeOp WithRange(int start, int count) => new Remap(start, count);
    public override string ToText() => Text("remap");
}

/// <summary>The VMM closes its own copy of the uffd.</summary>
public sealed record DropUffd : VmmOp
{
    public override string ToText() => "drop-uffd";
}

public sealed record Pause(int Ms) : VmmOp
{
    public override string ToText() => string.Create(CultureInfo.InvariantCulture, $"pause {Ms}");
}

/// <summary>
/// A replay-vmm script: lines of operations; the operations of a line run at once, one per vCPU thread, on
/// disjoint pages. Each script is one restore.
/// </summary>
public sealed class VmmScript(IReadOnlyList<IReadOnlyList<VmmOp>> lines)
{
    public IReadOnlyList<IReadOnlyList<VmmOp>> Lines { get; } = lines;
    public int OpCount => Lines.Sum(l => l.Count);
    public int Widest => Lines.Count == 0 ? 0 : Lines.Max(l => l.Count);

    public static VmmScript Of(params VmmOp[][] lines) => new(lines);

    public string ToText()
    {
        var sb = new StringBuilder();
        foreach (var line in Lines) sb.Append(string.Join(" | ", line.Select(op => op.ToText()))).Append('\n');
        return sb.ToString();
    }

    public override string ToString() => ToText();

    /// <summary>Many scripts in one file, separated by "---" lines: replay-vmm restores once per script.</summary>
    public static string ToFile(IEnumerable<VmmScript> scripts) =>
        string.Join("---\n", scripts.Select(s => s.ToText()));

    /// <summary>Parses what <see cref="ToText"/> writes (one script, '#' comments allowed).</summary>
    public static VmmScript Parse(string text)
    {
        var lines = new List<IReadOnlyList<VmmOp>>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Split('#')[0].Trim();
            if (line.Length == 0) continue;
            lines.Add(line.Split('|').Select(p => ParseOp(p.Trim())).ToArray());
        }
        return new VmmScript(lines);
    }

    private static VmmOp ParseOp(string text)
    {
        var w = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int N(int i) => int.Parse(w[i], CultureInfo.InvariantCulture);
        return w[0] switch
        {
            "read" => new Read(N(1), N(2)),
            "write" => new Write(N(1), N(2), N(3)),
            "free" => new Free(N(1), N(2)),
            "remap" => new Remap(N(1), N(2)),
            "drop-uffd" => new DropUffd(),
            "pause" => new Pause(N(1)),
            _ => throw new FormatException($"unknown op '{text}'"),
        };
    }

    /// <summary>True when every line's range operations touch disjoint pages (what replay-vmm assumes).</summary>
    public bool LinesAreDisjoint(int pages) => Lines.All(line =>
    {
        var ranges = line.OfType<RangeOp>().ToArray();
        for (int i = 0; i < ranges.Length; i++)
        {
            if (ranges[i].Start < 0 || ranges[i].Count < 1 || ranges[i].End > pages) return false;
            for (int j = 0; j < i; j++)
                if (ranges[i].Overlaps(ranges[j])) return false;
        }
        return true;
    });
}
