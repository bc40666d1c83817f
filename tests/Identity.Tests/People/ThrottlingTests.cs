using System.Net;
using CrmSecurity.Identity.Tests.Support;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.People;

public sealed class LowLimitsHost : IdentityHost
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Throttling:LoginPerAccountPerMinute"] = "3",
        ["Identity:Throttling:LoginPerIpPerMinute"] = "8",
        ["Identity:Throttling:TokenPerClientPerSecond"] = "2",
    };
}

public sealed class ThrottlingTests(LowLimitsHost host) : IClassFixture<LowLimitsHost>
{
    [Fact]
    public async Task Sign_in_posts_are_throttled_per_account_whether_or_not_the_account_exists_and_then_per_ip()
    {
        using var http = host.CreateClient();
        var known = new List<HttpStatusCode>();
        var unknown = new List<HttpStatusCode>();
        for (var attempt = 0; attempt < 4; attempt++)
        {
            known.Add((await SubmitLoginAsync(http, "/account", "bob", "wrong-password-" + attempt)).StatusCode);
            unknown.Add((await SubmitLoginAsync(http, "/account", "nobody-" + "x", "wrong-password-" + attempt)).StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], known);
        Assert.Equal(known, unknown); // the same answers: throttling reveals nothing about the account

        // 8 posts from this IP so far: the next one, for any account, is refused with a Retry-After.
        var other = await SubmitLoginAsync(http, "/account", "carol", "wrong-password");
        Assert.Equal(HttpStatusCode.TooManyRequests, other.StatusCode);
        Assert.NotNull(other.Headers.RetryAfter);
    }

    [Fact]
    public async Task Token_requests_are_throttled_per_client()
    {
        using var http = host.CreateClient();
        var statuses = new List<HttpStatusCode>();
        for (var request = 0; request < 20; request++)
        {
            var (status, _) = await PostFormAsync(http, "connect/token",
                new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "crm.api" }, (CrmClient, CrmSecret));
            statuses.Add(status);
        }

        // A bucket of 2 per second: 20 requests in a row cannot all pass, the first ones do.
        Assert.Equal(HttpStatusCode.OK, statuses[0]);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);

        // Another client is not affected by demo-crm's bucket.
        var (secops, _) = await PostFormAsync(http, "connect/token",
            new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "identity.admin" }, ("demo-secops", "demo-secops-secret"));
        Assert.Equal(HttpStatusCode.OK, secops);
    }
}
