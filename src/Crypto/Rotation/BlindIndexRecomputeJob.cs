using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Service;

namespace CrmSecurity.Crypto.Rotation;

/// <summary>
/// One stored blind index: the column holding it, the encrypted column whose value it indexes, and its definition.
/// </summary>
/// <param name="IndexColumn">Column holding the index value (for EF Core entities <c>{Property}_bidx_{name}</c>).</param>
/// <param name="SourceColumn">Encrypted column of the value (for EF Core entities <c>{Property}_encrypted</c>).</param>
/// <param name="ContextColumn">Column name in the <see cref="FieldContext"/> (for EF Core entities the property name).</param>
/// <param name="Definition">The index: name, normaliser, transform and bits, as the application declares it.</param>
internal sealed record BlindIndexColumn(string IndexColumn, string SourceColumn, string ContextColumn, BlindIndexDefinition Definition)
{
    /// <summary>
    /// Parses <c>INDEX_COLUMN:SOURCE_COLUMN[=CONTEXT_COLUMN]:NAME</c>, an index of the blind-index registry or of
    /// <c>Crypto:Columns</c> (<paramref name="declared"/>) whose normaliser, transform and bits come from there, e.g.
    /// <c>email_bidx:email:email_eq</c>; or the full <c>INDEX_COLUMN:SOURCE_COLUMN[=CONTEXT_COLUMN]:NAME:NORMALISER:TRANSFORM:BITS</c>
    /// for an index declared only in an application's code (EF Core), which must then agree with a declared index of the
    /// same name. Null with <paramref name="error"/> naming what is wrong.
    /// </summary>
    /// <param name="spec">The <c>--index</c> value.</param>
    /// <param name="table">The table, as the registry names it (also the context's table).</param>
    /// <param name="declared">The declared columns (registry and configuration); null reads full specs only.</param>
    /// <param name="error">Why the spec was refused.</param>
    public static BlindIndexColumn? Parse(string spec, string table, CryptoColumns? declared, out string? error)
    {
        error = null;
        var parts = spec.Split(':');
        if (parts.Length is not (3 or 6) || parts.Take(3).Any(p => p.Length == 0))
        {
            error = $"'{spec}': expected INDEX_COLUMN:SOURCE_COLUMN[=CONTEXT_COLUMN]:NAME for an index of the blind-index registry (e.g. email_bidx:email:email_eq), or INDEX_COLUMN:SOURCE_COLUMN[=CONTEXT_COLUMN]:NAME:NORMALISER:TRANSFORM:BITS for one declared only in code (e.g. email_bidx:email:email_eq:email:whole:20).";
            return null;
        }

        var source = parts[1].Split('=', 2);
        var contextColumn = source.Length == 2 ? source[1] : source[0];
        // The registry (or Crypto:Columns) is the one source of an index's definition: the job recomputes what lookups
        // compute, so a definition repeated by hand that differs would write indexes no lookup ever finds.
        var registered = declared?.Find(table, contextColumn)?.Indexes.GetValueOrDefault(parts[2]);
        if (parts.Length == 3)
        {
            if (registered is null)
            {
                error = $"'{spec}': {table}.{contextColumn} has no blind index '{parts[2]}' in the blind-index registry or Crypto:Columns (see `blind-index list`); for an index declared only in code give NAME:NORMALISER:TRANSFORM:BITS.";
                return null;
            }

            return new BlindIndexColumn(parts[0], source[0], contextColumn, registered);
        }

        var normaliser = CryptoColumns.ParseNormaliser(parts[3]);
        var transform = CryptoColumns.ParseTransform(parts[4]);
        if (normaliser is null)
        {
            error = $"'{spec}': normaliser '{parts[3]}' is not supported. Use email, phone-e164, national-id or exact.";
        }
        else if (transform is null)
        {
            error = $"'{spec}': transform '{parts[4]}' is not supported. Use whole, lower-case, prefix-N or last-N (N from 1 to 64).";
        }
        else if (!int.TryParse(parts[5], NumberStyles.None, CultureInfo.InvariantCulture, out var bits) || bits is < 1 or > 256)
        {
            error = $"'{spec}': bits '{parts[5]}' must be a number from 1 to 256.";
        }
        else if (registered is not null && (registered.Normaliser.Name != normaliser.Name || registered.Transform.Name != transform.Name || registered.Bits != bits))
        {
            error = string.Create(CultureInfo.InvariantCulture, $"'{spec}': {table}.{contextColumn} index '{parts[2]}' is registered as {registered.Normaliser.Name}:{registered.Transform.Name}:{registered.Bits}, not {normaliser.Name}:{transform.Name}:{bits}; name it as {parts[0]}:{parts[1]}:{parts[2]} to use the registered definition.");
        }
        else
        {
            return new BlindIndexColumn(parts[0], source[0], contextColumn, new BlindIndexDefinition(parts[2], bits, normaliser, transform));
        }

        return null;
    }
}

