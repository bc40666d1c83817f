using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Service;
using CrmSecurity.Crypto.Subjects;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Crypto.Hosting;

/// <summary>What the host gives the Crypto module: its databases, its event sink, its token check, its tables.</summary>
public sealed class CryptoModuleOptions
{
    /// <summary>How the module's <see cref="CryptoDbContext"/> reaches the data database (the host's provider choice). Required.</summary>
    public Action<IServiceProvider, DbContextOptionsBuilder>? Database { get; set; }

    /// <summary>How the subject-key store is reached (<see cref="CryptoOptions.SubjectKeys"/>); it must not be the data database. Required.</summary>
    public Action<IServiceProvider, DbContextOptionsBuilder>? SubjectKeyStore { get; set; }

    /// <summary>
    /// Whether the module runs: its settings are checked at start and the subject-key store's tables are created. When
    /// set it decides <see cref="CryptoOptions.Enabled"/>; null leaves that to the <c>Crypto:Enabled</c> setting.
    /// </summary>
    public bool? Enabled { get; set; }

    /// <summary>Where access events (decrypts, shreds) go; by default the JSON Lines file <see cref="CryptoOptions.AccessEventLog"/>.</summary>
    public Func<IServiceProvider, ICryptoEventSink>? Events { get; set; }

    /// <summary>
    /// The HTTP encryption service (<c>/crypto/v1</c>: encrypt, decrypt, blind-index, rewrap, single and batch) for CRM apps not on .NET, mapped
    /// by <see cref="CryptoServiceCollectionExtensions.MapCrypto"/>. Decrypts follow the registered
    /// <see cref="IUnmaskedFieldAccess"/>; without one, nothing decrypts.
    /// </summary>
    public bool Service { get; set; }

    /// <summary>
    /// Registers the bearer scheme (name, audience) the service checks access tokens with, against the host's token
    /// issuer. Required with <see cref="Service"/>.
    /// </summary>
    public Action<AuthenticationBuilder, string, string>? Bearer { get; set; }

    /// <summary>
    /// Called once for each set of tables the module keeps (name in <c>crm_schema_modules</c>, its DbContext, its schema
    /// version), so that the host creates and checks them at start.
    /// </summary>
    public Action<string, Type, int>? Tables { get; set; }
}

/// <summary>Registers the Crypto module in a host: one <see cref="AddCrypto"/> and one <see cref="MapCrypto"/>.</summary>
public static class CryptoServiceCollectionExtensions
{
    /// <summary>The name of the module's <see cref="System.Diagnostics.Metrics.Meter"/> (decrypts through the service).</summary>
    public const string MeterName = CryptoMetrics.MeterName;

