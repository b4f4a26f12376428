using Snapshots.Store.Manifests;

namespace Snapshots.Store.Layers;

public sealed record BuildRequest
{
    public required string Name { get; init; }
    public required string MemoryPath { get; init; }
    public string? Parent { get; init; }
    /// <summary>Required unless a tenant is given (then function): the trust domain is never chosen by omission.
    /// </summary>
    public LayerKind? Layer { get; init; }
    public string? Tenant { get; init; }
    /// <summary>Mixed into every chunk key: operators rotate or split a domain by changing it.</summary>
    public string Salt { get; init; } = "v1";
    /// <summary>Publish over an existing snapshot of the same name.</summary>
    public bool Replace { get; init; }
    public int Parallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Before deduplicating against a chunk the store already holds, read it back and check that it
    /// hashes to its name; a bad one (bit rot, tampering, a planted file) is rewritten from this build: the way to
    /// heal a store from its source image.</summary>
    public bool VerifyExisting { get; init; }

    /// <summary>The memory file is a diff snapshot (Firecracker's <c>Diff</c> type): its data extents are the pages
    /// dirtied since <see cref="Parent"/> and its holes are unchanged from it. A chunk wholly in holes is inherited;
    /// one partly in holes is the parent's plaintext with the data extents laid over it. Needs a parent.</summary>
    public bool Diff { get; init; }

    /// <summary>The memory file is a full snapshot whose holes are zero pages. Needed to build a sparse file on a
    /// parent without <see cref="Diff"/> (otherwise refused: holes there are ambiguous); without a parent, holes
    /// are zeros anyway.</summary>
    public bool HolesAreZero { get; init; }
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
    /// <summary>Chunks the store held damaged and this build rewrote (<see cref="BuildRequest.VerifyExisting"/>);
    /// counted among the deduplicated.</summary>
    public int HealedChunks { get; init; }
    public required long UploadedBytes { get; init; }
    /// <summary>Bytes read from the memory file: its data extents only (holes are found with SEEK_DATA, never
    /// read), so a build costs in proportion to the data, not to the image size.</summary>
    public long ReadBytes { get; init; }
    /// <summary>Chunks of a <see cref="BuildRequest.Diff"/> build partly in holes, read from the parent (its
    /// plaintext under the diff's data).</summary>
    public int ParentChunksRead { get; init; }
    public required int ManifestBytes { get; init; }
    public required string ManifestHash { get; init; }
    public required double Seconds { get; init; }
}
