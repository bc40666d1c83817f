using System.Net;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Crypto;

/// <summary>
/// Red-team finding 8a: decrypt was not tenant-bound. Client tokens carried no tenant, so one client decrypted three
/// tenants' data. Now every client is registered for its tenants (<c>Identity:Clients:N:Tenants</c>), its tokens carry
/// them as <c>tenant</c> claims, and the encryption service refuses any other tenant, for encrypt, decrypt and blind
/// indexes alike; a client registered for no tenant reaches none.
/// </summary>
public sealed class TenantBoundDecryptTests(CryptoSecurityHost host) : IClassFixture<CryptoSecurityHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_clients_own_token_carries_exactly_the_tenants_it_is_registered_for()
    {
        var acme = OAuthFlows.Payload(await host.ClientTokenAsync(CryptoSecurityHost.AcmeClient, "crypto:decrypt"));
        var demoCrm = OAuthFlows.Payload(await Personas.ClientTokenAsync(host, "demo-crm", "authz.decide"));

        Assert.Equal("acme", acme.GetProperty("tenant").GetString());
        Assert.Equal("demo", demoCrm.GetProperty("tenant").GetString());
    }

    [Fact]
    public async Task One_client_cannot_decrypt_another_tenants_values()
    {
        var acme = await host.ClientTokenAsync(CryptoSecurityHost.AcmeClient, "crypto:encrypt crypto:decrypt");
        var globex = await host.ClientTokenAsync(CryptoSecurityHost.GlobexClient, "crypto:encrypt crypto:decrypt");
        var ciphertext = await host.EncryptAsync(acme, "acme", "account", "iban", "acme-row-1", "DE44500105175407324931");

        // Globex's CRM asks for Acme's tenant outright ...
        var (asAcme, asAcmeBody, _) = await host.PostAsync(globex, "crypto/v1/decrypt",
            new { tenant = "acme", table = "account", column = "iban", rowId = "acme-row-1", ciphertext });
        // ... or presents Acme's ciphertext as one of its own tenant's.
        var (asGlobex, asGlobexBody, _) = await host.PostAsync(globex, "crypto/v1/decrypt",
            new { tenant = "globex", table = "account", column = "iban", rowId = "acme-row-1", ciphertext });

        Assert.Equal(HttpStatusCode.Forbidden, asAcme);
        var problem = JsonDocument.Parse(asAcmeBody).RootElement;
        Assert.Contains("not acme", problem.GetProperty("errors").GetProperty("tenant")[0].GetString(), StringComparison.Ordinal);
        // Its own tenant is checked further: globex-crm holds no field grant (no application user), and were it granted,
        // the ciphertext is bound to Acme's tenant and would fail as ColumnMismatch (tests/Server.Tests, CryptoServiceTests).
        Assert.Equal(HttpStatusCode.Forbidden, asGlobex);
        Assert.DoesNotContain("DE44", asAcmeBody + asGlobexBody, StringComparison.Ordinal);

        var refused = Assert.Single(await host.CryptoEventsAsync(), e => e.GetProperty("user_id").GetString() == CryptoSecurityHost.GlobexClient && e.GetProperty("tenant").GetString() == "acme");
        Assert.Equal("decrypt", refused.GetProperty("action").GetString());
        Assert.Equal("denied", refused.GetProperty("outcome").GetString());
    }

    [Fact]
    public async Task A_client_cannot_encrypt_for_or_index_values_of_a_tenant_it_does_not_serve()
    {
        var globex = await host.ClientTokenAsync(CryptoSecurityHost.GlobexClient, "crypto:encrypt crypto:index");

        // Planting values into another tenant's rows, or computing its blind indexes to test guesses against its table.
        var (encrypt, _, _) = await host.PostAsync(globex, "crypto/v1/encrypt",
            new { tenant = "acme", table = "contact", column = "email", rowId = "7", plaintext = "planted@example.org" });
        var (index, _, _) = await host.PostAsync(globex, "crypto/v1/blind-index",
            new { tenant = "acme", table = "contact", column = "email", index = "email_eq", value = "ceo@acme.example" });

        Assert.Equal(HttpStatusCode.Forbidden, encrypt);
        Assert.Equal(HttpStatusCode.Forbidden, index);
    }

    [Fact]
    public async Task A_users_token_reaches_only_the_users_own_tenant()
    {
        var backend = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:encrypt");
        var ciphertext = await host.EncryptAsync(backend, "demo", "contact", "phone", "c-1", "+14155550100");
        var erin = await host.MobileUserTokenAsync("erin");

        var (status, body, _) = await host.PostAsync(erin, "crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "phone", rowId = "c-1", ciphertext });

        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("tenant", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_configured_client_with_crypto_scopes_and_no_tenants_stops_start_up_naming_the_setting()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(host.Directory, "unused.db")}",
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = host.MasterKeyPath,
            ["Identity__Clients__0__ClientId"] = "legacy-crm",
            ["Identity__Clients__0__ClientSecret"] = "legacy-secret",
            ["Identity__Clients__0__GrantTypes__0"] = "client_credentials",
            ["Identity__Clients__0__Scopes__0"] = "crypto:decrypt",
        }, Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:Clients:0:Tenants is required for client 'legacy-crm'", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }
}