    /// <summary>
    /// Adds the Crypto module: settings (validated at start: master key, PKCS#11 token, keyring), the
    /// key-encryption key, the keyring, <see cref="FieldEncryption"/>, data-subject keys, the module's
    /// <see cref="CryptoDbContext"/> (data database) and <see cref="SubjectKeyDbContext"/> (subject-key store), its
    /// access-event sink, and with <see cref="CryptoModuleOptions.Service"/> the HTTP encryption service.
    /// </summary>
    /// <param name="builder">The host builder.</param>
    /// <param name="configure">Sets the module's <see cref="CryptoModuleOptions"/>.</param>
    /// <returns>The builder.</returns>
    public static IHostApplicationBuilder AddCrypto(this IHostApplicationBuilder builder, Action<CryptoModuleOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        var module = new CryptoModuleOptions();
        configure(module);
        var configureDatabase = module.Database ?? throw new InvalidOperationException($"{nameof(CryptoModuleOptions)}.{nameof(CryptoModuleOptions.Database)} is required.");
        var configureSubjectKeyStore = module.SubjectKeyStore ?? throw new InvalidOperationException($"{nameof(CryptoModuleOptions)}.{nameof(CryptoModuleOptions.SubjectKeyStore)} is required.");
        var tables = module.Tables ?? ((_, _, _) => { });
        var services = builder.Services;
        services.AddOptions<CryptoOptions>().Bind(builder.Configuration.GetSection(CryptoOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<CryptoOptions>, CryptoOptionsValidator>();
        services.AddDbContext<CryptoDbContext>(configureDatabase, ServiceLifetime.Scoped, ServiceLifetime.Singleton);
        services.AddDbContextFactory<CryptoDbContext>(configureDatabase);
        services.AddDbContext<SubjectKeyDbContext>(configureSubjectKeyStore, ServiceLifetime.Scoped, ServiceLifetime.Singleton);
        services.AddDbContextFactory<SubjectKeyDbContext>(configureSubjectKeyStore);
        tables("crypto", typeof(CryptoDbContext), CryptoDbContext.SchemaVersion);
        if (module.Enabled is { } enabled)
        {
            services.PostConfigure<CryptoOptions>(options => options.Enabled = enabled);
        }

        if (module.Enabled == true)
        {
            tables("crypto-subject-keys", typeof(SubjectKeyDbContext), SubjectKeyDbContext.SchemaVersion);
        }

        services.TryAddSingleton(TimeProvider.System);

        // The declared columns: deterministic mode and blind indexes only where the security team planned them, in
        // Crypto:Columns or in the blind-index registry (the service reads it; the blind-index verbs change it too).
        services.AddOptions<CryptoColumnsOptions>().Bind(builder.Configuration.GetSection(CryptoColumnsOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<CryptoColumnsOptions>, CryptoColumnsValidator>();
        services.AddSingleton<BlindIndexRegistry>();
        services.AddSingleton(sp => new CryptoColumns(sp.GetRequiredService<IOptions<CryptoColumnsOptions>>(), sp.GetRequiredService<BlindIndexRegistry>()));
        services.AddSingleton(sp => new CountingEventSink(module.Events?.Invoke(sp) ?? new JsonLinesEventSink(DefaultEventLog(sp))));
        services.AddSingleton<ICryptoEventSink>(sp => sp.GetRequiredService<CountingEventSink>());
        // The host may register the installation's KEK first (it wraps the host's other secrets too); the keyring then uses it.
        services.TryAddSingleton<IKeyEncryptionKey>(sp => KeyEncryptionKeys.Open(sp.GetRequiredService<IOptions<CryptoOptions>>().Value));
        services.AddSingleton(sp => new KeyringStore(sp.GetRequiredService<IOptions<CryptoOptions>>(), sp.GetRequiredService<IKeyEncryptionKey>()));
        services.AddSingleton(sp =>
        {
            var keyring = sp.GetRequiredService<KeyringStore>().Load();
            var data = sp.GetRequiredService<IDbContextFactory<CryptoDbContext>>();
            var keys = sp.GetRequiredService<IDbContextFactory<SubjectKeyDbContext>>();
            var events = sp.GetRequiredService<ICryptoEventSink>();
            var wrapping = keyring.Keysets.FirstOrDefault(k => k.Name == Keyring.SubjectsKeyset)
                ?? throw new KeyManagementException(
                    $"The keyring has no '{Keyring.SubjectsKeyset}' keyset, which wraps data-subject keys (keyrings made before subject keys moved beside the keyring lack it). Add it with `keys rotate --keyset subjects`.");
            var subjects = new SubjectKeyStore(keys.CreateDbContext, wrapping, events, data.CreateDbContext, sp.GetRequiredService<TimeProvider>());
            return new FieldEncryption(keyring, subjects, events);
        });

        if (module.Service)
        {
            var bearer = module.Bearer ?? throw new InvalidOperationException($"{nameof(CryptoModuleOptions)}.{nameof(CryptoModuleOptions.Bearer)} is required for the service.");

            // Deny by default: without the host's authorization model, nothing decrypts.
            services.TryAddSingleton<IUnmaskedFieldAccess, DenyUnmaskedFieldAccess>();

            services.TryAddSingleton<ICryptoAdministrators, DenyCryptoAdministrators>();
            services.AddOptions<CryptoServiceOptions>().Bind(builder.Configuration.GetSection(CryptoServiceOptions.Section)).ValidateOnStart();
            services.AddSingleton<IValidateOptions<CryptoServiceOptions>, CryptoServiceOptionsValidator>();
            CryptoServiceAuthentication.Add(services, bearer);
            services.AddSingleton<ServiceMarker>();

            // A running service follows the keyring file, so a staged rotation across hosts needs no restart.
            services.AddHostedService<KeyringReloader>();

            // SQL Server connections of this host open Always Encrypted column keys under the installation's KEK.
            services.AddHostedService<SqlServer.AlwaysEncryptedRegistration>();
        }

        return builder;
    }

    /// <summary>
    /// Maps the HTTP encryption service under <c>/crypto/v1</c> (encrypt, decrypt, blind-index, rewrap, each also as a
    /// batch; one scope each) when
    /// <see cref="AddCrypto"/> added it; otherwise maps nothing.
    /// </summary>
    /// <param name="endpoints">The host's endpoints.</param>
    /// <returns>The endpoints.</returns>
    public static IEndpointRouteBuilder MapCrypto(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.ServiceProvider.GetService<ServiceMarker>() is not null)
        {
            CryptoServiceEndpoints.Map(endpoints);
        }

        return endpoints;
    }

    private static string DefaultEventLog(IServiceProvider services) =>
        Path.GetFullPath(services.GetRequiredService<IOptions<CryptoOptions>>().Value.AccessEventLog, Environment.CurrentDirectory);

    private sealed class ServiceMarker;
}

/// <summary>The configured keyring file and KEK: loads and saves the keyring.</summary>
internal sealed class KeyringStore : IDisposable
{
    private readonly Lazy<IKeyEncryptionKey> _kek;
    private readonly bool _ownsKek;

    /// <summary>Creates the store from the module's settings; it opens the configured KEK when first needed.</summary>
    /// <param name="options">The settings.</param>
    public KeyringStore(IOptions<CryptoOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options.Value;
        Path = System.IO.Path.GetFullPath(Options.KeyringPath, Environment.CurrentDirectory);
        _kek = new Lazy<IKeyEncryptionKey>(() => KeyEncryptionKeys.Open(Options));
        _ownsKek = true;
    }

    /// <summary>Creates the store on a KEK opened by its owner (who also disposes it).</summary>
    /// <param name="options">The settings.</param>
    /// <param name="kek">The configured key-encryption key.</param>
    public KeyringStore(IOptions<CryptoOptions> options, IKeyEncryptionKey kek)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(kek);
        Options = options.Value;
        Path = System.IO.Path.GetFullPath(Options.KeyringPath, Environment.CurrentDirectory);
        _kek = new Lazy<IKeyEncryptionKey>(kek);
        _ownsKek = false;
    }

    /// <summary>The settings.</summary>
    public CryptoOptions Options { get; }

    /// <summary>Full path of the keyring file.</summary>
    public string Path { get; }

    /// <summary>The configured key-encryption key.</summary>
    public IKeyEncryptionKey Kek => _kek.Value;

    /// <summary>Whether the keyring file exists.</summary>
    public bool Exists => File.Exists(Path);

    /// <summary>Loads the keyring under the configured KEK.</summary>
    public Keyring Load() => Keyring.Load(Path, Kek);

    /// <summary>Saves the keyring under the configured KEK (or <paramref name="kek"/> to rewrap).</summary>
    /// <param name="keyring">The keyring.</param>
    /// <param name="kek">Another KEK to wrap under, or null for the configured one.</param>
    public void Save(Keyring keyring, IKeyEncryptionKey? kek = null)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        keyring.Save(Path, kek ?? Kek);
    }

    /// <summary>Closes the KEK (zeroes a local master key, closes a PKCS#11 session).</summary>
    public void Dispose()
    {
        if (_ownsKek && _kek.IsValueCreated)
        {
            _kek.Value.Dispose();
        }
    }
}

/// <summary>Checks at start that the master key (or token) and the keyring are usable, naming the setting otherwise.</summary>
internal sealed class CryptoOptionsValidator : IValidateOptions<CryptoOptions>
{
    public ValidateOptionsResult Validate(string? name, CryptoOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }

