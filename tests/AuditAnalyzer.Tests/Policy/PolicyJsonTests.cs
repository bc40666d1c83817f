using System.Text;
using CrmSecurity.Shared;

namespace CrmSecurity.AuditAnalyzer.Tests.Policy;

/// <summary>
/// The policy-file parser both modules compile (src/Shared/PolicyJson.cs), with each of the rules on which the two
/// readers differed before they shared it: the analyzer's policy files keep one setting of each, Identity's the other.
/// </summary>
public sealed class PolicyJsonTests
{
    private static readonly PolicyJsonRules Off = new();

    private static (PolicyNode? Root, List<string> Problems) Parse(byte[] json, PolicyJsonRules rules)
    {
        var problems = new List<string>();
        return (PolicyNode.Parse(json, "p.json", problems, rules), problems);
    }

    private static byte[] Utf8(string json) => Encoding.UTF8.GetBytes(json);

    [Fact]
    public void A_byte_order_mark_is_skipped_only_when_the_rules_say_so()
    {
        byte[] json = [0xEF, 0xBB, 0xBF, .. Utf8("{\"a\": 1}")];

        var (skipped, none) = Parse(json, new PolicyJsonRules { SkipByteOrderMark = true });
        Assert.Equal(1, skipped!["a"]!.Number);
        Assert.Empty(none);

        var (refused, problems) = Parse(json, Off);
        Assert.Null(refused);
        Assert.StartsWith("p.json:1: broken JSON", Assert.Single(problems), StringComparison.Ordinal);
    }

    [Fact]
    public void A_repeated_name_is_a_problem_or_the_last_one_counts_in_the_first_ones_place()
    {
        var json = Utf8("{\n  \"a\": 1,\n  \"b\": 2,\n  \"a\": 3\n}");

        var (first, problems) = Parse(json, new PolicyJsonRules { ReportDuplicateNames = true });
        Assert.Equal(1, first!["a"]!.Number);
        Assert.Equal(["p.json:4: duplicate name 'a'"], problems);

        var (last, none) = Parse(json, Off);
        Assert.Empty(none);
        Assert.Equal([("a", 4, 3.0), ("b", 3, 2.0)], last!.Properties!.Select(p => (p.Name, p.Line, p.Value.Number)));
    }

    [Fact]
    public void Content_after_the_root_object_is_broken_json_or_never_read()
    {
        var json = Utf8("{\"a\": 1}\n{\"b\": 2}");

        var (refused, problems) = Parse(json, new PolicyJsonRules { RefuseTrailingContent = true });
        Assert.Null(refused);
        Assert.StartsWith("p.json:2: broken JSON", Assert.Single(problems), StringComparison.Ordinal);

        var (read, none) = Parse(json, Off);
        Assert.Empty(none);
        Assert.Equal(["a"], read!.Properties!.Select(p => p.Name));
    }
}
