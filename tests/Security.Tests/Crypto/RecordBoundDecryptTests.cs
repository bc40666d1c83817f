using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;

namespace CrmSecurity.Security.Tests.Crypto;

/// <summary>
/// Red-team finding 8b: decrypt was not record-bound. It checked the field grant only, so alice (a Sales West rep whose
/// field profile grants contact.phone) decrypted a Finance contact's phone number that the decision API denies her. Now a
/// decrypt that names a row passes the decision API's record check as well (read on the record: owner, business unit,
/// shares, hierarchy). Where the record lives is believed only from the CRM app's back end (its own token, or a token it
/// exchanged for the user, RFC 8693); from a user's own token only grants that hold wherever the record lives count.
/// </summary>
public sealed class RecordBoundDecryptTests(CryptoSecurityHost host) : IClassFixture<CryptoSecurityHost>
{
    private const string FinancePhone = "+33142685300";
    private const string AlicesPhone = "+14155550123";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Alice_cannot_decrypt_a_Finance_contacts_phone_number_that_the_decision_API_denies_her()
    {
        var frank = await Personas.UserIdAsync(host, "frank");
        var alice = await Personas.UserIdAsync(host, "alice");
        var record = new { owner = frank, business_unit = "finance" };
        var ciphertext = await StoreAsync("fin-contact-1", FinancePhone);

        // The decision API's answer for the same record ...
        using var decide = host.CreateClient(await Personas.ClientTokenAsync(host, "demo-crm", "authz.decide"));
        using var check = await decide.PostAsJsonAsync("authz/v1/check", new { user_id = alice, entity = "contact", action = "read", record }, Cancel);
        Assert.False((await check.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("allowed").GetBoolean());

        // ... is the encryption service's, whether the CRM back end asks for her with the record's true location ...
        var (viaBackend, backendBody, _) = await host.PostAsync(await host.BackendTokenForAsync("alice"), "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "phone", rowId = "fin-contact-1", ciphertext, record });
        // ... or she asks herself, with no location or claiming the record is hers.
        var mobile = await host.MobileUserTokenAsync("alice");
        var (bare, bareBody, _) = await host.PostAsync(mobile, "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "phone", rowId = "fin-contact-1", ciphertext });
        var (lying, lyingBody, _) = await host.PostAsync(mobile, "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "phone", rowId = "fin-contact-1", ciphertext, record = new { owner = alice, business_unit = "sales-west" } });

        Assert.Equal(HttpStatusCode.Forbidden, viaBackend);
        Assert.Equal(HttpStatusCode.Forbidden, bare);
        Assert.Equal(HttpStatusCode.Forbidden, lying);
        Assert.Contains("cannot vouch", lyingBody, StringComparison.Ordinal);
        Assert.DoesNotContain(FinancePhone, backendBody + bareBody + lyingBody, StringComparison.Ordinal);
        var refusals = (await host.CryptoEventsAsync()).Where(e => e.TryGetProperty("record_id", out var id) && id.GetString() == "fin-contact-1" && e.GetProperty("user_id").GetString() == alice).ToList();
        Assert.Equal(3, refusals.Count);
        Assert.All(refusals, e => Assert.Equal("denied", e.GetProperty("outcome").GetString()));
    }

    [Fact]
    public async Task The_CRM_back_end_acting_for_alice_decrypts_her_own_contacts_phone_and_the_decrypt_is_audited()
    {
        var alice = await Personas.UserIdAsync(host, "alice");
        var ciphertext = await StoreAsync("west-contact-1", AlicesPhone);

        var (status, body, response) = await host.PostAsync(await host.BackendTokenForAsync("alice"), "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "phone", rowId = "west-contact-1", ciphertext, record = new { owner = alice, business_unit = "sales-west" } });

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(AlicesPhone, JsonDocument.Parse(body).RootElement.GetProperty("plaintext").GetString());
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
        var audit = Assert.Single(await host.CryptoEventsAsync(), e => e.TryGetProperty("record_id", out var id) && id.GetString() == "west-contact-1");
        Assert.Equal("success", audit.GetProperty("outcome").GetString());
        Assert.Equal(alice, audit.GetProperty("user_id").GetString());
        Assert.Equal(CryptoSecurityHost.BackendClient, audit.GetProperty("client_id").GetString());
        Assert.Contains("owns the record", audit.GetProperty("details").GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(AlicesPhone, await File.ReadAllTextAsync(host.EventFile, Cancel), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_whose_read_covers_every_record_decrypts_with_her_own_token()
    {
        // Erin (support) reads contacts at organization depth and holds read_unmasked on phone numbers: no location is
        // needed to decide, so her own token is enough.
        var ciphertext = await StoreAsync("fin-contact-2", FinancePhone);

        var (status, body, _) = await host.PostAsync(await host.MobileUserTokenAsync("erin"), "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "phone", rowId = "fin-contact-2", ciphertext });

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(FinancePhone, JsonDocument.Parse(body).RootElement.GetProperty("plaintext").GetString());
    }

    [Fact]
    public async Task A_record_location_the_decision_API_would_not_accept_is_a_problem_naming_the_field()
    {
        var ciphertext = await StoreAsync("west-contact-2", AlicesPhone);

        var (status, body, _) = await host.PostAsync(await host.BackendTokenForAsync("alice"), "crypto/v1/decrypt",
            new { tenant = "demo", table = "contact", column = "phone", rowId = "west-contact-2", ciphertext, record = new { id = "another-row", owner_kind = "robot" } });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var errors = JsonDocument.Parse(body).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty("record.id", out _));
        Assert.True(errors.TryGetProperty("record.owner_kind", out _));
    }

    /// <summary>The CRM back end stores a contact's phone number, bound to its row.</summary>
    private async Task<string> StoreAsync(string rowId, string phone) =>
        await host.EncryptAsync(await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt"), "demo", "contact", "phone", rowId, phone);
}
