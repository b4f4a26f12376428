namespace Snapshots.Snapbench;

/// <summary>Every scenario, in the order `run --scenario all` runs them.</summary>
public static class Scenarios
{
    public static IReadOnlyList<Scenario> All { get; } =
        [
            new StrategiesScenario(), new TiersScenario(), new ConcurrentScenario(), new RestartScenario(),
            new BalloonScenario(), new RemapScenario(), new OriginInjectedScenario(), new OriginSlowScenario(),
            new OriginErrorsScenario(), new OriginRefuseScenario(), new OriginDownScenario(), new RedisKillScenario(),
            new RedisStallScenario(), new RedisFailoverScenario(), new CorruptCacheScenario(), new DiskFullScenario(),
            new GuestScenario(),
        ];
}
