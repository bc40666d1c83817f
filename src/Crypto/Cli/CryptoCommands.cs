using System.CommandLine;
using Microsoft.Extensions.Hosting;

namespace CrmSecurity.Crypto.Cli;

/// <summary>What the module's verbs need from the executable that hosts them.</summary>
public sealed class CryptoCliHost
{
    /// <summary>
    /// Creates a host builder with the Crypto module added and switched on (its settings are validated before the verb runs);
    /// the argument says whether the keyring must already exist (false only for <c>keys init</c> and <c>keys restore</c>).
    /// </summary>
    public required Func<bool, HostApplicationBuilder> CreateBuilder { get; init; }

    /// <summary>Starts the host (exit 78 on invalid settings), runs the verb and stops the host.</summary>
    public required Func<HostApplicationBuilder, Func<IServiceProvider, CancellationToken, Task<int>>, CancellationToken, Task<int>> Run { get; init; }
}

/// <summary>The module's verbs: <c>keys</c> (init, list, rotate, usage, destroy, rewrap, shred, reapply-shreds, backup, restore), <c>reencrypt</c> and <c>blind-index recompute</c>.</summary>
public static class CryptoCommands
{
    /// <summary>The verbs, for the host's root command.</summary>
    /// <param name="host">How a verb gets its host.</param>
    /// <returns>The commands.</returns>
    public static IEnumerable<Command> Create(CryptoCliHost host)
    {
        ArgumentNullException.ThrowIfNull(host);
        yield return KeyCommands.Create(host);
        yield return ReencryptCommand.Create(host);
        yield return BlindIndexCommands.Create(host);
    }
}

/// <summary>Exit codes of the verbs (sysexits.h where one fits).</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;

    /// <summary>EX_USAGE: the command line was wrong.</summary>
    public const int Usage = 64;
}

/// <summary>The SQL dialect of the database a verb writes to directly (catalog queries, quoting).</summary>
internal enum SqlDialect
{
    Sqlite,
    PostgreSql,
    SqlServer,
}
