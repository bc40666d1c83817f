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

    /// <summary>
    /// Largest batch after gzip decompression. A compressed body is inflated only up to this many bytes, so a small
    /// "gzip bomb" cannot make the host inflate gigabytes (OWASP ASVS 4.0.3 V12.1.1, V13.1.3).
    /// </summary>
    public long MaxDecompressedBatchBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Longest line of a batch (one access event); a longer line is rejected as <c>line_too_long</c>.</summary>
    public int MaxLineBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// Per sending client (the key is its client id), the users it may report on, beyond the tenants its token names.
    /// A client without an entry may report on any user of its tenants.
    /// </summary>
    public Dictionary<string, SenderOptions> Senders { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Batches handled at once (read, parsed and stored). Ingestion gets its own bounded share of the host so a
    /// saturating sender never slows token, decision and page requests; beyond it batches wait (see
    /// <see cref="MaxQueuedBatches"/>) or are refused with 429 and <c>Retry-After</c>. One by default: on two cores it
    /// accepted as many events as two did and kept token and decision latency within 3x its idle value (benchmarks.md).
    /// </summary>
    public int MaxConcurrentBatches { get; set; } = 1;

    /// <summary>Batches that may wait for one of the <see cref="MaxConcurrentBatches"/>; one more is refused at once with 429. Zero: none waits.</summary>
    public int MaxQueuedBatches { get; set; } = 32;

    /// <summary>How long a queued batch waits for its turn before it is refused with 429.</summary>
    public TimeSpan BatchQueueTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>What a refused sender is told to wait (<c>Retry-After</c>, RFC 9110 §10.2.3; whole seconds, at least one).</summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Identifies this instance in the lease table; empty for host name, process id and a random suffix.</summary>
    public string? InstanceId { get; set; }

    /// <summary>
    /// What runs background scoring: <c>leases</c> (the default: each instance polls and leases partitions in the database)
    /// or <c>orleans</c> (an in-process Orleans silo with a grain per partition; settings under <c>AuditAnalyzer:Live:Orleans</c>).
    /// </summary>
    public string Runtime { get; set; } = LeasesRuntime;

    internal const string LeasesRuntime = "leases";
    internal const string OrleansRuntime = "orleans";

    internal bool UsesLeases => string.Equals(Runtime, LeasesRuntime, StringComparison.OrdinalIgnoreCase);

    internal bool UsesOrleans => string.Equals(Runtime, OrleansRuntime, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Days a stored event is kept after its event time once it is scored; older scored events are deleted in the
    /// background (<c>Retention/EventRetention</c>). At least the scoring policy's longest baseline window, so a partition
    /// rebuilt from the kept events has the history its baselines use.
    /// </summary>
    public int RetentionDays { get; set; } = 90;

    /// <summary>
    /// Parsed batches of one database that may wait for their commit at once (SQLite and PostgreSQL): batches queued by
    /// concurrent requests are committed together, one transaction for several, while the next batches are parsed. A
    /// batch beyond it keeps its ingestion slot until there is room, so memory stays bounded.
    /// </summary>
    public int MaxUncommittedBatches { get; set; } = 8;

    /// <summary>
    /// Scored events of a partition between two snapshots of its scorer state (<c>Service/Snapshots</c>): a restart or a
    /// takeover continues from the snapshot and replays only the events scored after it. Zero: no snapshots (every
    /// rebuild replays the partition's whole history).
    /// </summary>
    public int SnapshotEveryEvents { get; set; } = 50_000;

    /// <summary>Longest time between two snapshots of a partition that scored events in between.</summary>
    public TimeSpan SnapshotInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Backpressure from scoring: while the oldest unscored event (on any instance) has waited longer than this, new
    /// batches are answered 503 with <c>Retry-After</c>, so a finding never trails its evidence by much more and senders
    /// hold what scoring cannot take yet. Zero (the default): never refused for this; the lag is still measured
    /// (<c>crm_security.analyzer.scoring_lag</c>).
    /// </summary>
    public TimeSpan MaxScoringLag { get; set; } = TimeSpan.Zero;
}

/// <summary>
/// The users one sending client may report on, bound from <c>AuditAnalyzer:Live:Senders:&lt;client_id&gt;</c>: a line
/// about anyone else is rejected as <c>user_not_allowed</c>. Either list may be empty, not both.
/// </summary>
public sealed class SenderOptions
{
    /// <summary>User ids (the events' <c>user_id</c>) the client may report on.</summary>
    public List<string>? Users { get; set; }

    /// <summary>Business unit ids of the directory (Identity's model): the client may report on their users.</summary>
    public List<string>? BusinessUnits { get; set; }
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

        if (options.MaxDecompressedBatchBytes < options.MaxBatchBytes || options.MaxDecompressedBatchBytes > 1024L * 1024 * 1024)
        {
            errors.Add($"{LiveOptions.Section}:MaxDecompressedBatchBytes is {options.MaxDecompressedBatchBytes}; use at least MaxBatchBytes ({options.MaxBatchBytes}) and at most 1073741824.");
        }

        if (options.MaxLineBytes is < 256 or > Ingestion.LineReader.MaxLineBytes)
        {
            errors.Add($"{LiveOptions.Section}:MaxLineBytes is {options.MaxLineBytes}; use 256 to {Ingestion.LineReader.MaxLineBytes}.");
        }

        if (options.MaxConcurrentBatches is < 1 or > 1024)
        {
            errors.Add($"{LiveOptions.Section}:MaxConcurrentBatches is {options.MaxConcurrentBatches}; use 1 to 1024 (batches stored at once).");
        }

        if (options.MaxQueuedBatches is < 0 or > 100_000)
        {
            errors.Add($"{LiveOptions.Section}:MaxQueuedBatches is {options.MaxQueuedBatches}; use 0 (refuse at once when busy) to 100000.");
        }

        if (options.BatchQueueTimeout <= TimeSpan.Zero || options.BatchQueueTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{LiveOptions.Section}:BatchQueueTimeout is {options.BatchQueueTimeout}; use more than zero and at most 00:05:00 (for example 00:00:05).");
        }

        if (options.RetryAfter < TimeSpan.FromSeconds(1) || options.RetryAfter > TimeSpan.FromHours(1))
        {
            errors.Add($"{LiveOptions.Section}:RetryAfter is {options.RetryAfter}; use 00:00:01 to 01:00:00 (sent as whole seconds in Retry-After).");
        }

        if (!options.UsesLeases && !options.UsesOrleans)
        {
            errors.Add($"{LiveOptions.Section}:Runtime is '{options.Runtime}'; use {LiveOptions.LeasesRuntime} (partition leases in the database, the default) or {LiveOptions.OrleansRuntime} (a grain per partition on an in-process Orleans silo).");
        }

        if (options.MaxUncommittedBatches is < 1 or > 1024)
        {
            errors.Add($"{LiveOptions.Section}:MaxUncommittedBatches is {options.MaxUncommittedBatches}; use 1 to 1024 (parsed batches waiting for their commit).");
        }

        if (options.SnapshotEveryEvents is < 0 or > 100_000_000)
        {
            errors.Add($"{LiveOptions.Section}:SnapshotEveryEvents is {options.SnapshotEveryEvents}; use 0 (no snapshots: every rebuild replays the whole history) to 100000000 (scored events between two snapshots of a partition).");
        }

        if (options.SnapshotInterval < TimeSpan.FromSeconds(1) || options.SnapshotInterval > TimeSpan.FromDays(1))
        {
            errors.Add($"{LiveOptions.Section}:SnapshotInterval is {options.SnapshotInterval}; use 00:00:01 to 1.00:00:00 (for example 00:05:00).");
        }

        if (options.MaxScoringLag != TimeSpan.Zero && (options.MaxScoringLag < TimeSpan.FromSeconds(1) || options.MaxScoringLag > TimeSpan.FromHours(1)))
        {
            errors.Add($"{LiveOptions.Section}:MaxScoringLag is {options.MaxScoringLag}; use 00:00:00 (never refuse batches because scoring is behind, the default) or 00:00:01 to 01:00:00 (for example 00:00:05).");
        }

        foreach (var (client, sender) in options.Senders)
        {
            var key = $"{LiveOptions.Section}:Senders:{client}";
            if (string.IsNullOrWhiteSpace(client) || client.Length > 200)
            {
                errors.Add($"{LiveOptions.Section}:Senders has an entry whose client id is empty or longer than 200 characters; the key is the sending client's client_id.");
                continue;
            }

            var users = sender.Users ?? [];
            var units = sender.BusinessUnits ?? [];
            if (users.Count == 0 && units.Count == 0)
            {
                // An empty binding is almost certainly a typo; silently allowing everyone (or no one) would surprise.
                errors.Add($"{key} names neither Users nor BusinessUnits; list the user ids or business unit ids the client may report on, or remove the entry.");
            }

            if (users.Any(u => string.IsNullOrWhiteSpace(u) || u.Length > EventBatches.MaxUserIdLength))
            {
                errors.Add($"{key}:Users has an empty entry or one longer than {EventBatches.MaxUserIdLength} characters.");
            }

            if (units.Any(u => string.IsNullOrWhiteSpace(u) || u.Length > 200))
            {
                errors.Add($"{key}:BusinessUnits has an empty entry or one longer than 200 characters.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
