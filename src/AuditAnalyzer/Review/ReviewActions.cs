using System.Globalization;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>Why a review request was not done: a status (400, 403, 404, 409), the field at fault when there is one, and what to do.</summary>
internal sealed record ReviewProblem(int Status, string? Field, string Message)
{
    public static ReviewProblem Invalid(string field, string message) => new(400, field, message);

    public static ReviewProblem Forbidden(string message) => new(403, null, message);

    public static ReviewProblem NotFound(string what) => new(404, null, what);

    // RFC 9110 §15.5.10: 409 when the request conflicts with the target's current state.
    public static ReviewProblem Conflict(string message) => new(409, null, message);

    public static ReviewProblem From(ReviewRefusal refusal) => refusal.Conflict ? Conflict(refusal.Message) : Invalid(refusal.Field ?? "body", refusal.Message);
}

/// <summary>Who a finding is about, as a reveal shows it (with the peer group, hidden before a reveal when it is small).</summary>
internal sealed record RevealedUser(string UserId, string? UserName, string? PeerGroup);

/// <summary>A status change as a reviewer asks for it.</summary>
internal sealed record StatusChange(string Status, string? Disposition, string? DuplicateOf, string? Note, int? Version);

/// <summary>A new suppression as a reviewer asks for it.</summary>
internal sealed record SuppressionRequest(string ScopeKind, string ScopeValue, string Reason, DateTimeOffset? ExpiresAt, string? Owner, bool ApplyToExisting);