/// <summary>Which blind indexes of one table to recompute: tenant, table, its single-column primary key, and the indexes.</summary>
/// <param name="Tenant">Tenant the values are bound to.</param>
/// <param name="Table">Table name (also the context's table name).</param>
/// <param name="KeyColumn">The primary key column.</param>
/// <param name="KeyKind">The key's type.</param>
/// <param name="Indexes">The stored indexes.</param>
internal sealed record BlindIndexTable(string Tenant, string Table, string KeyColumn, RowKeyKind KeyKind, IReadOnlyList<BlindIndexColumn> Indexes)
{
    /// <summary>Marks a recompute job's checkpoint name (beside <c>reencrypt</c>'s in the same table).</summary>
    public const string JobMarker = "/bidx:";

    /// <summary>The job's name: table, index columns and the target key version, so the next rotation starts a new job.</summary>
    internal string JobName(uint keysetId, uint version) =>
        string.Create(CultureInfo.InvariantCulture, $"{Tenant}/{Table}{JobMarker}{string.Join(',', Indexes.Select(c => c.IndexColumn))}@{keysetId:x8}v{version}");

    /// <summary>The end of every job name for this keyset version (see <see cref="JobName"/>).</summary>
    internal static string JobSuffix(uint keysetId, uint version) => string.Create(CultureInfo.InvariantCulture, $"@{keysetId:x8}v{version}");
}

/// <summary>A recompute run's (or a usage scan's) count of every stored index value it looked at, by outcome.</summary>
/// <param name="RowsDone">Rows examined (a resumed job counts the rows the interrupted run committed).</param>
/// <param name="RowsTotal">Rows in the table when the run started.</param>
/// <param name="TargetVersion">The <c>blind-index</c> version the run writes under.</param>
internal sealed record BlindIndexRecomputeProgress(long RowsDone, long RowsTotal, uint TargetVersion)
{
    /// <summary>Index values found under each version when read (before any rewrite), by version.</summary>
    public IReadOnlyDictionary<uint, long> FoundUnder { get; init; } = new Dictionary<uint, long>();

    /// <summary>Index values rewritten under the target version in this run.</summary>
    public long Rewritten { get; init; }

    /// <summary>Rows with a value but no stored index (written by a recompute, counted by a scan).</summary>
    public long Missing { get; init; }

    /// <summary>Index values matching the value under no live version: stale or corrupt (rewritten by a recompute, counted by a scan).</summary>
    public long Unmatched { get; init; }

    /// <summary>Rows whose encrypted value is NULL or empty: nothing to index.</summary>
    public long Empty { get; init; }

    /// <summary>Values encrypted under another keyset (data-subject keys): this job cannot read them, left as they are.</summary>
    public long OtherKeyset { get; init; }

    /// <summary>Values that could not be decrypted or normalised: an error, left as they were.</summary>
    public long Failed { get; init; }

    /// <summary>The first problems (at most 100), each naming table, column and row key and never the value.</summary>
    public IReadOnlyList<string> Problems { get; init; } = [];
}

