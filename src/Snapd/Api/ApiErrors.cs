using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Snapshots.Snapd.Metrics;
using Snapshots.Store;

namespace Snapshots.Snapd.Api;

/// <summary>Turns every failure of a request into one <see cref="ErrorView"/> with a status by its kind, counted
/// in snapd_errors_total; a bug is a 500 of kind "internal", logged with its stack, never a dropped connection.
/// </summary>
public sealed partial class ApiErrors(RequestDelegate next, SnapdMetrics metrics, ILogger<ApiErrors> log)
{
    public async Task InvokeAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            await next(context);
        }
        catch (Exception ex) when (!context.Response.HasStarted && ex is not OperationCanceledException)
        {
            var (status, body) = Describe(ex);
            if (status == StatusCodes.Status500InternalServerError) LogBug(log, context.Request.Path, ex);
            metrics.Errors.WithLabels(body.Kind).Inc();
            context.Response.Clear();
            await Results.Json(new ErrorView(body), ApiEndpoints.Json, statusCode: status).ExecuteAsync(context);
        }
    }

    /// <summary>The status and body for a failure (docs/api.md tables them).</summary>
    public static (int Status, ErrorBody Body) Describe(Exception ex) => ex switch
    {
        SnapshotException s => (StatusOf(s.Kind), new ErrorBody(s.Kind, s.Message, s.Parameter)),
        BadHttpRequestException b => (b.StatusCode, new ErrorBody(
            b.StatusCode == StatusCodes.Status413PayloadTooLarge ? "too-large" : "invalid-input", b.Message, "body")),
        _ => (StatusCodes.Status500InternalServerError,
            new ErrorBody("internal", $"snapd failed: {ex.GetType().Name}: {ex.Message}", null)),
    };

    public static int StatusOf(string kind) => kind switch
    {
        "invalid-input" => StatusCodes.Status400BadRequest,
        "key-unavailable" => StatusCodes.Status403Forbidden,
        "not-found" => StatusCodes.Status404NotFound,
        "rollback" => StatusCodes.Status409Conflict,
        "too-large" => StatusCodes.Status413PayloadTooLarge,
        "too-many-restores" => StatusCodes.Status429TooManyRequests,
        "draining" => StatusCodes.Status503ServiceUnavailable,
        "chunk-unavailable" => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status422UnprocessableEntity,
    };

    [LoggerMessage(Level = LogLevel.Error, Message = "request {Path} failed")]
    private static partial void LogBug(ILogger log, PathString path, Exception ex);
}
