using System.Text.Json;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.Identity.Authorization.Store;

/// <summary>Who makes a change, for the audit trail and the access events.</summary>
internal sealed record AdminActor(string Id, string Name, string? ClientId, string? SourceIp, int UserIndex = -1)
{
    public static AdminActor System(string name) => new("system", name, null, null);
}

/// <summary>One audited change: the target by kind, id and name, and its state before and after (JSON objects).</summary>
internal sealed record AuditChange(
    string Action,
    string TargetKind,
    string TargetId,
    string TargetName,
    object? Before,
    object? After,
    string EventAction = AccessActions.AdminChange,
    string? TargetUser = null,
    string? Summary = null);

/// <summary>A refused change, as RFC 9457 problem details (the field named in <see cref="Errors"/>).</summary>
internal sealed record AdminProblem(int Status, string Title, string Detail, IDictionary<string, string[]>? Errors = null)
{
    public ProblemDetails ToProblemDetails() => Errors is { Count: > 0 }
        ? new HttpValidationProblemDetails(Errors) { Status = Status, Title = Title, Detail = Detail }
        : new ProblemDetails { Status = Status, Title = Title, Detail = Detail };

    public static AdminProblem Invalid(string field, string message) =>
        new(StatusCodes.Status400BadRequest, "The request is not valid", message, new Dictionary<string, string[]> { [field] = [message] });

    public static AdminProblem NotFound(string kind, string id) =>
        new(StatusCodes.Status404NotFound, $"No such {kind}", $"There is no {kind} '{id}'.");

    // RFC 9110 §15.5.10: 409 when the request conflicts with the current state of the target.
    public static AdminProblem Conflict(string detail) => new(StatusCodes.Status409Conflict, "Conflict", detail);

    public static AdminProblem Forbidden(string detail) => new(StatusCodes.Status403Forbidden, "Not allowed", detail);
}

/// <summary>What a change step sees: the store (inside the transaction), the model before the change, the actor.</summary>
internal sealed class ChangeContext(IdentityStore store, AuthorizationSnapshot before, AdminActor actor, DateTimeOffset now)
{
    public IdentityStore Store => store;

    public AuthorizationSnapshot Before => before;

    public AdminActor Actor => actor;

    public DateTimeOffset Now => now;

    public List<AuditChange> Changes { get; } = [];

    public void Audit(AuditChange change) => Changes.Add(change);
}

/// <summary>
/// Runs one admin change as one transaction: lock and bump the model version, apply the change, rebuild and validate
/// the whole model, give a new <c>perm_ver</c> to every user whose decisions can differ, append the audit entries to the
/// hash chain, commit, swap the snapshot in, and emit the access events. Anything refused on the way rolls the whole
/// change back: nothing is half-applied.
/// </summary>
internal sealed partial class ModelChanges(IdentityStore store, AuthorizationModel model, AccessEvents events, AuditTrailWriter audit, TimeProvider time, ILogger<ModelChanges> logger)
{
    private static readonly JsonSerializerOptions AuditJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public async Task<AdminProblem?> ApplyAsync(AdminActor actor, Func<ChangeContext, Task<AdminProblem?>> change, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var key = await audit.KeyAsync(cancellationToken);
        var strategy = store.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async () =>
        {
            store.ChangeTracker.Clear();
            await using var transaction = await store.Database.BeginTransactionAsync(cancellationToken);

            // Locks the version row first: concurrent changes (and their audit entries) are serialised here.
            await store.ModelState.Where(s => s.Id == ModelStateRecord.SingletonId)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.Version, x => x.Version + 1).SetProperty(x => x.UpdatedAt, now), cancellationToken);
            var version = await ModelLoader.VersionAsync(store, cancellationToken);

            // Red-team finding 12: the tables must be what the trail's newest entry recorded. If they are not, someone
            // changed the model outside the audited path; that is written into the chain before this change, not absorbed.
            var (found, drift) = await AuditTrailWriter.DriftAsync(store, key, cancellationToken);

            var context = new ChangeContext(store, model.Current, actor, now);
            if (await change(context) is { } refused)
            {
                await transaction.RollbackAsync(cancellationToken);
                return refused;
            }

            try
            {
                await store.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateConcurrencyException e)
            {
                await transaction.RollbackAsync(cancellationToken);
                var entry = e.Entries.Count > 0 ? e.Entries[0] : null;
                return AdminProblem.Conflict($"The {Describe(entry?.Metadata.ClrType)} was changed by someone else meanwhile. Reload it and apply your change again.");
            }
            catch (DbUpdateException e)
            {
                await transaction.RollbackAsync(cancellationToken);
                LogRefused(logger, e);
                return AdminProblem.Conflict("The change conflicts with the stored model (a name or id already taken, or an object still in use). Reload and try again.");
            }

            AuthorizationSnapshot snapshot;
            try
            {
                snapshot = (await ModelLoader.LoadAsync(store, model.Policies, cancellationToken)).Build(version);
            }
            catch (ModelValidationException e)
            {
                await transaction.RollbackAsync(cancellationToken);
                return AdminProblem.Conflict("The change would make the model invalid: " + string.Join("; ", e.Problems.Select(p => p.Message)));
            }

