using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Security.Tests.Support;

/// <summary>
/// The real host (src/Server's Program) in-process on a free loopback port over real HTTP, in demo mode (the demo
/// organisation, users and clients of docs/identity.md, "Try it"), on a SQLite file in a folder of its own, with a master key (the
/// installation's key-encryption key) in a file of that folder, as an operator would configure it. Attack tests use only
/// what an attacker has: HTTP requests, and for the database attacker the database file itself.
/// </summary>
public class SecurityHost : IAsyncLifetime
{
    private WebApplicationFactory<Program>? _factory;

    /// <summary>The host's own folder: database, mail pickup, master key, keyring.</summary>
    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("crm-security-").FullName;

    public Uri BaseAddress { get; private set; } = null!;

    public string DatabasePath => Path.Combine(Directory, "security.db");

    public string MailDirectory => Path.Combine(Directory, "mail");

    /// <summary>The master key file (Crypto:MasterKey:Source File): outside the database, as production requires.</summary>
    public string MasterKeyPath => Path.Combine(Directory, "master.key");

    public IServiceProvider Services => _factory!.Services;

    /// <summary>Settings on top of <see cref="BaseSettings"/>; attack tests that need real limits or another shape override it.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>();

    /// <summary>What every security host runs with: demo data without the demo access history, generous throttles.</summary>
    protected virtual Dictionary<string, string?> BaseSettings() => new()
    {
        ["Database:Provider"] = "Sqlite",
        ["Database:ConnectionString"] = $"Data Source={DatabasePath}",
        ["Identity:AllowHttp"] = "true",
        ["Identity:DemoMode"] = "true",
        ["Identity:MailPickupDirectory"] = MailDirectory,
        ["Identity:Throttling:TokenPerIpPerSecond"] = "100000",
        ["Identity:Throttling:TokenPerClientPerSecond"] = "100000",
        ["Identity:Throttling:LoginPerIpPerMinute"] = "100000",
        ["Identity:Throttling:LoginPerAccountPerMinute"] = "100000",
        ["Crypto:MasterKey:Source"] = "File",
        ["Crypto:MasterKey:File"] = MasterKeyPath,
        ["Crypto:KeyringPath"] = Path.Combine(Directory, "keyring.json"),
        ["Crypto:AccessEventLog"] = Path.Combine(Directory, "crypto-access-events.jsonl"),
        ["AuditAnalyzer:DemoHistory:Enabled"] = "false",
        ["AuditAnalyzer:Live:PollInterval"] = "00:00:00.200",
        ["Serilog:MinimumLevel:Default"] = "Warning",
    };

    public virtual async ValueTask InitializeAsync()
    {
        if (!File.Exists(MasterKeyPath))
        {
            await File.WriteAllTextAsync(MasterKeyPath, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), TestContext.Current.CancellationToken);
        }

        var settings = BaseSettings();
        foreach (var (key, value) in Settings)
        {
            settings[key] = value;
        }

        (_factory, BaseAddress) = CrmSecurity.Tests.Support.LoopbackHost.Start(settings);
    }

    /// <summary>A client with its own cookie jar that does not follow redirects, so each step is visible; optionally with a bearer token.</summary>
    public HttpClient CreateClient(string? accessToken = null, CookieContainer? cookies = null)
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = cookies ?? new CookieContainer() })
        {
            BaseAddress = BaseAddress,
        };
        if (accessToken is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }

        return http;
    }

    /// <summary>Reads the database file directly, as someone holding a copy of it would.</summary>
    public async Task<List<Dictionary<string, object?>>> QueryAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var rows = new List<Dictionary<string, object?>>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, i => reader.IsDBNull(i) ? null : reader.GetValue(i)));
        }

        return rows;
    }

    /// <summary>Changes the database behind the service's back, as a database writer (a DBA, a stolen connection string) can.</summary>
    public async Task<int> ExecuteAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return await command.ExecuteNonQueryAsync(TestContext.Current.CancellationToken);
    }

    /// <summary>Stops the host without deleting its folder (to copy the database, or start it again).</summary>
    public async Task StopAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
            _factory = null;
        }

        SqliteConnection.ClearAllPools();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await CrmSecurity.Tests.Support.TestDirectories.DeleteAsync(Directory);
        GC.SuppressFinalize(this);
    }
}
