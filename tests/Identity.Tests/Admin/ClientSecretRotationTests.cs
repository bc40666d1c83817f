using System.Net;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Identity.Tests.Admin.ClientAdminApiTests;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>Rotating a client secret on a host whose clock the test moves: the old secret works during the overlap only.</summary>
public sealed class ClientSecretRotationTests(FakeClockHost host) : IClassFixture<FakeClockHost>
{
    [Fact]
    public async Task The_old_secret_keeps_working_during_the_overlap_and_is_refused_after_it()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var old = await CreateAsync(admin, "rotating-app", "confidential", ["client_credentials"], ["crm.api"]);
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "rotating-app", old!)).Status);

        var rotated = await admin.SendAsync(HttpMethod.Post, "admin/api/clients/rotating-app/secrets", new { overlap = "1h" });
        var fresh = rotated.Json.GetProperty("client_secret").GetString()!;
        var during = await ClientCredentialsStatusAsync(http, "rotating-app", old!);
        var newDuring = await ClientCredentialsStatusAsync(http, "rotating-app", fresh);
        var shown = await admin.GetAsync("admin/api/clients/rotating-app");
        host.Clock!.Advance(TimeSpan.FromMinutes(61));
        var after = await ClientCredentialsStatusAsync(http, "rotating-app", old!);
        var newAfter = await ClientCredentialsStatusAsync(http, "rotating-app", fresh);

        Assert.True(rotated.Status == HttpStatusCode.OK, rotated.Text);
        Assert.NotEqual(old, fresh);
        Assert.Equal(HttpStatusCode.OK, during.Status);
        Assert.Equal(HttpStatusCode.OK, newDuring.Status);
        Assert.True(shown.Json.TryGetProperty("previous_secret_valid_until", out var until) && until.GetDateTimeOffset() > host.Clock.GetUtcNow().AddMinutes(-62));
        Assert.DoesNotContain(fresh, shown.Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, after.Status);
        Assert.Equal("invalid_client", after.Body.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.OK, newAfter.Status);

        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "client.secret.rotate" && e.TargetId == "rotating-app", Cancel));
        Assert.Contains("\"overlap\":\"01:00:00\"", entry.After!, StringComparison.Ordinal);
        Assert.DoesNotContain(fresh, entry.After!, StringComparison.Ordinal);
        Assert.DoesNotContain(old!, entry.After!, StringComparison.Ordinal);
        Assert.DoesNotContain("hash", entry.After!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rotation_without_overlap_ends_the_old_secret_at_once_and_a_bad_overlap_is_refused()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var old = await CreateAsync(admin, "compromised-app", "confidential", ["client_credentials"], ["crm.api"]);

        var tooLong = await admin.SendAsync(HttpMethod.Post, "admin/api/clients/compromised-app/secrets", new { overlap = "90d" });
        var rotated = await admin.SendAsync(HttpMethod.Post, "admin/api/clients/compromised-app/secrets", new { overlap = "0" });
        using var http = host.CreateClient();

        Assert.Equal(HttpStatusCode.BadRequest, tooLong.Status);
        Assert.Contains("30 days", tooLong.Error("overlap"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, rotated.Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await ClientCredentialsStatusAsync(http, "compromised-app", old!)).Status);
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "compromised-app", rotated.Json.GetProperty("client_secret").GetString()!)).Status);
    }

    [Fact]
    public async Task A_public_client_has_no_secret_to_rotate()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        await CreateAsync(admin, "spa-no-secret", "public", ["authorization_code"], ["openid"], ["https://spa.example.com/cb"]);

        var reply = await admin.SendAsync(HttpMethod.Post, "admin/api/clients/spa-no-secret/secrets", new { overlap = "1h" });

        Assert.Equal(HttpStatusCode.Conflict, reply.Status);
        Assert.Contains("no secret to rotate", reply.Detail, StringComparison.Ordinal);
    }
}

/// <summary>A host with a client in <c>Identity:Clients</c>: configuration stays its source of truth.</summary>
public sealed class ConfiguredClientHost : IdentityHost
{
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:Clients:0:ClientId"] = "configured-crm",
        ["Identity:Clients:0:DisplayName"] = "Configured CRM",
        ["Identity:Clients:0:ClientSecret"] = "configured-crm-secret",
        ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
        ["Identity:Clients:0:Scopes:0"] = "crm.api",
    };
}

/// <summary>Clients of <c>Identity:Clients</c> are shown as configuration-managed and refuse changes through the API.</summary>
public sealed class ConfiguredClientTests(ConfiguredClientHost host) : IClassFixture<ConfiguredClientHost>
{
    [Fact]
    public async Task A_configured_client_is_shown_as_such_and_refuses_edit_rotation_and_deletion_naming_the_setting()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var listed = (await admin.GetAsync("admin/api/clients")).Json.EnumerateArray().Single(c => c.GetProperty("client_id").GetString() == "configured-crm");
        var edit = await admin.SendAsync(HttpMethod.Put, "admin/api/clients/configured-crm", new { display_name = "Mine now" });
        var rotate = await admin.SendAsync(HttpMethod.Post, "admin/api/clients/configured-crm/secrets", new { overlap = "1h" });
        var delete = await admin.SendAsync(HttpMethod.Delete, "admin/api/clients/configured-crm", null);
        var create = await admin.SendAsync(HttpMethod.Post, "admin/api/clients", new { client_id = "configured-crm", client_type = "public", grant_types = new[] { "refresh_token" } });
        using var http = host.CreateClient();

        Assert.Equal("configuration", listed.GetProperty("managed_by").GetString());
        Assert.Equal("Identity:Clients:0", listed.GetProperty("setting").GetString());
        foreach (var refused in new[] { edit, rotate, delete, create })
        {
            Assert.Equal(HttpStatusCode.Conflict, refused.Status);
            Assert.Contains("Identity:Clients:0", refused.Detail, StringComparison.Ordinal);
        }

        Assert.Equal("Configured CRM", (await admin.GetAsync("admin/api/clients/configured-crm")).Json.GetProperty("display_name").GetString());
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "configured-crm", "configured-crm-secret")).Status);
    }
}
