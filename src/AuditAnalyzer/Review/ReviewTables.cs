using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>The review state of one finding; created with the finding, kept when the scorer re-saves it.</summary>
internal sealed class FindingReviewRow
{
    public required string FindingId { get; set; }

    public required string Status { get; set; }

    public string? Disposition { get; set; }

    /// <summary>The finding this one duplicates (disposition duplicate).</summary>
    public string? DuplicateOf { get; set; }

    /// <summary>User id of the reviewer the finding is assigned to.</summary>
    public string? Assignee { get; set; }

    /// <summary>The suppression that closed it (status suppressed).</summary>
    public string? SuppressionId { get; set; }

    public required string UpdatedBy { get; set; }

    public long UpdatedTicks { get; set; }

    /// <summary>Optimistic concurrency: a change names the version it saw and is refused (409) if it moved on.</summary>
    public int Version { get; set; }
}

/// <summary>A reviewer's note on a finding; append-only.</summary>
internal sealed class ReviewNoteRow
{
    public long Id { get; set; }

    public required string FindingId { get; set; }

    public required string AuthorId { get; set; }

    public required string AuthorName { get; set; }

    public required string Text { get; set; }

    public long CreatedTicks { get; set; }
}

/// <summary>A suppression: findings in its scope are stored as suppressed until it expires or is revoked.</summary>
internal sealed class SuppressionRow
{
    public required string Id { get; set; }

    /// <summary>Who answers for it (a user id); the creator unless another owner is named.</summary>
    public required string Owner { get; set; }

    public required string ScopeKind { get; set; }

    public required string ScopeValue { get; set; }

    public required string Reason { get; set; }

    public required string CreatedBy { get; set; }

    public long CreatedTicks { get; set; }

    public long? ExpiresTicks { get; set; }

    public long? RevokedTicks { get; set; }

    public string? RevokedBy { get; set; }

    /// <summary>The suppression for matching, its lifetime capped at <paramref name="maxLifetime"/> from its creation.</summary>
    public ActiveSuppression ToMatcher(TimeSpan maxLifetime) =>
        new(Id, ScopeKind, ScopeValue, SuppressionMatcher.EndOf(CreatedTicks, ExpiresTicks, maxLifetime), RevokedTicks, CreatedBy, Owner);
}

/// <summary>A dismissal as false positive, kept as feedback for later findings of the same user and detector.</summary>
internal sealed class FalsePositiveRow
{
    public long Id { get; set; }

    public required string UserId { get; set; }

    public required string Detector { get; set; }

    public required string FindingId { get; set; }

    public long CreatedTicks { get; set; }
}

/// <summary>Installation-wide review settings, such as the pseudonym key.</summary>
internal sealed class ReviewSettingRow
{
    public required string Key { get; set; }

    public required string Value { get; set; }
}

internal static class ReviewTables
{
    public static void Configure(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<FindingReviewRow>(e =>
        {
            e.ToTable("analyzer_review_states");
            e.HasKey(x => x.FindingId);
            e.Property(x => x.FindingId).HasColumnName("finding_id").HasMaxLength(40);
            e.Property(x => x.Status).HasColumnName("status").HasMaxLength(20);
            e.Property(x => x.Disposition).HasColumnName("disposition").HasMaxLength(30);
            e.Property(x => x.DuplicateOf).HasColumnName("duplicate_of").HasMaxLength(40);
            e.Property(x => x.Assignee).HasColumnName("assignee").HasMaxLength(200);
            e.Property(x => x.SuppressionId).HasColumnName("suppression_id").HasMaxLength(40);
            e.Property(x => x.UpdatedBy).HasColumnName("updated_by").HasMaxLength(200);
            e.Property(x => x.UpdatedTicks).HasColumnName("updated_ticks");
            e.Property(x => x.Version).HasColumnName("version").IsConcurrencyToken();
            e.HasIndex(x => x.Status);
        });
        modelBuilder.Entity<ReviewNoteRow>(e =>
        {
            e.ToTable("analyzer_review_notes");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).HasColumnName("id").ValueGeneratedOnAdd();
            e.Property(x => x.FindingId).HasColumnName("finding_id").HasMaxLength(40);
            e.Property(x => x.AuthorId).HasColumnName("author_id").HasMaxLength(200);
            e.Property(x => x.AuthorName).HasColumnName("author_name").HasMaxLength(400);
            e.Property(x => x.Text).HasColumnName("text").HasMaxLength(4000);
            e.Property(x => x.CreatedTicks).HasColumnName("created_ticks");
            e.HasIndex(x => new { x.FindingId, x.Id });
        });
        modelBuilder.Entity<SuppressionRow>(e =>
        {
            e.ToTable("analyzer_suppressions");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).HasColumnName("id").HasMaxLength(40);
            e.Property(x => x.Owner).HasColumnName("owner").HasMaxLength(200);
            e.Property(x => x.ScopeKind).HasColumnName("scope_kind").HasMaxLength(20);
            e.Property(x => x.ScopeValue).HasColumnName("scope_value").HasMaxLength(200);
            e.Property(x => x.Reason).HasColumnName("reason").HasMaxLength(2000);
            e.Property(x => x.CreatedBy).HasColumnName("created_by").HasMaxLength(200);
            e.Property(x => x.CreatedTicks).HasColumnName("created_ticks");
            e.Property(x => x.ExpiresTicks).HasColumnName("expires_ticks");
            e.Property(x => x.RevokedTicks).HasColumnName("revoked_ticks");
            e.Property(x => x.RevokedBy).HasColumnName("revoked_by").HasMaxLength(200);
        });
        modelBuilder.Entity<FalsePositiveRow>(e =>
        {
            e.ToTable("analyzer_false_positives");
            e.HasKey(x => x.Id);
            e.Property(x => x.Id).HasColumnName("id").ValueGeneratedOnAdd();
            e.Property(x => x.UserId).HasColumnName("user_id").HasMaxLength(200);
            e.Property(x => x.Detector).HasColumnName("detector").HasMaxLength(100);
            e.Property(x => x.FindingId).HasColumnName("finding_id").HasMaxLength(40);
            e.Property(x => x.CreatedTicks).HasColumnName("created_ticks");
            e.HasIndex(x => new { x.UserId, x.Detector });
        });
        modelBuilder.Entity<ReviewSettingRow>(e =>
        {
            e.ToTable("analyzer_review_settings");
            e.HasKey(x => x.Key);
            e.Property(x => x.Key).HasColumnName("key").HasMaxLength(100);
            e.Property(x => x.Value).HasColumnName("value").HasMaxLength(400);
        });
    }
}
