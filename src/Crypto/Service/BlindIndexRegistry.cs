using System.Collections.Frozen;
using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Subjects;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Service;

/// <summary>A column of the blind-index registry: the rows it is expected to hold per tenant (what the planner sizes for).</summary>
internal sealed class BlindIndexColumnRecord
{
    public required string Table { get; set; }

    public required string Column { get; set; }

    public long ExpectedRows { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public required string UpdatedBy { get; set; }
}

/// <summary>
/// One blind-index definition of the registry. Fixed once created: its name, normaliser, transform and bits decide every
/// stored index value, so changing one would silently stop every lookup; a new index gets a new name.
/// </summary>
internal sealed class BlindIndexDefinitionRecord
{
    public required string Table { get; set; }

    public required string Column { get; set; }

    public required string Name { get; set; }

    public required string Normaliser { get; set; }

    public required string Transform { get; set; }

    public int Bits { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public required string CreatedBy { get; set; }
}

/// <summary>A registered column as the registry lists it.</summary>
/// <param name="Table">The table.</param>
/// <param name="Column">The column.</param>
/// <param name="Source"><c>registry</c> (managed through the admin API and <c>blind-index define</c>) or <c>configuration</c> (<c>Crypto:Columns</c>, read-only).</param>
/// <param name="ExpectedRows">Rows per tenant the planner sizes the indexes for.</param>
/// <param name="Indexes">Its indexes.</param>
/// <param name="Plan">The planner's verdict on all of them together (null without indexes).</param>
internal sealed record RegisteredColumn(string Table, string Column, string Source, long? ExpectedRows, IReadOnlyList<RegisteredIndex> Indexes, RegisteredPlan? Plan);

/// <summary>One index as the registry lists it.</summary>
internal sealed record RegisteredIndex(string Name, string Normaliser, string Transform, int Bits, DateTimeOffset? CreatedAt, string? CreatedBy);

/// <summary>The planner's verdict as the registry lists it.</summary>
internal sealed record RegisteredPlan(bool Acceptable, double ExpectedCoincidences, double EffectiveBits, string Explanation)
{
    public static RegisteredPlan? Of(BlindIndexPlan? plan) => plan is null ? null : new(plan.IsAcceptable, plan.ExpectedCoincidences, plan.EffectiveBits, plan.Explanation);
}

/// <summary>Who changes the registry, as the audit event names them.</summary>
/// <param name="UserId">The user (or the operator account for the CLI verb).</param>
/// <param name="ClientId">The OAuth client, through the admin API.</param>
/// <param name="SourceIp">The caller's address, through the admin API.</param>
internal sealed record RegistryActor(string UserId, string? ClientId, string? SourceIp);

/// <summary>What a change did, or why it was refused.</summary>
/// <param name="Status">200 changed, 204 nothing to change, 400 invalid (errors by field), 404 not found, 409 conflict.</param>
/// <param name="Errors">Why, by field (<c>bits</c>, <c>normaliser</c>, <c>expectedRows</c>, ...).</param>
/// <param name="Column">The column after the change.</param>
internal sealed record RegistryChange(int Status, Dictionary<string, string[]> Errors, RegisteredColumn? Column)
{
    public const int Changed = 200;
    public const int Unchanged = 204;
    public const int Invalid = 400;
    public const int NotFound = 404;
    public const int Conflict = 409;

    public static RegistryChange Refused(int status, string field, string message) => new(status, new() { [field] = [message] }, null);
}

/// <summary>
/// The server-side registry of blind-index definitions (issue 16): which blind indexes each encrypted column keeps, with
/// their normaliser, transform and bits, managed by security admins through the admin API
/// (<c>/crypto/v1/admin/blind-indexes</c>) and the <c>blind-index define/remove/rows/list</c> verbs, and read by the
/// encryption service, whose callers name an index and get its bits. Every change is planned together with the column's
/// other indexes by <see cref="BlindIndexPlanner"/> (CipherSweet's rule) and refused with the planner's reason when the
/// indexes would leak too much (or be useless), and every change is an <c>admin_change</c> access event written in the
/// change's transaction: a change whose event cannot be written is rolled back.
/// <para>
/// Kept in the module's tables of the data database (<see cref="CryptoDbContext"/>), not in the keyring: definitions are
/// not secret, every host of an installation must see the same ones (the keyring file is per host and changes only by
/// rotation), and a change must commit together with its checks. A running service re-reads them every
/// <see cref="RefreshInterval"/> (at once after a change through this host). Columns whose blind indexes are declared in
/// <c>Crypto:Columns</c> stay read-only here: the configuration owns them.
/// </para>
/// </summary>
internal sealed class BlindIndexRegistry(IDbContextFactory<CryptoDbContext> databases, TimeProvider time)
{
    /// <summary>How stale a running service's copy may get: changes made through another host show within this.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(5);

