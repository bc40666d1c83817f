using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace CrmSecurity.Crypto.Primitives;

/// <summary>
/// AES-SIV (RFC 5297): deterministic authenticated encryption built on the platform AES, S2V over AES-CMAC
/// and AES-CTR. The key is two halves (CMAC key, CTR key): 32, 48 or 64 bytes for AES-128/192/256.
/// Not thread-safe; pooled per key by its owner.
/// </summary>
internal sealed class AesSiv : IDisposable
{
    public const int SivSize = 16;
    private const int MaxAssociatedData = 126; // RFC 5297 §2.6: at most 126 components before the plaintext (S2V limit 127).
    private readonly AesCmac _mac;
    private readonly Aes _ctr;

    public AesSiv(ReadOnlySpan<byte> key)
    {
        // RFC 5297 §2.2: K = K1 || K2, each an AES key of the same size.
        if (key.Length is not (32 or 48 or 64))
        {
            throw new CryptographicException($"AES-SIV needs a 32-, 48- or 64-byte key, not {key.Length} bytes.");
        }

        var half = key.Length / 2;
        _mac = new AesCmac(key[..half]);
        _ctr = Aes.Create();
        _ctr.SetKey(key[half..]);
    }

    /// <summary>Output length for a plaintext of <paramref name="plaintextLength"/> bytes (SIV || C).</summary>
    public static int CiphertextLength(int plaintextLength) => SivSize + plaintextLength;

    /// <summary>RFC 5297 §2.6 SIV-Encrypt: <paramref name="output"/> receives V || C.</summary>
    public void Encrypt(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> ad1, ReadOnlySpan<byte> ad2, int adCount, Span<byte> output)
    {
        var v = output[..SivSize];
        S2V(ad1, ad2, adCount, plaintext, v);
        Ctr(v, plaintext, output.Slice(SivSize, plaintext.Length));
    }

    /// <summary>
    /// RFC 5297 §2.7 SIV-Decrypt. Returns false (with <paramref name="plaintext"/> zeroed) when the tag does
    /// not match, so no unauthenticated plaintext ever leaves.
    /// </summary>
    public bool TryDecrypt(ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> ad1, ReadOnlySpan<byte> ad2, int adCount, Span<byte> plaintext)
    {
        if (ciphertext.Length < SivSize)
        {
            return false;
        }

        var v = ciphertext[..SivSize];
        var body = ciphertext[SivSize..];
        Ctr(v, body, plaintext[..body.Length]);
        Span<byte> t = stackalloc byte[SivSize];
        S2V(ad1, ad2, adCount, plaintext[..body.Length], t);

        // RFC 5297 §2.7: if T = V return P, else return FAIL; compared in constant time.
        if (CryptographicOperations.FixedTimeEquals(t, v))
        {
            return true;
        }

        CryptographicOperations.ZeroMemory(plaintext);
        return false;
    }

    // RFC 5297 §2.4 S2V with up to two associated-data components followed by the plaintext.
    private void S2V(ReadOnlySpan<byte> ad1, ReadOnlySpan<byte> ad2, int adCount, ReadOnlySpan<byte> plaintext, Span<byte> result)
    {
        if (adCount is < 0 or > 2 || adCount > MaxAssociatedData)
        {
            throw new ArgumentOutOfRangeException(nameof(adCount));
        }

        Span<byte> d = stackalloc byte[SivSize];
        Span<byte> scratch = stackalloc byte[SivSize];
        _mac.Compute(stackalloc byte[SivSize], d); // D = AES-CMAC(K, <zero>)
        if (adCount >= 1)
        {
            AesCmac.Dbl(d, scratch);
            _mac.Compute(ad1, d);
            AesCmac.Xor(d, scratch);
        }

        if (adCount == 2)
        {
            AesCmac.Dbl(d, scratch);
            _mac.Compute(ad2, d);
            AesCmac.Xor(d, scratch);
        }

        if (plaintext.Length >= SivSize)
        {
            // T = Sn xorend D
            byte[]? rented = null;
            var t = plaintext.Length <= 1024 ? stackalloc byte[plaintext.Length] : (rented = ArrayPool<byte>.Shared.Rent(plaintext.Length)).AsSpan(0, plaintext.Length);
            plaintext.CopyTo(t);
            AesCmac.Xor(t[^SivSize..], d);
            _mac.Compute(t, result);
            t.Clear();
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
        else
        {
            // T = dbl(D) xor pad(Sn)
            Span<byte> t = stackalloc byte[SivSize];
            AesCmac.Dbl(d, t);
            Span<byte> padded = stackalloc byte[SivSize];
            plaintext.CopyTo(padded);
            padded[plaintext.Length] = 0x80;
            AesCmac.Xor(t, padded);
            _mac.Compute(t, result);
            t.Clear();
            padded.Clear();
        }
    }

    // RFC 5297 §2.5/§2.6: Q = V with the 31st and 63rd bits (from the right) cleared; counter mode from Q.
    private void Ctr(ReadOnlySpan<byte> v, ReadOnlySpan<byte> input, Span<byte> output)
    {
        if (input.Length == 0)
        {
            return;
        }

        var blocks = (input.Length + 15) / 16;
        var length = blocks * 16;
        byte[]? rented = null;
        var counters = length <= 1024 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length)).AsSpan(0, length);
        try
        {
            Span<byte> q = stackalloc byte[SivSize];
            v.CopyTo(q);
            q[8] &= 0x7f;
            q[12] &= 0x7f;
            var high = BinaryPrimitives.ReadUInt64BigEndian(q);
            var low = BinaryPrimitives.ReadUInt64BigEndian(q[8..]);
            for (var i = 0; i < blocks; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(counters[(i * 16)..], high);
                BinaryPrimitives.WriteUInt64BigEndian(counters[((i * 16) + 8)..], low);
                low++;
                if (low == 0)
                {
                    high++; // the counter is a 128-bit integer, incremented modulo 2^128
                }
            }

            _ctr.EncryptEcb(counters, counters, PaddingMode.None);
            for (var i = 0; i < input.Length; i++)
            {
                output[i] = (byte)(input[i] ^ counters[i]);
            }

            counters.Clear();
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    public void Dispose()
    {
        _mac.Dispose();
        _ctr.Dispose();
    }
}
