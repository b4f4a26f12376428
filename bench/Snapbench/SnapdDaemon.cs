using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Snapshots.Snapbench;

/// <summary>A snapd of this run's own: its process (state under the run's work directory, its output appended to
/// STATE.log), its HTTP API over the Unix socket. Only this process is ever signalled, by its pid.</summary>
public sealed partial class SnapdDaemon : IAsyncDisposable
{
    private readonly HttpClient _http;
    private readonly StreamWriter _log;

    private SnapdDaemon(Bench bench, string state, string[] args)
    {
        StateDir = state;
        ApiSocket = Path.Combine(state, "api.sock");
        Args = args;
        var psi = new ProcessStartInfo(bench.Tools.SnapdFile)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        // A scenario may give its own --store (the s3rver origin, or a fault proxy in front of it).
        string[] store = args.Contains("--store") ? [] : ["--store", bench.StoreDir];
        foreach (var a in (string[])[.. bench.Tools.SnapdPrefix, .. store, "--keyring",
            bench.KeyringDir, "--state-dir", state, "--api-socket", ApiSocket, .. args])
            psi.ArgumentList.Add(a);
        _log = new StreamWriter(state + ".log", append: true) { AutoFlush = true };
        Process = bench.Start(psi);
        Process.OutputDataReceived += (_, e) => Append(e.Data);
        Process.ErrorDataReceived += (_, e) => Append(e.Data);
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(ApiSocket), ct);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://snapd/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public Process Process { get; }
    public string StateDir { get; }
    public string ApiSocket { get; }
    public IReadOnlyList<string> Args { get; }

    public static SnapdDaemon Start(Bench bench, string state, string[] args) => new(bench, state, args);

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.WriteLine(line);
    }

    public async Task WaitHealthyAsync(TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (Process.HasExited)
                throw new InvalidOperationException($"snapd exited {Process.ExitCode} (log: {StateDir}.log)");
            if (File.Exists(ApiSocket))
            {
                try
                {
                    var (status, _) = await SendAsync(HttpMethod.Get, "v1/health");
                    if (status == HttpStatusCode.OK) return;
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
            }
            await Task.Delay(20);
        }
        throw new TimeoutException($"snapd did not answer within {limit.TotalSeconds} s (log: {StateDir}.log)");
    }

    public async Task<(HttpStatusCode Status, JsonElement Doc)> SendAsync(HttpMethod method, string path,
        string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var doc = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return (response.StatusCode, doc);
    }

    public async Task<JsonElement> HealthAsync() => (await SendAsync(HttpMethod.Get, "v1/health")).Doc;

    public async Task<string> MetricsAsync() => await _http.GetStringAsync("metrics");

    /// <summary>POST /v1/restores; returns the restore's id and where its VMM goes: the socket (uffd) or the memory
    /// file (file).</summary>
    public async Task<(string Id, string Socket)> CreateAsync(string snapshot, bool prefetch, bool record = false,
        string mode = "uffd", double? faultDeadlineSeconds = null)
    {
        var (id, socket, _) = await CreateDocAsync(snapshot, prefetch, record, mode, faultDeadlineSeconds);
        return (id, socket);
    }

    /// <summary><see cref="CreateAsync"/>, with the restore's document as POST returned it (its tiers: what its
    /// snapshot's memory tier had fetched before this restore).</summary>
    public async Task<(string Id, string Socket, JsonElement Doc)> CreateDocAsync(string snapshot, bool prefetch,
        bool record = false, string mode = "uffd", double? faultDeadlineSeconds = null)
    {
        var body = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["snapshot"] = snapshot, ["tenant"] = Bench.Tenant, ["prefetch"] = prefetch, ["record"] = record,
            ["mode"] = mode, ["faultDeadlineSeconds"] = faultDeadlineSeconds,
        });
        var (status, doc) = await SendAsync(HttpMethod.Post, "v1/restores", body);
        if (status != HttpStatusCode.Created)
            throw new InvalidOperationException($"POST /v1/restores {snapshot}: {(int)status} {doc}");
        string where = mode == "file" ? "path" : "socketPath";
        return (doc.GetProperty("id").GetString()!, doc.GetProperty(where).GetString()!, doc);
    }

    /// <summary>DELETE /v1/restores/ID (a file restore is unmounted); the status.</summary>
    public async Task<HttpStatusCode> DeleteAsync(string id) =>
        (await SendAsync(HttpMethod.Delete, "v1/restores/" + id)).Status;

    public async Task<JsonElement> GetAsync(string id) => (await SendAsync(HttpMethod.Get, "v1/restores/" + id)).Doc;

    /// <summary>The restore's document once it has ended (exited or failed), the error document if the daemon does
    /// not know it; null if it did not end within LIMIT.</summary>
    public async Task<JsonElement?> WaitEndedAsync(string id, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var (status, doc) = await SendAsync(HttpMethod.Get, "v1/restores/" + id);
            if (status != HttpStatusCode.OK) return doc; // gone: the error document says why
            if (doc.TryGetProperty("state", out var state) && state.GetString() is "exited" or "failed") return doc;
            if (clock.Elapsed > limit) return null;
            await Task.Delay(20);
        }
    }

    /// <summary>SIGKILL (by pid) and wait for the exit.</summary>
    public async Task KillAsync()
    {
        if (Process.HasExited) return;
        _ = Kill(Process.Id, 9);
        await Process.WaitForExitAsync();
    }

    /// <summary>SIGTERM (the drain), then SIGKILL if it has not exited within LIMIT.</summary>
    public async Task StopAsync(TimeSpan limit)
    {
        if (Process.HasExited) return;
        _ = Kill(Process.Id, 15);
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await Process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(10));
        Process.Dispose();
        _http.Dispose();
        lock (_log) _log.Dispose();
    }
}
