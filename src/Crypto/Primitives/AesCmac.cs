using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Primitives;

/// <summary>
/// AES-CMAC (RFC 4493, NIST SP 800-38B) on the platform AES: the CBC-MAC runs as one platform CBC call, so
/// there is no per-block native round trip.
/// </summary>
internal sealed class AesCmac : IDisposable
{
    public const int BlockSize = 16;
    private readonly Aes _aes;
    private readonly byte[] _k1 = new byte[BlockSize];
    private readonly byte[] _k2 = new byte[BlockSize];

    public AesCmac(ReadOnlySpan<byte> key)
    {
        // NIST SP 800-38B §5.1: the block cipher is AES with a 128-, 192- or 256-bit key; anything else is refused.
        if (key.Length is not (16 or 24 or 32))
        {
            throw new CryptographicException($"AES-CMAC needs a 16-, 24- or 32-byte key, not {key.Length} bytes.");
        }

        _aes = Aes.Create();
        _aes.SetKey(key);

        // RFC 4493 §2.3: L = AES-K(0^128); K1 = dbl(L); K2 = dbl(K1).
        Span<byte> l = stackalloc byte[BlockSize];
        _aes.EncryptEcb(new byte[BlockSize], l, PaddingMode.None);
        Dbl(l, _k1);
        Dbl(_k1, _k2);
        CryptographicOperations.ZeroMemory(l);
    }

    /// <summary>Computes the 16-byte tag of <paramref name="message"/> into <paramref name="tag"/>.</summary>
    public void Compute(ReadOnlySpan<byte> message, Span<byte> tag)
    {
        // RFC 4493 §2.4: n blocks (at least one); the last is XORed with K1 when complete, padded 10* and XORed with K2 otherwise.
        var blocks = Math.Max(1, (message.Length + BlockSize - 1) / BlockSize);
        var complete = message.Length > 0 && message.Length % BlockSize == 0;
        var length = blocks * BlockSize;

        byte[]? rented = null;
        var buffer = length <= 1024 ? stackalloc byte[2 * length] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(2 * length)).AsSpan(0, 2 * length);
        try
        {
            var input = buffer[..length];
            var output = buffer[length..];
            message.CopyTo(input);
            var last = input[(length - BlockSize)..];
            if (complete)
            {
                Xor(last, _k1);
            }
            else
            {
                var used = message.Length - ((blocks - 1) * BlockSize);
                last[used] = 0x80;
                last[(used + 1)..].Clear();
                Xor(last, _k2);
            }

            _aes.EncryptCbc(input, stackalloc byte[BlockSize], output, PaddingMode.None);
            output[(length - BlockSize)..].CopyTo(tag);
            buffer.Clear();
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Doubling in GF(2^128) as RFC 5297 §2.3 and RFC 4493 §2.3 define it (shift left, conditional XOR with 0x87).</summary>
    public static void Dbl(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var carry = input[0] >> 7;
        for (var i = 0; i < BlockSize - 1; i++)
        {
            output[i] = (byte)((input[i] << 1) | (input[i + 1] >> 7));
        }

        output[BlockSize - 1] = (byte)(input[BlockSize - 1] << 1);
        // Constant time: the mask is 0x87 or 0 without a branch on the secret bit.
        output[BlockSize - 1] ^= (byte)(0x87 & -carry);
    }

    public static void Xor(Span<byte> target, ReadOnlySpan<byte> other)
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] ^= other[i];
        }
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_k1);
        CryptographicOperations.ZeroMemory(_k2);
        _aes.Dispose();
    }
}
