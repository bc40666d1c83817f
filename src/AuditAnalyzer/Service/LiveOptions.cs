using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>Live ingestion and background scoring, bound from <c>AuditAnalyzer:Live</c>.</summary>
public sealed class LiveOptions
{
    /// <summary>Configuration section name.</summary>
    public const string Section = "AuditAnalyzer:Live";

    /// <summary>Whether this instance scores in the background (ingestion and reading work either way).</summary>
    public bool Scoring { get; set; } = true;

    /// <summary>Users are spread over this many partitions by a hash of their id. Same on every instance; fixed once events are stored.</summary>
    public int Partitions { get; set; } = 16;

    /// <summary>How long a partition stays with an instance that stops renewing it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the scorer looks for new events (and renews its leases).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Largest request body of one batch.</summary>
    public long MaxBatchBytes { get; set; } = 1024 * 1024;

    /// <summary>Most lines in one batch.</summary>
    public int MaxBatchLines { get; set; } = 10_000;

    /// <summary>Identifies this instance in the lease table; empty for host name, process id and a random suffix.</summary>
    public string? InstanceId { get; set; }
}

internal sealed class LiveOptionsValidator : IValidateOptions<LiveOptions>
{
    public ValidateOptionsResult Validate(string? name, LiveOptions options)
    {
        var errors = new List<string>();
        if (options.Partitions is < 1 or > 4096)
        {
            errors.Add($"{LiveOptions.Section}:Partitions is {options.Partitions}; use 1 to 4096 (the same value on every instance).");
        }

        if (options.PollInterval <= TimeSpan.Zero)
        {
            errors.Add($"{LiveOptions.Section}:PollInterval must be positive (for example 00:00:01).");
        }

        if (options.LeaseDuration < options.PollInterval * 3)
        {
            errors.Add($"{LiveOptions.Section}:LeaseDuration must be at least three PollIntervals, so a live instance renews its leases before they expire.");
        }

        if (options.MaxBatchBytes is < 1024 or > 256L * 1024 * 1024)
        {
            errors.Add($"{LiveOptions.Section}:MaxBatchBytes is {options.MaxBatchBytes}; use 1024 to 268435456.");
        }

        if (options.MaxBatchLines < 1)
        {
            errors.Add($"{LiveOptions.Section}:MaxBatchLines must be at least 1.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
