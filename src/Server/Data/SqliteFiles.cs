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
