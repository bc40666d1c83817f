using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Service;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Serilog.Core;
using Serilog.Events;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>
/// The real host (src/Server's Program) on a loopback port over real HTTP, with the Crypto module on under a fresh
/// keyring and a client-credentials client per scope set. Every log event the host writes is kept for inspection.
/// </summary>
public class CryptoServiceHost : IAsyncLifetime
{
    public const string AllScopesClient = "crm-app";
    public const string EncryptOnlyClient = "crm-encrypt-only";
    public const string RewrapOnlyClient = "crm-rotation";
    public const string ShredClient = "crm-erasure";
    public const string Secret = "test-secret-for-crypto-clients";

    private readonly string _directory = System.IO.Directory.CreateTempSubdirectory("crm-crypto-service-").FullName;
    private WebApplicationFactory<Program>? _factory;
    private Dictionary<string, string?> _settings = [];

    public Uri BaseAddress { get; private set; } = null!;

    public string Directory => _directory;

    public string EventFile => Path.Combine(_directory, "crypto-access-events.jsonl");

    public string KeyringPath => Path.Combine(_directory, "keyring.json");

    public string MasterKeyPath => Path.Combine(_directory, "master.key");

    public string DatabasePath => Path.Combine(_directory, "security.db");

    public ConcurrentQueue<string> Logs { get; } = new();

    /// <summary>Settings a subclass adds or overrides.</summary>
    protected virtual IReadOnlyDictionary<string, string?> ExtraSettings => new Dictionary<string, string?>();

    /// <summary>The read_unmasked seam; null keeps the host's default (deny).</summary>
    internal virtual IUnmaskedFieldAccess? Access => null;

    public async ValueTask InitializeAsync()
    {
        var keyFile = MasterKeyPath;
        var keyring = KeyringPath;
        using (var kek = LocalMasterKey.Generate())
        {
            await File.WriteAllTextAsync(keyFile, InsecureCleartextKeyMaterial.ExportBase64(kek), TestContext.Current.CancellationToken);
            using var created = Keyring.CreateNew();
            created.Save(keyring, kek);
        }

        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity:AllowHttp"] = "true",
            ["Identity:DemoMode"] = "false",
            ["Identity:MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            ["Modules:Crypto:Enabled"] = "true",
            ["Crypto:KeyringPath"] = keyring,
            ["Crypto:MasterKey:Source"] = "File",
            ["Crypto:MasterKey:File"] = keyFile,
            ["Crypto:AccessEventLog"] = EventFile,
            ["Serilog:MinimumLevel:Default"] = "Debug",
        };
        // Declared columns: contact.email may be deterministic, and both email columns keep a 32-bit index (planned for
        // ten billion rows, so the planner accepts 32 bits).
        foreach (var (column, index) in new[] { ("email", 0), ("work_email", 1) })
        {
            settings[$"Crypto:Columns:{index}:Table"] = "contact";
            settings[$"Crypto:Columns:{index}:Column"] = column;
            settings[$"Crypto:Columns:{index}:Mode"] = column == "email" ? "Deterministic" : "Randomized";
            settings[$"Crypto:Columns:{index}:ExpectedRows"] = "10000000000";
            settings[$"Crypto:Columns:{index}:BlindIndexes:0:Name"] = "email_eq";
            settings[$"Crypto:Columns:{index}:BlindIndexes:0:Normaliser"] = "email";
            settings[$"Crypto:Columns:{index}:BlindIndexes:0:Bits"] = "32";
        }

        AddClient(settings, 0, AllScopesClient, ["acme", "globex"], "crypto:encrypt", "crypto:decrypt", "crypto:index", "crypto:rewrap", "crypto:shred");
        AddClient(settings, 1, EncryptOnlyClient, ["acme"], "crypto:encrypt");
        AddClient(settings, 2, RewrapOnlyClient, ["acme"], "crypto:rewrap");
        AddClient(settings, 3, ShredClient, ["acme"], "crypto:shred");
        foreach (var (key, value) in ExtraSettings)
        {
            settings[key] = value;
        }

        _settings = settings;
        Start();
    }

