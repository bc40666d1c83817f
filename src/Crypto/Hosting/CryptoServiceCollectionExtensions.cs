using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Subjects;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Crypto.Hosting;

/// <summary>Registers the Crypto module in a host.</summary>
public static class CryptoServiceCollectionExtensions
{
    /// <summary>
    /// Adds the Crypto module: settings (validated at start: master key, PKCS#11 token, keyring), the
    /// key-encryption key, the keyring, <see cref="FieldEncryption"/>, data-subject keys, the module's
    /// <see cref="CryptoDbContext"/> (data database) and <see cref="SubjectKeyDbContext"/> (subject-key store),
    /// and a JSON Lines <see cref="ICryptoEventSink"/> unless one is registered.
    /// </summary>
    /// <param name="builder">The host builder.</param>
    /// <param name="configureDatabase">How the module's DbContext reaches the data database (the host's provider choice).</param>
    /// <param name="configureSubjectKeyStore">How the subject-key store is reached (<see cref="CryptoOptions.SubjectKeys"/>); it must not be the data database.</param>
    public static IHostApplicationBuilder AddCrypto(
        this IHostApplicationBuilder builder,
        Action<IServiceProvider, DbContextOptionsBuilder> configureDatabase,
        Action<IServiceProvider, DbContextOptionsBuilder> configureSubjectKeyStore)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configureDatabase);
        ArgumentNullException.ThrowIfNull(configureSubjectKeyStore);
        var services = builder.Services;
        services.AddOptions<CryptoOptions>().Bind(builder.Configuration.GetSection(CryptoOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<CryptoOptions>, CryptoOptionsValidator>();
        services.AddDbContext<CryptoDbContext>(configureDatabase, ServiceLifetime.Scoped, ServiceLifetime.Singleton);
        services.AddDbContextFactory<CryptoDbContext>(configureDatabase);
        services.AddDbContext<SubjectKeyDbContext>(configureSubjectKeyStore, ServiceLifetime.Scoped, ServiceLifetime.Singleton);
        services.AddDbContextFactory<SubjectKeyDbContext>(configureSubjectKeyStore);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ICryptoEventSink>(sp =>
            new JsonLinesEventSink(Path.GetFullPath(sp.GetRequiredService<IOptions<CryptoOptions>>().Value.AccessEventLog, Environment.CurrentDirectory)));
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
        return builder;
    }
}

/// <summary>The configured keyring file and KEK: loads and saves the keyring.</summary>
public sealed class KeyringStore : IDisposable
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
