using CrmSecurity.Identity.AuditTrail;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Data;

/// <summary>The audit trail's own tables and columns: the keyed head record, and each entry's scheme and model fingerprint.</summary>
internal sealed partial class IdentityStore
{
    public DbSet<AuditHeadRecord> AuditHeads => Set<AuditHeadRecord>();

    private static void ConfigureAuditTrail(ModelBuilder builder)
    {
        builder.Entity<AuditEntryRecord>(entry =>
        {
            entry.Property(e => e.Scheme).HasMaxLength(32);
            entry.Property(e => e.ModelFingerprint).HasMaxLength(1000);
        });

        builder.Entity<AuditHeadRecord>(head =>
        {
            head.ToTable("identity_audit_head");
            head.HasKey(h => h.Id);
            head.Property(h => h.Id).ValueGeneratedNever();
            head.Property(h => h.Mac).HasMaxLength(64);
            head.Property(h => h.HeadMac).HasMaxLength(64);
        });
    }
}
