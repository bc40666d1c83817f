using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>A sign-in session that was ended by signing out, until it would have expired anyway.</summary>
internal sealed class EndedSessionRecord
{
    public string SessionId { get; set; } = "";

    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>A sign-in session still open, for the owner's list of where they are signed in (OWASP ASVS 4.0.3 V3.3.4).</summary>
internal sealed class SignInSessionRecord
{
    public string SessionId { get; set; } = "";

    public string UserId { get; set; } = "";

    public DateTimeOffset SignedInAt { get; set; }

    /// <summary>When the session ends at the latest (the absolute session timeout).</summary>
    public DateTimeOffset ExpiresAt { get; set; }

    /// <summary>How the person signed in (the session's <c>amr</c>, e.g. <c>pwd otp mfa</c>).</summary>
    public string Methods { get; set; } = "";

    public string? UserAgent { get; set; }

    public string? SourceIp { get; set; }
}

internal sealed partial class IdentityStore
{
    public DbSet<EndedSessionRecord> EndedSessions => Set<EndedSessionRecord>();

    public DbSet<SignInSessionRecord> SignInSessions => Set<SignInSessionRecord>();

    private static void ConfigureSessions(ModelBuilder builder)
    {
        builder.Entity<EndedSessionRecord>(session =>
        {
            session.ToTable("identity_ended_sessions");
            session.HasKey(s => s.SessionId);
            session.Property(s => s.SessionId).HasMaxLength(64);
            session.Property(s => s.ExpiresAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            session.HasIndex(s => s.ExpiresAt);
        });
        builder.Entity<SignInSessionRecord>(session =>
        {
            session.ToTable("identity_sessions");
            session.HasKey(s => s.SessionId);
            session.Property(s => s.SessionId).HasMaxLength(64);
            session.Property(s => s.UserId).HasMaxLength(450);
            session.Property(s => s.Methods).HasMaxLength(64);
            session.Property(s => s.UserAgent).HasMaxLength(300);
            session.Property(s => s.SourceIp).HasMaxLength(64);
            session.Property(s => s.SignedInAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            session.Property(s => s.ExpiresAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            session.HasIndex(s => s.UserId);
            session.HasIndex(s => s.ExpiresAt);
        });
    }
}
