using System.Threading.Channels;

namespace CrmSecurity.Shared;

// Takes items on the request path for the price of a channel write and stores them in batches in the background:
// a busy endpoint writes hundreds of rows per transaction, not one. The queue is bounded so a stuck database cannot
// grow memory without limit; what is queued when the host stops is stored before it ends.
// Full queue: with waitWhenFull a writer waits for room (back-pressure, for a record that must
// not be lost); without it the item is dropped and counted (for a copy that must never hold a request). After the
// host stops, items are refused either way and counted in Dropped.
internal abstract class BatchingQueue<T>(int capacity, bool waitWhenFull) : BackgroundService
{
    protected const int BatchSize = 500;
    private static readonly TimeSpan GatherFor = TimeSpan.FromMilliseconds(100);

    private readonly Channel<T> _queue = Channel.CreateBounded<T>(
        new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });

    private long _dropped;
    private int _storing;

    // Items not queued because the queue was full (when not waiting) or the host was stopping.
    public long Dropped => Interlocked.Read(ref _dropped);

    // Queues an item; see the remarks for a full queue.
    public ValueTask EnqueueAsync(T item, CancellationToken cancellationToken)
    {
        if (_queue.Writer.TryWrite(item))
        {
            return ValueTask.CompletedTask;
        }

        return waitWhenFull ? WaitForRoomAsync(item, cancellationToken) : Drop(item);
    }

    // Waits until everything queued so far is stored (tests, shutdown).
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        while (_queue.Reader.Count > 0 || Volatile.Read(ref _storing) != 0)
        {
            await Task.Delay(10, cancellationToken);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // No more items are accepted; ExecuteAsync stores what is queued and then ends.
        _queue.Writer.TryComplete();
        await base.StopAsync(cancellationToken);
    }

    // Stores one batch. Must not throw for a failed store: log it (the caller has already moved on).
    protected abstract Task StoreAsync(List<T> batch);

    // Called for each dropped item with the running count of drops.
    protected abstract void OnDropped(T item, long dropped);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<T>(BatchSize);
        while (await _queue.Reader.WaitToReadAsync(CancellationToken.None))
        {
            Interlocked.Exchange(ref _storing, 1);
            if (_queue.Reader.Count < BatchSize && !stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(GatherFor, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    // Stopping: store what is queued without waiting.
                }
            }

            while (batch.Count < BatchSize && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            await StoreAsync(batch);
            batch.Clear();
            Interlocked.Exchange(ref _storing, 0);
        }
    }

    private async ValueTask WaitForRoomAsync(T item, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(item, cancellationToken);
        }
        catch (ChannelClosedException)
        {
            await Drop(item);
        }
    }

    private ValueTask Drop(T item)
    {
        OnDropped(item, Interlocked.Increment(ref _dropped));
        return ValueTask.CompletedTask;
    }
}
