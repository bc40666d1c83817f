namespace CrmSecurity.Identity.AuditTrail;

/// <summary>
/// One admin change in the append-only audit trail. <see cref="Hash"/> is SHA-256 over the entry's content and
/// <see cref="PreviousHash"/>, so changing, removing or reordering an entry breaks the chain from there on.
/// </summary>
internal sealed class AuditEntryRecord
{
    /// <summary>1, 2, 3, ... without gaps.</summary>
    public long Sequence { get; set; }

    public DateTimeOffset Timestamp { get; set; }

    public required string ActorId { get; set; }

    public required string ActorName { get; set; }

    public string? ClientId { get; set; }

    /// <summary>What was done, e.g. <c>role.update</c>, <c>user.roles</c>, <c>share.create</c>.</summary>
    public required string Action { get; set; }

    public required string TargetKind { get; set; }

    public required string TargetId { get; set; }

    public required string TargetName { get; set; }

    /// <summary>The target before the change, as JSON (null when created).</summary>
    public string? Before { get; set; }

    /// <summary>The target after the change, as JSON (null when deleted).</summary>
    public string? After { get; set; }

    public string? SourceIp { get; set; }

    /// <summary>The model version the change produced.</summary>
    public long ModelVersion { get; set; }

    public required string PreviousHash { get; set; }

    public required string Hash { get; set; }
}