    /// <summary>The <c>privilege</c> of the registry's audit events.</summary>
    public const string Privilege = "crypto_blind_index";

    /// <summary>The <c>entity</c> of the registry's audit events.</summary>
    public const string Entity = "blind_index_definition";

    /// <summary>Most indexes one column may keep (each one adds leakage; the planner refuses long before this in practice).</summary>
    public const int MaxIndexesPerColumn = 16;

    private readonly Lock _gate = new();
    private volatile Snapshot? _snapshot;

    /// <summary>The registered column, planned; null when the registry has no index on it.</summary>
    public DeclaredColumn? Find(string table, string column) => Current().Columns.GetValueOrDefault((table, column));

    /// <summary>Every registered column, read now from the database.</summary>
    public async Task<IReadOnlyList<RegisteredColumn>> ListAsync(CancellationToken cancellationToken)
    {
        await using var database = await databases.CreateDbContextAsync(cancellationToken);
        var columns = await database.BlindIndexColumns.AsNoTracking().ToListAsync(cancellationToken);
        var definitions = await database.BlindIndexDefinitions.AsNoTracking().ToListAsync(cancellationToken);
        return [.. columns.OrderBy(c => c.Table, StringComparer.Ordinal).ThenBy(c => c.Column, StringComparer.Ordinal)
            .Select(c => Describe(c, definitions.Where(d => d.Table == c.Table && d.Column == c.Column).ToList())!)];
    }

    /// <summary>Drops this host's copy so the next request reads the database.</summary>
    public void Invalidate() => _snapshot = null;

    /// <summary>
    /// Defines blind index <paramref name="name"/> on a column, or sets the column's expected rows (with
    /// <paramref name="expectedRows"/>), planned together with the column's other indexes. Bits left out are the most
    /// the planner allows. An index that exists with the same definition is left as it is (204); with another one the
    /// change is refused (409 naming the field): definitions are fixed once created.
    /// </summary>
    public Task<RegistryChange> DefineAsync(
        string table, string column, string name, string? normaliser, string? transform, int? bits, long? expectedRows,
        RegistryActor actor, CryptoColumns configured, ICryptoEventSink events, CancellationToken cancellationToken)
    {
        var errors = CheckNames(table, column, name);
        var parsedNormaliser = CryptoColumns.ParseNormaliser(normaliser);
        var parsedTransform = CryptoColumns.ParseTransform(transform);
        if (parsedNormaliser is null)
        {
            errors["normaliser"] = [normaliser is null ? "normaliser is required: email, phone-e164, national-id or exact." : $"normaliser '{normaliser}' is not supported. Use email, phone-e164, national-id or exact."];
        }

        if (parsedTransform is null)
        {
            errors["transform"] = [$"transform '{transform}' is not supported. Use whole (default), lower-case, prefix-N or last-N (N from 1 to 64)."];
        }

        if (bits is { } given && (given < 1 || given > CryptoServiceEndpoints.MaxIndexBits))
        {
            errors["bits"] = [$"bits must be from 1 to {CryptoServiceEndpoints.MaxIndexBits} (or left out for the most the planner allows)."];
        }

        CheckRows(expectedRows, errors);
        if (errors.Count > 0)
        {
            return Task.FromResult(new RegistryChange(RegistryChange.Invalid, errors, null));
        }

        return ChangeAsync($"define {name}", table, column, actor, configured, events, (rows, definitions) =>
        {
            var existing = definitions.FirstOrDefault(d => d.Name == name);
            if (existing is not null)
            {
                var differs = new List<(string Field, string Was, string Asked)>();
                if (existing.Normaliser != parsedNormaliser!.Name)
                {
                    differs.Add(("normaliser", existing.Normaliser, parsedNormaliser.Name));
                }

                if (existing.Transform != parsedTransform!.Name)
                {
                    differs.Add(("transform", existing.Transform, parsedTransform.Name));
                }

                if (bits is { } wanted && wanted != existing.Bits)
                {
                    differs.Add(("bits", existing.Bits.ToString(CultureInfo.InvariantCulture), wanted.ToString(CultureInfo.InvariantCulture)));
                }

                if (differs.Count > 0)
                {
                    return Proposal.Refuse(RegistryChange.Conflict, differs.ToDictionary(
                        d => d.Field,
                        d => new[] { $"index '{name}' of {table}.{column} has {d.Field} {d.Was}, not {d.Asked}: a definition is fixed once created, because every stored index value and every lookup depends on it. Define a new index under a new name, recompute it into the rows, then remove this one." }));
                }

                if (expectedRows is null || expectedRows == rows)
                {
                    return Proposal.NothingToDo;
                }
            }
            else if (definitions.Count >= MaxIndexesPerColumn)
            {
                return Proposal.Refuse(RegistryChange.Invalid, "name", $"{table}.{column} already keeps {MaxIndexesPerColumn} blind indexes, the most one column may keep.");
            }

            var after = definitions.Select(d => new BlindIndexSettings { Name = d.Name, Normaliser = d.Normaliser, Transform = d.Transform, Bits = d.Bits }).ToList();
            if (existing is null)
            {
                after.Add(new BlindIndexSettings { Name = name, Normaliser = parsedNormaliser!.Name, Transform = parsedTransform!.Name, Bits = bits });
            }

            return new Proposal(expectedRows ?? rows, after, null) { PlanField = existing is null ? "bits" : "expectedRows" };
        }, cancellationToken);
    }

