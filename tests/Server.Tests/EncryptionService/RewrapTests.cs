using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>
/// <c>POST /crypto/v1/rewrap</c> (and its batch) through the real host, across a real <c>keys rotate</c> and restart:
/// the value moves to the new key version inside the service, for the context it was made for, and no plaintext reaches
/// the caller, who needs the rewrap scope and nothing more.
/// </summary>
public sealed class RewrapTests(GrantingCryptoServiceHost host) : IClassFixture<GrantingCryptoServiceHost>
{
    private const string Email = "rotate-me@example.org";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task After_keys_rotate_a_rewrapped_value_carries_the_new_version_and_still_decrypts()
    {
        var (randomized, deterministic) = await StoreAsync("rw-1");
        using (var before = host.CreateClient(await host.TokenAsync(CryptoServiceHost.RewrapOnlyClient, "crypto:rewrap")))
        {
            // Already under the primary version: verified, and handed back as it is (nothing to write).
            var same = await RewrapAsync(before, new { tenant = "acme", table = "contact", column = "email", rowId = "rw-1", ciphertext = randomized });
            Assert.Equal(randomized, same.GetProperty("ciphertext").GetString());
            Assert.Equal(1u, same.GetProperty("keyVersion").GetUInt32());
        }

        await host.RestartAsync(async () =>
        {
            var (exitCode, output) = await host.RunVerbAsync("keys", "rotate");
            Assert.True(exitCode == 0, output);
        });

        using var rotation = host.CreateClient(await host.TokenAsync(CryptoServiceHost.RewrapOnlyClient, "crypto:rewrap"));
        var moved = await RewrapAsync(rotation, new { tenant = "acme", table = "contact", column = "email", rowId = "rw-1", ciphertext = randomized });
        using var batch = await rotation.PostAsJsonAsync("crypto/v1/rewrap/batch", new
        {
            items = new object[]
            {
                new { tenant = "acme", table = "contact", column = "email", mode = "deterministic", ciphertext = deterministic },
                new { tenant = "acme", table = "contact", column = "email", rowId = "rw-1", ciphertext = randomized[..^4] + "AAAA" },
            },
        }, Cancel);
        var results = (await batch.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("results").EnumerateArray().ToArray();

        Assert.Equal(2u, moved.GetProperty("keyVersion").GetUInt32());
        Assert.Equal(1u, moved.GetProperty("previousKeyVersion").GetUInt32());
        Assert.NotEqual(randomized, moved.GetProperty("ciphertext").GetString());
        Assert.Equal(2u, results[0].GetProperty("result").GetProperty("keyVersion").GetUInt32());
        Assert.Equal(422, results[1].GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("AuthenticationFailed", results[1].GetProperty("error").GetProperty("reason").GetString());

        // The new values decrypt (and the old one still does: version 1 is decrypt-only, not gone).
        using var reader = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:decrypt"));
        Assert.Equal(Email, await DecryptAsync(reader, new { tenant = "acme", table = "contact", column = "email", rowId = "rw-1", ciphertext = moved.GetProperty("ciphertext").GetString() }));
        Assert.Equal(Email, await DecryptAsync(reader, new { tenant = "acme", table = "contact", column = "email", mode = "deterministic", ciphertext = results[0].GetProperty("result").GetProperty("ciphertext").GetString() }));
        Assert.Equal(Email, await DecryptAsync(reader, new { tenant = "acme", table = "contact", column = "email", rowId = "rw-1", ciphertext = randomized }));

        // Audited as updates of the field, naming the versions; never the value.
        var rewraps = (await host.FileEventsAsync()).Where(e => e.GetProperty("action").GetString() == "update").ToList();
        Assert.Contains(rewraps, e => e.GetProperty("details").GetString() == "rewrap: key version 1 -> 2" && e.GetProperty("record_id").GetString() == "rw-1"
            && e.GetProperty("user_id").GetString() == CryptoServiceHost.RewrapOnlyClient && e.GetProperty("outcome").GetString() == "success");
        Assert.Contains(rewraps, e => e.GetProperty("outcome").GetString() == "error");
        Assert.DoesNotContain(Email, await File.ReadAllTextAsync(host.EventFile, Cancel), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_caller_with_only_the_rewrap_scope_cannot_obtain_plaintext()
    {
        var (randomized, _) = await StoreAsync("rw-2");
        using var rotation = host.CreateClient(await host.TokenAsync(CryptoServiceHost.RewrapOnlyClient, "crypto:rewrap"));
        var request = new { tenant = "acme", table = "contact", column = "email", rowId = "rw-2", ciphertext = randomized };

        using var rewrap = await rotation.PostAsJsonAsync("crypto/v1/rewrap", request, Cancel);
        using var decrypt = await rotation.PostAsJsonAsync("crypto/v1/decrypt", request, Cancel);
        using var decryptBatch = await rotation.PostAsJsonAsync("crypto/v1/decrypt/batch", new { items = new[] { request } }, Cancel);
        using var encrypt = await rotation.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "rw-2", plaintext = "planted@example.org" }, Cancel);
        using var widen = await TokenResponseAsync(CryptoServiceHost.RewrapOnlyClient, "crypto:rewrap crypto:decrypt");
        var rewrapped = await rewrap.Content.ReadAsStringAsync(Cancel);

        Assert.Equal(HttpStatusCode.OK, rewrap.StatusCode);
        Assert.DoesNotContain(Email, rewrapped, StringComparison.Ordinal);
        Assert.DoesNotContain("rotate-me", rewrapped, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, decrypt.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, decryptBatch.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, encrypt.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, widen.StatusCode); // invalid_scope: the client is not registered for decrypt
    }

    private async Task<(string Randomized, string Deterministic)> StoreAsync(string rowId)
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt"));
        using var randomized = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId, plaintext = Email }, Cancel);
        using var deterministic = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", mode = "deterministic", plaintext = Email }, Cancel);
        return (
            (await randomized.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("ciphertext").GetString()!,
            (await deterministic.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("ciphertext").GetString()!);
    }

    private static async Task<JsonElement> RewrapAsync(HttpClient http, object request)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/rewrap", request, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"rewrap failed: {(int)response.StatusCode} {body}");
        return body;
    }

    private static async Task<string?> DecryptAsync(HttpClient http, object request)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", request, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"decrypt failed: {(int)response.StatusCode} {body}");
        return body.GetProperty("plaintext").GetString();
    }

    private async Task<HttpResponseMessage> TokenResponseAsync(string client, string scope)
    {
        using var http = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue(
            "Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{client}:{CryptoServiceHost.Secret}")));
        return await http.SendAsync(request, Cancel);
    }
}
