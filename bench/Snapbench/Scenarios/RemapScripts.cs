using System.Globalization;
using System.Text;

namespace Snapshots.Snapbench;

/// <summary>
/// Random replay-vmm scripts (native/replay-vmm/script.c) from a seed: a model of what a restored VM and its VMM do
/// to guest memory. Mostly short read runs near pages touched before, some sweeps, writes, balloon frees (of
/// touched and untouched memory) with re-reads after, a small range remapped to fresh anonymous memory (Firecracker's
/// balloon up to 1.10: no longer under the uffd) with the pages either side read next, reads across chunk
/// boundaries, lines of several vCPUs at once on disjoint pages, the VMM dropping its uffd once, short pauses. The
/// same seed gives the same script, so a failure is replayed from its seed alone.
/// </summary>
public sealed class RemapScripts
{
    /// <summary>Pages of a 512 KiB chunk: reads that cross one straddle two chunk fetches.</summary>
    private const int PagesPerChunk = 128;

    private readonly Random _rng;
    private readonly int _pages, _vcpus;
    private readonly List<string> _lines = [];
    private readonly List<int> _touched = [];
    private readonly List<(int Start, int Count)> _freed = [];
    private bool _dropped;

    private RemapScripts(int seed, int pages, int vcpus)
    {
        _rng = new Random(seed);
        _pages = pages;
        _vcpus = vcpus;
    }

    /// <summary>The script of SEED over PAGES pages with up to VCPUS ops a line: its text and its op count by kind.
    /// </summary>
    public static (string Text, Dictionary<string, int> Ops) Generate(int seed, int pages, int vcpus, int steps)
    {
        var g = new RemapScripts(seed, pages, Math.Max(1, vcpus));
        while (g._lines.Count < steps) g.Step();
        var ops = new Dictionary<string, int>();
        foreach (var op in g._lines.SelectMany(l => l.Split(" | ")))
            ops[op.Split(' ')[0]] = ops.GetValueOrDefault(op.Split(' ')[0]) + 1;
        var text = new StringBuilder($"# snapbench remap script, seed {seed}, {pages} pages\n");
        foreach (var l in g._lines) text.Append(l).Append('\n');
        return (text.ToString(), ops);
    }

    private void Step()
    {
        switch (_rng.Next(100))
        {
            case < 25: Line(Run("read", Near(), _rng.Next(1, 9))); break;
            case < 30: Line(Run("read", _rng.Next(_pages), _rng.Next(16, 65))); break;
            case < 40: Line(Run("write", Near(), _rng.Next(1, 5))); break;
            case < 47: Line(Run("free", Near() - _rng.Next(0, 8), _rng.Next(1, 65))); break;
            case < 52: Line(Run("free", _rng.Next(_pages), _rng.Next(1, 65))); break;
            case < 60: Reread(); break;
            case < 70: RemapThenTouchAround(); break;
            case < 75: Line(AcrossChunkBoundary()); break;
            case < 95: Parallel(); break;
            case < 97 when !_dropped: _dropped = true; _lines.Add("drop-uffd"); break;
            default: _lines.Add(string.Create(CultureInfo.InvariantCulture, $"pause {_rng.Next(1, 3)}")); break;
        }
    }

    private (string Kind, int Start, int Count) AcrossChunkBoundary()
    {
        int chunk = _rng.Next(1, Math.Max(2, _pages / PagesPerChunk));
        return Run("read", (chunk * PagesPerChunk) - _rng.Next(1, 5), _rng.Next(2, 9));
    }

    /// <summary>An op on START..START+COUNT-1, clamped into guest memory.</summary>
    private (string Kind, int Start, int Count) Run(string kind, int start, int count)
    {
        start = Math.Clamp(start, 0, _pages - 1);
        return (kind, start, Math.Min(count, _pages - start));
    }

    private int Near() => _touched.Count > 0 && _rng.Next(2) == 0
        ? _touched[_rng.Next(_touched.Count)] + _rng.Next(-4, 9)
        : _rng.Next(_pages);

    private void Line(params (string Kind, int Start, int Count)[] ops)
    {
        var text = new List<string>();
        foreach (var (kind, start, count) in ops)
        {
            if (kind is "read" or "write")
                for (int p = start; p < start + count; p++) _touched.Add(p);
            if (kind == "free") _freed.Add((start, count));
            text.Add(kind == "write"
                ? string.Create(CultureInfo.InvariantCulture, $"write {start} {count} {_rng.Next(1, 256)}")
                : string.Create(CultureInfo.InvariantCulture, $"{kind} {start} {count}"));
        }
        _lines.Add(string.Join(" | ", text));
    }

    /// <summary>Freed memory read again, often with the pages after it (a run of zeros must stop at the freed
    /// pages).</summary>
    private void Reread()
    {
        if (_freed.Count == 0)
        {
            Line(Run("free", Near(), _rng.Next(1, 33)));
            return;
        }
        var (start, count) = _freed[_rng.Next(_freed.Count)];
        Line(Run("read", start, count + (_rng.Next(3) == 0 ? 0 : _rng.Next(1, 17))));
    }

    /// <summary>A remap, then the page before it (where fault-around would cross into memory the uffd no longer
    /// covers) and sometimes the pages after it and the remapped ones (zeros, from the kernel).</summary>
    private void RemapThenTouchAround()
    {
        int start = _rng.Next(1, _pages - 4), count = _rng.Next(1, 5);
        Line(Run("remap", start, count));
        Line(Run("read", start - 1, 1));
        if (_rng.Next(2) == 0) Line(Run("read", start + count, _rng.Next(1, 9)));
        if (_rng.Next(2) == 0) Line(Run("read", start, count));
    }

    /// <summary>Two or more vCPUs at once on disjoint pages, preferably in different chunks: reads mostly, some
    /// writes and frees.</summary>
    private void Parallel()
    {
        int k = _vcpus < 2 ? 1 : _rng.Next(2, _vcpus + 1);
        var ops = new List<(string Kind, int Start, int Count)>();
        for (int attempt = 0; ops.Count < k && attempt < 20; attempt++)
        {
            int start = _rng.Next(3) == 0 ? Near()
                : (_rng.Next(Math.Max(1, _pages / PagesPerChunk)) * PagesPerChunk) + _rng.Next(PagesPerChunk);
            var op = _rng.Next(10) switch
            {
                < 6 => Run("read", start, _rng.Next(1, 9)),
                < 8 => Run("write", start, _rng.Next(1, 5)),
                _ => Run("free", start, _rng.Next(1, 33)),
            };
            if (ops.All(o => o.Start + o.Count <= op.Start || op.Start + op.Count <= o.Start)) ops.Add(op);
        }
        Line([.. ops]);
    }
}
