using System.Runtime.ExceptionServices;

namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>
/// Hands filled batches from one producer thread to one consumer thread, at most <c>capacity</c> ahead, and hands the
/// emptied arrays back for reuse. Each side sleeps on a monitor instead of spinning, and with hysteresis: a producer that
/// found the queue full sleeps until the consumer has taken it down to <c>resumeAt</c>, so it wakes once per
/// <c>capacity - resumeAt</c> batches rather than once per batch, and a consumer that found it empty sleeps until
/// <c>resumeAt + 1</c> batches wait (or the input ends). A bounded channel woke the producer after every single batch
/// the consumer took, and every wake-up first spun on a core the other thread needed.
/// </summary>
internal sealed class BatchHandOff<T>(int capacity, int resumeAt)
    where T : class
{
    private readonly Queue<(T Batch, int Count)> _full = new(capacity);
    private readonly Stack<T> _empty = new(capacity + 2);
    private readonly object _gate = new(); // a monitor, not a Lock: both sides sleep on it with Monitor.Wait
    private bool _producerWaiting;
    private bool _consumerWaiting;
    private bool _completed;
    private Exception? _failure;

    /// <summary>
    /// Producer: queues a filled batch, sleeping while <c>capacity</c> batches already wait, and returns an emptied array
    /// to fill next (null when none has come back yet), under one lock.
    /// </summary>
    public T? Add(T batch, int count, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_full.Count >= capacity)
            {
                _producerWaiting = true;
                while (_full.Count > resumeAt)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Monitor.Wait(_gate, 100);
                }

                _producerWaiting = false;
            }

            _full.Enqueue((batch, count));
            if (_consumerWaiting && _full.Count > resumeAt)
            {
                Monitor.PulseAll(_gate);
            }

            return _empty.TryPop(out var reuse) ? reuse : null;
        }
    }

    /// <summary>Producer: no more batches; <paramref name="failure"/> is rethrown to the consumer.</summary>
    public void Complete(Exception? failure = null)
    {
        lock (_gate)
        {
            _completed = true;
            _failure = failure;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Consumer: gives back the array it emptied (if any) and takes the next batch in order; false once the producer
    /// completed and everything was taken.
    /// </summary>
    public bool TryTake(T? emptied, out T batch, out int count, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (emptied is not null)
            {
                _empty.Push(emptied);
            }

            if (_full.Count == 0 && !_completed)
            {
                _consumerWaiting = true;
                while (_full.Count <= resumeAt && !_completed)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Monitor.Wait(_gate, 100);
                }

                _consumerWaiting = false;
            }

            if (_full.TryDequeue(out var item))
            {
                (batch, count) = item;
                if (_producerWaiting && _full.Count <= resumeAt)
                {
                    Monitor.PulseAll(_gate);
                }

                return true;
            }

            if (_failure is not null)
            {
                ExceptionDispatchInfo.Throw(_failure);
            }

            batch = null!;
            count = 0;
            return false;
        }
    }
}
