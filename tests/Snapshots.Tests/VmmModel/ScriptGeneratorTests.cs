namespace Snapshots.Tests.VmmModel;

/// <summary>The script generator and the shrinker, without a VMM.</summary>
[Trait("Category", Category.Unit)]
public class ScriptGeneratorTests
{
    [Fact]
    public void Scripts_are_reproducible_in_range_disjoint_per_line_and_round_trip_as_text()
    {
        var kinds = new HashSet<Type>();
        for (int seed = 0; seed < 2000; seed++)
        {
            var s = ScriptGenerator.Generate(seed, 512, 3);
            Assert.Equal(s.ToText(), ScriptGenerator.Generate(seed, 512, 3).ToText());
            Assert.True(s.LinesAreDisjoint(512), s.ToText());
            Assert.InRange(s.Widest, 1, 3);
            Assert.Equal(s.ToText(), VmmScript.Parse(s.ToText()).ToText());
            foreach (var op in s.Lines.SelectMany(l => l)) kinds.Add(op.GetType());
        }
        Assert.Equal(
            new[] { typeof(Read), typeof(Write), typeof(Free), typeof(Remap), typeof(DropUffd), typeof(Pause) }
                .ToHashSet(), kinds);
    }

    [Fact]
    public void Scripts_exercise_the_cases_that_break_handlers()
    {
        int remapThenBefore = 0, rereadAfterFree = 0, parallel = 0;
        for (int seed = 0; seed < 1000; seed++)
        {
            var lines = ScriptGenerator.Generate(seed, 512, 3).Lines;
            for (int i = 0; i + 1 < lines.Count; i++)
            {
                if (lines[i] is [Remap r] && lines[i + 1] is [Read { Count: 1 } b] && b.Start == r.Start - 1)
                    remapThenBefore++;
                if (lines[i].Count > 1) parallel++;
                if (lines[i] is [Free f]
                    && lines.Skip(i + 1).Any(l => l.OfType<Read>().Any(rd => rd.Start <= f.Start && rd.End > f.Start)))
                    rereadAfterFree++;
            }
        }
        Assert.True(remapThenBefore > 50, $"{remapThenBefore} remaps followed by a touch of the page before");
        Assert.True(rereadAfterFree > 50, $"{rereadAfterFree} frees read again");
        Assert.True(parallel > 300, $"{parallel} lines with several vCPUs");
    }

    [Fact]
    public void The_shrinker_finds_a_minimal_failing_script()
    {
        // "Fails" when a free covering page 3 is followed, later, by a read covering page 5.
        static bool Fails(VmmScript s)
        {
            var ops = s.Lines.SelectMany(l => l).ToList();
            int free = ops.FindIndex(o => o is Free f && f.Start <= 3 && f.End > 3);
            return free >= 0 && ops.Skip(free + 1).Any(o => o is Read r && r.Start <= 5 && r.End > 5);
        }
        var big = VmmScript.Of(
            [new Read(0, 8)], [new Write(20, 3, 9), new Read(40, 4)], [new Free(0, 16), new Read(30, 2)],
            [new Pause(1)], [new Read(60, 8)], [new Read(2, 10), new Write(40, 2, 5)], [new DropUffd()],
            [new Read(0, 1)]);
        Assert.True(Fails(big));
        var small = ScriptShrinker.Shrink(big, Fails);
        Assert.Equal("free 3 1\nread 5 1\n", small.ToText());
    }

    [Fact]
    public void Shrinking_a_script_that_always_fails_ends_empty()
    {
        var s = ScriptGenerator.Generate(7, 512, 3);
        Assert.Equal("", ScriptShrinker.Shrink(s, _ => true).ToText());
    }
}
