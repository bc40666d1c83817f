using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Server.Hosting;
using Microsoft.Data.SqlClient;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CrmSecurity.Server.Data;

/// <summary>
/// Maps <c>Crypto:SubjectKeys:*</c> onto an EF Core provider for the Crypto module's subject-key store: by default
/// <c>subject-keys.db</c> (SQLite) in the keyring's directory, so subject keys live with the keys and a backup of
/// the data database holds only ciphertext.
/// </summary>
internal static class SubjectKeyDatabase
{
    public static void Configure(IServiceProvider services, DbContextOptionsBuilder builder)
    {
        var options = services.GetRequiredService<IOptions<CryptoOptions>>().Value;
        var (provider, connectionString) = Resolve(options, Environment.CurrentDirectory);
        if (provider == DatabaseProvider.Sqlite && !DatabaseSetup.IsInMemorySqlite(connectionString))
        {
            CreateOwnerOnly(new SqliteConnectionStringBuilder(connectionString).DataSource);
        }

        DatabaseSetup.Use(provider, connectionString, builder);
    }

    // Like the keyring file, the store is readable by its owner only. SQLite gives its journal and WAL files the
    // database file's permissions, so creating the (empty, valid) database file first covers them too.
    private static void CreateOwnerOnly(string path)
    {
        if (OperatingSystem.IsWindows() || File.Exists(path))
        {
            return;
        }

        try
        {
            using var file = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
        }
        catch (IOException) when (File.Exists(path))
        {
            // Created meanwhile by another process.
        }
    }

    public static (DatabaseProvider Provider, string ConnectionString) Resolve(CryptoOptions options, string workingDirectory)
    {
        var provider = Parse(options.SubjectKeys.Provider) ?? throw new ConfigurationException($"Crypto:SubjectKeys:Provider '{options.SubjectKeys.Provider}' is not supported.");
        if (provider != DatabaseProvider.Sqlite)
        {
            return (provider, options.SubjectKeys.ConnectionString!);
        }

        var connectionString = string.IsNullOrWhiteSpace(options.SubjectKeys.ConnectionString)
            ? new SqliteConnectionStringBuilder { DataSource = DefaultPath(options, workingDirectory) }.ToString()
            : options.SubjectKeys.ConnectionString;
        return (provider, DatabaseSetup.ResolveSqlite(connectionString, workingDirectory));
    }

    /// <summary><c>subject-keys.db</c> in the keyring's directory.</summary>
    public static string DefaultPath(CryptoOptions options, string workingDirectory) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(options.KeyringPath, workingDirectory))!, SubjectKeyStoreOptions.DefaultFileName);

    public static DatabaseProvider? Parse(string? provider) =>
        Enum.TryParse<DatabaseProvider>(provider, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && !int.TryParse(provider, out _) ? parsed : null;

    /// <summary>Whether two resolved connection strings reach the same database (same file, or same server and database).</summary>
    public static bool SameDatabase(DatabaseProvider provider, string first, DatabaseProvider otherProvider, string second)
    {
        if (provider != otherProvider)
        {
            return false;
        }

        switch (provider)
        {
            case DatabaseProvider.Sqlite:
                var a = new SqliteConnectionStringBuilder(first).DataSource;
                var b = new SqliteConnectionStringBuilder(second).DataSource;
                return string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);
            case DatabaseProvider.PostgreSql:
                var p = new NpgsqlConnectionStringBuilder(first);
                var q = new NpgsqlConnectionStringBuilder(second);
                return string.Equals(p.Host, q.Host, StringComparison.OrdinalIgnoreCase) && p.Port == q.Port
                    && string.Equals(p.Database ?? p.Username, q.Database ?? q.Username, StringComparison.Ordinal);
            default:
                var s = new SqlConnectionStringBuilder(first);
                var t = new SqlConnectionStringBuilder(second);
                return string.Equals(s.DataSource, t.DataSource, StringComparison.OrdinalIgnoreCase)
                    && string.Equals(s.InitialCatalog, t.InitialCatalog, StringComparison.OrdinalIgnoreCase);
        }
    }
}

/// <summary>Checks <c>Crypto:SubjectKeys:*</c> at start, naming the setting: a supported provider, a valid connection string, never the data database.</summary>
internal sealed class SubjectKeyDatabaseValidator(IOptions<DatabaseOptions> database) : IValidateOptions<CryptoOptions>
{
    public ValidateOptionsResult Validate(string? name, CryptoOptions options)
    {
        if (!options.Enabled)
        {
            return ValidateOptionsResult.Success;
        }

        var settings = options.SubjectKeys;
        if (SubjectKeyDatabase.Parse(settings.Provider) is not { } provider)
        {
            return ValidateOptionsResult.Fail(
                $"Crypto:SubjectKeys:Provider '{settings.Provider}' is not supported. Use one of: {string.Join(", ", Enum.GetNames<DatabaseProvider>())}.");
        }

        if (provider != DatabaseProvider.Sqlite && string.IsNullOrWhiteSpace(settings.ConnectionString))
        {
            return ValidateOptionsResult.Fail(
                $"Crypto:SubjectKeys:ConnectionString is required when Crypto:SubjectKeys:Provider is {provider}: the subject-key store's own database (not the data database).");
        }

        if (!string.IsNullOrWhiteSpace(settings.ConnectionString) && DatabaseSetup.ConnectionStringError(provider, settings.ConnectionString) is { } error)
        {
            return ValidateOptionsResult.Fail($"Crypto:SubjectKeys:ConnectionString is not a valid {provider} connection string: {error}");
        }

        if (provider == DatabaseProvider.Sqlite && !string.IsNullOrWhiteSpace(settings.ConnectionString) && DatabaseSetup.IsInMemorySqlite(settings.ConnectionString))
        {
            return ValidateOptionsResult.Fail(
                "Crypto:SubjectKeys:ConnectionString names an in-memory SQLite database, which would lose every data-subject key (and so the data) when the process ends. Name a file, or leave it empty for subject-keys.db beside the keyring.");
        }

        var data = database.Value;
        if (data.ParsedProviderOrNull is { } dataProvider && SameAsData(options, provider, data, dataProvider))
        {
            return ValidateOptionsResult.Fail(
                "Crypto:SubjectKeys:ConnectionString points at the data database (Database:ConnectionString). Subject keys must not live with the data: " +
                "every backup of the data would hold them, and a shred would not reach those backups. Give them a database of their own, or leave the setting empty for subject-keys.db beside the keyring.");
        }

        return ValidateOptionsResult.Success;
    }

    private static bool SameAsData(CryptoOptions options, DatabaseProvider provider, DatabaseOptions data, DatabaseProvider dataProvider)
    {
        try
        {
            var (_, keys) = SubjectKeyDatabase.Resolve(options, Environment.CurrentDirectory);
            return SubjectKeyDatabase.SameDatabase(provider, keys, dataProvider, DatabaseSetup.ResolveConnectionString(data, Environment.CurrentDirectory));
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            return false; // a malformed data connection string is reported by Database:ConnectionString's own check
        }
    }
}
