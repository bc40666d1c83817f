using System.Net;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Tests.Admin;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Federation;

/// <summary>
/// Two real hosts of this service: the upstream acts as the company's OpenID Connect provider, the downstream (this
/// service as users meet it) has it configured twice, as <c>corp</c> (just-in-time creation, role mappings) and as
/// <c>partner</c> (no just-in-time creation). Both are registered as clients of the upstream.
/// </summary>
public sealed class FederatedHosts : IAsyncLifetime
{
    public const string CorpClient = "crm-downstream";
    public const string PartnerClient = "crm-downstream-partner";

    public const string MuteClient = "crm-downstream-mute";
    public const string Secret = "downstream-secret-4f1c9a7e2d";

    public IdentityHost Upstream { get; private set; } = null!;

    public IdentityHost Downstream { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Upstream = new IdentityHost();
        await Upstream.InitializeAsync();
        var corp = "Identity:Federation:Providers:corp:";
        var partner = "Identity:Federation:Providers:partner:";
        var mute = "Identity:Federation:Providers:mute:";
        Downstream = new IdentityHost
        {
            ExtraSettings = new Dictionary<string, string?>
            {
                [corp + "DisplayName"] = "Corp",
                [corp + "Authority"] = Upstream.Issuer,
                [corp + "ClientId"] = CorpClient,
                [corp + "ClientSecret"] = Secret,
                [corp + "Scopes:0"] = "profile",
                [corp + "Scopes:1"] = "email",
                [corp + "Scopes:2"] = "roles",
                [corp + "JustInTimeCreation"] = "true",
                [corp + "BusinessUnit"] = "sales-west",
                [corp + "RoleMappings:0:Claim"] = "role",
                [corp + "RoleMappings:0:Value"] = "sales_rep",
                [corp + "RoleMappings:0:Role"] = "sales_rep",
                [corp + "RoleMappings:1:Claim"] = "role",
                [corp + "RoleMappings:1:Value"] = "sales_manager",
                [corp + "RoleMappings:1:Role"] = "sales_manager",
                // A rule naming a role the model does not have grants nothing.
                [corp + "RoleMappings:2:Claim"] = "role",
                [corp + "RoleMappings:2:Value"] = "support_agent",
                [corp + "RoleMappings:2:Role"] = "no_such_role",
                [partner + "DisplayName"] = "Partner",
                [partner + "Authority"] = Upstream.Issuer,
                [partner + "ClientId"] = PartnerClient,
                [partner + "ClientSecret"] = Secret,
                [partner + "Scopes:0"] = "profile",
                [partner + "JustInTimeCreation"] = "false",
                // Just-in-time creation, but the provider is asked for no e-mail address.
                [mute + "DisplayName"] = "Mute",
                [mute + "Authority"] = Upstream.Issuer,
                [mute + "ClientId"] = MuteClient,
                [mute + "ClientSecret"] = Secret,
                [mute + "Scopes:0"] = "profile",
                [mute + "JustInTimeCreation"] = "true",
                [mute + "BusinessUnit"] = "sales-west",
            },
        };
        await Downstream.InitializeAsync();

        // The downstream is a client of the upstream, registered with its callback paths.
        await using var scope = Upstream.Services.CreateAsyncScope();
        var registry = scope.ServiceProvider.GetRequiredService<ClientRegistry>();
        foreach (var (client, provider) in new[] { (CorpClient, "corp"), (PartnerClient, "partner"), (MuteClient, "mute") })
        {
            await registry.RegisterAsync(new ClientSettings
            {
                ClientId = client,
                ClientSecret = Secret,
                GrantTypes = ["authorization_code"],
                Scopes = ["openid", "profile", "email", "roles"],
                RedirectUris = [new Uri(Downstream.BaseAddress, $"federation/{provider}/callback").AbsoluteUri],
            }, Cancel);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Downstream.DisposeAsync();
        await Upstream.DisposeAsync();
    }
}

public sealed class FederationTests(FederatedHosts hosts) : IClassFixture<FederatedHosts>
{
    [Fact]
    public async Task A_new_upstream_user_is_created_just_in_time_with_mapped_roles_and_gets_tokens_saying_fed_and_the_idp()
    {
        var (name, password) = await UpstreamUserAsync("nina", "sales_manager", "support_agent");
        using var browser = new FederationBrowser();

        var (verifier, response, code) = await SignInAsync(browser, "corp", name, password);

        Assert.True(code is not null, await Describe(response));
        using var http = hosts.Downstream.CreateClient();
        var (status, tokens) = await RedeemAsync(http, CodeFrom(code), verifier);
        Assert.Equal(HttpStatusCode.OK, status);
        var access = Payload(tokens.GetProperty("access_token").GetString()!);
        var id = Payload(tokens.GetProperty("id_token").GetString()!);
        Assert.Equal(["fed"], access.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(["fed"], id.GetProperty("amr").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal("corp", access.GetProperty("idp").GetString());
        Assert.Equal("corp", id.GetProperty("idp").GetString());
        Assert.Equal($"corp.{name}", access.GetProperty("preferred_username").GetString());
        Assert.Equal("sales-west", access.GetProperty("business_unit").GetString());
        // sales_manager is mapped; support_agent is only mapped to a role the model lacks, so it grants nothing.
        Assert.Equal("sales_manager", access.GetProperty("role").GetString());

        // Linked by (issuer, subject) of the upstream ID token; the model change is audited with the provider as actor.
        var userId = access.GetProperty("sub").GetString()!;
        var upstreamId = await UpstreamIdAsync(name);
        var login = await hosts.Downstream.WithStoreAsync(store => store.UserLogins.AsNoTracking().SingleAsync(l => l.UserId == userId, Cancel));
        Assert.Equal(hosts.Upstream.Issuer, login.LoginProvider);
        Assert.Equal(upstreamId, login.ProviderKey);
        var entries = await hosts.Downstream.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == userId).ToListAsync(Cancel));
        Assert.Equal(["user.create", "user.link_login", "user.roles"], entries.Select(e => e.Action));
        Assert.All(entries, e => Assert.Equal("federation:corp", e.ActorId));
        Assert.All(entries, e => Assert.Equal("Corp (federation)", e.ActorName));

        // A second sign-in finds the same account (no second user) and changes nothing.
        using var again = new FederationBrowser();
        var (verifier2, _, code2) = await SignInAsync(again, "corp", name, password);
        var (_, tokens2) = await RedeemAsync(http, CodeFrom(code2!), verifier2);
        Assert.Equal(userId, Payload(tokens2.GetProperty("access_token").GetString()!).GetProperty("sub").GetString());
        Assert.Equal(3, await hosts.Downstream.WithStoreAsync(store => store.AuditTrail.CountAsync(e => e.TargetId == userId, Cancel)));
    }

