using CrmSecurity.Security.Tests.Support;

namespace CrmSecurity.Security.Tests.Host;

/// <summary>OWASP ASVS 4.0.3 V14.3.3: no response tells a scanner which server software (and version) to attack.</summary>
public sealed class ResponseHeaderTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Theory]
    [InlineData(".well-known/openid-configuration")]
    [InlineData("account/login")]
    [InlineData("health/live")]
    [InlineData("no/such/page")]
    public async Task No_response_names_the_server_software(string path)
    {
        using var http = host.CreateClient();
        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.False(response.Headers.Contains("Server"), $"Server: {string.Join(", ", response.Headers.Server)}");
        Assert.False(response.Headers.Contains("X-Powered-By"));
    }
}
