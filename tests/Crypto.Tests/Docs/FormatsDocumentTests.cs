using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Primitives;
using CrmSecurity.Crypto.Providers;

namespace CrmSecurity.Crypto.Tests.Docs;

/// <summary>
/// Reads <c>docs/crypto-formats.md</c>, the reference an outside implementation is written from, and checks every
/// known answer in it against the library, and, where the page describes a construction step by step, against that
/// description rebuilt here from platform primitives. A change to the code or to the page that makes them disagree
/// fails here.
/// </summary>
public sealed class FormatsDocumentTests : IDisposable
{
    private static readonly Lazy<FormatsDocument> Page = new(FormatsDocument.Load);
    private readonly string _directory = Directory.CreateTempSubdirectory("crypto-formats-doc-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void The_page_holds_every_known_answer_the_tests_check()
    {
        Assert.Equal(
            ["blind-index-email", "blind-index-phone", "data-keys", "deterministic", "keyring", "master-key", "randomized", "unwrap"],
            Page.Value.BlockNames.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_master_key_example_decodes_to_its_bytes_and_has_the_documented_key_id()
    {
        var example = Page.Value.Values("master-key");
        using var kek = LocalMasterKey.FromBase64(example["master-key-base64"], "the page's example");

        Assert.Equal(example["master-key-hex"], Convert.ToHexStringLower(Convert.FromBase64String(example["master-key-base64"])));
        Assert.Equal(example["kek-id"], kek.KeyId);

        // As the page says: "local:" + hex of the first 8 bytes of HMAC-SHA-256(master key, "crm-security/kek-check-value/v1").
        var check = HMACSHA256.HashData(Convert.FromHexString(example["master-key-hex"]), Encoding.ASCII.GetBytes("crm-security/kek-check-value/v1"));
        Assert.Equal("local:" + Convert.ToHexStringLower(check.AsSpan(0, 8)), example["kek-id"]);
    }

    [Fact]
    public void A_master_key_file_holds_either_32_raw_bytes_or_padded_base64_text()
    {
        var example = Page.Value.Values("master-key");
        var base64 = example["master-key-base64"];
        var raw = Path.Combine(_directory, "raw");
        var text = Path.Combine(_directory, "text");
        var unpadded = Path.Combine(_directory, "unpadded");
        File.WriteAllBytes(raw, Convert.FromHexString(example["master-key-hex"]));
        File.WriteAllText(text, base64 + "\r\n");
        File.WriteAllText(unpadded, base64.TrimEnd('='));

        using (var fromRaw = LocalMasterKey.FromFile(raw))
        using (var fromText = LocalMasterKey.FromFile(text))
        {
            Assert.Equal(example["kek-id"], fromRaw.KeyId);
            Assert.Equal(example["kek-id"], fromText.KeyId);
        }

        Assert.Throws<KeyManagementException>(() => LocalMasterKey.FromFile(unpadded));
    }

    [Fact]
    public void Saving_the_example_keyring_gives_the_documented_file_byte_for_byte()
    {
        var document = Page.Value.Block("keyring");
        using var kek = MasterKey();
        using var keyring = Keyring.Load(Write("keyring.json", document), kek);

        var saved = Path.Combine(_directory, "saved.json");
        keyring.Save(saved, kek);

        Assert.Equal(document, File.ReadAllText(saved));
    }

    [Fact]
    public void The_example_keyring_unwraps_to_the_documented_data_keys()
    {
        using var kek = MasterKey();
        using var keyring = Keyring.Load(Write("keyring.json", Page.Value.Block("keyring")), kek);

        var keys = Page.Value.Values("data-keys");
        Assert.Equal(keyring.Keysets.Sum(k => k.Versions.Count(v => v.Status != KeyStatus.Destroyed)), keys.Count);
        foreach (var (entry, hex) in keys)
        {
            var parts = entry.Split(' ');
            Assert.Equal(hex, Convert.ToHexStringLower(InsecureCleartextKeyMaterial.Export(keyring.Get(parts[0]), Number(parts[1]))));
        }
    }

    [Fact]
    public void Unwrapping_the_example_entry_gives_keyset_id_version_and_key_as_documented()
    {
        var example = Page.Value.Values("unwrap");
        using var kek = MasterKey();
        using var json = JsonDocument.Parse(Page.Value.Block("keyring"));
        var keyset = json.RootElement.GetProperty("keysets").EnumerateArray().Single(k => k.GetProperty("name").GetString() == example["keyset"]);
        var version = keyset.GetProperty("versions").EnumerateArray().Single(v => v.GetProperty("version").GetUInt32() == Number(example["version"]));
        var wrapped = Convert.FromBase64String(version.GetProperty("wrapped").GetString()!);

        Assert.Equal(example["wrapped-hex"], Convert.ToHexStringLower(wrapped));
        var unwrapped = kek.UnwrapKey(wrapped);
        Assert.Equal(example["unwrapped-hex"], Convert.ToHexStringLower(unwrapped));

        // keyset-id(4, BE) || version(4, BE) || key(32)
        Assert.Equal(keyset.GetProperty("id").GetUInt32(), BinaryPrimitives.ReadUInt32BigEndian(unwrapped));
        Assert.Equal(Number(example["version"]), BinaryPrimitives.ReadUInt32BigEndian(unwrapped.AsSpan(4)));
        Assert.Equal(example["data-key-hex"], Convert.ToHexStringLower(unwrapped.AsSpan(8)));

        // KWP is deterministic: wrapping the same bytes under the same KEK gives the documented value.
        Assert.Equal(example["wrapped-hex"], Convert.ToHexStringLower(kek.WrapKey(unwrapped)));
    }

    [Fact]
    public void The_randomized_example_decrypts_and_is_rebuilt_exactly_from_the_documented_construction()
    {
        var example = Page.Value.Values("randomized");
        using var kek = MasterKey();
        using var keyring = Keyring.Load(Write("keyring.json", Page.Value.Block("keyring")), kek);
        var keyset = keyring.Get(example["keyset"]);
        var context = new FieldContext(example["tenant"], example["table"], example["column"]);
        var ciphertext = Convert.FromHexString(example["ciphertext-hex"]);
        using var encryptor = keyset.CreateFieldEncryptor(context);

        Assert.Equal(example["plaintext"], encryptor.DecryptText(example["ciphertext-text"], example["row-id"]));
        Assert.Equal(example["plaintext"], encryptor.DecryptString(ciphertext, example["row-id"]));
        Assert.Equal(example["ciphertext-text"], FieldText.Encode(ciphertext));

        // The page's construction, step by step.
        var version = Number(example["key-version"]);
        var contextBytes = Convert.FromHexString(example["context-hex"]);
        var info = Info("crm-security/field/v1/aes-256-gcm", keyset.Id, version, contextBytes);
        var columnKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, InsecureCleartextKeyMaterial.Export(keyset, version), 32, salt: [], info: info);
        var row = Encoding.UTF8.GetBytes(example["row-id"]);
        var header = Header(0x01, keyset.Id, version, example["column-check"], example["row-check"]);
        byte[] aad = [.. header, .. contextBytes, (byte)(row.Length >> 8), (byte)row.Length, .. row];

        Assert.Equal(example["context-hex"], Convert.ToHexStringLower(context.Encode()));
        Assert.Equal(example["hkdf-info-hex"], Convert.ToHexStringLower(info));
        Assert.Equal(example["column-key-hex"], Convert.ToHexStringLower(columnKey));
        Assert.Equal(example["column-check"], Convert.ToHexStringLower(SHA256.HashData(contextBytes).AsSpan(0, 2)));
        Assert.Equal(example["row-check"], Fnv1aFolded(row).ToString("x4", CultureInfo.InvariantCulture));
        Assert.Equal(example["header-hex"], Convert.ToHexStringLower(header));
        Assert.Equal(example["header-hex"], Convert.ToHexStringLower(ciphertext.AsSpan(0, 14)));
        Assert.Equal(example["nonce-hex"], Convert.ToHexStringLower(ciphertext.AsSpan(14, 12)));
        Assert.Equal(example["aad-hex"], Convert.ToHexStringLower(aad));

        var plaintext = Encoding.UTF8.GetBytes(example["plaintext"]);
        var sealedBytes = new byte[plaintext.Length + 16];
        using (var gcm = new AesGcm(columnKey, 16))
        {
            gcm.Encrypt(Convert.FromHexString(example["nonce-hex"]), plaintext, sealedBytes.AsSpan(0, plaintext.Length), sealedBytes.AsSpan(plaintext.Length), aad);
        }

        Assert.Equal(example["ciphertext-hex"], Convert.ToHexStringLower([.. header, .. Convert.FromHexString(example["nonce-hex"]), .. sealedBytes]));
    }

    [Fact]
    public void The_deterministic_example_is_exactly_what_the_library_makes()
    {
        var example = Page.Value.Values("deterministic");
        using var kek = MasterKey();
        using var keyring = Keyring.Load(Write("keyring.json", Page.Value.Block("keyring")), kek);
        var keyset = keyring.Get(example["keyset"]);
        using var encryptor = keyset.CreateDeterministicFieldEncryptor(new FieldContext(example["tenant"], example["table"], example["column"]));

        Assert.Equal(Number(example["key-version"]), encryptor.PrimaryVersion);
        Assert.Equal(example["ciphertext-hex"], Convert.ToHexStringLower(encryptor.EncryptString(example["plaintext"])));
        Assert.Equal(example["ciphertext-text"], encryptor.EncryptText(example["plaintext"]));
        Assert.Equal(example["plaintext"], encryptor.DecryptText(example["ciphertext-text"]));

        // The page's construction: 64-byte HKDF key, S2V components [header, context], V at bytes 14-29.
        var version = Number(example["key-version"]);
        var contextBytes = Convert.FromHexString(example["context-hex"]);
        var info = Info("crm-security/field/v1/aes-256-siv", keyset.Id, version, contextBytes);
        var columnKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, InsecureCleartextKeyMaterial.Export(keyset, version), 64, salt: [], info: info);
        var ciphertext = Convert.FromHexString(example["ciphertext-hex"]);
        var plaintext = Encoding.UTF8.GetBytes(example["plaintext"]);
        var header = Convert.FromHexString(example["header-hex"]);
        var output = new byte[16 + plaintext.Length];
        using (var siv = new AesSiv(columnKey))
        {
            siv.Encrypt(plaintext, header, contextBytes, 2, output);
        }

        Assert.Equal(example["hkdf-info-hex"], Convert.ToHexStringLower(info));
        Assert.Equal(example["column-key-hex"], Convert.ToHexStringLower(columnKey));
        Assert.Equal(example["header-hex"], Convert.ToHexStringLower(ciphertext.AsSpan(0, 14)));
        Assert.Equal(Convert.ToHexStringLower(Header(0x02, keyset.Id, version, Convert.ToHexStringLower(SHA256.HashData(contextBytes).AsSpan(0, 2)), "0000")), example["header-hex"]);
        Assert.Equal(example["siv-hex"], Convert.ToHexStringLower(ciphertext.AsSpan(14, 16)));
        Assert.Equal(example["ciphertext-hex"], Convert.ToHexStringLower([.. header, .. output]));
    }

    [Theory]
    [InlineData("blind-index-email")]
    [InlineData("blind-index-phone")]
    public void A_blind_index_example_matches_the_library_and_the_documented_derivation(string name)
    {
        var example = Page.Value.Values(name);
        using var kek = MasterKey();
        using var keyring = Keyring.Load(Write("keyring.json", Page.Value.Block("keyring")), kek);
        var keyset = keyring.Get(example["keyset"]);
        var normaliser = example["normaliser"] switch
        {
            "email" => Normaliser.Email,
            "phone-e164" => Normaliser.PhoneE164(example.GetValueOrDefault("default-country-code")),
            "national-id" => Normaliser.NationalId,
            "exact" => Normaliser.Exact,
            var other => throw new InvalidOperationException("The page names an unknown normaliser: " + other),
        };
        var transform = example["transform"] switch
        {
            "whole" => IndexTransform.Whole,
            "lower-case" => IndexTransform.LowerCase,
            var t when t.StartsWith("last-", StringComparison.Ordinal) => IndexTransform.Last(int.Parse(t[5..], CultureInfo.InvariantCulture)),
            var t when t.StartsWith("prefix-", StringComparison.Ordinal) => IndexTransform.Prefix(int.Parse(t[7..], CultureInfo.InvariantCulture)),
            var other => throw new InvalidOperationException("The page names an unknown transform: " + other),
        };
        var bits = int.Parse(example["bits"], CultureInfo.InvariantCulture);
        var definition = new BlindIndexDefinition(example["index-name"], bits, normaliser, transform);
        var context = new FieldContext(example["tenant"], example["table"], example["column"]);
        using var index = keyset.CreateBlindIndex(context, definition);

        Assert.Equal(Number(example["key-version"]), index.KeyVersion);
        Assert.Equal(example["index-hex"], Convert.ToHexStringLower(index.Compute(example["value"])));
        if (example.TryGetValue("fragment", out var fragment))
        {
            Assert.Equal(example["index-hex"], Convert.ToHexStringLower(index.ComputeFragment(fragment)));
        }

        // The page's derivation, step by step.
        var nameBytes = Encoding.UTF8.GetBytes(example["index-name"]);
        byte[] info = [.. Info("crm-security/blind-index/v1/hmac-sha-256", keyset.Id, index.KeyVersion, context.Encode()), (byte)(nameBytes.Length >> 8), (byte)nameBytes.Length, .. nameBytes];
        var indexKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, InsecureCleartextKeyMaterial.Export(keyset, index.KeyVersion), 32, salt: [], info: info);
        var indexed = transform.Apply(normaliser.Normalise(example["value"]));
        var mac = HMACSHA256.HashData(indexKey, Encoding.UTF8.GetBytes(indexed));
        var truncated = mac.AsSpan(0, (bits + 7) / 8).ToArray();
        truncated[^1] &= (byte)(0xff << ((truncated.Length * 8) - bits));

        Assert.Equal(example["indexed"], indexed);
        Assert.Equal(example["hkdf-info-hex"], Convert.ToHexStringLower(info));
        Assert.Equal(example["index-key-hex"], Convert.ToHexStringLower(indexKey));
        Assert.Equal(example["hmac-hex"], Convert.ToHexStringLower(mac));
        Assert.Equal(example["index-hex"], Convert.ToHexStringLower(truncated));
    }

