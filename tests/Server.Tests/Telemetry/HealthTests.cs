using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Telemetry;

public sealed class HealthTests(InProcessHost host) : IClassFixture<InProcessHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Readiness_checks_the_database_and_the_scorer()
    {
        using var http = host.CreateClient();

        var ready = await http.GetFromJsonAsync<JsonElement>("health/ready", Cancel);

        Assert.Equal("Healthy", ready.GetProperty("status").GetString());
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("database").GetString());
        Assert.Equal("Healthy", ready.GetProperty("checks").GetProperty("analyzer-scorer").GetString());
    }

    [Fact]
    public async Task Liveness_checks_nothing_but_the_process()
    {
        using var http = host.CreateClient();

        using var live = await http.GetAsync(new Uri("health/live", UriKind.Relative), Cancel);

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", await live.Content.ReadAsStringAsync(Cancel));
    }
}
