using System.Text;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.Shared;

namespace CrmSecurity.AuditAnalyzer.Tests.Policy;

public sealed class PolicyReaderTests
{
    private static ScoringPolicy Parse(string json) => PolicyReader.Parse(Encoding.UTF8.GetBytes(json), "policies/test.json");

    [Fact]
    public void The_shipped_policy_is_valid_and_sets_the_documented_thresholds()
    {
        var policy = ScoringPolicy.Default();

        Assert.Equal(TimeSpan.FromMinutes(60), policy.Lateness);
        Assert.Equal(2000, policy.LimitFor("Lead")!.MaxRecordsPerEvent);
        Assert.Contains("Marketing", policy.LimitFor("lead")!.ExemptDepartments);
        Assert.Equal(Severity.Medium, policy.SeverityOf(50));
    }

    [Fact]
    public void Every_problem_is_reported_with_file_line_and_setting()
    {
        var error = Assert.Throws<PolicyException>(() => Parse("""
            {
              "lateness_minutes": 30,
              "bulk_export": {
                "robust_z": -1,
                "min_records_per_dya": 10
              },
              "sensitive_entities": [ { "max_records_per_day": 5 } ],
              "severity": { "medium": 80, "high": 70, "critical": 90 }
            }
            """));

        Assert.Contains("policies/test.json:4: bulk_export.robust_z is -1; it must be between 1 and 100", error.Problems);
        Assert.Contains("policies/test.json:5: bulk_export.min_records_per_dya is not a known setting", error.Problems);
        Assert.Contains(error.Problems, p => p.StartsWith("policies/test.json:7: sensitive_entities[0].entity is required", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.StartsWith("policies/test.json:8: severity", StringComparison.Ordinal) && p.EndsWith("must rise: medium < high < critical", StringComparison.Ordinal));
    }

    [Fact]
    public void Broken_json_names_the_line()
    {
        var error = Assert.Throws<PolicyException>(() => Parse("{\n  \"lateness_minutes\": 30\n  \"history_days\": 40\n}"));

        Assert.StartsWith("policies/test.json:3: broken JSON", Assert.Single(error.Problems), StringComparison.Ordinal);
    }
}
