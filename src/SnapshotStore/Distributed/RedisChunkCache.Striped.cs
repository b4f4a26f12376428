using Snapshots.Store.Chunks;
using StackExchange.Redis;

namespace Snapshots.Store.Distributed;

public sealed partial class RedisChunkCache
{
    /// <summary>
    /// Asks all k + 1 nodes for their stripe and rebuilds from the first k that arrive. When the rebuilt
    /// chunk does not match its name and every stripe is in, each data stripe in turn is rebuilt from parity
    /// instead (one bad stripe is found that way); if nothing matches, the entry is dropped.
    /// </summary>
    private async ValueTask<int> GetStripedAsync(ClusterPlacement p, ChunkName name, Memory<byte> buffer, CancellationToken ct)
    {
        int n = _k + 1, start = StartNode(name, p.Count);
        var pending = new Task<Lease<byte>?>?[n];
        var stripes = new Lease<byte>?[n];
        int asked = 0;
        for (int i = 0; i < n; i++)
        {
            int node = (start + i) % p.Count;
            if (!_breakers[node].TryEnter()) { Interlocked.Increment(ref _shortCircuited); continue; }
            pending[i] = FetchAsync(node, StripeKey(p, node, name, i), CancellationToken.None); // each stripe has its node deadline
            asked++;
        }
        try
        {
            if (asked < _k) return -1;
            int arrived = 0, answered = 0, chunkLength = -1;
            bool sawBad = false;
            while (answered < asked)
            {
                int i = await NextAsync(pending, ct);
                var lease = await pending[i]!;
                pending[i] = null;
                answered++;
                if (lease is null) { if (asked - answered + arrived < _k) return -1; continue; }
                int claimed = StripeCodec.CheckHeader(lease.Span, _k, i, Math.Min(buffer.Length, MaxChunk));
                if (claimed < 0 || (chunkLength >= 0 && claimed != chunkLength))
                {
                    lease.Dispose();
                    sawBad = true;
                    if (asked - answered + arrived < _k) break;
                    continue;
                }
                chunkLength = claimed;
                stripes[i] = lease;
                if (++arrived < _k) continue;
                if (TryAssemble(name, stripes, chunkLength, buffer.Span)) return chunkLength;
                if (arrived == n) break; // every stripe in and no combination matches
            }
            if (arrived >= _k || sawBad) DropCorrupt(name);
            return -1;
        }
        finally
        {
            foreach (var s in stripes) s?.Dispose();
            foreach (var t in pending) if (t is not null) DisposeWhenDone(t);
        }
    }

    private static async ValueTask<int> NextAsync(Task<Lease<byte>?>?[] pending, CancellationToken ct)
    {
        int count = 0;
        foreach (var t in pending) if (t is not null) count++;
        var live = new Task[count];
        count = 0;
        foreach (var t in pending) if (t is not null) live[count++] = t;
        var done = await Task.WhenAny(live).WaitAsync(ct);
        return Array.IndexOf(pending, done);
    }

    /// <summary>Tries the combinations the arrived stripes allow; true when one matches the name.</summary>
    private bool TryAssemble(ChunkName name, Lease<byte>?[] stripes, int chunkLength, Span<byte> chunk)
    {
        int n = _k + 1;
        var views = new ReadOnlyMemory<byte>[n];
        int missing = -1, have = 0;
        for (int i = 0; i < n; i++)
        {
            if (stripes[i] is { } s) { views[i] = s.Memory; have++; }
            else if (i < _k) missing = i;
        }
        if (missing >= 0 || have == _k)
        {
            // Exactly one way: all data stripes, or rebuild the one that is missing.
            StripeCodec.Assemble(views, _k, chunkLength, missing, chunk);
            if (missing >= 0) Interlocked.Increment(ref _rebuilt);
            if (name.Matches(chunk[..chunkLength])) return true;
            if (have < n) return false;
        }
        // All n in: suspect each data stripe in turn.
        for (int bad = -1; bad < _k; bad++)
        {
            StripeCodec.Assemble(views, _k, chunkLength, bad, chunk);
            if (name.Matches(chunk[..chunkLength])) { if (bad >= 0) Interlocked.Increment(ref _rebuilt); return true; }
        }
        return false;
    }
}
