using System.Buffers;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;

namespace Snapshots.Store.Layers;

/// <summary>
/// Runs a body over items 0..count-1 on a few workers (the cores, by default), each with its own pooled
/// ciphertext and plaintext buffers for its whole run: the exporter's and the verifier's chunk loops. The
/// plaintext buffer is cleared when returned to the pool: it may hold a tenant's memory.
/// </summary>
internal static class ChunkWorkers
{
    public delegate ValueTask Body(int item, byte[] cipher, byte[] plain);

    public static Task RunAsync(int count, int parallelism, Body body, CancellationToken ct)
    {
        int next = -1;
        var workers = new Task[parallelism > 0 ? parallelism : Environment.ProcessorCount];
        for (int w = 0; w < workers.Length; w++)
        {
            workers[w] = Task.Run(async () =>
            {
                var cipher = ArrayPool<byte>.Shared.Rent(ConvergentCipher.MaxCiphertextSize);
                var plain = ArrayPool<byte>.Shared.Rent(ChunkGeometry.ChunkSize);
                try
                {
                    for (int i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
                        await body(i, cipher, plain);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(cipher);
                    ArrayPool<byte>.Shared.Return(plain, clearArray: true);
                }
            }, ct);
        }
        return Task.WhenAll(workers);
    }
}
