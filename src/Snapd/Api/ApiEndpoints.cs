using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Snapshots.Snapd.Restores;
using Snapshots.Store;

namespace Snapshots.Snapd.Api;

/// <summary>The HTTP API (docs/api.md): restores, warm, health. Every answer is one JSON document; every error
/// is <see cref="ErrorView"/> with a status by its kind.</summary>
public static class ApiEndpoints
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        MaxDepth = 8,
    };

    public static void Map(IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapPost("/restores", CreateAsync);
        v1.MapGet("/restores", (RestoreManager m) => Ok(new RestoreList(m.List().ConvertAll(RestoreView.Of))));
        v1.MapGet("/restores/{id}", (string id, RestoreManager m) => Ok(RestoreView.Of(m.Get(id))));
        v1.MapDelete("/restores/{id}", async (string id, RestoreManager m) =>
            Ok(RestoreView.Of(await m.DeleteAsync(id))));
        v1.MapPost("/snapshots/{name}/warm", async (string name, RestoreManager m, CancellationToken ct) =>
        {
            var w = await m.WarmAsync(name, ct);
            return Ok(new WarmView(w.Name, w.Chunks, w.Bytes, w.Seconds));
        });
        v1.MapGet("/health", (RestoreManager m) => Ok(new HealthView(
            m.Draining ? "draining" : "ok", m.Host.Blobs.Describe, m.Active, m.Settings.MaxRestores, m.Draining,
            m.PlansPublished, typeof(ApiEndpoints).Assembly.GetName().Version?.ToString() ?? "0")));
    }

    private static async Task<IResult> CreateAsync(HttpRequest http, RestoreManager manager, CancellationToken ct)
    {
        var bytes = await RequestBody.ReadAsync(http, manager.Settings.MaxRequestBytes, ct);
        RestoreRequestBody? body;
        try
        {
            body = JsonSerializer.Deserialize<RestoreRequestBody>(bytes, Json);
        }
        catch (JsonException ex)
        {
            throw new InvalidInputException($"request body: {ex.Message}", "body");
        }
        var spec = Check(body ?? throw new InvalidInputException("request body: null", "body"));
        var restore = await manager.CreateAsync(spec, ct);
        return Results.Json(RestoreView.Of(restore), Json, statusCode: StatusCodes.Status201Created);
    }

    private static RestoreSpec Check(RestoreRequestBody body)
    {
        if (string.IsNullOrWhiteSpace(body.Snapshot))
            throw new InvalidInputException("snapshot is required", "snapshot");
        var mode = body.Mode switch
        {
            null or "uffd" => RestoreMode.Uffd,
            "file" => RestoreMode.File,
            _ => throw new InvalidInputException($"mode '{body.Mode}': use uffd or file", "mode"),
        };
        if (body.FaultDeadlineSeconds is { } d && !(d >= 0.01 && d <= 3600))
            throw new InvalidInputException($"faultDeadlineSeconds {d}: use 0.01-3600", "faultDeadlineSeconds");
        if (body.Tenant is { Length: 0 }) throw new InvalidInputException("tenant is empty: omit it", "tenant");
        // A tenant id is also a path component (access-logs/t-TENANT--SNAPSHOT): only a valid id gets that far.
        if (body.Tenant is not null) Store.Crypto.TrustDomain.ForTenant(body.Tenant);
        return new RestoreSpec
        {
            Snapshot = body.Snapshot,
            Tenant = body.Tenant,
            Mode = mode,
            Prefetch = body.Prefetch ?? true,
            VmmUid = body.VmmUid,
            FaultDeadline = body.FaultDeadlineSeconds is { } s ? TimeSpan.FromSeconds(s) : null,
            Record = body.Record ?? false,
        };
    }

    private static IResult Ok<T>(T value) => Results.Json(value, Json);
}
