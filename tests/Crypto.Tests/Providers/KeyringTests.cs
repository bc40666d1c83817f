using System.Text.Json.Nodes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Keys.Insecure;

namespace CrmSecurity.Crypto.Tests.Providers;

public sealed class KeyringTests : IDisposable
{
    private static readonly FieldContext Email = new("acme", "contacts", "email");
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-keyring-").FullName;

    private string PathOf(string name) => Path.Combine(_directory, name);

    [Fact]
    public void A_saved_keyring_loads_under_the_same_master_key_and_decrypts_old_data()
    {
        using var kek = LocalMasterKey.Generate();
        using var keyring = Keyring.CreateNew();
        using var encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "1");
        keyring.Save(PathOf("keyring.json"), kek);

        using var loaded = Keyring.Load(PathOf("keyring.json"), kek);
        using var again = loaded.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(Email);

        Assert.Equal("alice@example.com", again.DecryptString(ciphertext, "1"));
    }

    [Fact]
    public void The_keyring_file_holds_no_key_material_in_clear()
    {
        using var kek = LocalMasterKey.Generate();
        using var keyring = Keyring.CreateNew();
        keyring.Save(PathOf("keyring.json"), kek);
        var text = File.ReadAllText(PathOf("keyring.json"));

        foreach (var keyset in keyring.Keysets)
        {
            var material = InsecureCleartextKeyMaterial.Export(keyset, 1);
            Assert.DoesNotContain(Convert.ToBase64String(material), text, StringComparison.Ordinal);
            Assert.DoesNotContain(Convert.ToHexString(material), text, StringComparison.OrdinalIgnoreCase);
        }

        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(PathOf("keyring.json")));
        }
    }

    [Fact]
    public void Another_master_key_is_refused_naming_both_key_ids()
    {
        using var kek = LocalMasterKey.Generate();
        using var other = LocalMasterKey.Generate();
        using var keyring = Keyring.CreateNew();
        keyring.Save(PathOf("keyring.json"), kek);

        var error = Assert.Throws<KeyManagementException>(() => Keyring.Load(PathOf("keyring.json"), other));

        Assert.Contains(kek.KeyId, error.Message, StringComparison.Ordinal);
        Assert.Contains(other.KeyId, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_wrapped_key_moved_to_another_version_in_the_file_is_refused()
    {
        using var kek = LocalMasterKey.Generate();
        using var original = Keyring.CreateNew();
        using var keyring = original.With(Support.TestKeys.Rotated(original.Get(Keyring.FieldsKeyset)));
        keyring.Save(PathOf("keyring.json"), kek);
        var document = JsonNode.Parse(File.ReadAllText(PathOf("keyring.json")))!;
        var versions = document["keysets"]!.AsArray().Single(k => (string?)k!["name"] == "fields")!["versions"]!.AsArray();
        (versions[0]!["wrapped"], versions[1]!["wrapped"]) = (versions[1]!["wrapped"]!.DeepClone(), versions[0]!["wrapped"]!.DeepClone());
        File.WriteAllText(PathOf("keyring.json"), document.ToJsonString());

        var error = Assert.Throws<KeyManagementException>(() => Keyring.Load(PathOf("keyring.json"), kek));

        Assert.Contains("altered", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{ not json")]
    [InlineData("{\"format\":\"something-else\"}")]
    public void An_unreadable_keyring_is_reported_naming_the_file(string content)
    {
        using var kek = LocalMasterKey.Generate();
        File.WriteAllText(PathOf("bad.json"), content);

        var error = Assert.Throws<KeyManagementException>(() => Keyring.Load(PathOf("bad.json"), kek));

        Assert.Contains(PathOf("bad.json"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_keyring_says_how_to_create_one()
    {
        using var kek = LocalMasterKey.Generate();

        var error = Assert.Throws<KeyManagementException>(() => Keyring.Load(PathOf("missing.json"), kek));

        Assert.Contains("keys init", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_master_key_variable_is_named_in_the_error()
    {
        var variable = "CRM_TEST_MISSING_" + Guid.NewGuid().ToString("N")[..8];

        var error = Assert.Throws<KeyManagementException>(() => LocalMasterKey.FromEnvironment(variable));

        Assert.Contains(variable, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_malformed_master_key_is_refused_without_echoing_it()
    {
        var error = Assert.Throws<KeyManagementException>(() => LocalMasterKey.FromBase64("c2hvcnQta2V5LXNlY3JldA==", "The setting X"));

        Assert.Contains("The setting X", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("c2hvcnQta2V5LXNlY3JldA", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rewrapping_under_a_new_master_key_keeps_every_key()
    {
        using var oldKek = LocalMasterKey.Generate();
        using var newKek = LocalMasterKey.Generate();
        using var keyring = Keyring.CreateNew();
        using var encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "1");
        keyring.Save(PathOf("keyring.json"), oldKek);

        using (var loaded = Keyring.Load(PathOf("keyring.json"), oldKek))
        {
            loaded.Save(PathOf("keyring.json"), newKek);
        }

        using var rewrapped = Keyring.Load(PathOf("keyring.json"), newKek);
        using var again = rewrapped.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(Email);
        Assert.Equal("alice@example.com", again.DecryptString(ciphertext, "1"));
        Assert.Throws<KeyManagementException>(() => Keyring.Load(PathOf("keyring.json"), oldKek));
    }

    [Fact]
    public void A_backup_restores_every_key_on_a_machine_with_another_master_key()
    {
        using var keyring = Keyring.CreateNew();
        using var encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(Email);
        var ciphertext = encryptor.EncryptString("alice@example.com", "1");
        var backup = KeyringBackup.Create(keyring, "correct horse battery staple", 100_000);

        using var restored = KeyringBackup.Restore(backup, "correct horse battery staple");
        using var freshKek = LocalMasterKey.Generate();
        restored.Save(PathOf("fresh.json"), freshKek);
        using var loaded = Keyring.Load(PathOf("fresh.json"), freshKek);
        using var again = loaded.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(Email);

        Assert.Equal("alice@example.com", again.DecryptString(ciphertext, "1"));
        Assert.DoesNotContain(Convert.ToBase64String(InsecureCleartextKeyMaterial.Export(keyring.Get("fields"), 1)), System.Text.Encoding.UTF8.GetString(backup), StringComparison.Ordinal);
    }

    [Fact]
    public void A_backup_refuses_a_wrong_passphrase_and_an_altered_header()
    {
        using var keyring = Keyring.CreateNew();
        var backup = KeyringBackup.Create(keyring, "correct horse battery staple", 100_000);
        var altered = JsonNode.Parse(backup)!;
        altered["iterations"] = 100_001;

        Assert.Throws<KeyManagementException>(() => KeyringBackup.Restore(backup, "wrong horse battery staple!"));
        Assert.Throws<KeyManagementException>(() => KeyringBackup.Restore(System.Text.Encoding.UTF8.GetBytes(altered.ToJsonString()), "correct horse battery staple"));
        Assert.Throws<KeyManagementException>(() => KeyringBackup.Create(keyring, "too short"));
    }

    [Fact]
    public void Destroyed_versions_stay_destroyed_through_save_and_backup()
    {
        using var kek = LocalMasterKey.Generate();
        using var original = Keyring.CreateNew();
        var builder = KeysetBuilder.From(original.Get(Keyring.FieldsKeyset));
        builder.AddVersion();
        builder.Destroy(1);
        using var keyring = original.With(builder.Build());
        keyring.Save(PathOf("keyring.json"), kek);

        using var loaded = Keyring.Load(PathOf("keyring.json"), kek);
        using var restored = KeyringBackup.Restore(KeyringBackup.Create(loaded, "correct horse battery staple", 100_000), "correct horse battery staple");

        Assert.Equal(KeyStatus.Destroyed, loaded.Get("fields").Versions[0].Status);
        Assert.Equal(KeyStatus.Destroyed, restored.Get("fields").Versions[0].Status);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
