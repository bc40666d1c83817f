using System.Globalization;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>The review workflow's settings, bound from <c>AuditAnalyzer:Review</c>.</summary>
public sealed class ReviewOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "AuditAnalyzer:Review";

    /// <summary>Each earlier false positive for the same user and detector multiplies a later finding's score by this.</summary>
    public double FalsePositiveFactor { get; set; } = 0.7;

    /// <summary>Feedback never lowers a score below this share of the detectors' own score.</summary>
    public double FalsePositiveFloor { get; set; } = 0.3;

    /// <summary>Largest page of the queue.</summary>
    public int MaxPageSize { get; set; } = 200;

    /// <summary>Most finding ids in one bulk action.</summary>
    public int MaxBulk { get; set; } = 500;

    /// <summary>
    /// Longest lifetime of a suppression in days: a new one must expire within it, and an older one (made before the cap,
    /// or under a longer one) stops applying this long after it was made.
    /// </summary>
    public int MaxSuppressionDays { get; set; } = 90;

    /// <summary>
    /// k-anonymity threshold: a peer group with fewer members is not named before a reveal, because a group of one or
    /// two people names the user behind the pseudonym.
    /// </summary>
    public int MinPeerGroupSize { get; set; } = 5;

    /// <summary>The longest suppression lifetime as a span.</summary>
    public TimeSpan MaxSuppressionLifetime => TimeSpan.FromDays(MaxSuppressionDays);
}

internal sealed class ReviewOptionsValidator : IValidateOptions<ReviewOptions>
{
    public ValidateOptionsResult Validate(string? name, ReviewOptions options)
    {
        var errors = new List<string>();
        if (!(options.FalsePositiveFactor is > 0 and <= 1))
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{ReviewOptions.Section}:FalsePositiveFactor is {options.FalsePositiveFactor}; use a number above 0 and at most 1 (1 turns the feedback off)."));
        }

        if (!(options.FalsePositiveFloor is >= 0 and <= 1))
        {
            errors.Add(string.Create(CultureInfo.InvariantCulture, $"{ReviewOptions.Section}:FalsePositiveFloor is {options.FalsePositiveFloor}; use 0 to 1 (the least share of the original score feedback keeps)."));
        }

        if (options.MaxPageSize is < 1 or > 10_000)
        {
            errors.Add($"{ReviewOptions.Section}:MaxPageSize is {options.MaxPageSize}; use 1 to 10000.");
        }

        if (options.MaxBulk is < 1 or > 10_000)
        {
            errors.Add($"{ReviewOptions.Section}:MaxBulk is {options.MaxBulk}; use 1 to 10000.");
        }

        if (options.MaxSuppressionDays is < 1 or > 366)
        {
            errors.Add($"{ReviewOptions.Section}:MaxSuppressionDays is {options.MaxSuppressionDays}; use 1 to 366 (days a suppression may last before it must be renewed).");
        }

        if (options.MinPeerGroupSize is < 1 or > 1000)
        {
            errors.Add($"{ReviewOptions.Section}:MinPeerGroupSize is {options.MinPeerGroupSize}; use 1 to 1000 (1 names every peer group; 5 is the default k-anonymity threshold).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
