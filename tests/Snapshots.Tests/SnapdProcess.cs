using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Snapshots.ChunkFs.Native;

namespace Snapshots.Tests;

/// <summary>A snapd started by a test over a <see cref="TestStore"/> (its state and API socket in the test's
/// directory), its HTTP API over the Unix socket, and its output. Stopped, by its pid, on dispose.</summary>
public sealed class SnapdProcess : IDisposable
{
    private readonly StringBuilder _output = new();
    private readonly HttpClient _http;

    /// <summary>The snapd the solution built (src/Snapd/bin/CONFIG/net10.0), found upwards from the tests. Not a
    /// reference of the test project: its ASP.NET Core framework would then be the tests' too, and snapctl run
    /// from the tests' directory would miss the package assemblies that framework carries.</summary>
    public static string Dll { get; } = Find();

    private static string Find()
    {
        var tests = new DirectoryInfo(AppContext.BaseDirectory);
        string tfm = tests.Name, config = tests.Parent!.Name;
        for (var dir = tests; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "Snapd", "bin", config, tfm, "snapd.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"snapd.dll not built (dotnet build Snapshots.sln -c {config})");
    }

    private SnapdProcess(string store, string keyring, string state, string[] args,
        IReadOnlyDictionary<string, string>? env)
    {
        StateDir = state;
        int api = Array.IndexOf(args, "--api-socket");
        ApiSocket = api >= 0 ? args[api + 1] : Path.Combine(state, "api.sock");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in (string[])["--store", store, "--keyring", keyring, "--state-dir", state,
            .. api >= 0 ? args : ["--api-socket", ApiSocket, .. args]])
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        Process = Process.Start(psi)!;
        Process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        Process.BeginOutputReadLine();
        Process.BeginErrorReadLine();
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(ApiSocket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://snapd/"), Timeout = TimeSpan.FromSeconds(60) };
    }

    public Process Process { get; }
    public string StateDir { get; }
    public string ApiSocket { get; }
    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>Starts snapd and waits (30 s at most) until its health answers.</summary>
    public static async Task<SnapdProcess> StartAsync(TestStore t, params string[] args) =>
        await StartAsync(t, t.Path_("snapd-state"), args);

    public static Task<SnapdProcess> StartAsync(TestStore t, string state, string[] args,
        IReadOnlyDictionary<string, string>? environment = null) =>
        StartAsync(t.StoreDir, t.KeyringDir, state, args, environment);

    /// <summary>Starts snapd over any store (an s3:// address) and keyring.</summary>
    public static async Task<SnapdProcess> StartAsync(string store, string keyring, string state, string[] args,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var d = new SnapdProcess(store, keyring, state, args, environment);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (d.Process.HasExited)
            {
                await d.Process.WaitForExitAsync();
                throw new InvalidOperationException($"snapd exited {d.Process.ExitCode}:\n{d.Output}");
            }
            if (File.Exists(d.ApiSocket))
            {
                try
                {
                    var (status, _) = await d.SendAsync(HttpMethod.Get, "v1/health");
                    if (status == HttpStatusCode.OK) return d;
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }
            }
            await Task.Delay(50);
        }
        d.Dispose();
        throw new TimeoutException($"snapd did not answer within 30 s:\n{d.Output}");
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

    public async Task<string> MetricsAsync() => await _http.GetStringAsync("metrics");

    /// <summary>POST /v1/restores; asserts 201 and returns the restore.</summary>
    public async Task<JsonElement> CreateAsync(object body)
    {
        var (status, doc) = await SendAsync(HttpMethod.Post, "v1/restores", JsonSerializer.Serialize(body));
        Assert.True(status == HttpStatusCode.Created, $"create: {(int)status} {doc}\n{Output}");
        return doc;
    }

    /// <summary>Polls the restore until it has ended (exited or failed).</summary>
    public async Task<JsonElement> WaitEndedAsync(string id, TimeSpan? limit = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var (status, doc) = await SendAsync(HttpMethod.Get, "v1/restores/" + id);
            Assert.Equal(HttpStatusCode.OK, status);
            if (doc.GetProperty("state").GetString() is "exited" or "failed") return doc;
            if (clock.Elapsed > (limit ?? TimeSpan.FromSeconds(60)))
                throw new TimeoutException($"restore {id} still {doc.GetProperty("state")}:\n{Output}");
            await Task.Delay(50);
        }
    }

    /// <summary>SIGTERM, then waits for the exit (the drain); returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? limit = null)
    {
        Signal(15);
        using var cts = new CancellationTokenSource(limit ?? TimeSpan.FromSeconds(60));
        await Process.WaitForExitAsync(cts.Token);
        return Process.ExitCode;
    }

    public void Signal(int signal) => LibC.kill(Process.Id, signal);

    /// <summary>COMMAND run as UID (setpriv, no supplementary groups): its exit code and output.</summary>
    public static async Task<(int Exit, string Output)> AsUidAsync(uint uid, params string[] command)
    {
        var psi = new ProcessStartInfo("setpriv")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in (string[])[$"--reuid={uid}", $"--regid={uid}", "--clear-groups", .. command])
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await o + await e);
    }

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            Signal(9);
            Process.WaitForExit(10_000);
        }
        Process.Dispose();
        _http.Dispose();
    }
}
