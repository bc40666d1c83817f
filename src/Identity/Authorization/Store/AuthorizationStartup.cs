using CrmSecurity.CrmAuthorization;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Policies;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Authorization.Store;

/// <summary>
/// At start: seeds an empty database from the policy files (business units, role templates, field security
/// profiles, organisation settings), then loads the model. If the policy files changed what some users' decisions
/// depend on (an entity or field removed), those users get a new permission version through an audited change.
/// </summary>
internal sealed partial class AuthorizationStartup(IServiceScopeFactory scopes, AuthorizationModel model, TimeProvider time, ILogger<AuthorizationStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        var audit = scope.ServiceProvider.GetRequiredService<AuditTrailWriter>();

        // The audit key is made (or read) now, before any transaction, and kept in memory for every later entry. A key
        // wrapped under another key-encryption key means this host runs on a copy of the database without the
        // installation's master key: a configuration error (exit 78 naming the setting), never a crash.
        byte[] key;
        try
        {
            key = await audit.KeyAsync(cancellationToken);
        }
        catch (KeyManagementException e)
        {
            throw new OptionsValidationException("Crypto:MasterKey", typeof(IdentitySettings), [$"Crypto:MasterKey: the audit trail's key cannot be opened. {e.Message}"]);
        }

        if (!await store.ModelState.AnyAsync(cancellationToken))
        {
            await SeedAsync(store, model.Policies, audit, key, cancellationToken);
        }

        // A trail written before it was keyed is sealed under the key once, before anything is appended to it.
        await audit.SealAsync(store, cancellationToken);

        var builder = await ModelLoader.LoadAsync(store, model.Policies, cancellationToken);
        var version = await ModelLoader.VersionAsync(store, cancellationToken);
        var snapshot = builder.Build(version);
        var stale = snapshot.Users.Count(u => u.PermVer == version && u.Definition.PermVer != version);

        // Publish first (the change pipeline decides on the current snapshot), then record the new versions.
        model.Publish(snapshot);
        var changes = scope.ServiceProvider.GetRequiredService<ModelChanges>();
        if (stale > 0)
        {
            LogRecompute(logger, stale);
            Apply(await changes.ApplyAsync(AdminActor.System("start-up"), context =>
            {
                context.Audit(new AuditChange("model.recompute", "model", "permissions", "permission versions",
                    null, new { users = stale }, Summary: $"{stale} users' decisions depend on changed policy files"));
                return Task.FromResult<AdminProblem?>(null);
            }, cancellationToken));
        }

        await RemoveApplicationUserPasswordsAsync(store, changes, cancellationToken);
        await LogUnboundSharesAsync(store, cancellationToken);
    }

    /// <summary>
    /// Application users have no password (red-team finding 11). A database from before that rule may hold one, set
    /// through the admin API: it is removed at start, idempotently, as an audited system change, and the user's sessions end.
    /// </summary>
    private async Task RemoveApplicationUserPasswordsAsync(IdentityStore store, ModelChanges changes, CancellationToken cancellationToken)
    {
        if (!await store.Users.AnyAsync(u => u.ApplicationClientId != null && u.PasswordHash != null, cancellationToken))
        {
            return;
        }

        var removed = 0;
        Apply(await changes.ApplyAsync(AdminActor.System("start-up"), async context =>
        {
            foreach (var user in await context.Store.Users.Where(u => u.ApplicationClientId != null && u.PasswordHash != null).ToListAsync(cancellationToken))
            {
                user.PasswordHash = null;
                user.SecurityStamp = Guid.NewGuid().ToString("N");
                removed++;
                context.Audit(new AuditChange("user.password_removed", "system_user", user.Id, user.UserName ?? user.Id, new { password = true }, new { password = false },
                    TargetUser: user.Id, Summary: $"application user {user.UserName} had a password; application users cannot sign in"));
            }

            return null;
        }, cancellationToken));
        LogPasswordsRemoved(logger, removed);
    }

    /// <summary>Shares made before locations were recorded grant nothing now (red-team finding 2): say so, so an admin can share again.</summary>
    private async Task LogUnboundSharesAsync(IdentityStore store, CancellationToken cancellationToken)
    {
        var unbound = await store.Shares.CountAsync(s => s.RecordBusinessUnit == null, cancellationToken);
        if (unbound > 0)
        {
            LogUnboundShares(logger, unbound);
        }
    }

    private static void Apply(AdminProblem? refused)
    {
        if (refused is not null)
        {
            throw new InvalidOperationException(refused.Detail);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Seeding writes the model, so it is an audited system change like every other (with the fingerprint it leaves).</summary>
    private async Task SeedAsync(IdentityStore store, PolicySet policies, AuditTrailWriter audit, byte[] key, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        await using var transaction = await store.Database.BeginTransactionAsync(cancellationToken);
        store.ModelState.Add(new ModelStateRecord
        {
            Version = 1,
            OrganizationName = policies.Organization.Name,
            ManagerHierarchy = policies.Organization.ManagerHierarchy,
            ManagerHierarchyDepth = policies.Organization.ManagerHierarchyDepth,
            UpdatedAt = now,
        });
        try
        {
            await store.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Another instance seeded the same empty database first.
            await transaction.RollbackAsync(cancellationToken);
            store.ChangeTracker.Clear();
            return;
        }

        var units = policies.BusinessUnits.Count > 0 ? policies.BusinessUnits : [new BusinessUnitDefinition("root", policies.Organization.Name, null)];
        foreach (var unit in units)
        {
            store.BusinessUnits.Add(new BusinessUnitRecord { Id = unit.Id, Name = unit.Name, ParentId = unit.ParentId });
        }

        foreach (var role in policies.Roles)
        {
            store.CrmRoles.Add(new RoleRecord { Id = role.Id, Name = role.Name, Description = role.Description });
            store.RolePrivileges.AddRange(role.Privileges.Select(p => new RolePrivilegeRecord { RoleId = role.Id, Entity = p.Entity, Action = p.Action.Name(), Depth = p.Depth.Name() }));
        }

        foreach (var profile in policies.Profiles)
        {
            store.FieldProfiles.Add(new FieldProfileRecord { Id = profile.Id, Name = profile.Name, Description = profile.Description });
            store.FieldPermissions.AddRange(profile.Permissions.Select(p => new FieldPermissionRecord { ProfileId = profile.Id, Entity = p.Entity, Field = p.Field, Grant = p.Grant.Name() }));
        }

        await store.SaveChangesAsync(cancellationToken);
        var fingerprint = (await ModelFingerprint.ComputeAsync(store, key, cancellationToken)).ToString();
        var head = await AuditTrailWriter.AppendAsync(store, key,
        [
            new AuditEntryRecord
            {
                Timestamp = now,
                ActorId = "system",
                ActorName = "start-up",
                Action = "policies.seed",
                TargetKind = "model",
                TargetId = "policies",
                TargetName = "policy files",
                After = System.Text.Json.JsonSerializer.Serialize(new
                {
                    business_units = units.Select(u => u.Id),
                    roles = policies.Roles.Select(r => r.Id),
                    field_security_profiles = policies.Profiles.Select(p => p.Id),
                }),
                ModelVersion = 1,
                ModelFingerprint = fingerprint,
                PreviousHash = "",
                Hash = "",
            },
        ], cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        audit.Announce(head);
        store.ChangeTracker.Clear();
        LogSeeded(logger, units.Count, policies.Roles.Count, policies.Profiles.Count);
    }

    [LoggerMessage(EventId = 4402, Level = LogLevel.Information, Message = "Seeded the authorization model from the policy files: {Units} business units, {Roles} roles, {Profiles} field security profiles")]
    private static partial void LogSeeded(ILogger logger, int units, int roles, int profiles);

    [LoggerMessage(EventId = 4403, Level = LogLevel.Information, Message = "{Users} users' decisions depend on changed policy files; recording new permission versions")]
    private static partial void LogRecompute(ILogger logger, int users);

    [LoggerMessage(EventId = 4404, Level = LogLevel.Warning, Message = "Removed the password of {Users} application users: application users cannot sign in")]
    private static partial void LogPasswordsRemoved(ILogger logger, int users);

    [LoggerMessage(EventId = 4405, Level = LogLevel.Warning, Message = "{Shares} record shares were made before shares kept the record's business unit and grant nothing; share those records again with record_business_unit")]
    private static partial void LogUnboundShares(ILogger logger, int shares);
}
