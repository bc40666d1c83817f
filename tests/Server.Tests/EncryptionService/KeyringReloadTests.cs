using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using CrmSecurity.Crypto.Service;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>The service host looking at its keyring file often (a fifth of a second), granting contact.email to the app.</summary>
public sealed class ReloadingCryptoServiceHost : CryptoServiceHost
{
    internal override IUnmaskedFieldAccess? Access { get; } = new GrantsContactEmail();

    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?> { ["Crypto:KeyringReloadSeconds"] = "0.2" };

    private sealed class GrantsContactEmail : IUnmaskedFieldAccess
    {
        public ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(request is { Entity: "contact", Field: "email" }
                ? UnmaskedFieldDecision.Allow("test grant read_unmasked contact.email")
                : UnmaskedFieldDecision.Deny("test seam: no grant on this field"));
    }
}

/// <summary>
/// Hot keyring reload (issue 16) through the real host: a verb run in another process rotates or destroys, and the
/// running service follows without a restart; a torn keyring file is never loaded and never stops the service.
/// </summary>
public sealed class KeyringReloadTests(ReloadingCryptoServiceHost host) : IClassFixture<ReloadingCryptoServiceHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_running_service_follows_rotate_and_destroy_made_by_verbs_and_keeps_its_keyring_when_the_file_is_torn()
    {
        using var app = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var (old, version) = await EncryptAsync(app, "r-1");
        Assert.Equal(1u, version);

        // Another process rotates the keyring the service is running on, staged first (every host learns version 2
        // before any encrypts with it), then promoted.
        var stage = await host.RunVerbAsync("keys", "rotate", "--stage");
        Assert.True(stage.ExitCode == 0, stage.Output);
        await WaitForAsync(() => host.Logs.Any(l => l.Contains("fields primary v1 [v1:Active v2:Active]", StringComparison.Ordinal)));
        Assert.Equal(1u, (await EncryptAsync(app, "r-1")).Version);
        var rotate = await host.RunVerbAsync("keys", "rotate");
        Assert.True(rotate.ExitCode == 0, rotate.Output);
        var (current, rotated) = await EncryptUntilVersionAsync(app, 2);
        Assert.Equal(2u, rotated);
        Assert.Equal("r-1@example.org", (await DecryptAsync(app, old)).GetProperty("plaintext").GetString());
        Assert.Contains(host.Logs, l => l.Contains("Reloaded the keyring", StringComparison.Ordinal) && l.Contains("fields primary v2", StringComparison.Ordinal));

        // The only stored value is under version 2 now: version 1 can be destroyed, and the service follows that too.
        await StoreAsync(current);
        var destroy = await host.RunVerbAsync("keys", "destroy", "--version", "1", "--scan", "stored_contact:email");
        Assert.True(destroy.ExitCode == 0, destroy.Output);
        var failure = await DecryptUntilFailureAsync(app, old);
        Assert.Equal("KeyDestroyed", failure.GetProperty("reason").GetString());
        Assert.Contains("destroyed", failure.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // A torn write (half the file, as a copy cut off would leave it) is refused with an error naming the file; the
        // service goes on with the keyring it has.
        var whole = await File.ReadAllBytesAsync(host.KeyringPath, Cancel);
        await File.WriteAllBytesAsync(host.KeyringPath, whole[..(whole.Length / 2)], Cancel);
        await WaitForAsync(() => host.Logs.Any(l => l.Contains("changed but was not loaded", StringComparison.Ordinal) && l.Contains(host.KeyringPath, StringComparison.Ordinal)));
        var (afterTear, stillVersion) = await EncryptAsync(app, "r-1");
        Assert.Equal(2u, stillVersion);
        Assert.Equal("r-1@example.org", (await DecryptAsync(app, afterTear)).GetProperty("plaintext").GetString());
    }

    private static async Task<(string Ciphertext, uint Version)> EncryptAsync(HttpClient http, string rowId)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId, plaintext = rowId + "@example.org" }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return (body.GetProperty("ciphertext").GetString()!, body.GetProperty("keyVersion").GetUInt32());
    }

    private static async Task<JsonElement> DecryptAsync(HttpClient http, string ciphertext)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "r-1", ciphertext }, Cancel);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
    }

    // The reload happens on the service's own schedule: wait for it (bounded), asserting what it did, not how fast.
    private static async Task<(string Ciphertext, uint Version)> EncryptUntilVersionAsync(HttpClient http, uint version)
    {
        (string, uint) last = default;
        for (var attempt = 0; attempt < 300 && last.Item2 != version; attempt++)
        {
            last = await EncryptAsync(http, "r-1");
            if (last.Item2 != version)
            {
                await Task.Delay(100, Cancel);
            }
        }

        return last;
    }

    private static async Task<JsonElement> DecryptUntilFailureAsync(HttpClient http, string ciphertext)
    {
        var body = default(JsonElement);
        for (var attempt = 0; attempt < 300; attempt++)
        {
            body = await DecryptAsync(http, ciphertext);
            if (body.TryGetProperty("reason", out _))
            {
                break;
            }

            await Task.Delay(100, Cancel);
        }

        return body;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        for (var attempt = 0; attempt < 300 && !condition(); attempt++)
        {
            await Task.Delay(100, Cancel);
        }

        Assert.True(condition());
    }

    private async Task StoreAsync(string ciphertext)
    {
        await using var connection = new SqliteConnection($"Data Source={host.DatabasePath}");
        await connection.OpenAsync(Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = "CREATE TABLE stored_contact (id INTEGER PRIMARY KEY, email TEXT); INSERT INTO stored_contact (id, email) VALUES (1, $email)";
        command.Parameters.AddWithValue("$email", ciphertext);
        await command.ExecuteNonQueryAsync(Cancel);
    }
}
