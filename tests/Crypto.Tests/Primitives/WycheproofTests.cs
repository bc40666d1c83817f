using System.Security.Cryptography;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Primitives;
using CrmSecurity.Crypto.Tests.Support;

namespace CrmSecurity.Crypto.Tests.Primitives;

/// <summary>
/// Every Wycheproof case of the primitives the library uses: valid ones must be accepted with the exact
/// output, invalid ones refused. The number of cases run is asserted, so a vector file (or a group in it)
/// cannot silently go missing.
/// </summary>
public sealed class WycheproofTests
{
    [Fact]
    public void Aes_gcm_accepts_every_valid_and_refuses_every_invalid_case_with_96_bit_nonces()
    {
        var run = 0;
        var failures = new List<int>();
        foreach (var (group, test) in Wycheproof.Cases("aes_gcm_test.json"))
        {
            if (group.GetProperty("ivSize").GetInt32() != 96)
            {
                continue; // the library only makes 96-bit nonces (NIST SP 800-38D §8.2.2)
            }

            run++;
            var key = test.Hex("key");
            var iv = test.Hex("iv");
            var aad = test.Hex("aad");
            var msg = test.Hex("msg");
            var ct = test.Hex("ct");
            var tag = test.Hex("tag");
            using var gcm = new AesGcm(key, 16);
            var plaintext = new byte[ct.Length];
            bool opened;
            try
            {
                gcm.Decrypt(iv, ct, tag, plaintext, aad);
                opened = true;
            }
            catch (CryptographicException)
            {
                opened = false;
            }

            var valid = test.Result() == "valid";
            if (opened != valid || (valid && !plaintext.AsSpan().SequenceEqual(msg)))
            {
                failures.Add(test.Id());
            }

            if (valid)
            {
                var sealedCt = new byte[msg.Length];
                var sealedTag = new byte[16];
                gcm.Encrypt(iv, msg, sealedCt, sealedTag, aad);
                if (!sealedCt.AsSpan().SequenceEqual(ct) || !sealedTag.AsSpan().SequenceEqual(tag))
                {
                    failures.Add(test.Id());
                }
            }
        }

        Assert.Empty(failures);
        Assert.Equal(197, run);
    }

    [Fact]
    public void Aes_siv_accepts_every_valid_and_refuses_every_invalid_case()
    {
        var run = 0;
        var failures = new List<int>();
        foreach (var (_, test) in Wycheproof.Cases("aes_siv_cmac_test.json"))
        {
            run++;
            var key = test.Hex("key");
            var aad = test.Hex("aad");
            var msg = test.Hex("msg");
            var ct = test.Hex("ct");
            var valid = test.Result() == "valid";
            using var siv = new AesSiv(key);
            var plaintext = new byte[Math.Max(0, ct.Length - AesSiv.SivSize)];
            var opened = siv.TryDecrypt(ct, aad, default, 1, plaintext);
            if (opened != valid || (valid && !plaintext.AsSpan().SequenceEqual(msg)))
            {
                failures.Add(test.Id());
            }

            if (!opened)
            {
                Assert.All(plaintext, b => Assert.Equal(0, b)); // never partial plaintext
            }

            if (valid)
            {
                var sealedCt = new byte[AesSiv.CiphertextLength(msg.Length)];
                siv.Encrypt(msg, aad, default, 1, sealedCt);
                if (!sealedCt.AsSpan().SequenceEqual(ct))
                {
                    failures.Add(test.Id());
                }
            }
        }

        Assert.Empty(failures);
        Assert.Equal(Wycheproof.DeclaredCount("aes_siv_cmac_test.json"), run);
        Assert.Equal(442, run);
    }

    [Fact]
    public void Aes_cmac_accepts_every_valid_and_refuses_every_invalid_case()
    {
        var run = 0;
        var failures = new List<int>();
        foreach (var (group, test) in Wycheproof.Cases("aes_cmac_test.json"))
        {
            run++;
            var valid = test.Result() == "valid";
            var key = test.Hex("key");
            var tagBytes = group.GetProperty("tagSize").GetInt32() / 8;
            bool accepted;
            try
            {
                using var cmac = new AesCmac(key);
                var tag = new byte[16];
                cmac.Compute(test.Hex("msg"), tag);
                accepted = CryptographicOperations.FixedTimeEquals(tag.AsSpan(0, tagBytes), test.Hex("tag"));
            }
            catch (CryptographicException)
            {
                accepted = false; // invalid key sizes are refused at construction
            }

            if (accepted != valid)
            {
                failures.Add(test.Id());
            }
        }

        Assert.Empty(failures);
        Assert.Equal(311, run);
    }

    [Fact]
    public void Hmac_sha256_with_truncation_accepts_every_valid_and_refuses_every_invalid_case()
    {
        var run = 0;
        var failures = new List<int>();
        foreach (var (group, test) in Wycheproof.Cases("hmac_sha256_test.json"))
        {
            run++;
            var bits = group.GetProperty("tagSize").GetInt32();
            using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, test.Hex("key"));
            hmac.AppendData(test.Hex("msg"));
            var mac = hmac.GetHashAndReset();
            var truncated = new byte[(bits + 7) / 8];
            BlindIndex.Truncate(mac, bits, truncated);
            var accepted = CryptographicOperations.FixedTimeEquals(truncated, test.Hex("tag"));
            if (accepted != (test.Result() == "valid"))
            {
                failures.Add(test.Id());
            }
        }

        Assert.Empty(failures);
        Assert.Equal(174, run);
    }

    [Fact]
    public void Hkdf_sha256_derives_every_valid_case_and_refuses_oversized_output()
    {
        var run = 0;
        var failures = new List<int>();
        foreach (var (_, test) in Wycheproof.Cases("hkdf_sha256_test.json"))
        {
            run++;
            var size = test.GetProperty("size").GetInt32();
            byte[]? okm;
            try
            {
                okm = new byte[size];
                KeyDerivation.DeriveKey(test.Hex("ikm"), test.Hex("salt"), test.Hex("info"), okm);
            }
            catch (CryptographicException)
            {
                okm = null;
            }

            var valid = test.Result() == "valid";
            if ((okm is not null) != valid || (valid && !okm!.AsSpan().SequenceEqual(test.Hex("okm"))))
            {
                failures.Add(test.Id());
            }
        }

        Assert.Empty(failures);
        Assert.Equal(86, run);
    }

    [Fact]
    public void Aes_kwp_accepts_every_valid_and_refuses_every_invalid_case()
    {
        var run = 0;
        var failures = new List<int>();
        foreach (var (_, test) in Wycheproof.Cases("aes_kwp_test.json"))
        {
            run++;
            var key = test.Hex("key");
            var msg = test.Hex("msg");
            var ct = test.Hex("ct");
            var valid = test.Result() == "valid";
            byte[]? unwrapped;
            try
            {
                unwrapped = KeyWrap.Unwrap(key, ct);
            }
            catch (CryptographicException)
            {
                unwrapped = null;
            }

            if ((unwrapped is not null) != valid || (valid && !unwrapped!.AsSpan().SequenceEqual(msg)))
            {
                failures.Add(test.Id());
            }

            if (valid && !KeyWrap.Wrap(key, msg).AsSpan().SequenceEqual(ct))
            {
                failures.Add(test.Id());
            }
        }

        Assert.Empty(failures);
        Assert.Equal(254, run);
    }
}
