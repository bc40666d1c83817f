namespace CrmSecurity.Crypto.Primitives;

/// <summary>
/// A small lock-free pool of cipher objects for one key. Platform cipher objects (AesGcm, Aes, IncrementalHash)
/// are not safe for concurrent use, and creating one per call costs a native key schedule; the pool gives
/// each call its own instance without allocating on the hot path.
/// </summary>
internal sealed class Pool<T>(Func<T> factory) : IDisposable
    where T : class, IDisposable
{
    private readonly T?[] _items = new T?[Math.Max(4, Environment.ProcessorCount * 2)];
    private volatile bool _disposed;

    public T Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var items = _items;
        for (var i = 0; i < items.Length; i++)
        {
            var item = Interlocked.Exchange(ref items[i], null);
            if (item is not null)
            {
                return item;
            }
        }

        return factory();
    }

    public void Return(T item)
    {
        if (!_disposed)
        {
            var items = _items;
            for (var i = 0; i < items.Length; i++)
            {
                if (Interlocked.CompareExchange(ref items[i], item, null) is null)
                {
                    // Disposed between the check and the store: take it back out and dispose it below.
                    if (!_disposed || Interlocked.CompareExchange(ref items[i], null, item) != item)
                    {
                        return;
                    }

                    break;
                }
            }
        }

        item.Dispose();
    }

    public void Dispose()
    {
        _disposed = true;
        for (var i = 0; i < _items.Length; i++)
        {
            Interlocked.Exchange(ref _items[i], null)?.Dispose();
        }
    }
}