/// <summary>
/// Recomputes the stored blind indexes of a table under a new version of the <c>blind-index</c> keyset: the rotation
/// of blind-index keys (docs/crypto-operations.md). Each row's encrypted value is decrypted in memory (it never leaves the
/// process), normalised, and its index computed under the target version (the staged version when there is one, else
/// the primary); an index found under an older live version is replaced in place. It is <c>reencrypt</c>'s machinery
/// (<see cref="CheckpointedTableScan"/>): resumable, kill-safe, every batch's updates committed with its checkpoint, a
/// value the application changed meanwhile never overwritten, and every run looking back over the whole table. Lookups
/// try every live version (<see cref="Keyset.LookupVersions"/>), so while rows hold either version every row is found.
/// With <c>dryRun</c> it writes nothing and no checkpoint and only counts which version each stored index is under
/// (<c>keys usage --index</c>, <c>keys destroy --scan-index</c>).
/// </summary>
internal sealed class BlindIndexRecomputeJob
{
    private readonly FieldEncryption _encryption;
    private readonly BlindIndexTable _table;
    private readonly CheckpointedTableScan _scan;

    /// <summary>Creates the job.</summary>
    /// <param name="encryption">The runtime: <c>fields</c> decrypts the values, <c>blind-index</c> gives the index keys.</param>
    /// <param name="table">What to recompute.</param>
    /// <param name="batchSize">Rows per transaction.</param>
    public BlindIndexRecomputeJob(FieldEncryption encryption, BlindIndexTable table, int batchSize = 1000)
    {
        ArgumentNullException.ThrowIfNull(encryption);
        ArgumentNullException.ThrowIfNull(table);
        if (table.Indexes.Count == 0)
        {
            throw new ArgumentException("Name at least one blind index.", nameof(table));
        }

        _encryption = encryption;
        _table = table;
        _scan = new CheckpointedTableScan(
            table.Table,
            table.KeyColumn,
            table.KeyKind,
            [.. table.Indexes.SelectMany(i => new[] { i.SourceColumn, i.IndexColumn })],
            [.. table.Indexes.Select(i => i.IndexColumn)],
            batchSize);
    }

    /// <summary>Test hook: called inside each batch's transaction before it commits (to simulate a crash there).</summary>
    internal Action<int>? BeforeCommit
    {
        get => _scan.BeforeCommit;
        set => _scan.BeforeCommit = value;
    }

    /// <summary>The checkpoint name of this job for the keyring's current target version.</summary>
    public string JobName
    {
        get
        {
            var keyset = _encryption.Keyring.Get(Keyring.BlindIndexKeyset);
            return _table.JobName(keyset.Id, keyset.RecomputeVersion());
        }
    }

    /// <summary>Runs (or resumes) the recompute; with <paramref name="dryRun"/> only counts, writing nothing.</summary>
    /// <param name="connection">An open or closed connection to the database holding the table and the checkpoints.</param>
    /// <param name="dryRun">Count which version each stored index is under; write no index and no checkpoint.</param>
    /// <param name="progress">Told after each batch.</param>
    /// <param name="cancellationToken">Stops between batches (a batch in flight rolls back).</param>
    public async Task<BlindIndexRecomputeProgress> RunAsync(DbConnection connection, bool dryRun = false, IProgress<BlindIndexRecomputeProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var keyset = _encryption.Keyring.Get(Keyring.BlindIndexKeyset);
        var target = keyset.RecomputeVersion();
        var versions = keyset.Versions.Where(v => v.Status != KeyStatus.Destroyed).Select(v => v.Version).OrderByDescending(v => v == target).ThenByDescending(v => v).ToArray();
        var handler = new Handler(this, versions, dryRun, target);
        var (done, total) = await _scan.RunAsync(
            connection,
            dryRun ? null : _table.JobName(keyset.Id, target),
            handler,
            progress is null ? null : (rows, all) => progress.Report(handler.Snapshot(rows, all)),
            cancellationToken);
        var result = handler.Snapshot(done, total);
        progress?.Report(result);
        return result;
    }

    private sealed class Handler(BlindIndexRecomputeJob job, uint[] versions, bool dryRun, uint target) : ITableRowHandler
    {
        private const int MaxProblemsListed = 100;
        private readonly Dictionary<uint, long> _foundUnder = [];
        private readonly List<string> _problems = [];
        private long _rewritten;
        private long _missing;
        private long _unmatched;
        private long _empty;
        private long _otherKeyset;
        private long _failed;

