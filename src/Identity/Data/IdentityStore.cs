using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>
/// The Identity module's tables: ASP.NET Core Identity users and roles, OpenIddict applications, scopes,
/// authorizations and tokens, the signing-key ring, the revocation list, access events, Data Protection keys, and the
/// authorization model (business units, teams, roles, field security profiles, shares) with its audit trail.
/// </summary>
internal sealed partial class IdentityStore(DbContextOptions<IdentityStore> options)
    : IdentityDbContext<CrmUser, IdentityRole, string>(options), IDataProtectionKeyContext
{
    public DbSet<SigningKeyRecord> SigningKeys => Set<SigningKeyRecord>();

    public DbSet<RevokedTokenRecord> RevokedTokens => Set<RevokedTokenRecord>();

    public DbSet<RevocationCutoffRecord> RevocationCutoffs => Set<RevocationCutoffRecord>();

    public DbSet<AccessEventRecord> AccessEvents => Set<AccessEventRecord>();

    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<ModelStateRecord> ModelState => Set<ModelStateRecord>();

    public DbSet<BusinessUnitRecord> BusinessUnits => Set<BusinessUnitRecord>();

    public DbSet<TeamRecord> Teams => Set<TeamRecord>();

    public DbSet<TeamMemberRecord> TeamMembers => Set<TeamMemberRecord>();

    public DbSet<TeamRoleRecord> TeamRoles => Set<TeamRoleRecord>();

    public DbSet<TeamFieldProfileRecord> TeamFieldProfiles => Set<TeamFieldProfileRecord>();

    public DbSet<RoleRecord> CrmRoles => Set<RoleRecord>();

    public DbSet<RolePrivilegeRecord> RolePrivileges => Set<RolePrivilegeRecord>();

    public DbSet<UserRoleRecord> CrmUserRoles => Set<UserRoleRecord>();

    public DbSet<FieldProfileRecord> FieldProfiles => Set<FieldProfileRecord>();

    public DbSet<FieldPermissionRecord> FieldPermissions => Set<FieldPermissionRecord>();

    public DbSet<UserFieldProfileRecord> UserFieldProfiles => Set<UserFieldProfileRecord>();

    public DbSet<ShareRecord> Shares => Set<ShareRecord>();

    public DbSet<AuditEntryRecord> AuditTrail => Set<AuditEntryRecord>();

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.UseOpenIddict();

        builder.Entity<CrmUser>(user =>
        {
            user.Property(u => u.Tenant).HasMaxLength(100);
            user.Property(u => u.BusinessUnit).HasMaxLength(200);
            user.Property(u => u.DisplayName).HasMaxLength(200);
            user.Property(u => u.ManagerId).HasMaxLength(450);
            user.Property(u => u.ApplicationClientId).HasMaxLength(100);
            user.Property(u => u.ZoneInfo).HasMaxLength(100);
            user.Property(u => u.ExternalId).HasMaxLength(256);
            user.Property(u => u.Department).HasMaxLength(200);
            user.HasIndex(u => u.ApplicationClientId).IsUnique();
        });

        ConfigureAuthorizationModel(builder);
        ConfigureSecrets(builder);
        ConfigureAuditTrail(builder);
        ConfigureSessions(builder);
        ConfigureClientAssertions(builder);
        ConfigurePasskeys(builder);

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

internal sealed partial class IdentityStore
{
    private const int IdLength = 64;
    private const int NameLength = 200;

    private static void ConfigureAuthorizationModel(ModelBuilder builder)
    {
        builder.Entity<ModelStateRecord>(state =>
        {
            state.ToTable("authz_model");
            state.HasKey(s => s.Id);
            state.Property(s => s.Id).ValueGeneratedNever();
            state.Property(s => s.OrganizationName).HasMaxLength(NameLength);
            state.Property(s => s.UpdatedAt).HasConversion<DateTimeOffsetToBinaryConverter>();
        });

        builder.Entity<BusinessUnitRecord>(unit =>
        {
            unit.ToTable("authz_business_units");
            unit.HasKey(u => u.Id);
            unit.Property(u => u.Id).HasMaxLength(IdLength);
            unit.Property(u => u.Name).HasMaxLength(NameLength);
            unit.Property(u => u.ParentId).HasMaxLength(IdLength);
            unit.Property(u => u.Version).IsConcurrencyToken();
            unit.HasIndex(u => u.Name).IsUnique();
            unit.HasOne<BusinessUnitRecord>().WithMany().HasForeignKey(u => u.ParentId).OnDelete(DeleteBehavior.Restrict);
        });

        builder.Entity<TeamRecord>(team =>
        {
            team.ToTable("authz_teams");
            team.HasKey(t => t.Id);
            team.Property(t => t.Id).HasMaxLength(IdLength);
            team.Property(t => t.Name).HasMaxLength(NameLength);
            team.Property(t => t.BusinessUnitId).HasMaxLength(IdLength);
            team.Property(t => t.Version).IsConcurrencyToken();
            team.HasIndex(t => t.Name).IsUnique();
            team.HasOne<BusinessUnitRecord>().WithMany().HasForeignKey(t => t.BusinessUnitId).OnDelete(DeleteBehavior.Restrict);
        });

        builder.Entity<RoleRecord>(role =>
        {
            role.ToTable("authz_roles");
            role.HasKey(r => r.Id);
            role.Property(r => r.Id).HasMaxLength(IdLength);
            role.Property(r => r.Name).HasMaxLength(NameLength);
            role.Property(r => r.Description).HasMaxLength(2000);
            role.Property(r => r.Version).IsConcurrencyToken();
            role.HasIndex(r => r.Name).IsUnique();
        });

        builder.Entity<RolePrivilegeRecord>(privilege =>
        {
            privilege.ToTable("authz_role_privileges");
            privilege.HasKey(p => new { p.RoleId, p.Entity, p.Action });
            privilege.Property(p => p.RoleId).HasMaxLength(IdLength);
            privilege.Property(p => p.Entity).HasMaxLength(IdLength);
            privilege.Property(p => p.Action).HasMaxLength(16);
            privilege.Property(p => p.Depth).HasMaxLength(32);
            privilege.HasOne<RoleRecord>().WithMany().HasForeignKey(p => p.RoleId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<FieldProfileRecord>(profile =>
        {
            profile.ToTable("authz_field_profiles");
            profile.HasKey(p => p.Id);
            profile.Property(p => p.Id).HasMaxLength(IdLength);
            profile.Property(p => p.Name).HasMaxLength(NameLength);
            profile.Property(p => p.Description).HasMaxLength(2000);
            profile.Property(p => p.Version).IsConcurrencyToken();
            profile.HasIndex(p => p.Name).IsUnique();
        });

        builder.Entity<FieldPermissionRecord>(permission =>
        {
            permission.ToTable("authz_field_permissions");
            permission.HasKey(p => new { p.ProfileId, p.Entity, p.Field });
            permission.Property(p => p.ProfileId).HasMaxLength(IdLength);
            permission.Property(p => p.Entity).HasMaxLength(IdLength);
            permission.Property(p => p.Field).HasMaxLength(IdLength);
            permission.Property(p => p.Grant).HasMaxLength(16);
            permission.HasOne<FieldProfileRecord>().WithMany().HasForeignKey(p => p.ProfileId).OnDelete(DeleteBehavior.Cascade);
        });

        // Assignments refuse to lose their target: a role, profile or team still assigned cannot be deleted (Restrict).
        builder.Entity<UserRoleRecord>(assignment =>
        {
            assignment.ToTable("authz_user_roles");
            assignment.HasKey(a => new { a.UserId, a.RoleId });
            assignment.Property(a => a.RoleId).HasMaxLength(IdLength);
            assignment.HasOne<CrmUser>().WithMany().HasForeignKey(a => a.UserId).OnDelete(DeleteBehavior.Cascade);
            assignment.HasOne<RoleRecord>().WithMany().HasForeignKey(a => a.RoleId).OnDelete(DeleteBehavior.Restrict);
        });

        builder.Entity<UserFieldProfileRecord>(assignment =>
        {
            assignment.ToTable("authz_user_field_profiles");
            assignment.HasKey(a => new { a.UserId, a.ProfileId });
            assignment.Property(a => a.ProfileId).HasMaxLength(IdLength);
            assignment.HasOne<CrmUser>().WithMany().HasForeignKey(a => a.UserId).OnDelete(DeleteBehavior.Cascade);
            assignment.HasOne<FieldProfileRecord>().WithMany().HasForeignKey(a => a.ProfileId).OnDelete(DeleteBehavior.Restrict);
        });

        builder.Entity<TeamMemberRecord>(member =>
        {
            member.ToTable("authz_team_members");
            member.HasKey(m => new { m.TeamId, m.UserId });
            member.Property(m => m.TeamId).HasMaxLength(IdLength);
            member.HasOne<TeamRecord>().WithMany().HasForeignKey(m => m.TeamId).OnDelete(DeleteBehavior.Cascade);
            member.HasOne<CrmUser>().WithMany().HasForeignKey(m => m.UserId).OnDelete(DeleteBehavior.Cascade);
        });

        builder.Entity<TeamRoleRecord>(assignment =>
        {
            assignment.ToTable("authz_team_roles");
            assignment.HasKey(a => new { a.TeamId, a.RoleId });
            assignment.Property(a => a.TeamId).HasMaxLength(IdLength);
            assignment.Property(a => a.RoleId).HasMaxLength(IdLength);
            assignment.HasOne<TeamRecord>().WithMany().HasForeignKey(a => a.TeamId).OnDelete(DeleteBehavior.Cascade);
            assignment.HasOne<RoleRecord>().WithMany().HasForeignKey(a => a.RoleId).OnDelete(DeleteBehavior.Restrict);
        });

        builder.Entity<TeamFieldProfileRecord>(assignment =>
        {
            assignment.ToTable("authz_team_field_profiles");
            assignment.HasKey(a => new { a.TeamId, a.ProfileId });
            assignment.Property(a => a.TeamId).HasMaxLength(IdLength);
            assignment.Property(a => a.ProfileId).HasMaxLength(IdLength);
            assignment.HasOne<TeamRecord>().WithMany().HasForeignKey(a => a.TeamId).OnDelete(DeleteBehavior.Cascade);
            assignment.HasOne<FieldProfileRecord>().WithMany().HasForeignKey(a => a.ProfileId).OnDelete(DeleteBehavior.Restrict);
        });

        builder.Entity<ShareRecord>(share =>
        {
            share.ToTable("authz_shares");
            share.HasKey(s => s.Id);
            share.Property(s => s.Id).HasMaxLength(IdLength);
            share.Property(s => s.Entity).HasMaxLength(IdLength);
            share.Property(s => s.RecordId).HasMaxLength(NameLength);
            share.Property(s => s.PrincipalKind).HasMaxLength(8);
            share.Property(s => s.PrincipalId).HasMaxLength(450);
            share.Property(s => s.Actions).HasMaxLength(100);
            share.Property(s => s.CreatedBy).HasMaxLength(450);
            share.Property(s => s.RecordBusinessUnit).HasMaxLength(IdLength);
            share.Property(s => s.RecordOwner).HasMaxLength(450);
            share.Property(s => s.RecordOwnerKind).HasMaxLength(8);
            share.Property(s => s.CreatedAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            share.HasIndex(s => new { s.Entity, s.RecordId, s.PrincipalKind, s.PrincipalId }).IsUnique();
        });

        builder.Entity<AuditEntryRecord>(entry =>
        {
            entry.ToTable("identity_audit_trail");
            entry.HasKey(e => e.Sequence);
            entry.Property(e => e.Sequence).ValueGeneratedNever();
            entry.Property(e => e.Timestamp).HasConversion<DateTimeOffsetToBinaryConverter>();
            entry.Property(e => e.ActorId).HasMaxLength(450);
            entry.Property(e => e.ActorName).HasMaxLength(NameLength);
            entry.Property(e => e.ClientId).HasMaxLength(100);
            entry.Property(e => e.Action).HasMaxLength(64);
            entry.Property(e => e.TargetKind).HasMaxLength(32);
            entry.Property(e => e.TargetId).HasMaxLength(450);
            entry.Property(e => e.TargetName).HasMaxLength(NameLength);
            entry.Property(e => e.SourceIp).HasMaxLength(64);
            entry.Property(e => e.PreviousHash).HasMaxLength(64);
            entry.Property(e => e.Hash).HasMaxLength(64);
            entry.HasIndex(e => e.Timestamp);
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