    /// <summary>Sets a registered column's expected rows, re-planning its indexes (refused with the planner's reason).</summary>
    public async Task<RegistryChange> SetRowsAsync(
        string table, string column, long? expectedRows, RegistryActor actor, CryptoColumns configured, ICryptoEventSink events, CancellationToken cancellationToken)
    {
        var errors = CheckNames(table, column, name: null);
        if (expectedRows is null)
        {
            errors["expectedRows"] = ["expectedRows is required: how many rows the table is expected to hold per tenant (at least 2)."];
        }

        CheckRows(expectedRows, errors);
        if (errors.Count > 0)
        {
            return new RegistryChange(RegistryChange.Invalid, errors, null);
        }

        return await ChangeAsync("rows", table, column, actor, configured, events, (rows, definitions) =>
            rows == expectedRows
                ? Proposal.NothingToDo
                : new Proposal(expectedRows, [.. definitions.Select(d => new BlindIndexSettings { Name = d.Name, Normaliser = d.Normaliser, Transform = d.Transform, Bits = d.Bits })], null),
            cancellationToken);
    }

    /// <summary>Removes index <paramref name="name"/> of a column (404 when there is none). Lookups through it stop at once on this host.</summary>
    public async Task<RegistryChange> RemoveAsync(
        string table, string column, string name, RegistryActor actor, CryptoColumns configured, ICryptoEventSink events, CancellationToken cancellationToken)
    {
        var errors = CheckNames(table, column, name);
        if (errors.Count > 0)
        {
            return new RegistryChange(RegistryChange.Invalid, errors, null);
        }

        return await ChangeAsync($"remove {name}", table, column, actor, configured, events, (rows, definitions) =>
            definitions.Any(d => d.Name == name)
                ? new Proposal(rows, [.. definitions.Where(d => d.Name != name).Select(d => new BlindIndexSettings { Name = d.Name, Normaliser = d.Normaliser, Transform = d.Transform, Bits = d.Bits })], null)
                : Proposal.Refuse(RegistryChange.NotFound, "name", $"{table}.{column} has no blind index '{name}' in the registry."),
            cancellationToken);
    }

    /// <summary>
    /// One change: in a transaction that first takes the column's row (so two admins changing one column are serialised
    /// and each plans against the other's result), re-plans all of the column's indexes together, writes, records the
    /// audit event, then commits.
    /// </summary>
    private async Task<RegistryChange> ChangeAsync(
        string operation, string table, string column, RegistryActor actor, CryptoColumns configured, ICryptoEventSink events,
        Func<long?, List<BlindIndexDefinitionRecord>, Proposal> propose, CancellationToken cancellationToken)
    {
        if (configured.FindConfigured(table, column) is { Indexes.Count: > 0 })
        {
            return RegistryChange.Refused(RegistryChange.Conflict, "column", $"the blind indexes of {table}.{column} are declared in Crypto:Columns: change them there (the configuration owns that column).");
        }

        var now = time.GetUtcNow();
        await using var database = await databases.CreateDbContextAsync(cancellationToken);
        await using var transaction = await database.Database.BeginTransactionAsync(cancellationToken);
        await database.BlindIndexColumns.Where(c => c.Table == table && c.Column == column)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.UpdatedAt, now), cancellationToken);
        var columnRecord = await database.BlindIndexColumns.SingleOrDefaultAsync(c => c.Table == table && c.Column == column, cancellationToken);
        var definitions = await database.BlindIndexDefinitions.Where(d => d.Table == table && d.Column == column).ToListAsync(cancellationToken);
        definitions.Sort((a, b) => a.CreatedAt.CompareTo(b.CreatedAt) is var c && c != 0 ? c : string.CompareOrdinal(a.Name, b.Name));
        var before = Describe(columnRecord, definitions);