        public void Process(string rowId, object?[] values, List<CellRewrite> rewrites)
        {
            var table = job._table;
            for (var i = 0; i < table.Indexes.Count; i++)
            {
                var column = table.Indexes[i];
                var stored = values[(2 * i) + 1] as byte[];
                var plaintext = Decrypt(column, values[2 * i], rowId);
                if (plaintext is null)
                {
                    continue;
                }

                var context = new FieldContext(table.Tenant, table.Table, column.ContextColumn);
                byte[]? found = null;
                uint? under = null;
                try
                {
                    foreach (var version in versions)
                    {
                        // The target version first: a stored index already under it needs nothing.
                        var index = job._encryption.BlindIndexUnder(context, column.Definition, version).Compute(plaintext);
                        found ??= index;
                        if (stored is not null && CryptographicOperations.FixedTimeEquals(stored, index))
                        {
                            under = version;
                            break;
                        }
                    }
                }
                catch (FormatException)
                {
                    // The normaliser refused the value: it never had a valid index. Named by place, never by value.
                    _failed++;
                    Problem($"{table.Table}.{column.SourceColumn}, row {rowId}: the value is not of the {column.Definition.Normaliser.Name} normaliser's kind; its index {column.IndexColumn} is left unchanged");
                    continue;
                }

                if (under is { } version2)
                {
                    _foundUnder[version2] = _foundUnder.GetValueOrDefault(version2) + 1;
                    if (version2 == target || dryRun)
                    {
                        continue;
                    }
                }
                else if (stored is null)
                {
                    _missing++;
                    if (dryRun)
                    {
                        continue;
                    }
                }
                else
                {
                    _unmatched++;
                    if (dryRun)
                    {
                        continue;
                    }
                }

                rewrites.Add(new CellRewrite(i, stored, found!));
            }
        }

        public void Applied(CellRewrite rewrite, bool replaced)
        {
            if (replaced)
            {
                _rewritten++;
            }

            // Not replaced: the application wrote the row meanwhile, with the primary it indexes under; lookups find it
            // under either version, and the next run (the look-back) moves it if it is still under the old one.
        }

        public BlindIndexRecomputeProgress Snapshot(long rows, long total) => new(rows, total, target)
        {
            FoundUnder = new Dictionary<uint, long>(_foundUnder),
            Rewritten = _rewritten,
            Missing = _missing,
            Unmatched = _unmatched,
            Empty = _empty,
            OtherKeyset = _otherKeyset,
            Failed = _failed,
            Problems = [.. _problems],
        };

        // The value's plaintext as text, or null when there is none to index (counted here).
        private string? Decrypt(BlindIndexColumn column, object? stored, string rowId)
        {
            var table = job._table;
            byte[] ciphertext;
            switch (stored)
            {
                case null or byte[] { Length: 0 } or string { Length: 0 }:
                    _empty++;
                    return null;
                case byte[] binary:
                    ciphertext = binary;
                    break;
                case string text when FieldText.IsCiphertext(text):
                    try
                    {
                        ciphertext = FieldText.Decode(text);
                    }
                    catch (FieldDecryptionException e)
                    {
                        return Fail(column, rowId, e.Reason.ToString());
                    }

                    break;
                default:
                    return Fail(column, rowId, "not a ciphertext");
            }

            try
            {
                var info = FieldCiphertext.Inspect(ciphertext);
                var fields = job._encryption.Keyring.Get(Keyring.FieldsKeyset);
                if (info.KeysetId != fields.Id)
                {
                    _otherKeyset++;
                    return null;
                }

                var context = new FieldContext(table.Tenant, table.Table, column.ContextColumn);
                var plaintext = info.Mode == EncryptionMode.Deterministic
                    ? job._encryption.DeterministicEncryptor(context).Decrypt(ciphertext)
                    : job._encryption.Encryptor(context).Decrypt(ciphertext, rowId);
                try
                {
                    return Encoding.UTF8.GetString(plaintext);
                }
                finally
                {
                    CryptographicOperations.ZeroMemory(plaintext);
                }
            }
            catch (FieldDecryptionException e)
            {
                return Fail(column, rowId, e.Reason.ToString());
            }
        }

        private string? Fail(BlindIndexColumn column, string rowId, string reason)
        {
            _failed++;
            Problem($"{job._table.Table}.{column.SourceColumn}, row {rowId}: could not be decrypted ({reason}); its index {column.IndexColumn} is left unchanged");
            return null;
        }

        private void Problem(string message)
        {
            if (_problems.Count < MaxProblemsListed)
            {
                _problems.Add(message);
            }
        }
    }
}
