using System.Text.Json;
using CrmSecurity.Identity.Keys;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Keys;

/// <summary>Two instances of the service behind one issuer name, sharing one PostgreSQL database.</summary>
public sealed class TwoInstances : IAsyncLifetime
{
    private PostgresDatabase? _database;

    public IdentityHost First { get; private set; } = null!;

    public IdentityHost Second { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
        var settings = new Dictionary<string, string?> { ["Identity:Issuer"] = "http://login.crm.test/" };
        First = new IdentityHost { SharedPostgres = _database.ConnectionString, ExtraSettings = settings };
        await First.InitializeAsync();
        Second = new IdentityHost { SharedPostgres = _database.ConnectionString, ExtraSettings = settings };
        await Second.InitializeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await First.DisposeAsync();
        await Second.DisposeAsync();
        await _database!.DisposeAsync();
    }
}

public sealed class TwoInstancesTests(TwoInstances instances) : IClassFixture<TwoInstances>
{
    [Fact]
    public async Task Tokens_codes_revocation_and_rotation_made_on_one_instance_hold_on_the_other()
    {
        using var first = instances.First.CreateClient();
        using var second = instances.Second.CreateClient();

        var token = (await ClientCredentialsAsync(first)).GetProperty("access_token").GetString()!;
        Assert.True(await IsActiveAsync(second, token));
        await RevokeAsync(second, token);
        Assert.False(await IsActiveAsync(first, token));

        // A code issued by the first instance is redeemed at the second (shared keys and token rows).
        var (verifier, challenge) = Pkce();
        var code = CodeFrom(await AuthorizeAsync(first, AuthorizeParameters(challenge)));
        var (status, tokens) = await RedeemAsync(second, code, verifier);
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Equal("http://login.crm.test/", Payload(tokens.GetProperty("access_token").GetString()!).GetProperty("iss").GetString());

        // A rotation on the first instance is published by the second once it re-reads the key table.
        var generation = await instances.First.Services.GetRequiredService<SigningKeyRing>().RotateAsync(immediately: false, Cancel);
        var secondRing = instances.Second.Services.GetRequiredService<SigningKeyRing>();
        await secondRing.RefreshAsync(Cancel);
        var kid = secondRing.Generations.Single(g => g.Number == generation).Es256.Key.KeyId;
        var jwks = JsonDocument.Parse(await second.GetStringAsync(new Uri(".well-known/jwks", UriKind.Relative), Cancel)).RootElement;
        Assert.Contains(kid, jwks.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()));
    }
}
