using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Events;

public sealed class AccessEventTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task Sign_in_token_issue_refresh_and_revocation_are_written_as_access_events_without_token_text()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceAsync(host);
        var (_, refreshed) = await RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!);
        await RevokeAsync(http, refreshed.GetProperty("refresh_token").GetString()!);
        await ClientCredentialsAsync(http);
        await host.FlushEventsAsync();

        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().ToListAsync(Cancel));
        var actions = events.Select(e => e.Action).ToHashSet();
        Assert.Contains("login", actions);
        Assert.Contains("token_issue", actions);
        Assert.Contains("token_refresh", actions);
        Assert.Contains("token_revoke", actions);

        var login = events.First(e => e.Action == "login");
        Assert.Equal("alice", login.UserName);
        Assert.Equal("success", login.Outcome);
        Assert.Equal("127.0.0.1", login.SourceIp);
        Assert.Equal("demo", login.Tenant);
        var issue = events.First(e => e.Action == "token_issue" && e.ClientId == CrmClient && e.UserId == CrmClient);
        Assert.Contains("grant_type=client_credentials", issue.Details, StringComparison.Ordinal);

        // No token, code or secret text anywhere in the stored events.
        var everything = string.Join("\n", events.Select(e => $"{e.Details} {e.UserName} {e.UserId} {e.ClientId}"));
        Assert.DoesNotContain("eyJ", everything, StringComparison.Ordinal);
        Assert.DoesNotContain(CrmSecret, everything, StringComparison.Ordinal);
        Assert.DoesNotContain(AlicePassword, everything, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_sign_in_and_a_rejected_token_request_are_written_as_denied_events()
    {
        using var http = host.CreateClient();
        var login = await SubmitLoginAsync(http, "/account", "bob", "not-bobs-password");
        Assert.Equal(System.Net.HttpStatusCode.OK, login.StatusCode);
        await PostFormAsync(http, "connect/token", new Dictionary<string, string> { ["grant_type"] = "client_credentials" }, (CrmClient, "wrong"));
        await host.FlushEventsAsync();

        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().ToListAsync(Cancel));
        var failed = Assert.Single(events, e => e.Action == "login_failed" && e.UserName == "bob");
        Assert.Equal("denied", failed.Outcome);
        Assert.Equal("wrong_password", failed.Details);
        var rejected = Assert.Single(events, e => e.Action == "token_rejected" && e.ClientId == CrmClient);
        Assert.Contains("error=invalid_client", rejected.Details, StringComparison.Ordinal);
        Assert.DoesNotContain("not-bobs-password", string.Join(" ", events.Select(e => e.Details)), StringComparison.Ordinal);
    }
}
