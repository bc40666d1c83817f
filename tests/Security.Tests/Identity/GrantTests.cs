using System.Net;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Identity;

/// <summary>Grants that hand tokens to whoever holds a password are not offered (RFC 9700 §2.4).</summary>
public sealed class GrantTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public async Task A_client_that_collects_a_users_password_gets_no_token_for_it()
    {
        using var http = host.CreateClient();
        var (status, body) = await OAuthFlows.PostFormAsync(http, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = "dave",
            ["password"] = Personas.Passwords["dave"],
            ["scope"] = "identity.admin",
        }, ("demo-crm", Personas.ClientSecrets["demo-crm"]));

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("unsupported_grant_type", body.GetProperty("error").GetString());
        Assert.False(body.TryGetProperty("access_token", out _));
    }
}
