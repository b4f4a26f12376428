using StackExchange.Redis;

namespace Snapshots.Store.Distributed;

/// <summary>
/// Where keys go in the cluster: the masters in a stable order (by the lowest hash slot each owns), and for each
/// a hash tag whose slot that master owns. A key "{tag}..." lands on the tag's master, so the cache can put a
/// chunk's stripes on distinct nodes and keep one circuit breaker per node. The order and the tags depend only on
/// how the slots are divided, not on which process serves them: a replica promoted after its master fails owns
/// the same slots, so every key keeps its place and the cache keeps its hits (ordering by address reshuffled the
/// placement on every failover). A process that sees another division only misses (entries are verified).
/// </summary>
public sealed class ClusterPlacement
{
    public IReadOnlyList<System.Net.EndPoint> Nodes { get; }
    private readonly string[] _tags;

    private ClusterPlacement(System.Net.EndPoint[] nodes, string[] tags) { Nodes = nodes; _tags = tags; }

    public int Count => _tags.Length;
    public string TagOf(int node) => _tags[node];

    /// <summary>The placement from any connected node's view of the cluster; null when none is connected.</summary>
    public static ClusterPlacement? TryCompute(ConnectionMultiplexer mux)
    {
        ClusterConfiguration? config = null;
        foreach (var server in mux.GetServers())
        {
            if (!server.IsConnected) continue;
            try { config = server.ClusterConfiguration; } catch (RedisException) { continue; }
            if (config is not null) break;
        }
        if (config is null) return null;

        var masters = new List<ClusterNode>();
        foreach (var node in config.Nodes)
            if (!node.IsReplica && node.Slots.Count > 0 && node.EndPoint is not null) masters.Add(node);
        if (masters.Count == 0) return null;
        masters.Sort((a, b) => LowestSlot(a).CompareTo(LowestSlot(b)));

        var nodes = new System.Net.EndPoint[masters.Count];
        var tags = new string[masters.Count];
        for (int i = 0; i < masters.Count; i++)
        {
            nodes[i] = masters[i].EndPoint!;
            tags[i] = FindTag(mux, masters[i]);
        }
        return new ClusterPlacement(nodes, tags);
    }

    private static int LowestSlot(ClusterNode node)
    {
        int lowest = int.MaxValue;
        foreach (var range in node.Slots) lowest = Math.Min(lowest, range.From);
        return lowest;
    }

    private static string FindTag(ConnectionMultiplexer mux, ClusterNode node)
    {
        for (int i = 0; i < 1_000_000; i++)
        {
            var tag = "sn" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            int slot = mux.HashSlot("{" + tag + "}");
            foreach (var range in node.Slots)
                if (slot >= range.From && slot <= range.To) return tag;
        }
        throw new SnapshotException($"no hash tag maps to a slot of redis node {node.EndPoint}");
    }
}
