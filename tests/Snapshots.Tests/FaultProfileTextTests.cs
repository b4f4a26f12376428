using Snapshots.Store;
using Snapshots.Store.Faults;

namespace Snapshots.Tests;

/// <summary>A fault profile written on one line (snapd's OriginFaults): every key read, every mistake refused
/// naming the setting and the item.</summary>
[Trait("Category", Category.Unit)]
public sealed class FaultProfileTextTests
{
    [Fact]
    public void Every_key_is_read_with_its_unit()
    {
        var p = FaultProfileText.Parse(
            "latency=5ms, jitter=300us,latency-rate=0.5,error=20%,stall=0.02,stall-for=1.5s,corrupt=0.01,miss=0",
            "OriginFaults");
        Assert.Equal(TimeSpan.FromMilliseconds(5), p.Latency);
        Assert.Equal(TimeSpan.FromMicroseconds(300), p.LatencyJitter);
        Assert.Equal(0.5, p.LatencyRate);
        Assert.Equal(0.2, p.ErrorRate, 9);
        Assert.Equal(0.02, p.StallRate);
        Assert.Equal(TimeSpan.FromSeconds(1.5), p.StallDuration);
        Assert.Equal(0.01, p.CorruptRate);
        Assert.Equal(0, p.MissRate);
        Assert.Equal(Timeout.InfiniteTimeSpan, FaultProfileText.Parse("stall=1,stall-for=inf", "F").StallDuration);
    }

    [Theory]
    [InlineData("latency=5", "a duration needs a unit")]
    [InlineData("latency=-5ms", "must not be negative")]
    [InlineData("error=1.5", "a fraction of reads")]
    [InlineData("error=x", "not a fraction")]
    [InlineData("stall-for=0ms", "positive")]
    [InlineData("erorr=0.1", "unknown key 'erorr'")]
    [InlineData("error", "is not KEY=VALUE")]
    [InlineData("error=0.1,error=0.2", "given twice")]
    [InlineData("error=0.6,corrupt=0.6", "at most 1")]
    public void A_mistake_is_refused_naming_the_setting_and_the_item(string text, string why)
    {
        var ex = Assert.Throws<InvalidInputException>(() => FaultProfileText.Parse(text, "OriginFaults"));
        Assert.Equal("OriginFaults", ex.Parameter);
        Assert.StartsWith($"OriginFaults '{text}': ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }
}
