using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>
/// A WebAuthn ceremony under way: the state ASP.NET Core Identity's passkey handler needs to check the answer (the
/// challenge, and for a second factor the user). Kept server-side and deleted by the one request that uses it, so a
/// challenge answers once on every instance sharing the database (WebAuthn Level 3 §13.4.3), whatever a client replays.
/// </summary>
internal sealed class PasskeyCeremonyRecord
{
    /// <summary>Hex SHA-256 of the random handle the browser holds in its ceremony cookie.</summary>
    public string Id { get; set; } = "";

    /// <summary><c>register</c>, <c>sign-in</c> or <c>second-factor</c>: a challenge of one kind never completes another.</summary>
    public string Purpose { get; set; } = "";

    /// <summary>The user the ceremony is for; null for a passwordless sign-in, where the passkey names its user.</summary>
    public string? UserId { get; set; }

    /// <summary>The passkey handler's state (JSON with the challenge); no secret, but bound to this ceremony only.</summary>
    public string State { get; set; } = "";

    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>When a passkey was last used to sign in, for its owner's list (Identity's passkey row has no such field).</summary>
internal sealed class PasskeyUseRecord
{
    /// <summary>Hex of the credential id.</summary>
    public string CredentialId { get; set; } = "";

    public string UserId { get; set; } = "";

    public DateTimeOffset LastUsedAt { get; set; }
}
internal sealed partial class IdentityStore
{
    public DbSet<PasskeyCeremonyRecord> PasskeyCeremonies => Set<PasskeyCeremonyRecord>();

    public DbSet<PasskeyUseRecord> PasskeyUses => Set<PasskeyUseRecord>();

    /// <summary>
    /// ASP.NET Core Identity's schema version 3 (<c>AspNetUserPasskeys</c>), fixed here rather than read from the
    /// application's <c>IdentityOptions</c>: the store is also built without the application's services (verbs, the
    /// detached store), and EF Core caches one model per context type, so the model must not depend on who builds it first.
    /// </summary>
    protected override Version SchemaVersion => Microsoft.AspNetCore.Identity.IdentitySchemaVersions.Version3;

    private static void ConfigurePasskeys(ModelBuilder builder)
    {
        builder.Entity<PasskeyCeremonyRecord>(ceremony =>
        {
            ceremony.ToTable("identity_passkey_ceremonies");
            ceremony.HasKey(c => c.Id);
            ceremony.Property(c => c.Id).HasMaxLength(64);
            ceremony.Property(c => c.Purpose).HasMaxLength(20);
            ceremony.Property(c => c.UserId).HasMaxLength(450);
            ceremony.Property(c => c.ExpiresAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            ceremony.HasIndex(c => c.ExpiresAt);
        });

        builder.Entity<PasskeyUseRecord>(use =>
        {
            use.ToTable("identity_passkey_uses");
            use.HasKey(u => u.CredentialId);
            use.Property(u => u.CredentialId).HasMaxLength(2048);
            use.Property(u => u.UserId).HasMaxLength(450);
            use.Property(u => u.LastUsedAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            use.HasIndex(u => u.UserId);
        });
    }
}
