using System.Buffers;
using Snapshots.Store.Chunks;
using Snapshots.Store.Crypto;

namespace Snapshots.Store.Layers;

/// <summary>
/// Runs a body over items 0..count-1 on a few workers (the cores, by default), each with its own pooled
/// ciphertext and plaintext buffers for its whole run: the exporter's, the verifier's and the warmer's chunk loops. The
/// plaintext buffer is cleared when returned to the pool: it may hold a tenant's memory. Each worker checks the
/// token before every item, so a cancelled run (SIGINT, SIGTERM) stops within one chunk per worker even when the
/// body's reads do not look at the token (a local file read does not); and the first body that throws stops the
/// other workers at their next item, rather than letting them read to the end for a run that has already failed.
/// </summary>
internal static class ChunkWorkers
{
    public delegate ValueTask Body(int item, byte[] cipher, byte[] plain);

    public static Task RunAsync(int count, int parallelism, Body body, CancellationToken ct)
    {
        int next = -1;
        int failed = 0;
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
                    {
                        ct.ThrowIfCancellationRequested();
                        if (Volatile.Read(ref failed) != 0) return;
                        await body(i, cipher, plain);
                    }
                }
                catch
                {
                    Volatile.Write(ref failed, 1);
                    throw;
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
