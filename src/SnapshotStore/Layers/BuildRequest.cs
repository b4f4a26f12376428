using Snapshots.Store.Manifests;

namespace Snapshots.Store.Layers;

public sealed record BuildRequest
{
    public required string Name { get; init; }
    public required string MemoryPath { get; init; }
    public string? Parent { get; init; }
    /// <summary>Null: os without a parent, runtime with one, function when a tenant is given.</summary>
    public LayerKind? Layer { get; init; }
    public string? Tenant { get; init; }
    /// <summary>Mixed into every chunk key: operators rotate or split a domain by changing it.</summary>
    public string Salt { get; init; } = "v1";
    /// <summary>Publish over an existing snapshot of the same name.</summary>
    public bool Replace { get; init; }
    public int Parallelism { get; init; } = Environment.ProcessorCount;
}

/// <summary>What a build did, chunk by chunk (every chunk index is counted in exactly one of the first four).</summary>
public sealed record BuildResult
{
    public required string Name { get; init; }
    public required string Layer { get; init; }
    public required string Domain { get; init; }
    public string? Parent { get; init; }
    public required long ImageBytes { get; init; }
    public required int Chunks { get; init; }
    public required int ZeroChunks { get; init; }
    public required int InheritedChunks { get; init; }
    public required int DedupedChunks { get; init; }
    public required int NewChunks { get; init; }
    public required long UploadedBytes { get; init; }
    public required int ManifestBytes { get; init; }
    public required string ManifestHash { get; init; }
    public required double Seconds { get; init; }
}
