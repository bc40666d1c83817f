using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace CrmSecurity.Security.Tests.Crypto;

/// <summary>
/// What the red team did not try against the encryption service (OWASP ASVS 4.0.3 V6, V8, V13): ciphertexts moved
/// between rows and columns, deterministic mode on columns not meant for it, errors that could reveal a value, answers
/// kept in caches, oversized requests, and access events that could carry a value.
/// </summary>
public sealed class CiphertextMisuseTests(CryptoSecurityHost host) : IClassFixture<CryptoSecurityHost>
{
    private const string NationalId = "1-85-07-75-123-456-78";
    private const string Phone = "+33142685399";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_ciphertext_copied_to_another_row_or_column_does_not_decrypt_there()
    {
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt");
        var ciphertext = await host.EncryptAsync(backend, "demo", "contact", "phone", "row-a", Phone);
        var erin = await host.MobileUserTokenAsync("erin"); // reads every contact's phone: only the binding can refuse

        var (otherRow, rowBody, _) = await host.PostAsync(erin, "crypto/v1/decrypt", new { tenant = "demo", table = "contact", column = "phone", rowId = "row-b", ciphertext });
        var (otherColumn, columnBody, _) = await host.PostAsync(erin, "crypto/v1/decrypt", new { tenant = "demo", table = "contact", column = "mobile", rowId = "row-a", ciphertext });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, otherRow);
        Assert.Equal("RowMismatch", JsonDocument.Parse(rowBody).RootElement.GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, otherColumn);
        Assert.Equal("ColumnMismatch", JsonDocument.Parse(columnBody).RootElement.GetProperty("reason").GetString());
        Assert.DoesNotContain(Phone, rowBody + columnBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deterministic_mode_is_refused_on_a_column_not_declared_deterministic()
    {
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt");

        // Deterministic phone numbers would show which contacts share a number, and make the service an equality oracle.
        var (refused, body, _) = await host.PostAsync(backend, "crypto/v1/encrypt", new { tenant = "demo", table = "contact", column = "phone", mode = "deterministic", plaintext = Phone });
        var declared = await host.EncryptAsync(backend, "demo", "contact", "national_id", null, NationalId, "deterministic");

        Assert.Equal(HttpStatusCode.BadRequest, refused);
        Assert.Contains("not declared deterministic", JsonDocument.Parse(body).RootElement.GetProperty("errors").GetProperty("mode")[0].GetString(), StringComparison.Ordinal);
        Assert.StartsWith("cf1:", declared, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deterministic_value_without_its_record_decrypts_only_for_a_reader_whose_grant_covers_every_record()
    {
        const string mobile = "+447700900123";
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt");
        var ciphertext = await host.EncryptAsync(backend, "demo", "contact", "mobile", null, mobile, "deterministic");

        // Both may see mobile numbers unmasked. Erin (support) reads every contact; bob (sales manager) only his units'
        // contacts, and a value not bound to a row cannot be placed in his units: without a record he gets nothing.
        var (erin, erinBody, _) = await host.PostAsync(await host.MobileUserTokenAsync("erin"), "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "mobile", mode = "deterministic", ciphertext });
        var (bob, bobBody, _) = await host.PostAsync(await host.MobileUserTokenAsync("bob"), "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "mobile", mode = "deterministic", ciphertext });

        Assert.Equal(HttpStatusCode.OK, erin);
        Assert.Equal(mobile, JsonDocument.Parse(erinBody).RootElement.GetProperty("plaintext").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, bob);
        Assert.Contains("names no record", bobBody, StringComparison.Ordinal);
        Assert.DoesNotContain(mobile, bobBody, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Errors_name_what_failed_and_never_echo_the_value_or_key_material()
    {
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt");
        var ciphertext = await host.EncryptAsync(backend, "demo", "contact", "phone", "row-t", Phone);
        var tampered = ciphertext[..^4] + (ciphertext[^4] == 'A' ? "B" : "A") + ciphertext[^3..];
        var erin = await host.MobileUserTokenAsync("erin");

        var (status, body, response) = await host.PostAsync(erin, "crypto/v1/decrypt", new { tenant = "demo", table = "contact", column = "phone", rowId = "row-t", ciphertext = tampered });
        var (badEncoding, encodingBody, _) = await host.PostAsync(erin, "crypto/v1/decrypt", new { tenant = "demo", table = "contact", column = "phone", rowId = "row-t", ciphertext = "cf1:not base64url!" });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
        Assert.Equal("AuthenticationFailed", JsonDocument.Parse(body).RootElement.GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, badEncoding);
        Assert.Equal("InvalidEncoding", JsonDocument.Parse(encodingBody).RootElement.GetProperty("reason").GetString());
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
        var keyring = await File.ReadAllTextAsync(host.KeyringPath, Cancel);
        foreach (var text in new[] { body, encodingBody })
        {
            Assert.DoesNotContain(Phone, text, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
            // No wrapped key of the keyring (its base64 "wrapped" values) appears in an answer.
            foreach (var wrapped in JsonDocument.Parse(keyring).RootElement.GetProperty("keysets").EnumerateArray()
                .SelectMany(k => k.GetProperty("versions").EnumerateArray()).Select(v => v.GetProperty("wrapped").GetString()!))
            {
                Assert.DoesNotContain(wrapped[..16], text, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public async Task A_request_above_the_size_limit_is_refused_before_any_work()
    {
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt");
        using var http = host.CreateClient(backend);

        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt",
            new { tenant = "demo", table = "contact", column = "notes", rowId = "1", plaintext = new string('x', 300 * 1024) }, Cancel);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task Access_events_of_decrypts_name_the_field_and_record_but_never_carry_the_value()
    {
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt");
        const string secret = "+33142685311";
        var ciphertext = await host.EncryptAsync(backend, "demo", "contact", "phone", "row-e", secret);

        var (status, _, _) = await host.PostAsync(await host.MobileUserTokenAsync("erin"), "crypto/v1/decrypt", new { tenant = "demo", table = "contact", column = "phone", rowId = "row-e", ciphertext });
        var (denied, _, _) = await host.PostAsync(await host.MobileUserTokenAsync("grace"), "crypto/v1/decrypt", new { tenant = "demo", table = "contact", column = "phone", rowId = "row-e", ciphertext });

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.Forbidden, denied);
        var events = (await host.CryptoEventsAsync()).Where(e => e.TryGetProperty("record_id", out var id) && id.GetString() == "row-e").ToList();
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal(["phone"], e.GetProperty("fields").EnumerateArray().Select(f => f.GetString())));
        Assert.DoesNotContain(secret, await File.ReadAllTextAsync(host.EventFile, Cancel), StringComparison.Ordinal);
        // Identity's access-event table (and so the analyzer) gets the same events: with the record, without the value.
        var stored = await WaitForStoredAsync("record row-e", 2);
        Assert.All(stored, row => Assert.DoesNotContain(secret, string.Join('|', row.Values), StringComparison.Ordinal));
    }

    private async Task<List<Dictionary<string, object?>>> WaitForStoredAsync(string details, int count)
    {
        for (var attempt = 0; ; attempt++)
        {
            var rows = await host.QueryAsync("SELECT * FROM identity_access_events WHERE Action = 'decrypt' AND Details LIKE $d", ("$d", $"%{details}%"));
            if (rows.Count >= count || attempt > 100)
            {
                Assert.Equal(count, rows.Count);
                return rows;
            }

            await Task.Delay(50, Cancel);
        }
    }
}
