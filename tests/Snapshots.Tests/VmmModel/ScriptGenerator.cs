namespace Snapshots.Tests.VmmModel;

/// <summary>
/// Seeded random scripts that use guest memory the way a restored VM and its VMM do: mostly reads in short runs
/// (1-8 pages) with some sequential sweeps, some writes, balloon-like frees (1-64 pages) of touched and never-touched
/// memory and re-reads after them, now and then a small range remapped to fresh anonymous memory followed by a touch
/// of the page just before it (where fault-around crosses into memory the uffd no longer covers), reads across chunk
/// boundaries, several vCPUs at once on disjoint ranges, the VMM dropping its uffd, short pauses. The same seed
/// gives the same script.
/// </summary>
public sealed class ScriptGenerator
{
    private const int PagesPerChunk = 128;
    private readonly Random _rng;
    private readonly int _pages, _vcpus;
    private readonly List<IReadOnlyList<VmmOp>> _lines = [];
    private readonly List<int> _touched = [];
    private readonly List<(int Start, int Count)> _freed = [];
    private bool _dropped;

    public ScriptGenerator(int seed, int pages, int vcpus)
    {
        if (pages < 16) throw new ArgumentOutOfRangeException(nameof(pages), "needs at least 16 pages");
        _rng = new Random(seed);
        _pages = pages;
        _vcpus = Math.Max(1, vcpus);
    }

    /// <summary>The script for one seed.</summary>
    public static VmmScript Generate(int seed, int pages, int vcpus) => new ScriptGenerator(seed, pages, vcpus).Next();

    public VmmScript Next()
    {
        _lines.Clear();
        _touched.Clear();
        _freed.Clear();
        _dropped = false;
        int steps = _rng.Next(4, 25);
        while (_lines.Count < steps) Step();
        return new VmmScript([.. _lines]);
    }

    private void Step()
    {
        int roll = _rng.Next(100);
        switch (roll)
        {
            case < 30: Emit(ReadRun()); break;
            case < 36: Emit(new Read(Clamp(_rng.Next(_pages), out int n, _rng.Next(16, 65)), n)); break; // sweep
            case < 46: Emit(WriteRun()); break;
            case < 52: Emit(FreeTouched()); break;
            case < 57: Emit(new Free(Clamp(_rng.Next(_pages), out n, _rng.Next(1, 65)), n)); break; // never touched
            case < 65: RereadFreed(); break;
            case < 70: RemapThenTouchBefore(); break;
            case < 75: Emit(AcrossChunkBoundary()); break;
            case < 94: Parallel(); break;
            case < 97 when !_dropped: _dropped = true; Emit(new DropUffd()); break;
            case < 99: Emit(new Pause(_rng.Next(1, 3))); break;
            default: Emit(ReadRun()); break;
        }
    }

    private void Emit(params VmmOp[] ops)
    {
        _lines.Add(ops);
        foreach (var op in ops)
        {
            switch (op)
            {
                case Read or Write:
                    var r = (RangeOp)op;
                    for (int p = r.Start; p < r.End; p++) _touched.Add(p);
                    break;
                case Free f:
                    _freed.Add((f.Start, f.Count));
                    break;
                default: break;
            }
        }
    }

    /// <summary>A start for a range of up to <paramref name="want"/> pages, and the count that fits.</summary>
    private int Clamp(int start, out int count, int want)
    {
        start = Math.Clamp(start, 0, _pages - 1);
        count = Math.Min(want, _pages - start);
        return start;
    }

    /// <summary>Near a page touched before (locality), or anywhere.</summary>
    private int SomeStart() =>
        _touched.Count > 0 && _rng.Next(2) == 0
            ? _touched[_rng.Next(_touched.Count)] + _rng.Next(-4, 9)
            : _rng.Next(_pages);

    private Read ReadRun() => new(Clamp(SomeStart(), out int n, _rng.Next(1, 9)), n);

    private Write WriteRun() => new(Clamp(SomeStart(), out int n, _rng.Next(1, 5)), n, _rng.Next(1, 256));

    private Free FreeTouched()
    {
        int at = _touched.Count > 0 ? _touched[_rng.Next(_touched.Count)] : _rng.Next(_pages);
        int want = _rng.Next(1, 65);
        return new Free(Clamp(at - _rng.Next(0, want), out int n, want), n);
    }

    private Read AcrossChunkBoundary()
    {
        int chunk = _rng.Next(1, Math.Max(2, (_pages + PagesPerChunk - 1) / PagesPerChunk));
        return new Read(Clamp(chunk * PagesPerChunk - _rng.Next(1, 5), out int n, _rng.Next(2, 9)), n);
    }

    /// <summary>Reads freed memory again, and often the pages right after it (a zero run must stop at the
    /// freed pages).</summary>
    private void RereadFreed()
    {
        if (_freed.Count == 0) { Emit(FreeTouched()); return; }
        var (start, count) = _freed[_rng.Next(_freed.Count)];
        int extra = _rng.Next(3) == 0 ? 0 : _rng.Next(1, 17);
        Emit(new Read(Clamp(start, out int n, count + extra), n));
    }

    private void RemapThenTouchBefore()
    {
        int start = _rng.Next(1, _pages - 4);
        int count = _rng.Next(1, 5);
        Emit(new Remap(start, count));
        Emit(new Read(start - 1, 1));
        if (_rng.Next(2) == 0) Emit(new Read(Clamp(start + count, out int n, _rng.Next(1, 9)), n));
    }

    /// <summary>Two or more vCPUs at once on disjoint ranges, preferably in different chunks: reads mostly, some
    /// writes and frees.</summary>
    private void Parallel()
    {
        int k = _vcpus < 2 ? 1 : _rng.Next(2, _vcpus + 1);
        var ops = new List<RangeOp>();
        for (int attempt = 0; ops.Count < k && attempt < 20; attempt++)
        {
            int roll = _rng.Next(10);
            int chunks = (_pages + PagesPerChunk - 1) / PagesPerChunk;
            int start = _rng.Next(3) == 0 ? SomeStart() : _rng.Next(chunks) * PagesPerChunk + _rng.Next(PagesPerChunk);
            RangeOp op = roll switch
            {
                < 6 => new Read(Clamp(start, out int n, _rng.Next(1, 9)), n),
                < 8 => new Write(Clamp(start, out int n, _rng.Next(1, 5)), n, _rng.Next(1, 256)),
                _ => new Free(Clamp(start, out int n, _rng.Next(1, 33)), n),
            };
            if (ops.All(o => !o.Overlaps(op))) ops.Add(op);
        }
        Emit([.. ops]);
    }
}
