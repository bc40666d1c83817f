using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.Identity.Tests.Admin;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Scim;

/// <summary>A SCIM client over real HTTP: a registered OIDC client with scope scim whose application user holds the given roles.</summary>
internal sealed class ScimClient(IdentityHost host, string token) : IDisposable
{
    public const string MediaType = "application/scim+json";
    private readonly HttpClient _http = host.CreateClient();

    public string Token => token;

    /// <summary>Registers <paramref name="name"/> (client credentials, scope scim) and gives its application user <paramref name="roles"/> in <paramref name="businessUnit"/>.</summary>
    public static Task<ScimClient> CreateAsync(IdentityHost host, string name, string businessUnit, params string[] roles) =>
        CreateAsync(host, name, businessUnit, roles, []);

    /// <summary>As above, the application user also holding the field security <paramref name="profiles"/> (to hand out teams that give them).</summary>
    public static async Task<ScimClient> CreateAsync(IdentityHost host, string name, string businessUnit, string[] roles, string[] profiles)
    {
        await using (var scope = host.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<Clients.ClientRegistry>().RegisterAsync(
                new ClientSettings { ClientId = name, ClientSecret = name + "-secret", GrantTypes = ["client_credentials"], Scopes = ["scim"] }, Cancel);
        }

        using var secops = await AdminApi.SecOpsAsync(host);
        var created = await secops.SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = name + "-app", business_unit = businessUnit, application_client_id = name });
        Assert.True(created.Status == HttpStatusCode.Created, $"create user: {created.Status} {created.Text}");
        var id = created.Json.GetProperty("id").GetString()!;
        var assigned = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/roles", new { roles });
        Assert.True(assigned.Status == HttpStatusCode.NoContent, $"assign roles: {assigned.Status} {assigned.Text}");
        if (profiles.Length > 0)
        {
            var granted = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/field-security-profiles", new { field_security_profiles = profiles });
            Assert.True(granted.Status == HttpStatusCode.NoContent, $"assign profiles: {granted.Status} {granted.Text}");
        }

        using var http = host.CreateClient();
        var tokens = await ClientCredentialsAsync(http, "scim", name, name + "-secret");
        return new ScimClient(host, tokens.GetProperty("access_token").GetString()!);
    }

    public Task<Reply> GetAsync(string path) => SendAsync(HttpMethod.Get, path, null);

    public async Task<Reply> SendAsync(HttpMethod method, string path, string? json, string? ifMatch = null, string? bearer = null, string mediaType = MediaType)
    {
        using var request = new HttpRequestMessage(method, path.StartsWith('/') ? path[1..] : path);
        if ((bearer ?? token) is { Length: > 0 } value)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", value);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, mediaType);
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        using var response = await _http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return new Reply(response.StatusCode, text, response.Headers.ETag?.ToString(), response.Headers.Location?.ToString(), response.Content.Headers.ContentType?.MediaType);
    }

    public void Dispose() => _http.Dispose();

    internal sealed record Reply(HttpStatusCode Status, string Text, string? ETag, string? Location, string? ContentType)
    {
        public JsonElement Json => JsonDocument.Parse(Text).RootElement.Clone();

        public string Id => Json.GetProperty("id").GetString()!;

        public override string ToString() => $"{(int)Status} {Text}";
    }
}
