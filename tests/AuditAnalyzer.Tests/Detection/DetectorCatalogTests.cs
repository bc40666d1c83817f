using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Tests.Detection;

/// <summary>What a new detector must bring: its codes under its name, its SIEM category, a weight the policy accepts, a row in docs/audit-analyzer.md.</summary>
public sealed class DetectorCatalogTests
{
    // ECS 8.x event.category allowed values (https://www.elastic.co/guide/en/ecs/current/ecs-allowed-values-event-category.html).
    private static readonly string[] EcsCategories =
    [
        "api", "authentication", "configuration", "database", "driver", "email", "file", "host", "iam", "intrusion_detection",
        "library", "malware", "network", "package", "process", "registry", "session", "threat", "vulnerability", "web",
    ];

    public static TheoryData<string> Names() => [.. DetectorCatalog.All.Select(d => d.Name)];

    [Theory]
    [MemberData(nameof(Names))]
    public void Each_detector_owns_its_codes_and_names_an_ecs_category(string name)
    {
        var detector = DetectorCatalog.Find(name)!;

        Assert.NotEmpty(detector.Codes);
        Assert.All(detector.Codes, code => Assert.Equal(name, ReasonCodes.DetectorOf(code)));
        Assert.Contains(detector.EcsCategory, EcsCategories);
    }

    [Fact]
    public void Reason_codes_are_unique_and_each_one_is_a_weight_the_policy_accepts()
    {
        Assert.Equal(ReasonCodes.All.Count, ReasonCodes.All.Distinct(StringComparer.Ordinal).Count());
        var weights = string.Join(",", ReasonCodes.All.Select(c => $"\"{c}\": 0.5"));
        var policy = PolicyReader.Parse(System.Text.Encoding.UTF8.GetBytes("{\"weights\": {" + weights + "}}"), "weights.json");

        Assert.All(ReasonCodes.All, code => Assert.Equal(0.5, policy.Weight(code)));
    }

    [Fact]
    public void Every_reason_code_has_its_row_in_the_readme_reason_table()
    {
        var readme = File.ReadAllText(ReadmePath());

        // The cumulative pair shares one row: "`bulk_export.cumulative_7d` / `_30d`".
        Assert.All(ReasonCodes.All.Where(c => c != ReasonCodes.Cumulative30), code => Assert.Contains($"| `{code}`", readme, StringComparison.Ordinal));
    }

    private static string ReadmePath()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "docs", "audit-analyzer.md");
            if (File.Exists(candidate) && Directory.Exists(Path.Combine(directory.FullName, "src", "AuditAnalyzer")))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("docs/audit-analyzer.md was not found above the test's directory.");
    }
}
