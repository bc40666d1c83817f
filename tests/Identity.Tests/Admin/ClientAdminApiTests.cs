using System.Net;
using System.Text.Json;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>OIDC clients managed at run time through the admin API of the real host: registration, edits, rotation, deletion.</summary>
public sealed class ClientAdminApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    [Fact]
    public async Task A_security_admin_registers_a_confidential_client_whose_secret_is_shown_once_and_works()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/clients", new
        {
            client_id = "reporting-batch",
            display_name = "Reporting batch",
            client_type = "confidential",
            grant_types = new[] { "client_credentials" },
            scopes = new[] { "crm.api" },
        });
        var secret = created.Json.GetProperty("client_secret").GetString()!;
        using var http = host.CreateClient();
        var (tokenStatus, _) = await ClientCredentialsStatusAsync(http, "reporting-batch", secret);
        var read = await admin.GetAsync("admin/api/clients/reporting-batch");
        var listed = await admin.GetAsync("admin/api/clients");

        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        Assert.True(secret.Length >= 43, "256 random bits, base64url");
        Assert.Equal(HttpStatusCode.OK, tokenStatus);
        Assert.Equal(HttpStatusCode.OK, read.Status);
        Assert.Equal("confidential", read.Json.GetProperty("client_type").GetString());
        Assert.Equal("admin", read.Json.GetProperty("managed_by").GetString());
        Assert.Equal(["client_credentials"], read.Json.GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()));
        Assert.Equal($"\"{read.Json.GetProperty("version").GetString()}\"", read.ETag);
        Assert.DoesNotContain(secret, read.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("secret\"", read.Text.Replace("previous_secret_valid_until\"", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains(listed.Json.EnumerateArray(), c => c.GetProperty("client_id").GetString() == "reporting-batch");
        Assert.DoesNotContain(secret, listed.Text, StringComparison.Ordinal);

        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "client.create" && e.TargetId == "reporting-batch", Cancel));
        Assert.Equal(AdminApiTests.DemoApplicationUser, entry.ActorName);
        Assert.Contains("\"grant_types\":[\"client_credentials\"]", entry.After!, StringComparison.Ordinal);
        await AssertNoSecretStoredInTheClearAsync(secret);
    }

    [Fact]
    public async Task A_public_client_gets_no_secret_and_keeps_the_redirect_uris_it_was_given()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/clients", new
        {
            client_id = "field-app",
            client_type = "public",
            first_party = false,
            grant_types = new[] { "authorization_code", "refresh_token" },
            scopes = new[] { "openid", "profile", "offline_access" },
            redirect_uris = new[] { "http://127.0.0.1/callback", "https://app.example.com/cb" },
            post_logout_redirect_uris = new[] { "https://app.example.com/" },
            require_par = true,
        });
        var read = (await admin.GetAsync("admin/api/clients/field-app")).Json;

        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        Assert.Equal(JsonValueKind.Null, created.Json.GetProperty("client_secret").ValueKind);
        Assert.Equal("public", read.GetProperty("client_type").GetString());
        Assert.False(read.GetProperty("first_party").GetBoolean());
        Assert.True(read.GetProperty("require_pkce").GetBoolean());
        Assert.True(read.GetProperty("require_par").GetBoolean());
        Assert.Equal(["offline_access", "openid", "profile"], read.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(["http://127.0.0.1/callback", "https://app.example.com/cb"], read.GetProperty("redirect_uris").EnumerateArray().Select(s => s.GetString()));
    }

    [Fact]
    public async Task A_client_registered_with_require_dpop_gets_no_bearer_token()
    {
        // RFC 9449 §5.2 dpop_bound_access_tokens, set at run time: a token request without a DPoP proof is refused.
        using var admin = await AdminApi.SecOpsAsync(host);

        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/clients", new
        {
            client_id = "dpop-batch",
            client_type = "confidential",
            grant_types = new[] { "client_credentials" },
            scopes = new[] { "crm.api" },
            require_dpop = true,
        });
        var read = (await admin.GetAsync("admin/api/clients/dpop-batch")).Json;
        using var http = host.CreateClient();
        var (status, body) = await PostFormAsync(http, "connect/token", new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "crm.api" },
            ("dpop-batch", created.Json.GetProperty("client_secret").GetString()!));

        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        Assert.True(read.GetProperty("require_dpop").GetBoolean());
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_dpop_proof", body.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("redirect_uris[0]", "https://app.example.com/cb#frag", "fragment")]
    [InlineData("redirect_uris[0]", "http://app.example.com/cb", "must use https")]
    [InlineData("redirect_uris[0]", "http://localhost/cb", "RFC 8252 §8.3")]
    [InlineData("redirect_uris[0]", "/relative/cb", "absolute URI")]
    [InlineData("grant_types[0]", "password", "not offered")]
    [InlineData("grant_types[0]", "implicit", "not offered")]
    [InlineData("scopes[0]", "everything", "not one this server knows")]
    public async Task A_client_with_a_bad_field_is_refused_naming_the_field(string field, string value, string message)
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var grants = field.StartsWith("grant_types", StringComparison.Ordinal) ? new[] { value } : ["authorization_code"];
        var scopes = field.StartsWith("scopes", StringComparison.Ordinal) ? new[] { value } : ["openid"];
        var redirects = field.StartsWith("redirect_uris", StringComparison.Ordinal) ? new[] { value } : ["https://app.example.com/cb"];

        var reply = await admin.SendAsync(HttpMethod.Post, "admin/api/clients", new
        {
            client_id = "bad-client",
            client_type = "public",
            grant_types = grants,
            scopes,
            redirect_uris = redirects,
        });

        Assert.Equal(HttpStatusCode.BadRequest, reply.Status);
        Assert.Contains(message, reply.Error(field), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("admin/api/clients/bad-client")).Status);
    }

    [Fact]
    public async Task Client_credentials_for_a_public_client_and_a_code_client_without_redirect_are_refused()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var publicCredentials = await admin.SendAsync(HttpMethod.Post, "admin/api/clients",
            new { client_id = "public-cc", client_type = "public", grant_types = new[] { "client_credentials" } });
        var noRedirect = await admin.SendAsync(HttpMethod.Post, "admin/api/clients",
            new { client_id = "code-no-redirect", client_type = "confidential", grant_types = new[] { "authorization_code" } });
        var httpForConfidential = await admin.SendAsync(HttpMethod.Post, "admin/api/clients",
            new { client_id = "web-loopback", client_type = "confidential", grant_types = new[] { "authorization_code" }, redirect_uris = new[] { "http://127.0.0.1:5000/cb" } });
        var unknownField = await admin.SendRawAsync(HttpMethod.Post, "admin/api/clients", """{"client_id":"x","client_type":"public","grant_type":["authorization_code"]}""");

        Assert.Equal(HttpStatusCode.BadRequest, publicCredentials.Status);
        Assert.Contains("RFC 6749 §4.4", publicCredentials.Error("grant_types"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, noRedirect.Status);
        Assert.Contains("at least one URI", noRedirect.Error("redirect_uris"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, httpForConfidential.Status);
        Assert.Contains("RFC 8252 §7.3", httpForConfidential.Error("redirect_uris[0]"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, unknownField.Status);
    }

    [Fact]
    public async Task An_edit_needs_the_current_version_and_is_audited_with_before_and_after()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        await CreateAsync(admin, "edited-app", "confidential", ["client_credentials"], ["crm.api"]);
        var read = await admin.GetAsync("admin/api/clients/edited-app");

        var stale = await admin.SendAsync(HttpMethod.Put, "admin/api/clients/edited-app", new { display_name = "Stale" }, "\"not-the-version\"");
        var changed = await admin.SendAsync(HttpMethod.Put, "admin/api/clients/edited-app",
            new { display_name = "Edited app", scopes = new[] { "crm.api", "crm.reports" } }, read.ETag);
        var again = await admin.SendAsync(HttpMethod.Put, "admin/api/clients/edited-app", new { display_name = "Lost update" }, read.ETag);
        var typeChange = await admin.SendAsync(HttpMethod.Put, "admin/api/clients/edited-app", new { client_type = "public" });
        var after = (await admin.GetAsync("admin/api/clients/edited-app")).Json;

        Assert.Equal(HttpStatusCode.Conflict, stale.Status);
        Assert.Equal(HttpStatusCode.NoContent, changed.Status);
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        Assert.Equal(HttpStatusCode.BadRequest, typeChange.Status);
        Assert.Equal("Edited app", after.GetProperty("display_name").GetString());
        Assert.Equal(["client_credentials"], after.GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()));
        Assert.Equal(["crm.api", "crm.reports"], after.GetProperty("scopes").EnumerateArray().Select(g => g.GetString()));
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "client.update" && e.TargetId == "edited-app", Cancel));
        Assert.Contains("\"scopes\":[\"crm.api\"]", entry.Before!, StringComparison.Ordinal);
        Assert.Contains("\"scopes\":[\"crm.api\",\"crm.reports\"]", entry.After!, StringComparison.Ordinal);
        Assert.Equal("Edited app", entry.TargetName);
    }

    [Fact]
    public async Task An_edit_keeps_the_secret()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var secret = await CreateAsync(admin, "kept-secret", "confidential", ["client_credentials"], ["crm.api"]);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(HttpMethod.Put, "admin/api/clients/kept-secret", new { display_name = "Renamed" })).Status);

        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "kept-secret", secret!)).Status);
    }

    [Fact]
    public async Task An_edit_of_a_client_with_token_exchange_keeps_that_grant()
    {
        using var admin = await AdminApi.SecOpsAsync(host);

        var changed = await admin.SendAsync(HttpMethod.Put, "admin/api/clients/demo-crm", new { display_name = "Demo CRM" });
        var grants = (await admin.GetAsync("admin/api/clients/demo-crm")).Json.GetProperty("grant_types").EnumerateArray().Select(g => g.GetString()).ToList();

        Assert.True(changed.Status == HttpStatusCode.NoContent, changed.Text);
        Assert.Contains("urn:ietf:params:oauth:grant-type:token-exchange", grants);
        Assert.Contains("authorization_code", grants);
    }

    [Fact]
    public async Task Deleting_a_client_revokes_its_tokens_and_its_registration()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var secret = await CreateAsync(admin, "doomed-app", "confidential", ["client_credentials"], ["identity.admin"]);
        using var http = host.CreateClient();
        var token = await AdminApi.TokenAsync(http, "doomed-app", secret!);
        using var doomed = new AdminApi(host, token);
        // Its token is good (authenticated); only the model refuses it, since no application user holds roles for it.
        Assert.Equal(HttpStatusCode.Forbidden, (await doomed.GetAsync("admin/api/clients")).Status);

        var deleted = await admin.SendAsync(HttpMethod.Delete, "admin/api/clients/doomed-app", null);

        Assert.True(deleted.Status == HttpStatusCode.OK, deleted.Text);
        Assert.Equal(HttpStatusCode.Unauthorized, (await doomed.GetAsync("admin/api/clients")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("admin/api/clients/doomed-app")).Status);
        Assert.NotEqual(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "doomed-app", secret!, "identity.admin")).Status);
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "client.delete" && e.TargetId == "doomed-app", Cancel));
        Assert.Contains("\"scopes\":[\"identity.admin\"]", entry.Before!, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.SendAsync(HttpMethod.Delete, "admin/api/clients/doomed-app", null)).Status);
    }

    [Fact]
    public async Task Revoking_a_client_answers_in_snake_case_as_deleting_one_does_and_keeps_the_client()
    {
        using var admin = await AdminApi.SecOpsAsync(host);
        var secret = await CreateAsync(admin, "breached-app", "confidential", ["client_credentials"], ["crm.api"]);
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await ClientCredentialsStatusAsync(http, "breached-app", secret!)).Status);

        var revoked = await admin.SendAsync(HttpMethod.Post, "admin/api/clients/breached-app/revoke", null);

        // One JSON contract for the admin API: the same members as DELETE's answer, snake_case like every neighbour.
        Assert.True(revoked.Status == HttpStatusCode.OK, revoked.Text);
        Assert.Equal(["client_id", "tokens_revoked", "authorizations_revoked"], revoked.Json.EnumerateObject().Select(p => p.Name));
        Assert.Equal("breached-app", revoked.Json.GetProperty("client_id").GetString());
        Assert.True(revoked.Json.GetProperty("tokens_revoked").GetInt64() >= 0);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("admin/api/clients/breached-app")).Status);
    }

    [Fact]
    public async Task The_openapi_document_describes_the_client_operations()
    {
        using var http = host.CreateClient();
        using var document = JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/openapi/admin.json", UriKind.Relative), Cancel));
        var paths = document.RootElement.GetProperty("paths");

        Assert.True(paths.GetProperty("/admin/api/clients").TryGetProperty("post", out _));
        Assert.True(paths.GetProperty("/admin/api/clients/{id}").TryGetProperty("put", out _));
        Assert.True(paths.GetProperty("/admin/api/clients/{id}").TryGetProperty("delete", out _));
        Assert.True(paths.GetProperty("/admin/api/clients/{id}/secrets").TryGetProperty("post", out _));
        var revoke = paths.GetProperty("/admin/api/clients/{id}/revoke").GetProperty("post");
        Assert.Contains("revoke every token", revoke.GetProperty("summary").GetString(), StringComparison.Ordinal);
        var answer = revoke.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("$ref").GetString()!;
        var schema = document.RootElement.GetProperty("components").GetProperty("schemas").GetProperty(answer.Split('/')[^1]).GetProperty("properties");
        Assert.Equal(["client_id", "tokens_revoked", "authorizations_revoked"], schema.EnumerateObject().Select(p => p.Name));
    }

    internal static async Task<string?> CreateAsync(AdminApi admin, string clientId, string type, string[] grants, string[] scopes, string[]? redirects = null)
    {
        var created = await admin.SendAsync(HttpMethod.Post, "admin/api/clients", new
        {
            client_id = clientId,
            client_type = type,
            grant_types = grants,
            scopes,
            redirect_uris = redirects ?? [],
        });
        Assert.True(created.Status == HttpStatusCode.Created, created.Text);
        return created.Json.GetProperty("client_secret").GetString();
    }

    internal static Task<(HttpStatusCode Status, JsonElement Body)> ClientCredentialsStatusAsync(HttpClient http, string client, string secret, string scope = "crm.api") =>
        PostFormAsync(http, "connect/token", new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }, (client, secret));

    /// <summary>Neither the secret nor anything but its PBKDF2 hash is in the database: audit trail, access events or the client row.</summary>
    private async Task AssertNoSecretStoredInTheClearAsync(string secret)
    {
        await host.FlushEventsAsync();
        var audit = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().ToListAsync(Cancel));
        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking().Where(e => e.Details != null).Select(e => e.Details!).ToListAsync(Cancel));
        var hash = await host.WithStoreAsync(store => store.Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>()
            .AsNoTracking().Where(a => a.ClientId == "reporting-batch").Select(a => a.ClientSecret).SingleAsync(Cancel));
        Assert.NotEqual(secret, hash);
        Assert.DoesNotContain(audit, e => (e.Before + e.After + e.TargetName).Contains(secret, StringComparison.Ordinal) || (e.Before + e.After).Contains(hash!, StringComparison.Ordinal));
        Assert.DoesNotContain(events, d => d.Contains(secret, StringComparison.Ordinal));
    }
}
