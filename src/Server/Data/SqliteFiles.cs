using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Data;

/// <summary>
/// The embedded database's files are for the service account only (OWASP ASVS 4.0.3 V8.1.6 / V14.1.3): the database
/// holds password hashes, the audit trail and every access event. SQLite creates a database with the process umask
/// (0644 by default) and gives its journal and WAL files the database file's own mode, so the database file is made
/// 0600 before SQLite first opens it, and an existing one (made by an earlier build) is narrowed at start.
/// </summary>
internal static class SqliteFiles
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnlyFile | UnixFileMode.UserExecute;
    private static readonly string[] Companions = ["", "-wal", "-shm", "-journal"];

    /// <summary>Creates the database's directory owner-only when it does not exist; an existing one is the operator's to set.</summary>
    public static void CreateDirectory(string directory)
    {
        if (OperatingSystem.IsWindows() || Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory);
            return;
        }

        Directory.CreateDirectory(directory, OwnerOnlyDirectory);
    }

    /// <summary>
    /// Puts the database in write-ahead-log mode (persistent in the file, so every later connection and every verb uses it).
    /// In the default rollback-journal mode a write commits by taking an exclusive lock that every concurrent reader
    /// blocks, and EF Core's single-statement saves (<c>... RETURNING</c>, committed when the statement is reset) then
    /// fail at once with "database is locked" instead of waiting: concurrent sign-ins and token redemptions answered 500
    /// under load. In WAL mode readers never block the writer and writers wait for each other
    /// (https://www.sqlite.org/wal.html, https://github.com/dotnet/efcore/issues/29514).
    /// </summary>
    /// <returns>The journal mode the database is in afterwards (<c>wal</c>, or what SQLite kept, e.g. on a file system without shared memory).</returns>
    public static async Task<string> UseWriteAheadLogAsync(string connectionString, CancellationToken cancellationToken)
    {
        if (DatabaseSetup.IsInMemorySqlite(connectionString))
        {
            return "memory";
        }

        await using var connection = new SqliteConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode = WAL;";
        return (string?)await command.ExecuteScalarAsync(cancellationToken) ?? "unknown";
    }

    /// <summary>Makes the database file (created empty when missing) and its companions owner-only.</summary>
    public static void Secure(string connectionString)
    {
        if (OperatingSystem.IsWindows() || DatabaseSetup.IsInMemorySqlite(connectionString))
        {
            return;
        }

        var path = new SqliteConnectionStringBuilder(connectionString).DataSource;
        if (!File.Exists(path))
        {
            try
            {
                // An empty file is a valid empty SQLite database; SQLite keeps the mode it finds.
                using var created = new FileStream(path, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = OwnerOnlyFile });
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another instance created it first.
            }
        }

        foreach (var suffix in Companions)
        {
            var file = path + suffix;
            if (File.Exists(file) && (File.GetUnixFileMode(file) & ~OwnerOnlyFile) != 0)
            {
                File.SetUnixFileMode(file, File.GetUnixFileMode(file) & OwnerOnlyFile);
            }
        }
    }
}
