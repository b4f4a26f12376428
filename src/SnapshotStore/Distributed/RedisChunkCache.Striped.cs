using System.Threading.Channels;
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
    private async ValueTask<int> GetStripedAsync(
        ClusterPlacement p, ChunkName name, Memory<byte> buffer, CancellationToken ct)
    {
        int n = _k + 1, start = StartNode(name, p.Count);
        var stripes = new Lease<byte>?[n];
        // Stripes arrive through a channel in the order they are answered (this read resumes on the thread that
        // delivered the stripe: no extra hop per stripe); whatever is still in flight when this read ends
        // disposes itself (its write to the completed channel fails).
        var arrivals = Channel.CreateUnbounded<(int Index, Lease<byte>? Lease)>(
            new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = true });
        int asked = 0;
        for (int i = 0; i < n; i++)
        {
            int node = (start + i) % p.Count;
            if (!_breakers[node].TryEnter()) { Interlocked.Increment(ref _shortCircuited); continue; }
            _ = FetchStripeAsync(node, StripeKey(p, node, name, i), i, arrivals.Writer);
            asked++;
        }
        try
        {
            if (asked < _k) return -1;
            int arrived = 0, answered = 0, chunkLength = -1;
            bool sawBad = false;
            while (answered < asked)
            {
                var (i, lease) = await arrivals.Reader.ReadAsync(ct);
                answered++;
                if (lease is null) { if (asked - answered + arrived < _k) break; continue; }
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
            arrivals.Writer.TryComplete();
            while (arrivals.Reader.TryRead(out var late)) late.Lease?.Dispose();
            foreach (var s in stripes) s?.Dispose();
        }
    }

    private async Task FetchStripeAsync(int node, RedisKey key, int index, ChannelWriter<(int, Lease<byte>?)> arrivals)
    {
        Lease<byte>? lease = null;
        try { lease = await FetchAsync(node, key, CancellationToken.None); } // bounded by the node deadline
        // Anything else (a disposed client): a missing stripe.
        catch (Exception) { Interlocked.Increment(ref _nodeFailures); }
        if (!arrivals.TryWrite((index, lease))) lease?.Dispose();
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