    private static LocalMasterKey MasterKey() => LocalMasterKey.FromBase64(Page.Value.Values("master-key")["master-key-base64"], "the page's example");

    private static uint Number(string text) => uint.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);

    private static byte[] Info(string label, uint keysetId, uint version, byte[] context)
    {
        var info = new byte[label.Length + 1 + 8 + context.Length];
        Encoding.ASCII.GetBytes(label, info);
        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(label.Length + 1), keysetId);
        BinaryPrimitives.WriteUInt32BigEndian(info.AsSpan(label.Length + 5), version);
        context.CopyTo(info, label.Length + 9);
        return info;
    }

    private static byte[] Header(byte algorithm, uint keysetId, uint version, string columnCheckHex, string rowCheckHex)
    {
        var header = new byte[14];
        header[0] = 0x01;
        header[1] = algorithm;
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(2), keysetId);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(6), version);
        Convert.FromHexString(columnCheckHex).CopyTo(header, 10);
        Convert.FromHexString(rowCheckHex).CopyTo(header, 12);
        return header;
    }

    private static ushort Fnv1aFolded(byte[] bytes)
    {
        var hash = 2166136261u;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return (ushort)((hash >> 16) ^ (hash & 0xffff));
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>The fenced blocks of the page whose info string carries <c>known-answer:NAME</c>.</summary>
    private sealed class FormatsDocument(Dictionary<string, string> blocks)
    {
        private const string Marker = "known-answer:";

        public IEnumerable<string> BlockNames => blocks.Keys;

        public static FormatsDocument Load()
        {
            var blocks = new Dictionary<string, string>(StringComparer.Ordinal);
            var lines = File.ReadAllLines(PagePath());
            for (var i = 0; i < lines.Length; i++)
            {
                var at = lines[i].IndexOf(Marker, StringComparison.Ordinal);
                if (!lines[i].StartsWith("```", StringComparison.Ordinal) || at < 0)
                {
                    continue;
                }

                var name = lines[i][(at + Marker.Length)..].Trim();
                var body = new List<string>();
                for (i++; i < lines.Length && lines[i] != "```"; i++)
                {
                    body.Add(lines[i]);
                }

                Assert.True(i < lines.Length, $"The known-answer block '{name}' in docs/crypto-formats.md is not closed.");
                Assert.True(blocks.TryAdd(name, string.Join('\n', body)), $"The known-answer block '{name}' appears twice in docs/crypto-formats.md.");
            }

            return new FormatsDocument(blocks);
        }

        public string Block(string name) =>
            blocks.TryGetValue(name, out var body) ? body : throw new InvalidOperationException($"docs/crypto-formats.md has no known-answer block '{name}'.");

        /// <summary>The <c>name: value</c> lines of a block; a value in double quotes is a JSON string.</summary>
        public Dictionary<string, string> Values(string name)
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var line in Block(name).Split('\n'))
            {
                var colon = line.IndexOf(": ", StringComparison.Ordinal);
                Assert.True(colon > 0, $"The line '{line}' of known-answer block '{name}' is not 'name: value'.");
                var value = line[(colon + 2)..].Trim();
                values.Add(line[..colon], value.StartsWith('"') ? JsonSerializer.Deserialize<string>(value)! : value);
            }

            return values;
        }

        private static string PagePath()
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                var candidate = Path.Combine(directory.FullName, "docs", "crypto-formats.md");
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            throw new FileNotFoundException("docs/crypto-formats.md was not found above the test's directory.");
        }
    }
}
