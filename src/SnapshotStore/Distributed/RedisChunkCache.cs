using System.Buffers.Binary;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Tiers;
using StackExchange.Redis;

namespace Snapshots.Store.Distributed;

/// <summary>
/// The distributed cache tier on a Redis Cluster: ciphertext chunks by name, filled back by the reader,
/// bounded by each node's maxmemory (allkeys-lru). Untrusted like every cache: whatever it returns is checked
/// against the chunk's name here, and a bad entry is deleted and reported as a miss.
/// Tail defence (docs/tiers.md): in the striped layout a chunk is k data stripes + 1 parity stripe on k + 1
/// distinct masters; a read asks all of them and rebuilds from the first k, so one slow, stalled or dead node
/// costs nothing. Every node has its own deadline and circuit breaker: a node that fails or misses its deadline
/// is left alone for a cooldown, then probed by one request.
/// </summary>
public sealed partial class RedisChunkCache : IChunkCache, IDisposable
{
    private readonly ConnectionMultiplexer _mux;
    private readonly IDatabase _db;
    private readonly RedisAddress _address;
    private readonly Lock _lock = new();
    private ClusterPlacement? _placement;
    private CircuitBreaker[] _breakers = [];
    private int _k; // data stripes; 0 = whole layout
    private long _dropped, _rebuilt, _nodeFailures, _shortCircuited;

    private RedisChunkCache(ConnectionMultiplexer mux, RedisAddress address)
    {
        _mux = mux;
        _db = mux.GetDatabase();
        _address = address;
    }