        if (string.IsNullOrWhiteSpace(options.KeyringPath))
        {
            return ValidateOptionsResult.Fail("Crypto:KeyringPath is required: the path of the keyring file.");
        }

        if (!double.IsFinite(options.KeyringReloadSeconds) || options.KeyringReloadSeconds < 0 || options.KeyringReloadSeconds > 86_400)
        {
            return ValidateOptionsResult.Fail("Crypto:KeyringReloadSeconds must be between 0 (no reloading) and 86400 seconds.");
        }

        IKeyEncryptionKey kek;
        try
        {
            // keys init / keys restore (RequireKeyring off) may generate the KEK on a PKCS#11 token that has none yet.
            kek = KeyEncryptionKeys.Open(options, createIfMissing: !options.RequireKeyring);
        }
        catch (KeyManagementException e)
        {
            return ValidateOptionsResult.Fail(e.Message);
        }

        using (kek)
        {
            if (!options.RequireKeyring)
            {
                return ValidateOptionsResult.Success;
            }

            try
            {
                Keyring.Load(Path.GetFullPath(options.KeyringPath, Environment.CurrentDirectory), kek).Dispose();
                return ValidateOptionsResult.Success;
            }
            catch (KeyManagementException e)
            {
                return ValidateOptionsResult.Fail($"Crypto:KeyringPath: {e.Message}");
            }
        }
    }
}
