using System.Net;
using CrmSecurity.CrmAuthorization.Tests.Support;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.CrmAuthorization.Tests.AspNetCore;

/// <summary>
/// The host with a CRM app's client that must use DPoP (RFC 9449 §5.2), and server nonces required (§8): the app can
/// only get a decision-API token with proofs, and only with the nonce the server hands out.
/// </summary>
public sealed class DpopCrmHost : IdentityHost
{
    public const string Client = "crm-dpop";
    public const string Secret = "crm-dpop-secret";

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Dpop:RequireNonce"] = "true",
        ["Identity:Clients:0:ClientId"] = Client,
        ["Identity:Clients:0:ClientSecret"] = Secret,
        ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:0:Scopes:0"] = "authz.decide",
        ["Identity:Clients:0:RequireDpop"] = "true",
    };
}

/// <summary>AddCrmAuthorization with <c>UseDpop</c>: the app's decision-API token is DPoP-bound and every call carries a proof.</summary>
public sealed class CrmAuthorizationDpopTests(DpopCrmHost host) : IClassFixture<DpopCrmHost>
{
    private string Id(string userName) => host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == userName).Id;

    private async Task<string> AliceTokenAsync()
    {
        using var browser = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(browser, AuthorizeParameters(challenge, scope: "openid crm.api")));
        var (status, tokens) = await RedeemAsync(browser, code, verifier);
        Assert.True(status == HttpStatusCode.OK, $"{status} {tokens}");
        return tokens.GetProperty("access_token").GetString()!;
    }

    private Contact[] Contacts() => [new("c-1", "Jane", "Doe", "jane.doe@example.com", "+44 20 7946 0958", "1980-02-03", "AB123456C", Id("bob"), "sales-west", 7)];

    [Fact]
    public async Task An_app_using_DPoP_gets_decisions_with_a_client_that_requires_it_and_a_server_nonce()
    {
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts(), options =>
        {
            options.ClientId = DpopCrmHost.Client;
            options.ClientSecret = DpopCrmHost.Secret;
            options.UseDpop = true;
        });
        using var http = crm.CreateClient(await AliceTokenAsync());

        using var response = await http.GetAsync(new Uri("contacts/c-1", UriKind.Relative), Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, crm.Services.GetRequiredService<CrmDecisions>().Fetches);
    }

    [Fact]
    public async Task Without_DPoP_the_same_app_gets_no_decisions()
    {
        // The client requires DPoP: a bearer token request is refused, so the app denies (fails closed).
        await using var crm = await SampleCrm.StartAsync(host.Issuer, Contacts(), options =>
        {
            options.ClientId = DpopCrmHost.Client;
            options.ClientSecret = DpopCrmHost.Secret;
        });
        using var http = crm.CreateClient(await AliceTokenAsync());

        using var response = await http.GetAsync(new Uri("contacts/c-1", UriKind.Relative), Cancel);

        Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
    }
}