    /// <summary>Connects (waiting at most twice the address's connect timeout and a 0.5 s probe, when no node
    /// answers). A cluster that does not answer is not an error here: the tier answers misses,
    /// <see cref="Unreachable"/> says why and how long was waited, and the connection keeps trying in
    /// the background. A cluster that answers but refuses us is an error naming the tier
    /// (<see cref="SnapshotException"/>, parameter "distributed"): a wrong user or password, a TLS certificate
    /// that does not validate against the CA, or a TLS server spoken to in plain text.</summary>
    public static async Task<RedisChunkCache> ConnectAsync(RedisAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var options = address.Configuration();
        options.ConnectTimeout = (int)address.ConnectTimeout.TotalMilliseconds;
        options.ConnectRetry = 1;
        // The library's own timeouts stay longer than our per-node deadline: the deadline decides, and a late
        // answer is simply dropped.
        options.AsyncTimeout = 2000;
        options.SyncTimeout = 2000;
        options.BacklogPolicy = BacklogPolicy.FailFast; // fail at once while a node is disconnected, never queue
        options.KeepAlive = 5;
        options.ClientName = "snapshots";
        // First with AbortOnConnectFail: its exception says why no node took us (a refusal is an error; an
        // outage is not). Then, for an outage, a connection that keeps retrying in the background.
        options.AbortOnConnectFail = true;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var mux = await ConnectionMultiplexer.ConnectAsync(options);
            var cache = new RedisChunkCache(mux, address);
            cache.EnsurePlacement();
            return cache;
        }
        catch (RedisConnectionException ex)
        {
            if (Refusal(ex, address) is { } refused) throw refused;
            var (plainToTls, reason) = await ProbeAsync(address);
            if (plainToTls)
            {
                throw new SnapshotException($"distributed cache {address.Redacted}: the server closed the connection "
                    + "when spoken to in plain text: it needs TLS (rediss:// or ssl=true)", ex)
                {
                    Parameter = "distributed",
                };
            }
            // Bounded: the first attempt, the probe (0.5 s at most, nodes at once) and this one, each at most the
            // connect timeout (reconnecting in the background needs the same timeout, so it is not shortened).
            options.AbortOnConnectFail = false;
            var mux = await ConnectionMultiplexer.ConnectAsync(options);
            // Said as measured: the connect timeout and the time it took to give up, not only the probe's.
            var took = clock.Elapsed.TotalSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
            return new RedisChunkCache(mux, address)
            {
                Unreachable = $"{reason} (connect timeout {options.ConnectTimeout} ms; gave up after {took} s)",
            };
        }
    }

    /// <summary>Why the cluster could not be reached when the cache connected (null: it was reached). The
    /// password never appears in it.</summary>
    public string? Unreachable { get; private init; }

    /// <summary>The failures that are the caller's configuration, not an outage, as a named error.</summary>
    private static SnapshotException? Refusal(RedisConnectionException ex, RedisAddress address)
    {
        var tls = Find<System.Security.Authentication.AuthenticationException>(ex);
        string? why = null;
        if (tls is not null)
        {
            why = $"the TLS handshake failed ({tls.Message}): is the server TLS, and is its CA given (ca=PATH or "
                + $"${RedisAddress.CaVariable})?";
        }
        else if (ex.FailureType == ConnectionFailureType.AuthenticationFailure
            || Find<RedisServerException>(ex) is { Message: var m }
                && (m.StartsWith("WRONGPASS", StringComparison.Ordinal)
                    || m.StartsWith("NOAUTH", StringComparison.Ordinal)))
        {
            why = address.HasPassword
                ? "authentication failed: wrong user or password"
                : "the server requires a password (redis://USER:PASSWORD@HOST:PORT or password=...)";
        }
        return why is null ? null
            : new SnapshotException($"distributed cache {address.Redacted}: {why}", ex) { Parameter = "distributed" };
    }

    /// <summary>Why no node took a connection, found by asking the first few directly: refused, silent, or
    /// (without TLS) closed at once when spoken to in plain text, which is a TLS server (it answers a PING with
    /// a TLS alert or by hanging up, where a live but slow Redis just does not answer yet).</summary>
    private static async Task<(bool PlainToTls, string Reason)> ProbeAsync(RedisAddress address)
    {
        var timeout = TimeSpan.FromMilliseconds(Math.Min(500, address.ConnectTimeout.TotalMilliseconds));
        // The first few nodes at once: the probe costs one timeout, not one per node.
        var probes = await Task.WhenAll(address.Endpoints.Take(3).Select(ep => ProbeOneAsync(address, ep, timeout)));
        if (probes.Any(p => p.PlainToTls)) return (true, "");
        var reasons = probes.Select(p => p.Reason).Where(r => r.Length > 0).ToList();
        return (false, reasons.Count > 0 ? string.Join("; ", reasons) : "no node answered");
    }

    private static async Task<(bool PlainToTls, string Reason)> ProbeOneAsync(RedisAddress address, string ep,
        TimeSpan timeout)
    {
        int colon = ep.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(ep.AsSpan(colon + 1), out var port)) return (false, "");
        using var tcp = new System.Net.Sockets.TcpClient();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await tcp.ConnectAsync(ep[..colon].Trim('[', ']'), port, cts.Token);
            if (!address.Tls)
            {
                var stream = tcp.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray(), cts.Token);
                var answer = new byte[16];
                int n = await stream.ReadAsync(answer, cts.Token);
                if (n == 0 || answer[0] == 0x15) return (true, "");
            }
            return (false, $"{ep} accepts connections but did not complete the handshake");
        }
        catch (System.Net.Sockets.SocketException ex) { return (false, $"{ep}: {ex.Message}"); }
        catch (IOException) when (!address.Tls) { return (true, ""); } // reset while reading: TLS hung up
        catch (OperationCanceledException)
        {
            return (false, $"{ep}: a probe had no answer within {timeout.TotalMilliseconds:0} ms");
        }
    }

    private static T? Find<T>(Exception? ex) where T : Exception
    {
        for (; ex is not null; ex = ex.InnerException)
            if (ex is T found) return found;
        return null;
    }

    public string Describe => _address.Describe;
    public bool VerifiesOnRead => true;
    public long DroppedCorrupt => Interlocked.Read(ref _dropped);
    public RedisAddress Address => _address;

    /// <summary>Reads rebuilt from parity because a data stripe was late, missing or bad.</summary>
    public long Rebuilt => Interlocked.Read(ref _rebuilt);
    /// <summary>Node requests that failed or missed the node deadline.</summary>
    public long NodeFailures => Interlocked.Read(ref _nodeFailures);
    /// <summary>Node requests not sent because the node's circuit breaker was open.</summary>
    public long ShortCircuited => Interlocked.Read(ref _shortCircuited);
    /// <summary>The data stripes per chunk (k of k + 1), or 0 for the whole layout.</summary>
    public int DataStripes { get { EnsurePlacement(); return _k; } }
    public ClusterPlacement? Placement { get { EnsurePlacement(); return _placement; } }
    public IDatabase Database => _db;

    /// <summary>Learns the masters once a node is reachable; until then every read is a miss.</summary>
    private ClusterPlacement? EnsurePlacement()
    {
        if (_placement is { } p) return p;
        if (!_mux.IsConnected) return null;
        lock (_lock)
        {
            if (_placement is not null) return _placement;
            var computed = ClusterPlacement.TryCompute(_mux);
            if (computed is null) return null;
            int n = Math.Min(_address.Stripes, computed.Count);
            _k = _address.Layout switch
            {
                CacheLayout.Whole => 0,
                CacheLayout.Striped when computed.Count < 3 =>
                    throw new InvalidInputException(
                        $"{Describe}: the striped layout needs at least 3 masters, the cluster has {computed.Count}"),
                CacheLayout.Striped => n - 1,
                _ => computed.Count >= 3 ? n - 1 : 0,
            };
            var breakers = new CircuitBreaker[computed.Count];
            for (int i = 0; i < breakers.Length; i++) breakers[i] = new CircuitBreaker(1, _address.Cooldown);
            _breakers = breakers;
            _placement = computed;
            return computed;
        }
    }

    /// <summary>The breaker of each node, in placement order (tests and benchmarks look at them).</summary>
    public IReadOnlyList<CircuitBreaker> Breakers => _breakers;

    private static int StartNode(ChunkName name, int nodes)
    {
        Span<byte> b = stackalloc byte[ChunkName.Length];
        name.CopyTo(b);
        return (int)(BinaryPrimitives.ReadUInt32LittleEndian(b) % (uint)nodes);
    }

    private static RedisKey WholeKey(ClusterPlacement p, int node, ChunkName name) => $"{{{p.TagOf(node)}}}c:{name}";

    private RedisKey StripeKey(ClusterPlacement p, int node, ChunkName name, int index) =>
        $"{{{p.TagOf(node)}}}s{_k}:{name}:{index}";

    public ValueTask<int> TryGetAsync(ChunkName name, Memory<byte> buffer, CancellationToken ct = default)
    {
        var p = EnsurePlacement();
        if (p is null) return ValueTask.FromResult(-1);
        return _k == 0 ? GetWholeAsync(p, name, buffer, ct) : GetStripedAsync(p, name, buffer, ct);
    }

    private async ValueTask<int> GetWholeAsync(
        ClusterPlacement p, ChunkName name, Memory<byte> buffer, CancellationToken ct)
    {
        int node = StartNode(name, p.Count);
        if (!_breakers[node].TryEnter()) { Interlocked.Increment(ref _shortCircuited); return -1; }
        var lease = await FetchAsync(node, WholeKey(p, node, name), ct);
        using var owned = lease;
        if (lease is null) return -1;
        if (lease.Length > buffer.Length || !name.Matches(lease.Span))
        {
            DropCorrupt(name);
            return -1;
        }
        lease.Span.CopyTo(buffer.Span);
        return lease.Length;
    }

    /// <summary>One GET to one node under the node deadline; null on a miss, failure or timeout (which the
    /// node's breaker records). A late answer is disposed when it arrives. Only the caller's cancellation
    /// throws.</summary>
    private async Task<Lease<byte>?> FetchAsync(int node, RedisKey key, CancellationToken ct)
    {
        var get = _db.StringGetLeaseAsync(key);
        try
        {
            var lease = await get.WaitAsync(_address.NodeDeadline, ct);
            _breakers[node].Success();
            return lease;
        }
        catch (Exception ex) when (ex is TimeoutException or RedisException)
        {
            Interlocked.Increment(ref _nodeFailures);
            _breakers[node].Failure();
            DisposeWhenDone(get);
            return null;
        }
        catch (OperationCanceledException)
        {
            DisposeWhenDone(get);
            throw;
        }
    }

    private static void DisposeWhenDone(Task<Lease<byte>?> get)
    {
        if (get.IsCompletedSuccessfully) get.Result?.Dispose();
        else if (!get.IsCompleted)
        {
            _ = get.ContinueWith(
                static t => { if (t.IsCompletedSuccessfully) t.Result?.Dispose(); }, TaskScheduler.Default);
        }
    }

    /// <summary>Fills the cache without delaying the caller: the writes are sent at once and complete in the
    /// background (at most <see cref="MaxPendingFills"/> at a time; beyond that a fill is skipped, the cache
    /// being behind). The value is copied because the caller's buffer is reused as soon as the read returns.</summary>
    public ValueTask PutAsync(ChunkName name, ReadOnlyMemory<byte> ciphertext, CancellationToken ct = default)
    {
        var p = EnsurePlacement();
        if (p is null) return ValueTask.CompletedTask;
        if (_pendingFills.Count >= MaxPendingFills)
        {
            Interlocked.Increment(ref _skippedFills);
            return ValueTask.CompletedTask;
        }
        int start = StartNode(name, p.Count);
        if (_k == 0)
        {
            if (!_breakers[start].IsOpen) Track(_db.StringSetAsync(WholeKey(p, start, name), ciphertext.ToArray()));
            return ValueTask.CompletedTask;
        }
        var stripes = StripeCodec.Encode(ciphertext.Span, _k);
        for (int i = 0; i < stripes.Length; i++)
        {
            int node = (start + i) % p.Count;
            if (!_breakers[node].IsOpen) Track(_db.StringSetAsync(StripeKey(p, node, name, i), stripes[i]));
        }
        return ValueTask.CompletedTask;
    }

    public const int MaxPendingFills = 512;
    private long _skippedFills, _failedFills;
    private readonly PendingWork _pendingFills = new(MaxPendingFills);

    /// <summary>Fills skipped because too many were in flight, and fills the cluster refused or lost.</summary>
    public long SkippedFills => Interlocked.Read(ref _skippedFills);
    public long FailedFills => Interlocked.Read(ref _failedFills);

    /// <summary>Writes sent and not yet answered.</summary>
    public int PendingFills => _pendingFills.Count;

    private void Track(Task<bool> write)
    {
        _pendingFills.Enter();
        write.ContinueWith(static (t, state) =>
        {
            var self = (RedisChunkCache)state!;
            if (!t.IsCompletedSuccessfully) Interlocked.Increment(ref self._failedFills);
            self._pendingFills.Exit();
        }, this, TaskScheduler.Default);
    }

    /// <summary>Waits (at most <paramref name="limit"/>) for the fills in flight, so a short-lived process
    /// such as <c>snapctl warm</c> leaves the cache filled.</summary>
    public Task FlushFillsAsync(TimeSpan limit) => _pendingFills.WaitIdleAsync(limit);

    public void Remove(ChunkName name)
    {
        var p = EnsurePlacement();
        if (p is null) return;
        int start = StartNode(name, p.Count);
        if (_k == 0) { _db.KeyDelete(WholeKey(p, start, name), CommandFlags.FireAndForget); return; }
        for (int i = 0; i <= _k; i++)
            _db.KeyDelete(StripeKey(p, (start + i) % p.Count, name, i), CommandFlags.FireAndForget);
    }

    private void DropCorrupt(ChunkName name)
    {
        Interlocked.Increment(ref _dropped);
        Remove(name);
    }

    internal static int MaxChunk => ConvergentCipher.MaxCiphertextSize;

    public void Dispose()
    {
        FlushFillsAsync(TimeSpan.FromSeconds(2)).GetAwaiter().GetResult();
        _mux.Dispose();
    }
}
