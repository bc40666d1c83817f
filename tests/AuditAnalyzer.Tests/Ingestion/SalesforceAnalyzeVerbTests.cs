using System.Text.Json;
using System.Text.RegularExpressions;
using CrmSecurity.Tests.Support;
using static CrmSecurity.AuditAnalyzer.Tests.Ingestion.SalesforceReportTests;

namespace CrmSecurity.AuditAnalyzer.Tests.Ingestion;

/// <summary>
/// <c>analyze</c> through the real executable on a folder of Salesforce event log files, run as
/// docs/salesforce-event-monitoring.md writes the command.
/// </summary>
public sealed class SalesforceAnalyzeVerbTests : IDisposable
{
    private const string Marker = "<!-- salesforce-analyze-command:";
    private const string Bob = "005000000000002";
    private const string Cid = "005000000000003";
    private const string Dee = "005000000000004";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-sfdc-cli-").FullName;

    [Fact]
    public async Task A_60000_row_Contact_report_export_by_a_user_with_a_small_history_is_a_bulk_export_finding()
    {
        var cancellationToken = TestContext.Current.CancellationToken;
        File.WriteAllLines(Path.Combine(_directory, "users.csv"),
        [
            "user_id,user_name,department,title,roles,business_unit,manager,timezone,hired,terminated",
            $"{Ann},ann,Sales,AE,Account Executive,EMEA,{Dee},UTC,2025-01-15,",
            $"{Bob},bob,Sales,AE,Account Executive,EMEA,{Dee},UTC,2025-01-15,",
            $"{Cid},cid,Sales,AE,Account Executive,EMEA,{Dee},UTC,2025-01-15,",
            $"{Dee},dee,Sales,Manager,Sales Manager,EMEA,,UTC,2024-01-15,",
        ]);

        // Two weeks of ordinary work, one file per event type per day as EventLogFile gives them: sign-ins, record
        // pages, small report runs and the odd small Details Only export (a ReportExport row and its Report row).
        var users = new[] { Ann, Bob, Cid, Dee };
        var rows = 0;
        var pairs = 0;
        var first = new DateTime(2026, 3, 2, 0, 0, 0, DateTimeKind.Utc);
        for (var day = 0; day < 14; day++)
        {
            var date = first.AddDays(day);
            if (date.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
            {
                continue;
            }

            var (logins, uris, reports, exports) = (new List<string>(), new List<string>(), new List<string>(), new List<string>());
            for (var u = 0; u < users.Length; u++)
            {
                var start = date.AddHours(8).AddMinutes(10 * u);
                logins.Add(LoginRow(start, $"L{day}-{u}", users[u]));
                for (var i = 0; i < 6; i++)
                {
                    uris.Add(UriRow(start.AddMinutes(20 + (45 * i)), $"U{day}-{u}-{i}", users[u]));
                }

                var request = $"R{day}-{u}";
                var exported = (day + u) % 4 == 0;
                reports.Add(ReportRow(start.AddHours(3), request, "Contact", 40 + (10 * u) + day, exported ? "ReportExported" : "ReportRunFromLightning", user: users[u]));
                if (exported)
                {
                    exports.Add(ReportExportRow(start.AddHours(3).AddSeconds(1), request, users[u]));
                    pairs++;
                }
            }

            // The last day: ann exports every contact at 02:24, before anyone else is at work.
            if (day == 11)
            {
                reports.Add(ReportRow(date.AddHours(2).AddMinutes(24), "4exLFFQZ60000", "Contact", 60_000, "ReportExported"));
                exports.Add(ReportExportRow(date.AddHours(2).AddMinutes(24).AddSeconds(2), "4exLFFQZ60000"));
                pairs++;
            }

            var folder = Path.Combine(_directory, "sfdc-logs", $"{date:yyyy-MM-dd}");
            Directory.CreateDirectory(folder);
            File.WriteAllLines(Path.Combine(folder, "Login.csv"), [LoginHeader, .. logins]);
            File.WriteAllLines(Path.Combine(folder, "URI.csv"), [UriHeader, .. uris]);
            File.WriteAllLines(Path.Combine(folder, "Report.csv"), [ReportHeader, .. reports]);
            File.WriteAllLines(Path.Combine(folder, "ReportExport.csv"), [ReportExportHeader, .. exports]);
            rows += logins.Count + uris.Count + reports.Count + exports.Count;
        }

        var (exitCode, output) = await ServerProcess.RunVerbAsync(DocumentedCommand(), workingDirectory: _directory, cancellationToken: cancellationToken);

        Assert.True(exitCode == 0, output);
        Assert.True(Regex.IsMatch(output, $@"events scored\s*│\s*{rows - pairs:N0} "), output);
        Assert.DoesNotContain("later_than_lateness", output, StringComparison.Ordinal);
        var findings = File.ReadAllLines(Path.Combine(_directory, "findings.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var finding = Assert.Single(findings, f =>
            f.GetProperty("user_id").GetString() == Ann
            && f.GetProperty("detectors").EnumerateArray().Any(d => d.GetString() == "bulk_export"));
        Assert.Contains(finding.GetProperty("event_ids").EnumerateArray(), id => id.GetString() == "sf:ReportExport:4exLFFQZ60000");
        Assert.Contains(finding.GetProperty("reasons").EnumerateArray(), r => r.GetProperty("text").GetString()!.Contains("60,000", StringComparison.Ordinal));
        Assert.DoesNotContain(findings, f => f.GetProperty("user_id").GetString() != Ann && f.GetProperty("detectors").EnumerateArray().Any(d => d.GetString() == "bulk_export"));
    }

    /// <summary>The verb and its arguments from the command block after the marker in docs/salesforce-event-monitoring.md.</summary>
    private static string[] DocumentedCommand()
    {
        var lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "docs", "salesforce-event-monitoring.md"));
        var start = Array.FindIndex(lines, line => line.StartsWith(Marker, StringComparison.Ordinal));
        Assert.True(start >= 0 && lines[start + 1] == "```sh", "docs/salesforce-event-monitoring.md has no command block after the marker.");
        var command = lines[start + 2];
        const string run = "dotnet run --project src/Server -c Release -- ";
        Assert.StartsWith(run, command, StringComparison.Ordinal);
        return command[run.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Security.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Security.sln) was not found above the test assembly.");
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