            var changed = snapshot.Users.Where(u => u.PermVer == version).ToList();
            await StorePermissionVersionsAsync(changed, cancellationToken);

            var fingerprint = (await ModelFingerprint.ComputeAsync(store, key, cancellationToken)).ToString();
            var author = new AuditActor(actor.Id, actor.Name, actor.ClientId, actor.SourceIp);
            var entries = context.Changes.Select(c => AuditTrailWriter.Entry(author, now, version, fingerprint, new AuditTrailEntry(
                c.Action, c.TargetKind, c.TargetId, c.TargetName,
                c.Before is null ? null : JsonSerializer.Serialize(c.Before, AuditJson),
                c.After is null ? null : JsonSerializer.Serialize(c.After, AuditJson)))).ToList();
            if (drift.Count > 0)
            {
                LogDrift(logger, string.Join(", ", drift));
                entries.Insert(0, new AuditEntryRecord
                {
                    Timestamp = now,
                    ActorId = "system",
                    ActorName = "audit trail",
                    Action = AuditChain.DriftAction,
                    TargetKind = "model",
                    TargetId = "model",
                    TargetName = "authorization model",
                    After = JsonSerializer.Serialize(new { changed_outside_the_audited_path = drift }, AuditJson),
                    ModelVersion = version,
                    ModelFingerprint = found.ToString(),
                    PreviousHash = "",
                    Hash = "",
                });
            }

            var head = await AuditTrailWriter.AppendAsync(store, key, entries, cancellationToken);

            await transaction.CommitAsync(cancellationToken);
            audit.Announce(head);
            model.Publish(snapshot);
            var actions = string.Join(", ", entries.Select(e => e.Action));
            LogApplied(logger, version, actions, actor.Name, changed.Count);

            foreach (var c in context.Changes)
            {
                await events.WriteAsync(new AccessEvent
                {
                    Timestamp = now,
                    UserId = actor.Id,
                    UserName = actor.Name,
                    Action = c.EventAction,
                    ClientId = actor.ClientId,
                    SourceIp = actor.SourceIp,
                    TargetUser = c.TargetUser,
                    Privilege = c.Action,
                    Details = c.Summary ?? $"{c.TargetKind} '{c.TargetName}'",
                }, cancellationToken);
            }

            return null;
        });
    }

    /// <summary>One prepared UPDATE per changed user: a role change can touch thousands of users.</summary>
    private async Task StorePermissionVersionsAsync(List<UserInfo> users, CancellationToken cancellationToken)
    {
        if (users.Count == 0)
        {
            return;
        }

        var entity = store.Model.FindEntityType(typeof(CrmUser))!;
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        var sql = store.GetService<ISqlGenerationHelper>();
        string Column(string property) => sql.DelimitIdentifier(entity.FindProperty(property)!.GetColumnName(table)!);

        var connection = store.Database.GetDbConnection();
        await using var command = connection.CreateCommand();
        command.Transaction = store.Database.CurrentTransaction!.GetDbTransaction();
        command.CommandText = $"UPDATE {sql.DelimitIdentifier(table.Name, table.Schema)} SET {Column(nameof(CrmUser.PermissionModelVersion))} = @v, " +
            $"{Column(nameof(CrmUser.PermissionFingerprint))} = @f WHERE {Column(nameof(CrmUser.Id))} = @id";
        var version = command.CreateParameter();
        version.ParameterName = "@v";
        var fingerprint = command.CreateParameter();
        fingerprint.ParameterName = "@f";
        var id = command.CreateParameter();
        id.ParameterName = "@id";
        command.Parameters.Add(version);
        command.Parameters.Add(fingerprint);
        command.Parameters.Add(id);
        foreach (var user in users)
        {
            version.Value = user.PermVer;
            fingerprint.Value = user.Fingerprint;
            id.Value = user.Id;
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private static string Describe(Type? type) => type?.Name switch
    {
        nameof(RoleRecord) => "role",
        nameof(TeamRecord) => "team",
        nameof(BusinessUnitRecord) => "business unit",
        nameof(FieldProfileRecord) => "field security profile",
        nameof(CrmUser) => "user",
        _ => "object",
    };

    [LoggerMessage(EventId = 4410, Level = LogLevel.Information, Message = "Authorization model version {Version}: {Actions} by {Actor}; {Users} users have a new permission version")]
    private static partial void LogApplied(ILogger logger, long version, string actions, string actor, int users);

    [LoggerMessage(EventId = 4411, Level = LogLevel.Warning, Message = "An admin change was refused by the database")]
    private static partial void LogRefused(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4412, Level = LogLevel.Error, Message = "The authorization model's {Parts} differ from what the audit trail recorded: changed outside the audited path; recorded in the trail as model.drift")]
    private static partial void LogDrift(ILogger logger, string parts);
}