/// <summary>
/// The review workflow's changes: each runs in one database transaction with its audit entries (written through
/// <see cref="IReviewAuditTrail"/> on the same transaction), so a change whose audit entry cannot be written is not
/// made. Every change and every reveal needs the review right; reads need the read right (deny by default).
/// </summary>
internal sealed class ReviewActions(
    LiveDbContext db, IReviewAuditTrail audit, PseudonymKeys pseudonyms, PeerGroupSizes peerGroups, IOptions<ReviewOptions> options, TimeProvider time)
{
    public const int MaxNote = 4000;
    public const int MaxReason = 2000;
    private static readonly JsonSerializerOptions AuditJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public ReviewOptions Options => options.Value;

    public LiveDbContext Db => db;

    /// <summary>Which peer groups may be named before a reveal (k-anonymity, <see cref="ReviewOptions.MinPeerGroupSize"/>).</summary>
    public PeerGroupSizes PeerGroups => peerGroups;

    public ValueTask<byte[]> PseudonymKeyAsync(CancellationToken cancellationToken) => pseudonyms.GetAsync(db, cancellationToken);

    public static ReviewProblem? MayRead(ReviewCaller? caller) => caller is null
        ? ReviewProblem.Forbidden("The caller is not an enabled user of the authorization model.")
        : caller.SecondFactorPage is { } page
            ? ReviewProblem.Forbidden($"Reviewing findings needs a sign-in with two-step verification (amr 'mfa'; OWASP ASVS V4.3.1). Turn it on at {page}, then sign in again with your authenticator code.")
            : caller.CannotRead is { } why ? ReviewProblem.Forbidden(why) : null;

    public static ReviewProblem? MayReview(ReviewCaller? caller) => MayRead(caller)
        ?? (caller!.CannotReview is { } why ? ReviewProblem.Forbidden(why) : null);

    /// <summary>
    /// Whether the finding is about the caller: by user id, or by user name where the sender gave one (a CRM app may
    /// key its events by user name). Nobody reviews, reveals, notes, assigns or suppresses their own finding
    /// (separation of duties, NIST SP 800-53 AC-5; OWASP ASVS 4.0.3 V1.4.3): an auditor may be investigated too.
    /// </summary>
    public static bool IsAbout(StoredFindingRow finding, ReviewCaller caller) => IsAbout(finding.UserId, finding.UserName, caller);

    public static bool IsAbout(string userId, string? userName, ReviewCaller caller) =>
        string.Equals(userId, caller.Id, StringComparison.Ordinal)
        || string.Equals(userId, caller.Name, StringComparison.OrdinalIgnoreCase)
        || (userName is not null && string.Equals(userName, caller.Name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Whether the stored finding is about the caller (false when there is no such finding).</summary>
    public async Task<bool> IsAboutAsync(string findingId, ReviewCaller caller, CancellationToken cancellationToken) =>
        await db.Findings.AsNoTracking().Where(f => f.Id == findingId).Select(f => new { f.UserId, f.UserName }).FirstOrDefaultAsync(cancellationToken) is { } f
        && IsAbout(f.UserId, f.UserName, caller);

    private static ReviewProblem AboutYou(string findingId) =>
        ReviewProblem.Forbidden($"Finding '{findingId}' is about you: nobody reviews, reveals, notes, assigns or suppresses a finding about themselves. Another reviewer must handle it.");

    public async Task<ReviewProblem?> ChangeStatusAsync(ReviewCaller? caller, string findingId, StatusChange change, bool bulk, CancellationToken cancellationToken)
    {
        if (MayReview(caller) is { } refused)
        {
            return refused;
        }

        if (change.Note is { Length: > MaxNote })
        {
            return ReviewProblem.Invalid("note", $"note is {change.Note.Length} characters; at most {MaxNote} are kept.");
        }

        return await InTransactionAsync(caller!, async entries =>
        {
            var (finding, review) = await LoadAsync(findingId, cancellationToken);
            if (review is null || finding is null)
            {
                return ReviewProblem.NotFound($"There is no finding '{findingId}'.");
            }

            if (IsAbout(finding, caller!))
            {
                return AboutYou(findingId);
            }

            if (VersionProblem(review, change.Version) is { } stale)
            {
                return stale;
            }

            var (disposition, refusal) = ReviewStateMachine.Check(review.Status, change.Status, review.Disposition, change.Disposition, change.DuplicateOf, findingId);
            if (refusal is not null)
            {
                return ReviewProblem.From(refusal);
            }

            if (change.DuplicateOf is { } other && !await db.Findings.AnyAsync(f => f.Id == other, cancellationToken))
            {
                return ReviewProblem.Invalid("duplicate_of", $"There is no finding '{other}' to be a duplicate of.");
            }

            var before = Snapshot(review);
            var now = time.GetUtcNow().UtcTicks;
            review.Status = change.Status;
            review.Disposition = disposition;
            review.DuplicateOf = change.DuplicateOf;
            Touch(review, caller!, now);
            if (change.Status == ReviewStatus.Dismissed && disposition == Disposition.FalsePositive)
            {
                // Feedback: later findings of this user and detector score lower (applied where findings are saved).
                db.FalsePositives.Add(new FalsePositiveRow { UserId = finding.UserId, Detector = finding.Detector, FindingId = finding.Id, CreatedTicks = now });
            }

            entries.Add(Entry("finding.status", finding, before, Snapshot(review), bulk));
            if (!string.IsNullOrWhiteSpace(change.Note))
            {
                AddNote(entries, finding, caller!, change.Note.Trim(), now);
            }

            return null;
        }, cancellationToken);
    }

    public async Task<ReviewProblem?> AddNoteAsync(ReviewCaller? caller, string findingId, string? text, CancellationToken cancellationToken)
    {
        if (MayReview(caller) is { } refused)
        {
            return refused;
        }

        if (string.IsNullOrWhiteSpace(text) || text.Length > MaxNote)
        {
            return ReviewProblem.Invalid("text", $"text must be 1 to {MaxNote} characters.");
        }

        return await InTransactionAsync(caller!, async entries =>
        {
            var finding = await db.Findings.AsNoTracking().FirstOrDefaultAsync(f => f.Id == findingId, cancellationToken);
            if (finding is null)
            {
                return ReviewProblem.NotFound($"There is no finding '{findingId}'.");
            }

            if (IsAbout(finding, caller!))
            {
                return AboutYou(findingId);
            }

            AddNote(entries, finding, caller!, text.Trim(), time.GetUtcNow().UtcTicks);
            return null;
        }, cancellationToken);
    }

    public async Task<ReviewProblem?> AssignAsync(ReviewCaller? caller, string findingId, string? assignee, int? version, bool bulk, CancellationToken cancellationToken)
    {
        if (MayReview(caller) is { } refused)
        {
            return refused;
        }

        if (assignee is { Length: 0 or > 200 })
        {
            return ReviewProblem.Invalid("assignee", "assignee is a user id of 1 to 200 characters, or null to unassign.");
        }

        return await InTransactionAsync(caller!, async entries =>
        {
            var (finding, review) = await LoadAsync(findingId, cancellationToken);
            if (review is null || finding is null)
            {
                return ReviewProblem.NotFound($"There is no finding '{findingId}'.");
            }

            if (IsAbout(finding, caller!))
            {
                return AboutYou(findingId);
            }

            // Assigning to the person the finding is about is not refused here (a refusal would tell a reviewer whether a
            // guessed user id is the finding's user); that person cannot act on it, as every action checks IsAbout.
            if (VersionProblem(review, version) is { } stale)
            {
                return stale;
            }

            var before = Snapshot(review);
            review.Assignee = assignee;
            Touch(review, caller!, time.GetUtcNow().UtcTicks);
            entries.Add(Entry("finding.assign", finding, before, Snapshot(review), bulk));
            return null;
        }, cancellationToken);
    }

    /// <summary>
    /// The real user id and name behind a finding's pseudonym, and its peer group; audited as <c>finding.reveal</c> with
    /// the reviewer's reason before it is returned. A reveal needs a reason (GDPR Art. 5(1)(c) data minimisation; what
    /// Purview asks of an investigator), and nobody reveals a finding about themselves.
    /// </summary>
    public async Task<RevealedUser?> RevealAsync(ReviewCaller? caller, string findingId, string? reason, List<ReviewProblem> problems, CancellationToken cancellationToken)
    {
        if (MayReview(caller) is { } refused)
        {
            problems.Add(refused);
            return null;
        }

        if (string.IsNullOrWhiteSpace(reason) || reason.Trim().Length > MaxReason)
        {
            problems.Add(ReviewProblem.Invalid("reason", $"reason must say why the identity is needed, in 1 to {MaxReason} characters; it goes into the audit trail."));
            return null;
        }

        RevealedUser? revealed = null;
        var problem = await InTransactionAsync(caller!, async entries =>
        {
            var finding = await db.Findings.AsNoTracking().FirstOrDefaultAsync(f => f.Id == findingId, cancellationToken);
            if (finding is null)
            {
                return ReviewProblem.NotFound($"There is no finding '{findingId}'.");
            }

            if (IsAbout(finding, caller!))
            {
                return AboutYou(findingId);
            }

            // The entry names the finding and pseudonym, never the revealed identity: the trail is read by more people.
            entries.Add(new ReviewAuditEntry("finding.reveal", "audit_finding", finding.Id, $"{finding.Detector} finding of {finding.Pseudonym}", null,
                JsonSerializer.Serialize(new { pseudonym = finding.Pseudonym, reason = reason.Trim() }, AuditJson)));
            revealed = new RevealedUser(finding.UserId, finding.UserName, finding.PeerGroup);
            return null;
        }, cancellationToken);
        if (problem is not null)
        {
            problems.Add(problem);
            return null;
        }

        return revealed;
    }

    /// <summary>
    /// Records in the audit trail, before anything is shown, that the identities behind <paramref name="findings"/> are
    /// released to <paramref name="caller"/> through <paramref name="channel"/> (a list, the export feed, a push
    /// destination): one <c>finding.reveal.bulk</c> entry per finding, naming the pseudonym, the channel and the reason,
    /// never the identity. Findings about the caller are left out (they stay pseudonymous). Returns the released ids;
    /// throws when the trail cannot be written, so nothing is released unaudited.
    /// </summary>
    public async Task<IReadOnlySet<string>> ReleaseIdentitiesAsync(
        ReviewCaller caller, IReadOnlyList<(string Id, string UserId, string? UserName, string Pseudonym, string Detector)> findings, string channel, string reason,
        CancellationToken cancellationToken)
    {
        var released = findings.Where(f => !IsAbout(f.UserId, f.UserName, caller)).ToList();
        if (released.Count == 0)
        {
            return new HashSet<string>(StringComparer.Ordinal);
        }

        var problem = await InTransactionAsync(caller, entries =>
        {
            entries.AddRange(released.Select(f => new ReviewAuditEntry("finding.reveal.bulk", "audit_finding", f.Id, $"{f.Detector} finding of {f.Pseudonym}", null,
                JsonSerializer.Serialize(new { pseudonym = f.Pseudonym, channel, reason }, AuditJson))));
            return Task.FromResult<ReviewProblem?>(null);
        }, cancellationToken);
        return problem is null
            ? released.Select(f => f.Id).ToHashSet(StringComparer.Ordinal)
            : throw new InvalidOperationException($"The release of identities through {channel} could not be audited: {problem.Message}");
    }

    public async Task<(SuppressionRow? Created, int Applied, ReviewProblem? Problem)> CreateSuppressionAsync(ReviewCaller? caller, SuppressionRequest request, CancellationToken cancellationToken)
    {
        if (MayReview(caller) is { } refused)
        {
            return (null, 0, refused);
        }

        var now = time.GetUtcNow();
        if (!SuppressionScope.All.Contains(request.ScopeKind, StringComparer.Ordinal))
        {
            return (null, 0, ReviewProblem.Invalid("scope_kind", $"scope_kind must be one of {string.Join(", ", SuppressionScope.All)}; '{request.ScopeKind}' is not."));
        }

        if (string.IsNullOrWhiteSpace(request.ScopeValue) || request.ScopeValue.Length > 200)
        {
            return (null, 0, ReviewProblem.Invalid("scope_value", "scope_value must be 1 to 200 characters: a pseudonym, a group, a detector or an entity."));
        }

        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > MaxReason)
        {
            return (null, 0, ReviewProblem.Invalid("reason", $"reason must say why, in 1 to {MaxReason} characters."));
        }

        if (request.ExpiresAt is not { } expires || expires <= now)
        {
            return (null, 0, ReviewProblem.Invalid("expires_at", "expires_at must be a time in the future (ISO 8601 with offset): a suppression without an end would hide findings forever."));
        }

        var longest = TimeSpan.FromDays(Options.MaxSuppressionDays);
        if (expires - now > longest)
        {
            // A suppression is a decision to stop looking; it must come back for review (ISO 27001 A.5.18 periodic review).
            return (null, 0, ReviewProblem.Invalid("expires_at", string.Create(CultureInfo.InvariantCulture,
                $"expires_at is more than {Options.MaxSuppressionDays} days ahead (AuditAnalyzer:Review:MaxSuppressionDays); choose {(now + longest).UtcDateTime:yyyy-MM-dd} or earlier and renew it then if it is still needed.")));
        }

        if (request.Owner is { Length: 0 or > 200 })
        {
            return (null, 0, ReviewProblem.Invalid("owner", "owner is a user id of 1 to 200 characters (the creator when left out)."));
        }

        var value = request.ScopeValue.Trim();
        if (request.ScopeKind == SuppressionScope.User && !Pseudonyms.LooksLikeOne(value))
        {
            // A user id here would be answered with its pseudonym: a way to test a guess without an audited reveal.
            return (null, 0, ReviewProblem.Invalid("scope_value", "For the user scope give the pseudonym as the queue shows it (user- and 8 hex digits), not a user id."));
        }

        if (request.ScopeKind == SuppressionScope.User)
        {
            // Reviewers see pseudonyms; the suppression keeps the user id so it also matches the user's future findings.
            var subject = await db.Findings.AsNoTracking().Where(f => f.Pseudonym == value).Select(f => new { f.UserId, f.UserName }).FirstOrDefaultAsync(cancellationToken);
            if (subject is null)
            {
                return (null, 0, ReviewProblem.Invalid("scope_value", $"No finding has the pseudonym '{value}'; a user is suppressed once they have a finding."));
            }

            if (IsAbout(subject.UserId, subject.UserName, caller!))
            {
                return (null, 0, ReviewProblem.Forbidden($"'{value}' is you: nobody suppresses findings about themselves. Another reviewer must decide."));
            }

            if (request.Owner is { } owner && string.Equals(owner, subject.UserId, StringComparison.Ordinal))
            {
                return (null, 0, ReviewProblem.Invalid("owner", "The owner of a suppression cannot be the user it suppresses."));
            }

            value = subject.UserId;
        }
        else if (request.ScopeKind == SuppressionScope.Entity)
        {
            value = value.ToLowerInvariant();
        }

        var row = new SuppressionRow
        {
            Id = "sup-" + Guid.NewGuid().ToString("N")[..12],
            Owner = request.Owner ?? caller!.Id,
            ScopeKind = request.ScopeKind,
            ScopeValue = value,
            Reason = request.Reason.Trim(),
            CreatedBy = caller!.Id,
            CreatedTicks = now.UtcTicks,
            ExpiresTicks = expires.UtcTicks,
        };
        var applied = 0;
        var key = await PseudonymKeyAsync(cancellationToken);
        var problem = await InTransactionAsync(caller!, async entries =>
        {
            applied = 0;
            db.Suppressions.Add(row);
            entries.Add(new ReviewAuditEntry("suppression.create", "audit_suppression", row.Id, SuppressionName(row, key), null, JsonSerializer.Serialize(Describe(row, key), AuditJson)));
            if (request.ApplyToExisting)
            {
                var matcher = row.ToMatcher(Options.MaxSuppressionLifetime);
                var open = await db.Reviews.Where(r => r.Status == ReviewStatus.New || r.Status == ReviewStatus.Acknowledged)
                    .Join(db.Findings, r => r.FindingId, f => f.Id, (r, f) => new { Review = r, Finding = f })
                    .Where(x => (row.ScopeKind == SuppressionScope.User && x.Finding.UserId == row.ScopeValue)
                        || (row.ScopeKind == SuppressionScope.Detector && x.Finding.Detector == row.ScopeValue)
                        || (row.ScopeKind == SuppressionScope.Group && x.Finding.PeerGroup != null)
                        || (row.ScopeKind == SuppressionScope.Entity && x.Finding.Entities.Contains("," + row.ScopeValue + ",")))
                    .ToListAsync(cancellationToken);
                foreach (var x in open.Where(x => SuppressionMatcher.Matches(matcher, Facts(x.Finding))))
                {
                    var before = Snapshot(x.Review);
                    x.Review.Status = ReviewStatus.Suppressed;
                    x.Review.SuppressionId = row.Id;
                    Touch(x.Review, caller!, now.UtcTicks);
                    entries.Add(Entry("finding.suppress", x.Finding, before, Snapshot(x.Review), bulk: true));
                    applied++;
                }
            }

            return null;
        }, cancellationToken);
        return problem is null ? (row, applied, null) : (null, 0, problem);
    }

    public async Task<ReviewProblem?> RevokeSuppressionAsync(ReviewCaller? caller, string id, CancellationToken cancellationToken)
    {
        if (MayReview(caller) is { } refused)
        {
            return refused;
        }

        var key = await PseudonymKeyAsync(cancellationToken);
        return await InTransactionAsync(caller!, async entries =>
        {
            var row = await db.Suppressions.FirstOrDefaultAsync(s => s.Id == id, cancellationToken);
            if (row is null)
            {
                return ReviewProblem.NotFound($"There is no suppression '{id}'.");
            }

            if (row.RevokedTicks is not null)
            {
                return ReviewProblem.Conflict($"Suppression '{id}' is already revoked.");
            }

            var before = JsonSerializer.Serialize(Describe(row, key), AuditJson);
            row.RevokedTicks = time.GetUtcNow().UtcTicks;
            row.RevokedBy = caller!.Id;
            entries.Add(new ReviewAuditEntry("suppression.revoke", "audit_suppression", row.Id, SuppressionName(row, key), before, JsonSerializer.Serialize(Describe(row, key), AuditJson)));
            return null;
        }, cancellationToken);
    }

    /// <summary>A suppression for people: the user scope shows the pseudonym, never the user id.</summary>
    public static object Describe(SuppressionRow s, byte[] key) => new
    {
        id = s.Id,
        owner = s.Owner,
        scope_kind = s.ScopeKind,
        scope_value = s.ScopeKind == SuppressionScope.User ? Pseudonyms.Of(key, s.ScopeValue) : s.ScopeValue,
        reason = s.Reason,
        created_by = s.CreatedBy,
        created_at = new DateTimeOffset(s.CreatedTicks, TimeSpan.Zero),
        expires_at = s.ExpiresTicks is { } e ? new DateTimeOffset(e, TimeSpan.Zero) : (DateTimeOffset?)null,
        revoked_at = s.RevokedTicks is { } r ? new DateTimeOffset(r, TimeSpan.Zero) : (DateTimeOffset?)null,
        revoked_by = s.RevokedBy,
    };

    public static FindingFacts Facts(StoredFindingRow f) => new(f.UserId, f.PeerGroup, f.Detector, Evidence.Entities(f.Entities));

    private static string SuppressionName(SuppressionRow s, byte[] key) =>
        $"{s.ScopeKind} {(s.ScopeKind == SuppressionScope.User ? Pseudonyms.Of(key, s.ScopeValue) : s.ScopeValue)}";

    private async Task<ReviewProblem?> InTransactionAsync(ReviewCaller caller, Func<List<ReviewAuditEntry>, Task<ReviewProblem?>> change, CancellationToken cancellationToken)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            var entries = new List<ReviewAuditEntry>();
            if (await change(entries) is { } refused)
            {
                await transaction.RollbackAsync(cancellationToken);
                return refused;
            }

            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateConcurrencyException)
            {
                await transaction.RollbackAsync(cancellationToken);
                return ReviewProblem.Conflict("The finding was changed by someone else meanwhile. Reload it and apply your change again.");
            }

            // A decision changes the finding as SIEMs see it (status, disposition): its export cursor moves with it.
            var decided = entries.Where(e => e.TargetKind == "audit_finding" && e.Action.StartsWith("finding.status", StringComparison.Ordinal)
                || e.Action.StartsWith("finding.suppress", StringComparison.Ordinal)).Select(e => e.TargetId).Distinct().ToList();
            if (decided.Count > 0)
            {
                var nowTicks = time.GetUtcNow().UtcTicks;
                await db.Findings.Where(f => decided.Contains(f.Id)).ExecuteUpdateAsync(u => u.SetProperty(f => f.UpdatedTicks, nowTicks), cancellationToken);
            }

            // Same transaction: if the audit entries cannot be written, the review change is rolled back with them.
            await audit.AppendAsync(caller, entries, transaction.GetDbTransaction(), cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return null;
        });
    }

    private async Task<(StoredFindingRow? Finding, FindingReviewRow? Review)> LoadAsync(string findingId, CancellationToken cancellationToken)
    {
        var finding = await db.Findings.AsNoTracking().FirstOrDefaultAsync(f => f.Id == findingId, cancellationToken);
        var review = finding is null ? null : await db.Reviews.FirstOrDefaultAsync(r => r.FindingId == findingId, cancellationToken);
        return (finding, review);
    }

    private static ReviewProblem? VersionProblem(FindingReviewRow review, int? version) =>
        version is { } seen && seen != review.Version
            ? ReviewProblem.Conflict(string.Create(CultureInfo.InvariantCulture, $"The finding is at version {review.Version}, not {seen}: someone changed it meanwhile. Reload it and apply your change again."))
            : null;

    private static void Touch(FindingReviewRow review, ReviewCaller caller, long nowTicks)
    {
        review.UpdatedBy = caller.Id;
        review.UpdatedTicks = nowTicks;
        review.Version++;
    }

    private void AddNote(List<ReviewAuditEntry> entries, StoredFindingRow finding, ReviewCaller caller, string text, long nowTicks)
    {
        db.Notes.Add(new ReviewNoteRow { FindingId = finding.Id, AuthorId = caller.Id, AuthorName = caller.Name, Text = text, CreatedTicks = nowTicks });
        entries.Add(new ReviewAuditEntry("finding.note", "audit_finding", finding.Id, Name(finding), null, JsonSerializer.Serialize(new { text }, AuditJson)));
    }

    private static object Snapshot(FindingReviewRow r) => new
    {
        status = r.Status,
        disposition = r.Disposition,
        duplicate_of = r.DuplicateOf,
        assignee = r.Assignee,
        suppression_id = r.SuppressionId,
        version = r.Version,
    };

    private static ReviewAuditEntry Entry(string action, StoredFindingRow finding, object before, object after, bool bulk) =>
        new(bulk ? action + ".bulk" : action, "audit_finding", finding.Id, Name(finding), JsonSerializer.Serialize(before, AuditJson), JsonSerializer.Serialize(after, AuditJson));

    private static string Name(StoredFindingRow f) => $"{f.Detector} finding of {f.Pseudonym}";
}
