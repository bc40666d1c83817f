using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Tests.Hosting;

/// <summary>
/// The real host (src/Server's Program) in-process on a loopback port over real HTTP, on a fresh SQLite file, with
/// Identity, the analyzer and one client-credentials client that may send events and read findings.
/// </summary>
public class InProcessHost : IAsyncLifetime
{
    public const string Client = "crm-app";
    public const string Secret = "test-secret-for-host-clients";

    private readonly string _directory = System.IO.Directory.CreateTempSubdirectory("crm-host-").FullName;
    private WebApplicationFactory<Program>? _factory;

    public Uri BaseAddress { get; private set; } = null!;

    public string DatabasePath => Path.Combine(_directory, "security.db");

    public IServiceProvider Services => _factory!.Services;

    /// <summary>Demo mode seeds its own users and clients (demo-crm, demo-secops, demo-audit, ...) instead of <see cref="Client"/>.</summary>
    protected virtual bool DemoMode => false;

    /// <summary>Settings on top of the defaults below; a subclass changes the host's shape.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>();

    public async ValueTask InitializeAsync()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:ConnectionString"] = $"Data Source={DatabasePath}",
            ["Identity:AllowHttp"] = "true",
            ["Identity:DemoMode"] = DemoMode ? "true" : "false",
            ["Identity:MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            ["AuditAnalyzer:Live:PollInterval"] = "00:00:00.200",
        };
        if (!DemoMode)
        {
            settings["Identity:Clients:0:ClientId"] = Client;
            settings["Identity:Clients:0:ClientSecret"] = Secret;
            settings["Identity:Clients:0:GrantTypes:0"] = "client_credentials";
            settings["Identity:Clients:0:Scopes:0"] = "events:write";
            settings["Identity:Clients:0:Scopes:1"] = "findings:read";
            settings["Identity:Clients:0:Tenants:0"] = "default"; // the tenant it may report events on
        }

        foreach (var (key, value) in Settings)
        {
            settings[key] = value;
        }

        (_factory, BaseAddress) = LoopbackHost.Start(settings);
        await Task.CompletedTask;
    }

    public HttpClient CreateClient(string? accessToken = null)
    {
        var http = new HttpClient { BaseAddress = BaseAddress };
        if (accessToken is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }

        return http;
    }

    /// <summary>Asks the host's own provider for a client-credentials token; returns the status and the JSON body.</summary>
    public async Task<(int Status, JsonElement Body)> RequestTokenAsync(string client, string secret, string scope)
    {
        using var http = CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{client}:{secret}")));
        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        return ((int)response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken));
    }

    public async Task<string> TokenAsync(string scope, string client = Client, string secret = Secret)
    {
        var (status, body) = await RequestTokenAsync(client, secret, scope);
        Assert.True(status == 200, $"token request failed: {status} {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>Runs a query against the host's database until <paramref name="done"/> holds (bounded: about 15 s).</summary>
    public async Task<List<Dictionary<string, object?>>> WaitForRowsAsync(string sql, Func<List<Dictionary<string, object?>>, bool> done)
    {
        var rows = new List<Dictionary<string, object?>>();
        for (var attempt = 0; attempt < 300; attempt++)
        {
            rows = await QueryAsync(sql);
            if (done(rows))
            {
                return rows;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        return rows;
    }

    public async Task<List<Dictionary<string, object?>>> QueryAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var rows = new List<Dictionary<string, object?>>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, i => reader.IsDBNull(i) ? null : reader.GetValue(i)));
        }

        return rows;
    }

    /// <summary>Stops the host (hosted services flush their queues) without deleting its files.</summary>
    public async Task StopAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
            _factory = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        SqliteConnection.ClearAllPools();

        await CrmSecurity.Tests.Support.TestDirectories.DeleteAsync(_directory);
        GC.SuppressFinalize(this);
    }
}
