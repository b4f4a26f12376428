namespace Snapshots.Store.Tiers;

/// <summary>
/// A tier's fetch slots with two queues. A demand fetch takes any free slot, and a freed slot goes to the oldest
/// queued demand fetch first; a prefetch fetch takes a slot only while more than <see cref="Reserve"/> are free and
/// no demand fetch waits. So whatever the prefetch concurrency, a demand fetch waits for at most the demand fetches
/// ahead of it, never for queued prefetches. Thread-safe; a waiter that times out or is cancelled leaves its
/// queue.
/// </summary>
internal sealed class PrioritySlots
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Waiter> _demand = new(), _prefetch = new();
    private int _free;

    public PrioritySlots(int capacity)
    {
        _free = capacity;
        Reserve = capacity >= 4 ? capacity / 4 : 0;
    }

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
                _free--;
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
                Release();
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

    public void Release()
    {
        lock (_lock)
        {
            _free++;
            Grant();
        }
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

    private bool CanTake(FetchPriority priority) => priority == FetchPriority.Demand
        ? _free > 0
        : _free > Reserve && _demand.Count == 0;

    private void Grant()
    {
        while (true)
        {
            var queue = _demand.First is not null && _free > 0 ? _demand
                : _prefetch.First is not null && _free > Reserve && _demand.Count == 0 ? _prefetch
                : null;
            if (queue is null) return;
            var waiter = queue.First!.Value;
            queue.RemoveFirst();
            waiter.Node = null;
            _free--;
            waiter.Granted.TrySetResult();
        }
    }
}
