namespace Snapshots.Store.Tiers;

public enum TierOutcome : byte { Hit, Miss, Corrupt, Timeout, Error, Busy }

/// <summary>What one tier answered for one chunk: the ciphertext length on a hit, else why not.</summary>
public readonly record struct TierRead(TierOutcome Outcome, int Length, string? Reason = null)
{
    public bool IsHit => Outcome == TierOutcome.Hit;
}
