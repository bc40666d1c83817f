using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Primitives;

/// <summary>
/// Key material in a pinned array (so the GC never leaves copies behind when it compacts) that is zeroed on
/// dispose. <see cref="ToString"/> never shows the bytes.
/// </summary>
internal sealed class SecretBytes : IDisposable
{
    private readonly byte[] _bytes;
    private int _disposed;

    private SecretBytes(int length) => _bytes = GC.AllocateUninitializedArray<byte>(length, pinned: true);

    public int Length => _bytes.Length;

    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public ReadOnlySpan<byte> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            return _bytes;
        }
    }

    public static SecretBytes Random(int length)
    {
        var secret = new SecretBytes(length);
        RandomNumberGenerator.Fill(secret._bytes);
        return secret;
    }

    public static SecretBytes CopyOf(ReadOnlySpan<byte> source)
    {
        var secret = new SecretBytes(source.Length);
        source.CopyTo(secret._bytes);
        return secret;
    }

    /// <summary>Runs <paramref name="fill"/> on the fresh buffer; the buffer is zeroed if it throws.</summary>
    public static SecretBytes Create(int length, SpanAction fill)
    {
        var secret = new SecretBytes(length);
        try
        {
            fill(secret._bytes);
            return secret;
        }
        catch
        {
            secret.Dispose();
            throw;
        }
    }

    public byte[] ToArray() => Span.ToArray();

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            CryptographicOperations.ZeroMemory(_bytes);
        }

        GC.SuppressFinalize(this);
    }

    // A key that was never disposed (for example one cached for the life of a DbContext) is still zeroed when collected.
    ~SecretBytes()
    {
        CryptographicOperations.ZeroMemory(_bytes);
    }

    public override string ToString() => $"SecretBytes({Length} bytes, value hidden)";

    internal delegate void SpanAction(Span<byte> buffer);
}
