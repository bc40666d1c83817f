using CrmSecurity.Security.Tests.Support;

namespace CrmSecurity.Security.Tests.Host;

/// <summary>
/// Red-team finding 3: <c>security.db</c> and the reset mails were world-readable (0644). Another account on the same
/// machine (a shared host, a compromised neighbour service) is the attacker: it must not be able to read the database,
/// its journal, or a mailed reset link.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class DataFileTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public void The_database_and_its_journal_files_are_readable_by_the_service_account_only()
    {
        var files = new[] { "", "-wal", "-shm", "-journal" }.Select(suffix => host.DatabasePath + suffix).Where(File.Exists).ToList();

        Assert.Contains(host.DatabasePath, files);
        Assert.All(files, file => Assert.True(
            (File.GetUnixFileMode(file) & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) == 0,
            $"{Path.GetFileName(file)} has mode {File.GetUnixFileMode(file)}"));
    }
}
