using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>Findings export to SIEMs, bound from <c>AuditAnalyzer:Export</c>.</summary>
public sealed class ExportOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "AuditAnalyzer:Export";

    /// <summary>
    /// Finding changes younger than this are not exported yet: the scorer stamps a change before its transaction
    /// commits, so a younger stamp may still be overtaken by an older one. Longer than a scoring transaction.
    /// </summary>
    public TimeSpan SettleTime { get; set; } = TimeSpan.FromSeconds(5);
}

internal sealed class ExportOptionsValidator : IValidateOptions<ExportOptions>
{
    public ValidateOptionsResult Validate(string? name, ExportOptions options)
    {
        var errors = new List<string>();
        if (options.SettleTime < TimeSpan.Zero || options.SettleTime > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{ExportOptions.Section}:SettleTime is {options.SettleTime}; use 00:00:00 to 00:10:00 (for example 00:00:05).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
