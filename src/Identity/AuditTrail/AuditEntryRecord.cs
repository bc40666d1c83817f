namespace CrmSecurity.Identity.AuditTrail;

/// <summary>
/// One admin change in the append-only audit trail. <see cref="Hash"/> is a MAC (HMAC-SHA-256 under the installation's
/// audit key, <see cref="Scheme"/>) over the entry's content, its <see cref="ModelFingerprint"/> and <see cref="PreviousHash"/>,
/// so changing, removing or reordering an entry breaks the chain from there on, and only a holder of the key, never a
/// database writer, can write a chain that verifies.
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

    /// <summary>The entry's MAC (hex); SHA-256 for entries written before the chain was keyed.</summary>
    public required string Hash { get; set; }

    /// <summary><see cref="AuditChain.KeyedScheme"/> for keyed entries; null for an entry written before the chain was keyed.</summary>
    public string? Scheme { get; set; }

    /// <summary>
    /// The keyed fingerprint of the authorization model as the change left it, per part (<see cref="CrmSecurity.Identity.AuditTrail.ModelFingerprint"/>);
    /// entries that change no model part carry the previous one forward.
    /// </summary>
    public string? ModelFingerprint { get; set; }
}

/// <summary>
/// The chain's head, kept in one row under its own MAC: deleting the newest entries leaves the head naming an entry that
/// is gone. (Someone who saved an older head row can put it back; the head logged at every append, kept outside the
/// database and given to <c>audit verify --expect-head</c>, catches that too.)
/// </summary>
internal sealed class AuditHeadRecord
{
    public const int SingletonId = 1;

    public int Id { get; set; } = SingletonId;

    public long Sequence { get; set; }

    /// <summary>The MAC of entry <see cref="Sequence"/>.</summary>
    public required string Mac { get; set; }

    /// <summary>HMAC over the sequence and <see cref="Mac"/>.</summary>
    public required string HeadMac { get; set; }
}
