using System.Net;
using System.Text.Json;
using CrmSecurity.Security.Tests.Analyzer;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Crypto;

/// <summary>
/// The batch and rewrap endpoints of the encryption service (issue 16) keep every guarantee of the single decrypt: each
/// item is tenant-bound and record-bound on its own, each value decrypted is one access event, and a batch cannot be
/// made larger than the service answers. Rewrap never yields a plaintext and cannot move a value to another tenant,
/// row or column.
/// </summary>
public sealed class BatchAndRewrapAttackTests(CryptoSecurityHost host) : IClassFixture<CryptoSecurityHost>
{
    private const string AlicesPhone = "+14155550177";
    private const string AcmesIban = "DE89370400440532013000";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_batch_mixing_another_tenants_ciphertext_gets_that_item_refused_and_the_others_served()
    {
        var alice = await Personas.UserIdAsync(host, "alice");
        var record = new { owner = alice, business_unit = "sales-west" };
        var own = await StoreAsync("mix-own", AlicesPhone);
        var acmes = await host.EncryptAsync(await host.ClientTokenAsync(CryptoSecurityHost.AcmeClient, "crypto:encrypt"), "acme", "contact", "phone", "mix-acme", AcmesIban);

        // The demo CRM's back end, acting for alice, slips Acme's value into a batch: once under Acme's tenant, once as
        // its own tenant's value (claiming alice owns the row, which the back end may declare).
        var (status, body, _) = await host.PostAsync(await host.BackendTokenForAsync("alice"), "crypto/v1/decrypt/batch", new
        {
            items = new object[]
            {
                new { tenant = "demo", table = "contact", column = "phone", rowId = "mix-own", ciphertext = own, record },
                new { tenant = "acme", table = "contact", column = "phone", rowId = "mix-acme", ciphertext = acmes, record },
                new { tenant = "demo", table = "contact", column = "phone", rowId = "mix-acme", ciphertext = acmes, record },
            },
        });

        Assert.Equal(HttpStatusCode.OK, status);
        var results = JsonDocument.Parse(body).RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(AlicesPhone, results[0].GetProperty("result").GetProperty("plaintext").GetString());
        Assert.Equal(403, results[1].GetProperty("error").GetProperty("status").GetInt32());
        Assert.Contains("not acme", results[1].GetProperty("error").GetProperty("errors").GetProperty("items[1].tenant")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(422, results[2].GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("ColumnMismatch", results[2].GetProperty("error").GetProperty("reason").GetString());
        Assert.DoesNotContain(AcmesIban, body, StringComparison.Ordinal);
        Assert.DoesNotContain("DE89", body, StringComparison.Ordinal);

        var events = (await host.CryptoEventsAsync()).Where(e => RecordId(e) is "mix-own" or "mix-acme").ToList();
        Assert.Equal(["mix-own:demo:success", "mix-acme:acme:denied", "mix-acme:demo:error"],
            events.Select(e => $"{RecordId(e)}:{e.GetProperty("tenant").GetString()}:{e.GetProperty("outcome").GetString()}"));
        Assert.All(events, e => Assert.Equal(alice, e.GetProperty("user_id").GetString()));
    }

    [Fact]
    public async Task A_batch_decrypt_is_one_access_event_per_item_each_checked_against_its_own_record()
    {
        var alice = await Personas.UserIdAsync(host, "alice");
        var frank = await Personas.UserIdAsync(host, "frank");
        var rows = Enumerable.Range(1, 4).Select(i => $"n-events-{i}").ToArray();
        var items = new List<object>();
        foreach (var row in rows)
        {
            items.Add(new { tenant = "demo", table = "contact", column = "phone", rowId = row, ciphertext = await StoreAsync(row, AlicesPhone), record = new { owner = alice, business_unit = "sales-west" } });
        }

        // A fifth item is a Finance contact: the decision API denies it to alice, inside a batch as alone.
        items.Add(new { tenant = "demo", table = "contact", column = "phone", rowId = "n-events-fin", ciphertext = await StoreAsync("n-events-fin", AlicesPhone), record = new { owner = frank, business_unit = "finance" } });

        var (status, body, _) = await host.PostAsync(await host.BackendTokenForAsync("alice"), "crypto/v1/decrypt/batch", new { items });

        Assert.Equal(HttpStatusCode.OK, status);
        var results = JsonDocument.Parse(body).RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.All(results.Take(4), r => Assert.Equal(AlicesPhone, r.GetProperty("result").GetProperty("plaintext").GetString()));
        Assert.Equal(403, results[4].GetProperty("error").GetProperty("status").GetInt32());
        var events = (await host.CryptoEventsAsync()).Where(e => RecordId(e)?.StartsWith("n-events-", StringComparison.Ordinal) == true).ToList();
        Assert.Equal(5, events.Count);
        Assert.Equal([.. rows, "n-events-fin"], events.Select(RecordId));
        Assert.Equal(["success", "success", "success", "success", "denied"], events.Select(e => e.GetProperty("outcome").GetString()));
        Assert.All(events, e => Assert.Equal("decrypt", e.GetProperty("action").GetString()));
    }

    [Fact]
    public async Task A_batch_over_the_limit_is_refused_before_any_item_is_decrypted()
    {
        var ciphertext = await StoreAsync("over-limit", AlicesPhone);
        var alice = await Personas.UserIdAsync(host, "alice");
        var items = Enumerable.Range(0, 1001)
            .Select(_ => new { tenant = "demo", table = "contact", column = "phone", rowId = "over-limit", ciphertext, record = new { owner = alice, business_unit = "sales-west" } })
            .ToArray();

        var (status, body, _) = await host.PostAsync(await host.BackendTokenForAsync("alice"), "crypto/v1/decrypt/batch", new { items });

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("limit of 1000", JsonDocument.Parse(body).RootElement.GetProperty("errors").GetProperty("items")[0].GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(AlicesPhone, body, StringComparison.Ordinal);
        Assert.DoesNotContain(await host.CryptoEventsAsync(), e => RecordId(e) == "over-limit");
    }

    [Fact]
    public async Task A_rewrap_cannot_move_a_value_to_another_tenant_row_or_column_and_never_returns_the_plaintext()
    {
        var acmes = await host.EncryptAsync(await host.ClientTokenAsync(CryptoSecurityHost.AcmeClient, "crypto:encrypt"), "acme", "account", "iban", "rw-acme", AcmesIban);
        var globex = await host.ClientTokenAsync(CryptoSecurityHost.GlobexClient, "crypto:rewrap");

        // Globex's CRM asks for Acme's tenant outright, then presents the value as its own tenant's, another row's and
        // another column's: the value is opened only for the context it was made for, and sealed only for that one.
        var (asAcme, asAcmeBody, _) = await host.PostAsync(globex, "crypto/v1/rewrap", new { tenant = "acme", table = "account", column = "iban", rowId = "rw-acme", ciphertext = acmes });
        var (_, batchBody, _) = await host.PostAsync(globex, "crypto/v1/rewrap/batch", new
        {
            items = new object[]
            {
                new { tenant = "globex", table = "account", column = "iban", rowId = "rw-acme", ciphertext = acmes },
                new { tenant = "globex", table = "account", column = "notes", rowId = "rw-acme", ciphertext = acmes },
            },
        });
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:rewrap");
        var own = await StoreAsync("rw-own", AlicesPhone);
        var (otherRow, otherRowBody, _) = await host.PostAsync(backend, "crypto/v1/rewrap", new { tenant = "demo", table = "contact", column = "phone", rowId = "rw-other", ciphertext = own });

        Assert.Equal(HttpStatusCode.Forbidden, asAcme);
        var results = JsonDocument.Parse(batchBody).RootElement.GetProperty("results").EnumerateArray().ToArray();
        Assert.All(results, r => Assert.Equal("ColumnMismatch", r.GetProperty("error").GetProperty("reason").GetString()));
        Assert.All(results, r => Assert.False(r.TryGetProperty("result", out _)));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, otherRow);
        Assert.Contains("RowMismatch", otherRowBody, StringComparison.Ordinal);
        Assert.DoesNotContain("DE89", asAcmeBody + batchBody, StringComparison.Ordinal);
        Assert.DoesNotContain(AlicesPhone, otherRowBody, StringComparison.Ordinal);
        var refused = (await host.CryptoEventsAsync()).Where(e => RecordId(e) == "rw-acme").ToList();
        Assert.Equal(["acme:denied", "globex:error", "globex:error"], refused.Select(e => $"{e.GetProperty("tenant").GetString()}:{e.GetProperty("outcome").GetString()}"));
        Assert.All(refused, e => Assert.Equal("update", e.GetProperty("action").GetString()));
    }

    [Fact]
    public async Task No_user_token_carries_the_rewrap_scope()
    {
        // The back end is registered for crypto:rewrap, but it is client-only (Identity:ApiScopes:N:ClientCredentialsOnly):
        // alice signing in to it and asking for it gets no token with it, and neither does an exchange of her token.
        var signIn = await AnalyzerCalls.TryUserTokenAsync(host, "alice", "openid crypto:rewrap", CryptoSecurityHost.BackendClient, CryptoSecurityHost.Secret, CryptoSecurityHost.BackendRedirect);
        using var http = host.CreateClient();
        var user = await OAuthFlows.SignInAsync(http, "alice", Personas.Passwords["alice"], "openid crypto:decrypt", CryptoSecurityHost.BackendClient, CryptoSecurityHost.Secret, CryptoSecurityHost.BackendRedirect);
        var (exchange, exchangeBody) = await OAuthFlows.PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = CryptoSecurityHost.TokenExchange,
            ["subject_token"] = user.GetProperty("access_token").GetString()!,
            ["subject_token_type"] = "urn:ietf:params:oauth:token-type:access_token",
            ["scope"] = "crypto:rewrap",
        }, (CryptoSecurityHost.BackendClient, CryptoSecurityHost.Secret));

        Assert.True(signIn is null || !OAuthFlows.Payload(signIn).GetProperty("scope").GetString()!.Contains("crypto:rewrap", StringComparison.Ordinal), "alice's sign-in got crypto:rewrap");
        Assert.Equal(HttpStatusCode.BadRequest, exchange);
        Assert.Equal("invalid_scope", exchangeBody.GetProperty("error").GetString());
    }

    /// <summary>The CRM back end stores a contact's phone number, bound to its row.</summary>
    private async Task<string> StoreAsync(string rowId, string phone) =>
        await host.EncryptAsync(await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt"), "demo", "contact", "phone", rowId, phone);

    private static string? RecordId(JsonElement accessEvent) =>
        accessEvent.TryGetProperty("record_id", out var id) ? id.GetString() : null;
}
