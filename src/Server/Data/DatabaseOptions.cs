using CrmSecurity.Server.Hosting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.Data;

/// <summary>Which database the service keeps its state in. Bound from the <c>Database</c> section.</summary>
internal sealed class DatabaseOptions
{
    public const string Section = "Database";

    /// <summary><c>Sqlite</c> (embedded default), <c>PostgreSql</c> or <c>SqlServer</c>.</summary>
    public string Provider { get; set; } = nameof(DatabaseProvider.Sqlite);

    /// <summary>Provider connection string. Optional for SQLite (defaults to <c>data/security.db</c> in the working directory).</summary>
    public string? ConnectionString { get; set; }

    public DatabaseProvider ParsedProvider =>
        Enum.TryParse<DatabaseProvider>(Provider, ignoreCase: true, out var provider) && Enum.IsDefined(provider)
            ? provider
            : throw new ConfigurationException($"Database:Provider '{Provider}' is not supported.");

    /// <summary>The provider, or null when the setting is invalid (its own validator reports that).</summary>
    public DatabaseProvider? ParsedProviderOrNull => Data.SubjectKeyDatabase.Parse(Provider);
}

internal enum DatabaseProvider
{
    Sqlite,
    PostgreSql,
    SqlServer,
}

internal sealed class DatabaseOptionsValidator : IValidateOptions<DatabaseOptions>
{
    public ValidateOptionsResult Validate(string? name, DatabaseOptions options)
    {
        if (!Enum.TryParse<DatabaseProvider>(options.Provider, ignoreCase: true, out var provider) || !Enum.IsDefined(provider)
            || int.TryParse(options.Provider, out _))
        {
            return ValidateOptionsResult.Fail(
                $"Database:Provider '{options.Provider}' is not supported. Use one of: {string.Join(", ", Enum.GetNames<DatabaseProvider>())}.");
        }

        if (provider != DatabaseProvider.Sqlite && string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            return ValidateOptionsResult.Fail(
                $"Database:ConnectionString is required when Database:Provider is {provider}. " +
                "Set it in appsettings.json or in the environment variable Database__ConnectionString.");
        }

        if (!string.IsNullOrWhiteSpace(options.ConnectionString) && DatabaseSetup.ConnectionStringError(provider, options.ConnectionString) is { } error)
        {
            // The parser's message names the keyword, never the value, so no password can leak here.
            return ValidateOptionsResult.Fail($"Database:ConnectionString is not a valid {provider} connection string: {error}");
        }

        return ValidateOptionsResult.Success;
    }
}