    /// <summary>Stops the host, runs <paramref name="whileStopped"/> (a verb on its keyring, say), and starts it again on the same files.</summary>
    public async Task RestartAsync(Func<Task> whileStopped)
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
            _factory = null;
        }

        SqliteConnection.ClearAllPools();
        await whileStopped();
        Start();
    }

    /// <summary>A verb of the real executable (as an operator runs it) on this host's keyring, master key and database.</summary>
    public Task<(int ExitCode, string Output)> RunVerbAsync(params string[] arguments) =>
        ServerProcess.RunVerbAsync(arguments, new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={DatabasePath}",
            ["Crypto__KeyringPath"] = KeyringPath,
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = MasterKeyPath,
            ["Crypto__AccessEventLog"] = EventFile,
        }, _directory, TestContext.Current.CancellationToken);

    private void Start()
    {
        (_factory, BaseAddress) = LoopbackHost.Start(_settings, builder => builder.ConfigureServices(services =>
        {
            // Serilog reads sinks from the container (ReadFrom.Services): every log event of the host lands here too.
            services.AddSingleton<ILogEventSink>(new CapturingSink(Logs));
            if (Access is { } access)
            {
                services.Replace(ServiceDescriptor.Singleton(access));
            }
        }));
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

    /// <summary>A client-credentials access token from the host's own OpenID Connect provider.</summary>
    public async Task<string> TokenAsync(string client, string scope)
    {
        using var http = CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{client}:{Secret}")));
        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"token request failed: {(int)response.StatusCode} {body} {string.Join(Environment.NewLine, Logs.Where(l => l.Contains("Exception", StringComparison.Ordinal)).TakeLast(1))}");
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>The crypto access events written to the module's JSON Lines file.</summary>
    public async Task<JsonElement[]> FileEventsAsync() =>
        File.Exists(EventFile)
            ? [.. (await File.ReadAllLinesAsync(EventFile, TestContext.Current.CancellationToken)).Select(line => JsonDocument.Parse(line).RootElement.Clone())]
            : [];

    /// <summary>Rows of Identity's access-event table for one event id, waiting for its background writer.</summary>
    public async Task<List<Dictionary<string, object?>>> StoredEventAsync(string eventId)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            await using var connection = new SqliteConnection($"Data Source={Path.Combine(_directory, "security.db")}");
            await connection.OpenAsync(TestContext.Current.CancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT * FROM identity_access_events WHERE EventId = $id";
            command.Parameters.AddWithValue("$id", eventId);
            await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
            var rows = new List<Dictionary<string, object?>>();
            while (await reader.ReadAsync(TestContext.Current.CancellationToken))
            {
                rows.Add(Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, i => reader.IsDBNull(i) ? null : reader.GetValue(i)));
            }

            if (rows.Count > 0)
            {
                return rows;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        return [];
    }

    public async ValueTask DisposeAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        await CrmSecurity.Tests.Support.TestDirectories.DeleteAsync(_directory);
        GC.SuppressFinalize(this);
    }

    private static void AddClient(Dictionary<string, string?> settings, int index, string id, string[] tenants, params string[] scopes)
    {
        var prefix = $"Identity:Clients:{index}:";
        for (var i = 0; i < tenants.Length; i++)
        {
            settings[$"{prefix}Tenants:{i}"] = tenants[i];
        }

        settings[prefix + "ClientId"] = id;
        settings[prefix + "ClientSecret"] = Secret;
        settings[prefix + "GrantTypes:0"] = "client_credentials";
        for (var i = 0; i < scopes.Length; i++)
        {
            settings[$"{prefix}Scopes:{i}"] = scopes[i];
        }
    }

    private sealed class CapturingSink(ConcurrentQueue<string> logs) : ILogEventSink
    {
        public void Emit(LogEvent logEvent)
        {
            using var writer = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
            logEvent.RenderMessage(writer, System.Globalization.CultureInfo.InvariantCulture);
            writer.Write(' ');
            foreach (var (name, value) in logEvent.Properties)
            {
                writer.Write($"{name}={value} ");
            }

            writer.Write(logEvent.Exception?.ToString());
            logs.Enqueue(writer.ToString());
        }
    }
}