    [Fact]
    public async Task An_upstream_account_giving_a_local_users_email_is_not_linked_to_that_account()
    {
        // The upstream's alice has alice@demo.example, the address of the downstream's own alice: whoever controls an
        // account at some provider can give it any address, so the address links nothing.
        using var browser = new FederationBrowser();

        var (_, response, code) = await SignInAsync(browser, "corp", "alice", AlicePassword);

        Assert.Null(code);
        var page = await response.Content.ReadAsStringAsync(Cancel);
        Assert.Contains("id=\"federation-error\"", page, StringComparison.Ordinal);
        Assert.Contains("already uses the e-mail address", page, StringComparison.Ordinal);
        var localAlice = await hosts.Downstream.WithStoreAsync(store => store.Users.AsNoTracking().SingleAsync(u => u.UserName == "alice", Cancel));
        Assert.False(await hosts.Downstream.WithStoreAsync(store => store.UserLogins.AnyAsync(l => l.UserId == localAlice.Id, Cancel)));
        Assert.False(await hosts.Downstream.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName!.StartsWith("corp.alice"), Cancel)));
        await AssertNotSignedInAsync(browser);
    }

    [Fact]
    public async Task Without_just_in_time_creation_an_unknown_account_is_refused_with_a_page_saying_so()
    {
        var (name, password) = await UpstreamUserAsync("pat", "sales_rep");
        using var browser = new FederationBrowser();

        var (_, response, code) = await SignInAsync(browser, "partner", name, password);

        Assert.Null(code);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("not linked to an account here", await response.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        Assert.False(await hosts.Downstream.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName!.Contains(name), Cancel)));
        await AssertNotSignedInAsync(browser);
    }

    [Fact]
    public async Task A_provider_that_gives_no_email_address_gets_no_account_and_a_page_saying_what_is_missing()
    {
        var (name, password) = await UpstreamUserAsync("quinn", "sales_rep");
        using var browser = new FederationBrowser();

        var (_, response, code) = await SignInAsync(browser, "mute", name, password);

        Assert.Null(code);
        var page = await response.Content.ReadAsStringAsync(Cancel);
        Assert.Contains("id=\"federation-error\"", page, StringComparison.Ordinal);
        Assert.Contains("gave no e-mail address", page, StringComparison.Ordinal);
        Assert.False(await hosts.Downstream.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName!.Contains(name), Cancel)));
        await AssertNotSignedInAsync(browser);
    }

    [Fact]
    public async Task A_callback_with_a_state_this_browser_did_not_send_is_refused()
    {
        var (name, password) = await UpstreamUserAsync("sam", "sales_rep");
        using var browser = new FederationBrowser();

        // OpenID Connect Core §3.1.2.7 / RFC 6749 §10.12: the state binds the callback to this browser's request.
        var (_, response, code) = await SignInAsync(browser, "corp", name, password, alter: uri => IsCallback(uri)
            ? new Uri(uri.AbsoluteUri.Replace("state=", "state=x", StringComparison.Ordinal))
            : uri);

        Assert.Null(code);
        Assert.Contains("did not complete", await response.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        Assert.False(await hosts.Downstream.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName!.Contains(name), Cancel)));
        await AssertNotSignedInAsync(browser);
    }

    [Fact]
    public async Task A_callback_whose_ID_token_nonce_this_browser_never_sent_is_refused()
    {
        var (name, password) = await UpstreamUserAsync("nico", "sales_rep");
        using var browser = new FederationBrowser();

        // OpenID Connect Core §3.1.3.7 step 11 / §15.5.2: the ID token's nonce must be the one this browser's request sent.
        // Here the browser no longer holds it (as when a code and state are replayed into another browser).
        var (_, response, code) = await SignInAsync(browser, "corp", name, password, alter: uri =>
        {
            if (IsCallback(uri))
            {
                browser.Forget(uri, cookie => cookie.StartsWith(".AspNetCore.OpenIdConnect.Nonce.", StringComparison.Ordinal));
            }

            return uri;
        });

        Assert.Null(code);
        Assert.Contains("did not complete", await response.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        Assert.False(await hosts.Downstream.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName!.Contains(name), Cancel)));
        await AssertNotSignedInAsync(browser);
    }

    [Fact]
    public async Task A_disabled_local_user_cannot_sign_in_through_the_provider()
    {
        var (name, password) = await UpstreamUserAsync("dora", "sales_rep");
        using (var first = new FederationBrowser())
        {
            Assert.NotNull((await SignInAsync(first, "corp", name, password)).Code);
        }

        var userId = await hosts.Downstream.WithStoreAsync(store => store.Users.Where(u => u.UserName == "corp." + name).Select(u => u.Id).SingleAsync(Cancel));
        using var admin = await AdminApi.SecOpsAsync(hosts.Downstream);
        var disabled = await admin.SendAsync(HttpMethod.Post, $"admin/api/users/{userId}/disable", null);
        Assert.True(disabled.Status is HttpStatusCode.OK or HttpStatusCode.NoContent, disabled.Text);

        using var browser = new FederationBrowser();
        var (_, response, code) = await SignInAsync(browser, "corp", name, password);

        Assert.Null(code);
        Assert.Contains("cannot sign in", await response.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
        await AssertNotSignedInAsync(browser);
    }

    [Fact]
    public async Task Roles_the_rules_do_not_name_are_neither_granted_nor_taken_away_by_a_sign_in()
    {
        // The upstream says support_agent and sales_rep; the downstream admin also gave the user finance by hand.
        var (name, password) = await UpstreamUserAsync("rita", "sales_rep", "support_agent");
        using (var first = new FederationBrowser())
        {
            Assert.NotNull((await SignInAsync(first, "corp", name, password)).Code);
        }

        var userId = await hosts.Downstream.WithStoreAsync(store => store.Users.Where(u => u.UserName == "corp." + name).Select(u => u.Id).SingleAsync(Cancel));
        using var admin = await AdminApi.SecOpsAsync(hosts.Downstream);
        var assigned = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{userId}/roles", new { roles = new[] { "sales_rep", "finance" } });
        Assert.True(assigned.Status == HttpStatusCode.NoContent, assigned.Text);

        // Upstream the user moves from sales_rep to sales_manager: the managed role follows, finance stays.
        using var upstreamAdmin = await AdminApi.SecOpsAsync(hosts.Upstream);
        var moved = await upstreamAdmin.SendAsync(HttpMethod.Put, $"admin/api/users/{await UpstreamIdAsync(name)}/roles", new { roles = new[] { "sales_manager", "support_agent" } });
        Assert.True(moved.Status == HttpStatusCode.NoContent, moved.Text);
        using var browser = new FederationBrowser();
        var (verifier, _, code) = await SignInAsync(browser, "corp", name, password);
        using var http = hosts.Downstream.CreateClient();
        var (_, tokens) = await RedeemAsync(http, CodeFrom(code!), verifier);

        var roles = Payload(tokens.GetProperty("access_token").GetString()!).GetProperty("role").EnumerateArray().Select(r => r.GetString()).Order();
        Assert.Equal(["finance", "sales_manager"], roles);
        var last = await hosts.Downstream.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.TargetId == userId).OrderBy(e => e.Sequence).LastAsync(Cancel));
        Assert.Equal("user.roles", last.Action);
        Assert.Equal("federation:corp", last.ActorId);
    }

    /// <summary>Runs the CRM client's authorization request at the downstream through "Sign in with ..." and the upstream's form.</summary>
    private async Task<(string Verifier, HttpResponseMessage Response, Uri? Code)> SignInAsync(
        FederationBrowser browser, string provider, string userName, string password, Func<Uri, Uri>? alter = null)
    {
        var (verifier, challenge) = Pkce();
        var (login, _) = await browser.FollowAsync(new Uri(hosts.Downstream.BaseAddress, AuthorizeUrl(AuthorizeParameters(challenge))));
        var page = await login.Content.ReadAsStringAsync(Cancel);
        Assert.Contains(provider == "corp" ? "Sign in with Corp" : "Sign in with Partner", page, StringComparison.Ordinal);

        var (upstreamLogin, _) = await browser.SubmitAsync(page, "/account/login?handler=Federation", new() { ["provider"] = provider });
        Assert.StartsWith(hosts.Upstream.BaseAddress.AbsoluteUri, browser.Address.AbsoluteUri, StringComparison.Ordinal);
        var upstreamPage = await upstreamLogin.Content.ReadAsStringAsync(Cancel);

        var (response, code) = await browser.SubmitAsync(upstreamPage, "/account/login", new() { ["Username"] = userName, ["Password"] = password }, alter);
        return (verifier, response, code);
    }

    private bool IsCallback(Uri uri) =>
        uri.AbsoluteUri.StartsWith(hosts.Downstream.BaseAddress.AbsoluteUri, StringComparison.Ordinal) && uri.AbsolutePath.EndsWith("/callback", StringComparison.Ordinal);

    /// <summary>The browser holds no downstream session: the authorization request still sends it to sign in.</summary>
    private async Task AssertNotSignedInAsync(FederationBrowser browser)
    {
        var (_, challenge) = Pkce();
        var response = await browser.SendAsync(HttpMethod.Get, new Uri(hosts.Downstream.BaseAddress, AuthorizeUrl(AuthorizeParameters(challenge))));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Contains("/account/login", response.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    /// <summary>A user of the upstream provider with an address nobody downstream has, holding <paramref name="roles"/> there.</summary>
    private async Task<(string Name, string Password)> UpstreamUserAsync(string prefix, params string[] roles)
    {
        var name = $"{prefix}{Guid.NewGuid():N}"[..(prefix.Length + 8)];
        var password = "Upstream-Pass-" + Guid.NewGuid().ToString("N");
        using var admin = await AdminApi.SecOpsAsync(hosts.Upstream);
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/users", new
        {
            user_name = name,
            display_name = $"{prefix} upstream",
            email = $"{name}@corp.example",
            business_unit = "sales-west",
            password,
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        var assigned = await admin.SendAsync(HttpMethod.Put, $"admin/api/users/{created.Json.GetProperty("id").GetString()}/roles", new { roles });
        Assert.True(assigned.Status == HttpStatusCode.NoContent, assigned.Text);
        return (name, password);
    }

    private Task<string> UpstreamIdAsync(string name) =>
        hosts.Upstream.WithStoreAsync(store => store.Users.Where(u => u.UserName == name).Select(u => u.Id).SingleAsync(Cancel));

    private static async Task<string> Describe(HttpResponseMessage response)
    {
        var text = $"{(int)response.StatusCode} {response.Headers.Location} {await response.Content.ReadAsStringAsync(Cancel)}";
        return text[..Math.Min(text.Length, 3000)];
    }
}
