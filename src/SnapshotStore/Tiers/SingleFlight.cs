using Snapshots.Store.Chunks;

namespace Snapshots.Store.Tiers;

/// <summary>
/// N concurrent readers of one chunk cause one fetch: the first (the leader) fetches into its own buffer;
/// the others register their buffers and the leader copies the verified bytes into each before it returns.
/// A waiter that gives up leaves before the copy starts, or waits for the copy to end, so no byte is ever
/// written into a buffer its owner has taken back. If the leader is cancelled, the waiters start over.
/// </summary>
internal sealed class SingleFlight
{
    private readonly Lock _lock = new();
    private readonly Dictionary<ChunkName, Flight> _flights = [];

    public delegate ValueTask<FetchResult> Fetch(
        ChunkName name, Memory<byte> buffer, FetchTicket ticket, CancellationToken ct);

    /// <summary>The length of the chunk in the reader's buffer, or why it could not be had.</summary>
    public readonly record struct FetchResult(int Length, string? Failure, ChunkFault Fault = ChunkFault.Unavailable)
    {
        public static FetchResult Abandoned { get; } = new(-1, null);
        public bool IsAbandoned => Length < 0 && Failure is null;
    }

    public long Joined => Interlocked.Read(ref _joined);
    private long _joined;

    /// <summary>Fetches the chunk, or joins the fetch under way; a demand that joins a prefetch promotes it.</summary>
    public async ValueTask<FetchResult> RunAsync(
        ChunkName name, Memory<byte> buffer, Fetch fetch, FetchTicket ticket, CancellationToken ct)
    {
        while (true)
        {
            Flight flight;
            Waiter? waiter = null;
            lock (_lock)
            {
                if (_flights.TryGetValue(name, out flight!))
                {
                    waiter = new Waiter(buffer);
                    flight.Waiters.Add(waiter);
                }
                else
                {
                    flight = new Flight(ticket);
                    _flights[name] = flight;
                }
            }

            if (waiter is null) return await LeadAsync(name, flight, buffer, fetch, ct);
            if (ticket.Priority == FetchPriority.Demand) flight.Ticket.Promote();

            Interlocked.Increment(ref _joined);
            FetchResult result;
            try
            {
                result = await waiter.Done.Task.WaitAsync(ct);
            }
            catch (OperationCanceledException)
            {
                if (!Leave(flight, waiter)) await waiter.Done.Task; // the copy into our buffer is under way: let it end
                throw;
            }
            if (!result.IsAbandoned) return result;
        }
    }

    private async ValueTask<FetchResult> LeadAsync(
        ChunkName name, Flight flight, Memory<byte> buffer, Fetch fetch, CancellationToken ct)
    {
        FetchResult result = FetchResult.Abandoned;
        try
        {
            result = await fetch(name, buffer, flight.Ticket, ct);
            return result;
        }
        finally
        {
            List<Waiter> waiters;
            lock (_lock)
            {
                _flights.Remove(name);
                waiters = flight.Close();
            }
            foreach (var w in waiters)
            {
                var mine = result;
                if (result.Failure is null && result.Length >= 0)
                {
                    if (w.Buffer.Length < result.Length)
                    {
                        mine = new FetchResult(-1, $"the reader's buffer ({w.Buffer.Length} bytes) is smaller than "
                            + $"the chunk ({result.Length} bytes)");
                    }
                    else
                    {
                        buffer[..result.Length].CopyTo(w.Buffer);
                    }
                }
                w.Done.TrySetResult(mine);
            }
        }
    }

    private bool Leave(Flight flight, Waiter waiter)
    {
        lock (_lock) return !flight.Closed && flight.Waiters.Remove(waiter);
    }

    private sealed class Flight(FetchTicket ticket)
    {
        public readonly FetchTicket Ticket = ticket;
        public readonly List<Waiter> Waiters = [];
        public bool Closed;

        public List<Waiter> Close() { Closed = true; return Waiters; }
    }

    private sealed class Waiter(Memory<byte> buffer)
    {
        public readonly Memory<byte> Buffer = buffer;
        public readonly TaskCompletionSource<FetchResult> Done =
            new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
