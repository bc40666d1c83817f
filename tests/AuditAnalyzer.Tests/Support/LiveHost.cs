using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Support;

/// <summary>
/// The real host (src/Server's Program) on a free loopback port with demo clients seeded into a SQLite file of
/// its own folder (or a given connection), and the background scorer polling every 200 ms.
/// </summary>
public sealed class LiveHost : IAsyncDisposable
{
    private readonly WebApplicationFactory<Program>? _factory;

    private LiveHost(WebApplicationFactory<Program>? factory, Uri baseAddress)
    {
        _factory = factory;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public IServiceProvider Services => _factory?.Services ?? throw new InvalidOperationException("A host in another process has no services here.");

    public static CancellationToken Cancel => TestContext.Current.CancellationToken;

    /// <summary>
    /// Starts a host on <paramref name="directory"/>'s SQLite file, or on PostgreSQL when a connection string is given;
    /// <paramref name="services"/> adds or replaces services of the host (an event log, a clock).
    /// </summary>
    public static LiveHost Start(string directory, string? postgres = null, IDictionary<string, string?>? extra = null, Action<IServiceCollection>? services = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Identity:AllowHttp"] = "true",
            ["Identity:DemoMode"] = "true",
            ["AuditAnalyzer:DemoHistory:Enabled"] = "false",
            ["Identity:MailPickupDirectory"] = Path.Combine(directory, "mail"),
            ["Identity:Throttling:TokenPerIpPerSecond"] = "100000",
            ["Identity:Throttling:TokenPerClientPerSecond"] = "100000",
            ["AuditAnalyzer:Live:PollInterval"] = "00:00:00.2",
            ["AuditAnalyzer:Live:LeaseDuration"] = "00:00:05",
            ["AuditAnalyzer:Live:Partitions"] = "4",
            ["Serilog:MinimumLevel:Default"] = "Warning",
            ["Database:Provider"] = postgres is null ? "Sqlite" : "PostgreSql",
            ["Database:ConnectionString"] = postgres ?? $"Data Source={Path.Combine(directory, "service.db")}",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var (factory, baseAddress) = LoopbackHost.Start(settings, services is null ? null : builder => builder.ConfigureServices(services));
        return new LiveHost(factory, baseAddress);
    }

    /// <summary>The HTTP helpers for a host running in another process (<see cref="ServerProcess"/>).</summary>
    public static LiveHost Remote(Uri baseAddress) => new(null, baseAddress);

    public HttpClient CreateClient() => new() { BaseAddress = BaseAddress };

    /// <summary>A client-credentials access token of a demo client (RFC 6749 §4.4).</summary>
    public async Task<string> TokenAsync(string client, string secret, string scope)
    {
        using var http = CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{client}:{secret}")));
        using var response = await http.SendAsync(request, Cancel);
        var body = await response.Content.ReadAsStringAsync(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"client_credentials for {client} failed: {response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    public Task<string> WriterTokenAsync() => TokenAsync("demo-crm", "demo-crm-secret", LiveModule.WriteScope);

    /// <summary>
    /// demo-audit's token for reading findings. Reading needs read on audit_finding in the model, and a client acts as its
    /// application user: the first call sets one up through the admin API as an operator would for a SIEM (a role with
    /// read on audit_finding, an application user for the client); later calls and other hosts on the same database reuse it.
    /// </summary>
    public async Task<string> AuditorTokenAsync()
    {
        if (!_readerReady)
        {
            await EnsureFindingsReaderAsync();
            _readerReady = true;
        }

        return await TokenAsync("demo-audit", "demo-audit-secret", LiveModule.ReadScope);
    }

    private bool _readerReady;

    private async Task EnsureFindingsReaderAsync()
    {
        var admin = await TokenAsync("demo-secops", "demo-secops-secret", "identity.admin");
        using var http = CreateClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        using var role = await http.PostAsync(new Uri("admin/api/roles", UriKind.Relative), Json(new
        {
            id = "findings_reader",
            name = "Findings reader",
            description = "Reads pseudonymous findings",
            privileges = new Dictionary<string, Dictionary<string, string>> { ["audit_finding"] = new() { ["read"] = "organization" } },
        }), Cancel);
        Assert.True(role.IsSuccessStatusCode || role.StatusCode == HttpStatusCode.Conflict, $"role: {role.StatusCode} {await role.Content.ReadAsStringAsync(Cancel)}");
        var users = JsonDocument.Parse(await http.GetStringAsync(new Uri("admin/api/users", UriKind.Relative), Cancel)).RootElement;
        var id = (users.ValueKind == JsonValueKind.Array ? users : users.GetProperty("items")).EnumerateArray()
            .Where(u => u.GetProperty("user_name").GetString() == "demo-audit-app").Select(u => u.GetProperty("id").GetString()).FirstOrDefault();
        if (id is null)
        {
            using var created = await http.PostAsync(new Uri("admin/api/users", UriKind.Relative), Json(new
            {
                user_name = "demo-audit-app",
                display_name = "Demo audit tool (application user)",
                business_unit = "compliance",
                application_client_id = "demo-audit",
            }), Cancel);
            var body = await created.Content.ReadAsStringAsync(Cancel);
            Assert.True(created.IsSuccessStatusCode, $"application user: {created.StatusCode} {body}");
            id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetString();
        }

        using var assigned = await http.PutAsync(new Uri($"admin/api/users/{id}/roles", UriKind.Relative), Json(new { roles = new[] { "findings_reader" } }), Cancel);
        Assert.True(assigned.IsSuccessStatusCode, $"roles: {assigned.StatusCode} {await assigned.Content.ReadAsStringAsync(Cancel)}");
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    /// <summary>The pseudonym findings show for <paramref name="userId"/> (the installation's key, read through this in-process host).</summary>
    public async Task<string> PseudonymAsync(string userId)
    {
        await using var scope = Services.CreateAsyncScope();
        var key = await Services.GetRequiredService<CrmSecurity.AuditAnalyzer.Review.PseudonymKeys>()
            .GetAsync(scope.ServiceProvider.GetRequiredService<LiveDbContext>(), Cancel);
        return CrmSecurity.AuditAnalyzer.Review.Pseudonyms.Of(key, userId);
    }

    public async Task<(HttpStatusCode Status, string ContentType, JsonElement Body)> PostEventsAsync(string? token, string lines)
    {
        using var http = CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "analyzer/events") { Content = new StringContent(lines, Encoding.UTF8, "application/x-ndjson") };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType ?? "", text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    /// <summary>Sends <paramref name="lines"/> as the demo CRM in batches of <paramref name="batch"/>, each answered 200 with no rejected line.</summary>
    public async Task PostAllAsync(IEnumerable<string> lines, int batch = 2_000)
    {
        var token = await WriterTokenAsync();
        foreach (var chunk in lines.Chunk(batch))
        {
            var (status, _, body) = await PostEventsAsync(token, string.Join('\n', chunk));
            Assert.True(status == HttpStatusCode.OK, $"events refused: {(int)status} {body}");
            Assert.Equal(0, body.GetProperty("rejected").GetInt32());
        }
    }

    /// <summary>Scores every stored event with the host's own scorer (a host started with scoring off), poll by poll.</summary>
    public async Task ScoreAllAsync(int polls = 50)
    {
        var scoring = Services.GetRequiredService<LiveScoring>();
        for (var poll = 0; poll < polls; poll++)
        {
            await scoring.PollAsync(Cancel);
            await using var scope = Services.CreateAsyncScope();
            if (!await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.AnyAsync(e => !e.Scored, Cancel))
            {
                return;
            }
        }

        Assert.Fail($"the scorer left events unscored after {polls} polls");
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> GetFindingsAsync(string? token, string query = "")
    {
        using var http = CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "analyzer/findings" + query);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default);
    }

    public async ValueTask DisposeAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }
    }
}
