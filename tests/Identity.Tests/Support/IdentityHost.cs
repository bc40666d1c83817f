using System.Net;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Time.Testing;

namespace CrmSecurity.Identity.Tests.Support;

/// <summary>
/// The real host (src/Server's Program) on a free loopback port over real HTTP, with demo data seeded into a
/// fresh database: SQLite in a temporary folder by default, or a throw-away PostgreSQL database.
/// One instance is shared by the tests of a class.
/// </summary>
public class IdentityHost : IAsyncLifetime
{
    private readonly string _directory = System.IO.Directory.CreateTempSubdirectory("crm-identity-").FullName;
    private WebApplicationFactory<Program>? _factory;
    private PostgresDatabase? _postgres;

    public Uri BaseAddress { get; private set; } = null!;

    /// <summary>The issuer as discovery reports it (the base address with a trailing slash).</summary>
    public string Issuer => BaseAddress.AbsoluteUri;

    public IServiceProvider Services => _factory!.Services;

    public string Directory => _directory;

    /// <summary>Set when the host runs on a fake clock (tests of expiry and key rotation).</summary>
    public FakeTimeProvider? Clock { get; private set; }

    /// <summary>A PostgreSQL database another host also uses (several instances of the service).</summary>
    public string? SharedPostgres { get; init; }

    /// <summary>Extra settings for this instance.</summary>
    public IDictionary<string, string?> ExtraSettings { get; init; } = new Dictionary<string, string?>();

    protected virtual bool UsePostgres => false;

    protected virtual bool UseFakeClock => false;

    protected virtual IDictionary<string, string?> Settings => new Dictionary<string, string?>();

    /// <summary>Replaces services of the host (true boundaries only).</summary>
    protected virtual void ConfigureServices(IServiceCollection services)
    {
    }

    public async ValueTask InitializeAsync()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Identity:AllowHttp"] = "true",
            ["Identity:DemoMode"] = "true",
            // The host's demo access history only feeds the analyzer; Identity's tests would pay for scoring it.
            ["AuditAnalyzer:DemoHistory:Enabled"] = "false",
            ["Identity:MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            ["Identity:Throttling:TokenPerIpPerSecond"] = "100000",
            ["Identity:Throttling:TokenPerClientPerSecond"] = "100000",
            ["Identity:Throttling:LoginPerIpPerMinute"] = "100000",
            ["Identity:Throttling:LoginPerAccountPerMinute"] = "100000",
            ["Serilog:MinimumLevel:Default"] = "Warning",
        };
        if (SharedPostgres is { } shared)
        {
            settings["Database:Provider"] = "PostgreSql";
            settings["Database:ConnectionString"] = shared;
        }
        else if (UsePostgres)
        {
            _postgres = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
            settings["Database:Provider"] = "PostgreSql";
            settings["Database:ConnectionString"] = _postgres.ConnectionString;
        }
        else
        {
            settings["Database:Provider"] = "Sqlite";
            settings["Database:ConnectionString"] = $"Data Source={Path.Combine(_directory, "identity.db")}";
        }

        foreach (var (key, value) in Settings.Concat(ExtraSettings))
        {
            settings[key] = value;
        }

        if (UseFakeClock)
        {
            Clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        }

        (_factory, BaseAddress) = LoopbackHost.Start(settings, builder => builder.ConfigureServices(services =>
        {
            if (Clock is not null)
            {
                services.Replace(ServiceDescriptor.Singleton<TimeProvider>(Clock));
            }

            ConfigureServices(services);
        }));
    }

    /// <summary>A client with its own cookie jar that does not follow redirects, so each protocol step is visible.</summary>
    public HttpClient CreateClient(CookieContainer? cookies = null) =>
        new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = cookies ?? new CookieContainer() })
        {
            BaseAddress = BaseAddress,
        };

    /// <summary>Waits until every access event written so far is in the database.</summary>
    public Task FlushEventsAsync() => Services.GetRequiredService<DatabaseEventSink>().FlushAsync(TestContext.Current.CancellationToken);

    internal async Task<T> WithStoreAsync<T>(Func<IdentityStore, Task<T>> action)
    {
        await using var scope = Services.CreateAsyncScope();
        return await action(scope.ServiceProvider.GetRequiredService<IdentityStore>());
    }

    public async ValueTask DisposeAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }

        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        await CrmSecurity.Tests.Support.TestDirectories.DeleteAsync(_directory);
        GC.SuppressFinalize(this);
    }
}
