using System.Net;
using CrmSecurity.Identity.Tests.Support;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Protocol;

/// <summary>The device flow host on a clock the test moves.</summary>
public sealed class DeviceClockHost : IdentityHost
{
    protected override bool UseFakeClock => true;

    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:SigningKeys:RefreshInterval"] = "12:00:00",
        ["Identity:Clients:0:ClientId"] = DeviceFlowHost.Client,
        ["Identity:Clients:0:GrantTypes:0"] = "urn:ietf:params:oauth:grant-type:device_code",
        ["Identity:Clients:0:Scopes:0"] = "openid",
        ["Identity:Clients:0:Scopes:1"] = "crm.api",
    };
}

/// <summary>RFC 8628 §3.5: a device code nobody decided on within its lifetime is answered expired_token.</summary>
public sealed class DeviceCodeExpiryTests(DeviceClockHost host) : IClassFixture<DeviceClockHost>
{
    [Fact]
    public async Task Polling_with_a_device_code_past_its_lifetime_is_expired_token()
    {
        using var device = host.CreateClient();
        var (status, authorization) = await PostFormAsync(device, "connect/device", new Dictionary<string, string>
        {
            ["client_id"] = DeviceFlowHost.Client,
            ["scope"] = "openid crm.api",
        });
        Assert.True(status == HttpStatusCode.OK, $"{status} {authorization}");

        host.Clock!.Advance(TimeSpan.FromMinutes(11));
        var (pollStatus, body) = await PostFormAsync(device, "connect/token", new Dictionary<string, string>
        {
            ["grant_type"] = "urn:ietf:params:oauth:grant-type:device_code",
            ["device_code"] = authorization.GetProperty("device_code").GetString()!,
            ["client_id"] = DeviceFlowHost.Client,
        });

        Assert.Equal(HttpStatusCode.BadRequest, pollStatus);
        Assert.Equal("expired_token", body.GetProperty("error").GetString());
    }
}