        var proposal = propose(columnRecord?.ExpectedRows, definitions);
        if (proposal.Refusal is { } refusal)
        {
            return refusal;
        }

        if (ReferenceEquals(proposal, Proposal.NothingToDo))
        {
            return new RegistryChange(RegistryChange.Unchanged, [], before);
        }

        if (proposal.ExpectedRows is null)
        {
            return RegistryChange.Refused(RegistryChange.Invalid, "expectedRows", $"expectedRows is required for {table}.{column}, which is not in the registry yet: the leakage planner sizes its indexes for it (at least 2).");
        }

        // The same checks and planner as Crypto:Columns at start: all of the column's indexes together (an attacker with
        // the table sees them all), bits left out filled in with the most the planner allows beside the others.
        var settings = new ColumnSettings { Table = table, Column = column, ExpectedRows = proposal.ExpectedRows, BlindIndexes = proposal.Indexes };
        var (planned, planErrors) = CryptoColumns.Plan(settings, $"{table}.{column}");
        if (planned is null && proposal.Indexes.Count > 0)
        {
            return new RegistryChange(RegistryChange.Invalid, new() { [proposal.PlanField] = [.. planErrors.Select(e => "refused by the leakage planner: " + e)] }, null);
        }

        if (columnRecord is null)
        {
            columnRecord = new BlindIndexColumnRecord { Table = table, Column = column, ExpectedRows = proposal.ExpectedRows.Value, UpdatedAt = now, UpdatedBy = actor.UserId };
            database.BlindIndexColumns.Add(columnRecord);
        }
        else
        {
            columnRecord.ExpectedRows = proposal.ExpectedRows.Value;
            columnRecord.UpdatedAt = now;
            columnRecord.UpdatedBy = actor.UserId;
        }

        var kept = proposal.Indexes.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        database.BlindIndexDefinitions.RemoveRange(definitions.Where(d => !kept.Contains(d.Name)));
        foreach (var index in planned?.Indexes.Values ?? [])
        {
            if (!definitions.Any(d => d.Name == index.Name))
            {
                definitions.Add(new BlindIndexDefinitionRecord
                {
                    Table = table, Column = column, Name = index.Name, Normaliser = index.Normaliser.Name, Transform = index.Transform.Name, Bits = index.Bits, CreatedAt = now, CreatedBy = actor.UserId,
                });
                database.BlindIndexDefinitions.Add(definitions[^1]);
            }
        }

        await database.SaveChangesAsync(cancellationToken);
        var after = Describe(columnRecord, definitions.Where(d => kept.Contains(d.Name)).ToList());

        // No change without its audit event: written before the commit, so a failed write rolls the change back.
        await events.WriteAsync(Event(actor, table, column, "success", Summary(operation, before, after), now), cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        Invalidate();
        return new RegistryChange(RegistryChange.Changed, [], after);
    }

    /// <summary>The audit event of a change or of a refused attempt: identifiers and definitions, never a value.</summary>
    public static CryptoAccessEvent Event(RegistryActor actor, string table, string column, string outcome, string details, DateTimeOffset at) =>
        new(at, actor.UserId, "admin_change", outcome)
        {
            Entity = Entity,
            RecordId = $"{table}.{column}",
            Fields = [column],
            Privilege = Privilege,
            ClientId = actor.ClientId,
            SourceIp = actor.SourceIp,
            Details = details,
        };

    // The operation first, so an auditor reading the trail sees what was done before reading the column's states.
    private static string Summary(string operation, RegisteredColumn? before, RegisteredColumn? after) =>
        $"blind-index registry {operation}: before {Json(before)} after {Json(after)}";

    private static string Json(RegisteredColumn? column) => column is null
        ? "none"
        : JsonSerializer.Serialize(new
        {
            expected_rows = column.ExpectedRows,
            indexes = column.Indexes.Select(i => new { name = i.Name, normaliser = i.Normaliser, transform = i.Transform, bits = i.Bits }),
        });

