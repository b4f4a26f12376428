using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;
using Snapshots.Store.Layers;
using Snapshots.Store.Manifests;

namespace Snapshots.Benchmarks;

/// <summary>
/// The per-chunk CPU work of the store, one 512 KiB chunk per operation, next to two floors measured in the same
/// process: a cache-resident copy (the least any per-chunk step can cost) and SHA-256 with SHA-NI (what openssl
/// and a Lambda-style design hash with). Build runs ZeroDetection on every chunk and EncryptAndName on every chunk
/// it neither drops nor inherits; export runs VerifyAndDecrypt on every data chunk. MemoryDiagnoser shows the
/// managed allocation per chunk, which should stay near zero: the build and export loops run it millions of times.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ShortRunConfig))]
public class ChunkBenchmarks
{
    private byte[] _plain = [];
    private byte[] _zero = [];
    private byte[] _cipher = [];
    private byte[] _output = [];
    private byte[] _convergenceKey = [];
    private readonly byte[] _salt = "v1"u8.ToArray();
    private readonly byte[] _hash = new byte[ContentHash.Size];
    private readonly byte[] _key = new byte[ConvergentCipher.KeySize];
    private ChunkName _name;
    private ChunkSecret _secret;

    [GlobalSetup]
    public void Setup()
    {
        _plain = VmChunks.Data();
        _zero = VmChunks.Zero();
        _output = new byte[ChunkGeometry.ChunkSize];
        _cipher = new byte[ConvergentCipher.MaxCiphertextSize];
        _convergenceKey = RandomNumberGenerator.GetBytes(32);

        // The stored form of the chunk, for the read-side benchmark, made by the write-side code itself.
        _name = EncryptAndName();
        _secret = new ChunkSecret(_key, _hash);
        if (!VerifyAndDecrypt() || !_output.AsSpan().SequenceEqual(_plain))
        {
            throw new InvalidOperationException(
                "the chunk does not round-trip: the benchmark would measure a failure path");
        }
    }

    /// <summary>The build's step for a new chunk (LayerBuilder.ChunkJob): hash, key, encrypt, name.</summary>
    [Benchmark]
    public ChunkName EncryptAndName()
    {
        ContentHash.Compute(_plain, _hash);
        ConvergentCipher.DeriveKey(_convergenceKey, _salt, _hash, _key);
        int n = ConvergentCipher.Encrypt(_key, _plain, _cipher);
        return ChunkName.OfCiphertext(_cipher.AsSpan(0, n));
    }

    /// <summary>The read path (ChunkReader + ImageExporter): ciphertext against its name, then authenticated
    /// decryption and the plaintext hash check against the manifest.</summary>
    [Benchmark]
    public bool VerifyAndDecrypt() =>
        _name.Matches(_cipher) && SnapshotChain.TryDecrypt(_secret, _cipher, _output) is null;

    /// <summary>Worst case: an all-zero chunk is scanned to its end (about half of a VM image's chunks).</summary>
    [Benchmark]
    public bool ZeroDetection_ZeroChunk() => ZeroDetector.IsAllZero(_zero);

    /// <summary>Usual case for data: the scan stops at the first non-zero byte, so this is near free.</summary>
    [Benchmark]
    public bool ZeroDetection_DataChunk() => ZeroDetector.IsAllZero(_plain);

    /// <summary>The content hash alone (BLAKE3), run twice per stored chunk: checks ContentHash's own claim.</summary>
    [Benchmark]
    public void Blake3ContentHash() => ContentHash.Compute(_plain, _hash);

    /// <summary>Baseline: SHA-256 (SHA-NI) of the chunk, the hash openssl and a Lambda-style store use. The Ratio
    /// column is against it: below 1 means the step costs less than merely hashing the chunk with SHA-256.</summary>
    [Benchmark(Baseline = true)]
    public void Sha256Baseline() => SHA256.HashData(_plain, _hash);

    /// <summary>Baseline: copying the chunk (it stays in the CPU caches), the floor of any per-chunk step.</summary>
    [Benchmark]
    public void MemcpyBaseline() => _plain.AsSpan().CopyTo(_output);
}
