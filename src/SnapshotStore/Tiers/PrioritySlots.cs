namespace Snapshots.Store.Tiers;

/// <summary>
/// A tier's fetch slots with two queues. A demand fetch takes any free slot, and a freed slot goes to the oldest
/// queued demand fetch first. A prefetch fetch takes a slot only while more than <see cref="Reserve"/> are free,
/// fewer than <see cref="MaxPrefetch"/> (a sixteenth of the slots) prefetches are in flight, and no demand
/// fetch waits or is in flight. So whatever the prefetch concurrency, a demand fetch never waits for queued
/// prefetches, and at the server behind at most <see cref="MaxPrefetch"/> of them. Thread-safe; a waiter that
/// times out or is cancelled leaves its queue.
/// </summary>
internal sealed class PrioritySlots
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Waiter> _demand = new(), _prefetch = new();
    private int _free, _demandInFlight, _prefetchInFlight;

    public PrioritySlots(int capacity)
    {
        _free = capacity;
        Reserve = capacity >= 4 ? capacity / 4 : 0;
        MaxPrefetch = Math.Max(1, capacity / 16);
    }

    /// <summary>Prefetch fetches in flight at most (a sixteenth of the slots, at least one): a server queues what
    /// it is sent, so prefetches sent ahead of a demand fetch delay it there, beyond any slot here. An eighth gave
    /// a worst demand fault 2.2x the no-prefetch one at concurrency 64 from s3rver, a sixteenth 1.7x
    /// (bench/results/uffd-demand-under-prefetch.md).</summary>
    public int MaxPrefetch { get; }

    /// <summary>Slots only demand fetches may take.</summary>
    public int Reserve { get; }

    internal sealed class Waiter(FetchTicket ticket)
    {
        public readonly FetchTicket Ticket = ticket;
        public readonly TaskCompletionSource Granted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public LinkedListNode<Waiter>? Node;
    }

    /// <summary>Takes a slot for <paramref name="ticket"/>; false when none came within
    /// <paramref name="timeout"/>. Release it with <see cref="Release"/>.</summary>
    public async ValueTask<bool> WaitAsync(FetchTicket ticket, TimeSpan timeout, CancellationToken ct)
    {
        Waiter waiter;
        lock (_lock)
        {
            if (CanTake(ticket.Priority))
            {
                Take(ticket);
                return true;
            }
            waiter = new Waiter(ticket);
            waiter.Node = (ticket.Priority == FetchPriority.Demand ? _demand : _prefetch).AddLast(waiter);
            ticket.Queued = waiter;
            ticket.QueuedAt = this;
        }
        try
        {
            await waiter.Granted.Task.WaitAsync(timeout, ct);
            return true;
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            lock (_lock)
            {
                if (waiter.Node?.List is { } queue)
                {
                    queue.Remove(waiter.Node);
                    waiter.Node = null;
                    if (ex is OperationCanceledException) throw;
                    return false;
                }
            }
            // Granted at the same moment: the slot is ours; give it back if the caller is leaving.
            if (ex is OperationCanceledException)
            {
                Release(ticket);
                throw;
            }
            return true;
        }
        finally
        {
            ticket.Queued = null;
            ticket.QueuedAt = null;
        }
    }

    /// <summary>Gives back the slot <paramref name="ticket"/> took.</summary>
    public void Release(FetchTicket ticket)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        lock (_lock)
        {
            _free++;
            if (ticket.HoldsPrefetchSlot) _prefetchInFlight--;
            else _demandInFlight--;
            ticket.HoldsPrefetchSlot = false;
            Grant();
        }
    }

    private void Take(FetchTicket ticket)
    {
        _free--;
        ticket.HoldsPrefetchSlot = ticket.Priority == FetchPriority.Prefetch;
        if (ticket.HoldsPrefetchSlot) _prefetchInFlight++;
        else _demandInFlight++;
    }

    /// <summary>Moves a queued prefetch to the demand queue (the ticket was promoted).</summary>
    public void Promote(FetchTicket ticket)
    {
        lock (_lock)
        {
            if (ticket.Queued is not { Node: { } node } waiter || node.List != _prefetch) return;
            _prefetch.Remove(node);
            waiter.Node = _demand.AddLast(waiter);
            Grant();
        }
    }

    /// <summary>Demand: any free slot. Prefetch: only above the reserve, under <see cref="MaxPrefetch"/>, and
    /// while no demand fetch waits or is in flight here (its answer must not queue behind ours at the server).
    /// </summary>
    private bool CanTake(FetchPriority priority) => priority == FetchPriority.Demand
        ? _free > 0
        : _free > Reserve && _demand.Count == 0 && _demandInFlight == 0 && _prefetchInFlight < MaxPrefetch;

    private void Grant()
    {
        while (true)
        {
            var queue = _demand.First is not null && CanTake(FetchPriority.Demand) ? _demand
                : _prefetch.First is not null && CanTake(FetchPriority.Prefetch) ? _prefetch
                : null;
            if (queue is null) return;
            var waiter = queue.First!.Value;
            queue.RemoveFirst();
            waiter.Node = null;
            Take(waiter.Ticket);
            waiter.Granted.TrySetResult();
        }
    }
}