    private static Dictionary<string, string[]> CheckNames(string table, string column, string? name)
    {
        var errors = new Dictionary<string, string[]>();
        foreach (var (field, value) in new[] { ("table", table), ("column", column), ("name", name) })
        {
            if (field == "name" && value is null)
            {
                continue;
            }

            if (string.IsNullOrWhiteSpace(value) || Encoding.UTF8.GetByteCount(value) > FieldContext.MaxNameBytes)
            {
                errors[field] = [$"{field} must be 1 to {FieldContext.MaxNameBytes} UTF-8 bytes."];
            }
        }

        return errors;
    }

    private static void CheckRows(long? expectedRows, Dictionary<string, string[]> errors)
    {
        if (expectedRows is < 2)
        {
            errors["expectedRows"] = ["expectedRows must be at least 2: the leakage planner sizes the column's indexes for it."];
        }
    }

    private static RegisteredColumn? Describe(BlindIndexColumnRecord? column, List<BlindIndexDefinitionRecord> definitions)
    {
        if (column is null)
        {
            return null;
        }

        var indexes = definitions.Select(d => new RegisteredIndex(d.Name, d.Normaliser, d.Transform, d.Bits, d.CreatedAt, d.CreatedBy)).ToList();
        var plan = definitions.Count == 0 ? null : Plan(column, definitions).Column?.Plan;
        return new RegisteredColumn(column.Table, column.Column, "registry", column.ExpectedRows, indexes, RegisteredPlan.Of(plan));
    }

    private static (DeclaredColumn? Column, List<string> Errors) Plan(BlindIndexColumnRecord column, List<BlindIndexDefinitionRecord> definitions) =>
        CryptoColumns.Plan(
            new ColumnSettings
            {
                Table = column.Table,
                Column = column.Column,
                ExpectedRows = column.ExpectedRows,
                BlindIndexes = [.. definitions.OrderBy(d => d.CreatedAt).ThenBy(d => d.Name, StringComparer.Ordinal)
                    .Select(d => new BlindIndexSettings { Name = d.Name, Normaliser = d.Normaliser, Transform = d.Transform, Bits = d.Bits })],
            },
            $"{column.Table}.{column.Column}");

    /// <summary>
    /// This host's copy, re-read when older than <see cref="RefreshInterval"/>: one request re-reads it while the others
    /// keep using the copy they have (only the very first read makes everyone wait). A column whose stored definitions no
    /// longer pass the planner (the table edited by hand) is left out: its indexes are refused, not served (deny by default).
    /// </summary>
    private Snapshot Current()
    {
        var snapshot = _snapshot;
        if (snapshot is not null && time.GetUtcNow() - snapshot.LoadedAt < RefreshInterval)
        {
            return snapshot;
        }

        if (snapshot is null)
        {
            lock (_gate)
            {
                return _snapshot ??= Load();
            }
        }

        if (_gate.TryEnter())
        {
            try
            {
                _snapshot = Load();
            }
            catch (DbException)
            {
                // The database is away for a moment: keep serving the copy we have, and try again on the next request.
            }
            finally
            {
                _gate.Exit();
            }
        }

        return _snapshot ?? snapshot;
    }

    private Snapshot Load()
    {
        var loadedAt = time.GetUtcNow();
        using var database = databases.CreateDbContext();
        var columns = database.BlindIndexColumns.AsNoTracking().ToList();
        var definitions = database.BlindIndexDefinitions.AsNoTracking().ToList().ToLookup(d => (d.Table, d.Column));
        var planned = new Dictionary<(string, string), DeclaredColumn>();
        foreach (var column in columns)
        {
            var indexes = definitions[(column.Table, column.Column)].ToList();
            if (indexes.Count > 0 && Plan(column, indexes).Column is { } declared)
            {
                planned[(column.Table, column.Column)] = declared;
            }
        }

        return new Snapshot(planned.ToFrozenDictionary(), loadedAt);
    }

    private sealed record Snapshot(FrozenDictionary<(string Table, string Column), DeclaredColumn> Columns, DateTimeOffset LoadedAt);

    /// <summary>The column's state a change asks for: its expected rows and all of its indexes (bits null: the planner's).</summary>
    private sealed record Proposal(long? ExpectedRows, List<BlindIndexSettings> Indexes, RegistryChange? Refusal)
    {
        /// <summary>The request field a refusal by the planner names: the new index's bits, or the column's expected rows.</summary>
        public string PlanField { get; init; } = "expectedRows";

        public static readonly Proposal NothingToDo = new(0, [], null);

        public static Proposal Refuse(int status, string field, string message) => new(null, [], RegistryChange.Refused(status, field, message));

        public static Proposal Refuse(int status, Dictionary<string, string[]> errors) => new(null, [], new RegistryChange(status, errors, null));
    }
}
