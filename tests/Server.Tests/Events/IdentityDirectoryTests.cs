using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.Server.Tests.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Server.Tests.Events;

/// <summary>The analyzer's directory comes from Identity's authorization model, time zones included, and follows its changes.</summary>
public sealed class IdentityDirectoryTests(DemoHost host) : IClassFixture<DemoHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private IDirectorySource Directory => host.Services.GetRequiredService<IDirectorySource>();

    [Fact]
    public void The_directory_has_the_demo_users_with_unit_roles_manager_and_time_zone()
    {
        var users = Directory.Current.Users.ToDictionary(u => u.UserName ?? u.UserId, StringComparer.Ordinal);

        var alice = users["alice"];
        Assert.Equal("America/Los_Angeles", alice.TimeZone);
        Assert.Equal("Sales West", alice.Department);
        Assert.Equal("sales-west", alice.BusinessUnit);
        Assert.Contains("sales_rep", alice.Roles);
        Assert.Equal(users["bob"].UserId, alice.Manager);
        Assert.Equal("Europe/Berlin", users["dave"].TimeZone);
        Assert.Null(users["dave"].Manager);
    }

    [Fact]
    public async Task An_admin_change_of_a_time_zone_reaches_the_directory_with_the_new_model_version()
    {
        var before = Directory.Current;
        var grace = before.Users.Single(u => u.UserName == "grace");
        using var http = host.CreateClient(await host.TokenAsync("identity.admin", DemoHost.SecOpsClient, DemoHost.SecOpsSecret));

        using var response = await http.PutAsJsonAsync($"admin/api/users/{grace.UserId}/zoneinfo", new { zoneinfo = "Australia/Sydney" }, Cancel);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        var after = Directory.Current;
        Assert.True(after.Version > before.Version);
        Assert.Equal("Australia/Sydney", after.Users.Single(u => u.UserId == grace.UserId).TimeZone);
    }

    [Fact]
    public async Task A_bad_time_zone_is_refused_as_a_problem_naming_the_field()
    {
        var erin = Directory.Current.Users.Single(u => u.UserName == "erin");
        using var http = host.CreateClient(await host.TokenAsync("identity.admin", DemoHost.SecOpsClient, DemoHost.SecOpsSecret));

        using var response = await http.PutAsJsonAsync($"admin/api/users/{erin.UserId}/zoneinfo", new { zoneinfo = "Europe/Atlantis" }, Cancel);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Europe/Atlantis", problem.GetProperty("errors").GetProperty("zoneinfo")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal("Europe/Dublin", Directory.Current.Users.Single(u => u.UserId == erin.UserId).TimeZone);
    }

    [Fact]
    public async Task Hire_and_termination_dates_set_by_an_admin_reach_the_analyzers_directory()
    {
        var before = Directory.Current;
        var frank = before.Users.Single(u => u.UserName == "frank");
        using var http = host.CreateClient(await host.TokenAsync("identity.admin", DemoHost.SecOpsClient, DemoHost.SecOpsSecret));

        using var response = await http.PutAsJsonAsync($"admin/api/users/{frank.UserId}/employment", new { hired = "2021-09-01", terminated = "2026-10-31" }, Cancel);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        var after = Directory.Current;
        Assert.True(after.Version > before.Version);
        var entry = after.Users.Single(u => u.UserId == frank.UserId);
        Assert.Equal(new DateOnly(2021, 9, 1), entry.Hired);
        Assert.Equal(new DateOnly(2026, 10, 31), entry.Terminated);
    }
}
