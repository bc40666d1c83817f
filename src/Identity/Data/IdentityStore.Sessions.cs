using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>A sign-in session that was ended by signing out, until it would have expired anyway.</summary>
internal sealed class EndedSessionRecord
{
    public string SessionId { get; set; } = "";

    public DateTimeOffset ExpiresAt { get; set; }
}

internal sealed partial class IdentityStore
{
    public DbSet<EndedSessionRecord> EndedSessions => Set<EndedSessionRecord>();

    private static void ConfigureSessions(ModelBuilder builder) =>
        builder.Entity<EndedSessionRecord>(session =>
        {
            session.ToTable("identity_ended_sessions");
            session.HasKey(s => s.SessionId);
            session.Property(s => s.SessionId).HasMaxLength(64);
            session.Property(s => s.ExpiresAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            session.HasIndex(s => s.ExpiresAt);
        });
}
