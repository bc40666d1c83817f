using System.Net;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

public sealed class PostgresHost : IdentityHost
{
    protected override bool UsePostgres => true;
}

/// <summary>The store on a real PostgreSQL: the flows that write the most (codes, refresh chains, revocation, events, keys).</summary>
public sealed class PostgresStoreTests(PostgresHost host) : IClassFixture<PostgresHost>
{
    [Fact]
    public async Task Code_flow_refresh_reuse_detection_and_revocation_work_on_PostgreSql()
    {
        using var http = host.CreateClient();
        var tokens = await SignInAliceAsync(host);
        var (refreshed, next) = await RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, refreshed);

        var (replay, _) = await RefreshAsync(http, tokens.GetProperty("refresh_token").GetString()!);
        Assert.Equal(HttpStatusCode.BadRequest, replay);
        Assert.False(await IsActiveAsync(http, next.GetProperty("refresh_token").GetString()!));

        var clientToken = (await ClientCredentialsAsync(http)).GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveAsync(http, clientToken));
        await RevokeAsync(http, clientToken);
        Assert.False(await IsActiveAsync(http, clientToken));

        await host.FlushEventsAsync();
        var actions = await host.WithStoreAsync(store => store.AccessEvents.Select(e => e.Action).Distinct().ToListAsync(Cancel));
        Assert.Contains("token_refresh", actions);
        Assert.Contains("token_revoke", actions);
        var keys = await host.WithStoreAsync(store => store.SigningKeys.CountAsync(Cancel));
        Assert.Equal(3, keys); // one generation: ES256, RS256, A256KW
    }
}
