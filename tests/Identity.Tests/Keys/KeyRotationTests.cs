using System.Net;
using System.Text.Json;
using CrmSecurity.Identity.Keys;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Keys;

/// <summary>
/// Rotation as two instances see it: the CLI verb (its own process) adds a generation to the shared database,
/// the running host picks it up, publishes it, signs with it only after the publish lead, and keeps the old
/// key published until every token it signed has expired.
/// </summary>
public sealed class KeyRotationTests(FakeClockHost host) : IClassFixture<FakeClockHost>
{
    [Fact]
    public async Task A_rotated_key_is_published_before_it_signs_and_the_old_key_validates_until_its_tokens_expire()
    {
        using var http = host.CreateClient();
        var ring = host.Services.GetRequiredService<SigningKeyRing>();
        await using var api = await ResourceServer.StartAsync(host.Issuer);
        var before = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        var oldKid = Header(before).GetProperty("kid").GetString()!;

        var (exitCode, output) = await ServerProcess.RunVerbAsync(["signing-keys", "rotate"], new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(host.Directory, "identity.db")}",
        }, cancellationToken: Cancel);
        Assert.True(exitCode == 0, output);
        await ring.RefreshAsync(Cancel); // what the periodic refresh does within Identity:SigningKeys:RefreshInterval

        var newKid = ring.Generations[^1].Es256.Key.KeyId;
        Assert.NotEqual(oldKid, newKid);
        Assert.Contains(newKid, await JwksKidsAsync(http)); // published first ...
        var duringLead = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        Assert.Equal(oldKid, Header(duringLead).GetProperty("kid").GetString()); // ... but not used yet

        host.Clock!.Advance(TimeSpan.FromHours(24) + TimeSpan.FromMinutes(1));
        var after = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        Assert.Equal(newKid, Header(after).GetProperty("kid").GetString());
        Assert.Contains(oldKid, await JwksKidsAsync(http)); // old key kept for tokens it signed
        Assert.True(await IsActiveAsync(http, after));
        Assert.Equal(HttpStatusCode.OK, (await api.CallAsync(before)).StatusCode); // real JwtBearer, old key, after rotation

        host.Clock.Advance(ring.Retention + TimeSpan.FromMinutes(1));
        await ring.RefreshAsync(Cancel);
        Assert.DoesNotContain(oldKid, await JwksKidsAsync(http));
        Assert.Contains(newKid, await JwksKidsAsync(http));
    }

    private static async Task<List<string>> JwksKidsAsync(HttpClient http)
    {
        var jwks = JsonDocument.Parse(await http.GetStringAsync(new Uri(".well-known/jwks", UriKind.Relative), Cancel)).RootElement;
        return [.. jwks.GetProperty("keys").EnumerateArray().Select(key => key.GetProperty("kid").GetString()!)];
    }
}

public sealed class ScheduledRotationTests(FakeClockHost host) : IClassFixture<FakeClockHost>
{
    [Fact]
    public async Task The_schedule_adds_a_generation_when_the_newest_is_older_than_the_interval_minus_the_lead()
    {
        var ring = host.Services.GetRequiredService<SigningKeyRing>();
        await ring.RefreshAsync(Cancel);
        Assert.False(await ring.RotateIfDueAsync(Cancel));
        var count = ring.Generations.Count;

        host.Clock!.Advance(TimeSpan.FromDays(30));

        // The host's own schedule may get there first; either way exactly one generation is added.
        await ring.RotateIfDueAsync(Cancel);
        await ring.RefreshAsync(Cancel);
        Assert.Equal(count + 1, ring.Generations.Count);
        Assert.True(ring.Generations[^1].ActivatesAt > host.Clock.GetUtcNow()); // published ahead of use
        Assert.False(await ring.RotateIfDueAsync(Cancel)); // the new, not yet active generation is the newest
    }
}

public sealed class ExpiryTests(FakeClockHost host) : IClassFixture<FakeClockHost>
{
    [Fact]
    public async Task An_expired_access_token_is_inactive_in_introspection()
    {
        using var http = host.CreateClient();
        var token = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveAsync(http, token));

        host.Clock!.Advance(TimeSpan.FromMinutes(11)); // access tokens live 10 minutes

        Assert.False(await IsActiveAsync(http, token));
    }

    [Fact]
    public async Task An_expired_authorization_code_is_rejected()
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(http, AuthorizeParameters(challenge)));

        host.Clock!.Advance(TimeSpan.FromMinutes(3)); // codes live 2 minutes
        var (status, body) = await RedeemAsync(http, code, verifier);

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
    }
}
