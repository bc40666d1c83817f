using CrmSecurity.Tests.Support;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// Live ingestion and scoring settings that cannot work stop start-up with exit code 78 (EX_CONFIG), each named on a line
/// of its own: one start with every one of them wrong, as an operator fixing a configuration would see them all at once.
/// </summary>
public sealed class LiveSettingsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-live-settings-").FullName;

    private static readonly (string Setting, string Value)[] Wrong =
    [
        ("MaxConcurrentBatches", "0"),
        ("MaxQueuedBatches", "-1"),
        ("BatchQueueTimeout", "00:00:00"),
        ("RetryAfter", "-00:00:01"),
        ("MaxUncommittedBatches", "0"),
        ("SnapshotEveryEvents", "100000001"),
        ("SnapshotInterval", "2.00:00:00"),
        ("MaxScoringLag", "00:00:00.5"),
    ];

    [Fact]
    public async Task Every_live_setting_that_cannot_work_stops_start_up_and_is_named_on_its_own_line()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
        };
        foreach (var (setting, value) in Wrong)
        {
            settings[$"AuditAnalyzer__Live__{setting}"] = value;
        }

        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(settings, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        var lines = output.Split('\n', StringSplitOptions.TrimEntries);
        foreach (var (setting, _) in Wrong)
        {
            Assert.Single(lines, line => line.Contains($"AuditAnalyzer:Live:{setting} ", StringComparison.Ordinal));
        }

        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SnapshotEveryEvents", "-1")]
    [InlineData("SnapshotInterval", "00:00:00")]
    [InlineData("MaxScoringLag", "02:00:00")]
    public async Task A_single_wrong_setting_alone_stops_start_up_naming_it(string setting, string value)
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            [$"AuditAnalyzer__Live__{setting}"] = value,
        }, TestContext.Current.CancellationToken);

        Assert.Equal(78, exitCode);
        Assert.Contains($"AuditAnalyzer:Live:{setting}", output, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
