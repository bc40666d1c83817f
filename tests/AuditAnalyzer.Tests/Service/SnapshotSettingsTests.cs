using CrmSecurity.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>Snapshot settings that cannot work stop start-up with exit code 78 (EX_CONFIG), naming the setting.</summary>
public sealed class SnapshotSettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-snapshot-settings-").FullName;

    [Theory]
    [InlineData("SnapshotEveryEvents", "-1")]
    [InlineData("SnapshotEveryEvents", "100000001")]
    [InlineData("SnapshotInterval", "00:00:00")]
    [InlineData("SnapshotInterval", "2.00:00:00")]
    [InlineData("MaxScoringLag", "00:00:00.5")]
    [InlineData("MaxScoringLag", "02:00:00")]
    public async Task A_snapshot_setting_that_cannot_work_stops_start_up_naming_the_setting(string setting, string value)
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            [$"AuditAnalyzer__Live__{setting}"] = value,
        }, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains($"AuditAnalyzer:Live:{setting}", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
