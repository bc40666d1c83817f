using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>
/// The Identity module's tables: ASP.NET Core Identity users and roles, OpenIddict applications, scopes,
/// authorizations and tokens, the signing-key ring, the revocation list, access events and Data Protection keys.
/// </summary>
internal sealed class IdentityStore(DbContextOptions<IdentityStore> options)
    : IdentityDbContext<CrmUser, IdentityRole, string>(options), IDataProtectionKeyContext
{
    public DbSet<SigningKeyRecord> SigningKeys => Set<SigningKeyRecord>();

    public DbSet<RevokedTokenRecord> RevokedTokens => Set<RevokedTokenRecord>();

    public DbSet<RevocationCutoffRecord> RevocationCutoffs => Set<RevocationCutoffRecord>();

    public DbSet<AccessEventRecord> AccessEvents => Set<AccessEventRecord>();

    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict();

        builder.Entity<CrmUser>(user =>
        {
            user.Property(u => u.Tenant).HasMaxLength(100);
            user.Property(u => u.BusinessUnit).HasMaxLength(200);
            user.Property(u => u.DisplayName).HasMaxLength(200);
        });

        builder.Entity<SigningKeyRecord>(key =>
        {
            key.ToTable("identity_signing_keys");
            key.HasKey(k => k.KeyId);
            key.Property(k => k.KeyId).HasMaxLength(64);
            key.Property(k => k.Algorithm).HasMaxLength(16);
            // One key per algorithm per generation: two instances rotating at once cannot both add a generation.
            key.HasIndex(k => new { k.Generation, k.Algorithm }).IsUnique();
        });

        builder.Entity<RevokedTokenRecord>(token =>
        {
            token.ToTable("identity_revoked_tokens");
            token.HasKey(t => t.TokenId);
            token.Property(t => t.TokenId).HasMaxLength(100);
            token.HasIndex(t => t.ExpiresAt);
            // Stored as UTC ticks: SQLite cannot compare DateTimeOffset text in SQL; every provider can compare integers.
            token.Property(t => t.ExpiresAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            token.Property(t => t.RevokedAt).HasConversion<DateTimeOffsetToBinaryConverter>();
        });

        builder.Entity<RevocationCutoffRecord>(cutoff =>
        {
            cutoff.ToTable("identity_revocation_cutoffs");
            cutoff.HasKey(c => new { c.Kind, c.Value });
            cutoff.Property(c => c.Kind).HasMaxLength(16);
            cutoff.Property(c => c.Value).HasMaxLength(200);
            cutoff.Property(c => c.RevokedBefore).HasConversion<DateTimeOffsetToBinaryConverter>();
        });

        builder.Entity<AccessEventRecord>(e =>
        {
            e.ToTable("identity_access_events");
            e.HasKey(x => x.EventId);
            e.Property(x => x.EventId).HasMaxLength(40);
            e.Property(x => x.Action).HasMaxLength(40);
            e.Property(x => x.Timestamp).HasConversion<DateTimeOffsetToBinaryConverter>();
            e.HasIndex(x => x.Timestamp);
            e.HasIndex(x => x.UserId);
        });
    }
}

/// <summary>One key of one generation of the signing-key ring (ES256, RS256 or the A256KW token-encryption key).</summary>
internal sealed class SigningKeyRecord
{
    public required string KeyId { get; set; }

    public int Generation { get; set; }

    public required string Algorithm { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Signs from this instant on (published in JWKS from <see cref="CreatedAt"/>).</summary>
    public DateTimeOffset ActivatesAt { get; set; }

    /// <summary>Private key material, wrapped with ASP.NET Core Data Protection.</summary>
    public required string ProtectedKey { get; set; }
}

/// <summary>A revoked token that has no OpenIddict token row (a client-credentials access token), by its <c>jti</c>.</summary>
internal sealed class RevokedTokenRecord
{
    public required string TokenId { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset RevokedAt { get; set; }
}

/// <summary>Every token of a subject or client issued before <see cref="RevokedBefore"/> is invalid (incident response).</summary>
internal sealed class RevocationCutoffRecord
{
    public const string Subject = "subject";
    public const string Client = "client";

    public required string Kind { get; set; }

    public required string Value { get; set; }

    public DateTimeOffset RevokedBefore { get; set; }
}

/// <summary>An access event as stored (the columns of the access-event schema).</summary>
internal sealed class AccessEventRecord
{
    public required string EventId { get; set; }

    public DateTimeOffset Timestamp { get; set; }

    public required string UserId { get; set; }

    public required string Action { get; set; }

    public string? Tenant { get; set; }

    public string? UserName { get; set; }

    public string? SessionId { get; set; }

    public string? SourceIp { get; set; }

    public string? UserAgent { get; set; }

    public string? ClientId { get; set; }

    public string? Outcome { get; set; }

    public string? TargetUser { get; set; }

    public string? Privilege { get; set; }

    public string? Details { get; set; }
}
