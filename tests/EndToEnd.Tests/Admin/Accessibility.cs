using System.Text;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Admin;

/// <summary>
/// axe-core (Deque.AxeCore.Playwright) on the page as the browser shows it now, with the WCAG 2.1 level A and AA rules
/// only (tags <c>wcag2a</c>, <c>wcag2aa</c>, <c>wcag21a</c>, <c>wcag21aa</c>): any violation fails the test that visited the
/// page, listing each rule, the elements it failed on and axe's summary of what to fix.
/// </summary>
internal static class Accessibility
{
    private static readonly AxeRunOptions Wcag21AA = new()
    {
        RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    };

    /// <summary>Fails when axe finds a WCAG 2.1 A/AA violation on the page.</summary>
    public static async Task AssertNoViolationsAsync(IPage page)
    {
        var result = await page.RunAxe(Wcag21AA);
        Assert.True(result.Passes.Length > 0, $"axe-core checked nothing on {page.Url}"); // a run that saw no page proves nothing
        if (result.Violations.Length == 0)
        {
            return;
        }

        var report = new StringBuilder().Append(result.Violations.Length).Append(" axe-core WCAG 2.1 A/AA violation(s) on ").AppendLine(page.Url);
        foreach (var violation in result.Violations)
        {
            report.Append("- ").Append(violation.Id).Append(" (").Append(violation.Impact).Append("): ").AppendLine(violation.Help);
            foreach (var node in violation.Nodes)
            {
                report.Append("    ").Append(node.Target).Append("  ").AppendLine(node.Html);
                var checks = (node.Any ?? []).Concat(node.All ?? []).Concat(node.None ?? []).Select(check => check.Message);
                report.Append("      ").AppendLine(string.Join(" / ", checks));
            }
        }

        Assert.Fail(report.ToString());
    }
}
