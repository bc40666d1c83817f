using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.WebUtilities;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>The analyzer's HTTP calls as a CRM app, an auditor or an attacker makes them.</summary>
internal static class AnalyzerCalls
{
    public static string At(DateTimeOffset time) => time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>One access event line; <paramref name="extra"/> is appended inside the object (starting with a comma).</summary>
    public static string Line(string eventId, string userId, string action, DateTimeOffset time, string extra = "") =>
        $"{{\"event_id\":\"{eventId}\",\"timestamp\":\"{At(time)}\",\"user_id\":\"{userId}\",\"action\":\"{action}\"{extra}}}";

    /// <summary>
    /// A sign-in and a 48,000-contact export <paramref name="daysAgo"/> days ago at <paramref name="utcHour"/> (03:00 UTC: the middle of the night
    /// for the demo's European users): what the analyzer turns into a finding.
    /// </summary>
    public static string NightExport(string prefix, string userId, string extra = "", int utcHour = 3, int daysAgo = 1)
    {
        var night = new DateTimeOffset(DateTimeOffset.UtcNow.Date.AddDays(-daysAgo).AddHours(utcHour), TimeSpan.Zero);
        return Line(prefix + "-1", userId, "login", night, extra) + "\n"
            + Line(prefix + "-2", userId, "export", night.AddMinutes(4), ",\"entity\":\"contact\",\"record_count\":48000" + extra) + "\n";
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body)> PostEventsAsync(SecurityHost host, string? token, byte[] body, string? contentEncoding = null)
    {
        using var http = host.CreateClient(token);
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
        if (contentEncoding is not null)
        {
            content.Headers.ContentEncoding.Add(contentEncoding);
        }

        using var response = await http.PostAsync(new Uri("analyzer/events", UriKind.Relative), content, Personas.Cancel);
        return (response.StatusCode, await BodyAsync(response));
    }

    public static Task<(HttpStatusCode Status, JsonElement Body)> PostEventsAsync(SecurityHost host, string? token, string lines) =>
        PostEventsAsync(host, token, Encoding.UTF8.GetBytes(lines));

    public static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(SecurityHost host, string token, string path, string? revealReason = null)
    {
        using var http = host.CreateClient(token);
        if (revealReason is not null)
        {
            http.DefaultRequestHeaders.Add("Reveal-Reason", Uri.EscapeDataString(revealReason));
        }

        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), Personas.Cancel);
        return (response.StatusCode, await BodyAsync(response));
    }

    /// <summary>
    /// What an operator does for a SIEM that pulls findings: a role with read on <c>audit_finding</c> and an application
    /// user for <paramref name="clientId"/> holding it, through the admin API as demo-secops.
    /// </summary>
    public static async Task GiveClientReadOnFindingsAsync(SecurityHost host, string clientId)
    {
        var admin = await Personas.ClientTokenAsync(host, "demo-secops", "identity.admin");
        var (role, roleBody) = await PostJsonAsync(host, admin, "admin/api/roles",
            new { id = "findings_reader", name = "Findings reader", description = "Reads pseudonymous findings (SIEM)", privileges = new { audit_finding = new { read = "organization" } } });
        var (app, appBody) = await PostJsonAsync(host, admin, "admin/api/users",
            new { user_name = clientId + "-app", display_name = $"{clientId} (application user)", business_unit = "compliance", application_client_id = clientId });
        Assert.True(role == HttpStatusCode.Created, roleBody.ToString());
        Assert.True(app == HttpStatusCode.Created, appBody.ToString());
        using var http = host.CreateClient(admin);
        using var put = await http.PutAsync(new Uri($"admin/api/users/{appBody.GetProperty("id").GetString()}/roles", UriKind.Relative),
            new StringContent("{\"roles\":[\"findings_reader\"]}", Encoding.UTF8, "application/json"), Personas.Cancel);
        Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync(Personas.Cancel));
    }

    public static async Task<(HttpStatusCode Status, JsonElement Body)> PostJsonAsync(SecurityHost host, string token, string path, object? body)
    {
        using var http = host.CreateClient(token);
        using var response = await http.PostAsync(new Uri(path, UriKind.Relative),
            new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"), Personas.Cancel);
        return (response.StatusCode, await BodyAsync(response));
    }

    /// <summary>
    /// The code flow for <paramref name="user"/> through <paramref name="client"/> asking for <paramref name="scope"/>;
    /// null when the provider refuses it (an error instead of a code, or a refused redemption).
    /// </summary>
    public static async Task<string?> TryUserTokenAsync(
        SecurityHost host, string user, string scope, string client = OAuthFlows.CrmClient, string? secret = OAuthFlows.CrmSecret, string redirect = OAuthFlows.CrmRedirect)
    {
        using var http = host.CreateClient();
        var (verifier, challenge) = OAuthFlows.Pkce();
        var location = await OAuthFlows.AuthorizeAsync(http, OAuthFlows.AuthorizeParameters(challenge, client, redirect, scope), user, Personas.Passwords[user]);
        var query = QueryHelpers.ParseQuery(location.Query);
        if (!query.TryGetValue("code", out var code))
        {
            return null;
        }

        var (status, body) = await OAuthFlows.RedeemAsync(http, code.ToString(), verifier, redirect, client, secret);
        return status == HttpStatusCode.OK ? body.GetProperty("access_token").GetString() : null;
    }

    /// <summary>Polls until <paramref name="probe"/> returns a value (the scorer runs every 200 ms here), at most 20 s.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what)
        where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }

            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for {what}.");
            await Task.Delay(200, Personas.Cancel);
        }
    }

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Personas.Cancel);
        if (text.Length == 0)
        {
            return default;
        }

        try
        {
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            return JsonDocument.Parse(JsonSerializer.Serialize(text)).RootElement.Clone();
        }
    }
}
