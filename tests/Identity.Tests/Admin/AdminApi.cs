using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>Calls the admin API over real HTTP with a bearer token, and sets up application users acting as admins.</summary>
internal sealed class AdminApi(IdentityHost host, string token) : IDisposable
{
    private readonly HttpClient _http = host.CreateClient();

    public string Token => token;

    /// <summary>demo-secops's own token: its application user holds security_admin for the whole organisation.</summary>
    public static async Task<AdminApi> SecOpsAsync(IdentityHost host)
    {
        using var http = host.CreateClient();
        return new AdminApi(host, await TokenAsync(http, "demo-secops", "demo-secops-secret"));
    }

    /// <summary>A new OIDC client whose application user (created through the API by secops) holds <paramref name="roles"/> in <paramref name="businessUnit"/>.</summary>
    public static async Task<(AdminApi Api, string UserId)> ApplicationUserAsync(IdentityHost host, string name, string businessUnit, params string[] roles)
    {
        await using (var scope = host.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<Clients.ClientRegistry>().RegisterAsync(
                new ClientSettings { ClientId = name, ClientSecret = name + "-secret", GrantTypes = ["client_credentials"], Scopes = ["identity.admin"] }, Cancel);
        }

        using var secops = await SecOpsAsync(host);
        var created = await secops.SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = name + "-app", business_unit = businessUnit, application_client_id = name });
        Assert.True(created.Status == HttpStatusCode.Created, $"create user: {created.Status} {created.Text}");
        var id = created.Json.GetProperty("id").GetString()!;
        var assigned = await secops.SendAsync(HttpMethod.Put, $"admin/api/users/{id}/roles", new { roles });
        Assert.True(assigned.Status == HttpStatusCode.NoContent, $"assign roles: {assigned.Status} {assigned.Text}");
        using var http = host.CreateClient();
        return (new AdminApi(host, await TokenAsync(http, name, name + "-secret")), id);
    }

    public static async Task<string> TokenAsync(HttpClient http, string client, string secret) =>
        (await ClientCredentialsAsync(http, "identity.admin", client, secret)).GetProperty("access_token").GetString()!;

    public Task<Reply> GetAsync(string path) => SendAsync(HttpMethod.Get, path, null);

    public Task<Reply> SendAsync(HttpMethod method, string path, object? body, string? ifMatch = null) =>
        SendRawAsync(method, path, body is null ? null : JsonSerializer.Serialize(body), ifMatch);

    public async Task<Reply> SendRawAsync(HttpMethod method, string path, string? json, string? ifMatch = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }

        using var response = await _http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return new Reply(response.StatusCode, text, response.Headers.ETag?.Tag);
    }

    public void Dispose() => _http.Dispose();

    internal sealed record Reply(HttpStatusCode Status, string Text, string? ETag)
    {
        public JsonElement Json => JsonDocument.Parse(Text).RootElement.Clone();

        /// <summary>The message of a validation problem for one field (RFC 9457 "errors" member).</summary>
        public string Error(string field) => Json.GetProperty("errors").GetProperty(field)[0].GetString()!;

        public string Detail => Json.GetProperty("detail").GetString()!;
    }
}
