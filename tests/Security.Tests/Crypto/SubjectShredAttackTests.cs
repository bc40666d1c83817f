using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Crypto;

/// <summary>The security host with an erasure job of Acme's registered: a client holding <c>crypto:shred</c> for tenant acme only.</summary>
public sealed class ShredCryptoSecurityHost : CryptoSecurityHost
{
    public const string AcmeErasureClient = "acme-erasure";

    protected override IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>
    {
        ["Identity:Clients:4:ClientId"] = AcmeErasureClient,
        ["Identity:Clients:4:ClientSecret"] = Secret,
        ["Identity:Clients:4:FirstParty"] = "true",
        ["Identity:Clients:4:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:4:Scopes:0"] = "crypto:shred",
        ["Identity:Clients:4:Scopes:1"] = "crypto:encrypt",
        ["Identity:Clients:4:Tenants:0"] = "acme",
    };
}

/// <summary>
/// The shred endpoint (issue 16) is the most destructive call of the service: only a client holding <c>crypto:shred</c>
/// reaches it, only for its own tenants, and each shred is audited exactly once however often it is repeated.
/// </summary>
public sealed class SubjectShredAttackTests(ShredCryptoSecurityHost host) : IClassFixture<ShredCryptoSecurityHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_client_of_one_tenant_cannot_shred_another_tenants_subject_and_the_attempt_is_audited()
    {
        var globex = await host.ClientTokenAsync(CryptoSecurityHost.GlobexClient, "crypto:encrypt");
        await EncryptForAsync(globex, "globex", "victim-1");
        var acme = await host.ClientTokenAsync(ShredCryptoSecurityHost.AcmeErasureClient, "crypto:shred");

        var (status, body, response) = await host.PostAsync(acme, "crypto/v1/subjects/victim-1/shred", new { tenant = "globex" });
        response.Dispose();

        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("\"tenant\"", body, StringComparison.Ordinal);
        // Globex's subject keeps its key: a new value can still be encrypted for it (a shredded subject gets 409).
        await EncryptForAsync(globex, "globex", "victim-1");
        var events = (await host.CryptoEventsAsync()).Where(e => Text(e, "record_id") == "victim-1" && Text(e, "privilege") == "crypto_shred").ToList();
        var refused = Assert.Single(events);
        Assert.Equal("denied", Text(refused, "outcome"));
        Assert.Equal(ShredCryptoSecurityHost.AcmeErasureClient, Text(refused, "client_id"));
    }

    [Fact]
    public async Task A_client_without_the_shred_scope_is_refused_and_cannot_obtain_it()
    {
        var acmeCrm = await host.ClientTokenAsync(CryptoSecurityHost.AcmeClient, "crypto:encrypt crypto:decrypt crypto:index");
        await EncryptForAsync(acmeCrm, "acme", "kept-1");

        var (status, _, response) = await host.PostAsync(acmeCrm, "crypto/v1/subjects/kept-1/shred", new { tenant = "acme" });
        response.Dispose();
        using var http = host.CreateClient();
        var (tokenStatus, tokenBody) = await OAuthFlows.PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "crypto:shred" }, (CryptoSecurityHost.AcmeClient, CryptoSecurityHost.Secret));

        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal(HttpStatusCode.BadRequest, tokenStatus); // the client is not registered for the scope
        Assert.False(tokenBody.TryGetProperty("access_token", out _));
        await EncryptForAsync(acmeCrm, "acme", "kept-1");
    }

    [Fact]
    public async Task Shredding_is_idempotent_and_audited_once_per_effect()
    {
        var erasure = await host.ClientTokenAsync(ShredCryptoSecurityHost.AcmeErasureClient, "crypto:shred crypto:encrypt");
        await EncryptForAsync(erasure, "acme", "erased-1");

        var outcomes = new List<string?>();
        for (var i = 0; i < 3; i++)
        {
            var (status, body, response) = await host.PostAsync(erasure, "crypto/v1/subjects/erased-1/shred", new { tenant = "acme" });
            response.Dispose();
            Assert.True(status == HttpStatusCode.OK, body);
            outcomes.Add(JsonDocument.Parse(body).RootElement.GetProperty("outcome").GetString());
        }

        Assert.Equal(["key_destroyed", "already_shredded", "already_shredded"], outcomes);
        var shred = Assert.Single(await host.CryptoEventsAsync(), e => Text(e, "record_id") == "erased-1" && Text(e, "privilege") == "crypto_shred");
        Assert.Equal("success", Text(shred, "outcome"));
        Assert.Equal("admin_change", Text(shred, "action"));
        Assert.Equal(ShredCryptoSecurityHost.AcmeErasureClient, Text(shred, "user_id"));
        var (again, _, encrypt) = await host.PostAsync(erasure, "crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "r", subject = "erased-1", plaintext = "x@example.org" });
        encrypt.Dispose();
        Assert.Equal(HttpStatusCode.Conflict, again);
    }

    private async Task EncryptForAsync(string token, string tenant, string subject)
    {
        using var http = host.CreateClient(token);
        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant, table = "contact", column = "email", rowId = "row-" + subject, subject, plaintext = subject + "@example.org" }, Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"encrypt for {subject}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Cancel)}");
    }

    private static string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
