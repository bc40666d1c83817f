using System.Collections.Frozen;
using System.Globalization;
using CrmSecurity.Crypto.BlindIndexes;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Crypto.Service;

/// <summary>
/// What the security team declares about the encrypted columns the encryption service serves (<c>Crypto:Columns</c>):
/// which may be encrypted deterministically, and which blind indexes each keeps, planned for its expected row count.
/// Callers name a declared column and index; they do not choose how much an index or a ciphertext reveals.
/// </summary>
internal sealed class CryptoColumnsOptions
{
    public const string Section = "Crypto";

    public List<ColumnSettings> Columns { get; set; } = [];
}

/// <summary>One encrypted column (<c>Crypto:Columns:N</c>), the same for every tenant.</summary>
internal sealed class ColumnSettings
{
    /// <summary>The table (entity), as requests name it.</summary>
    public string Table { get; set; } = "";

    /// <summary>The column (field), as requests name it.</summary>
    public string Column { get; set; } = "";

    /// <summary>
    /// <c>Randomized</c> (default) or <c>Deterministic</c>. Deterministic ciphertexts show which rows hold equal values,
    /// so only a column declared so may be encrypted (and decrypted) in deterministic mode.
    /// </summary>
    public string Mode { get; set; } = "Randomized";

    /// <summary>Rows the table is expected to hold per tenant: what the leakage planner sizes the blind indexes for.</summary>
    public long? ExpectedRows { get; set; }

    public List<BlindIndexSettings> BlindIndexes { get; set; } = [];
}

/// <summary>One blind index of a column (<c>Crypto:Columns:N:BlindIndexes:M</c>).</summary>
internal sealed class BlindIndexSettings
{
    public string Name { get; set; } = "";

    /// <summary><c>email</c>, <c>phone-e164</c>, <c>national-id</c> or <c>exact</c>.</summary>
    public string Normaliser { get; set; } = "";

    /// <summary><c>whole</c> (default), <c>lower-case</c>, <c>prefix-N</c> or <c>last-N</c>.</summary>
    public string? Transform { get; set; }

    /// <summary>Bits kept. Empty: the most the planner allows for this index on its column (CipherSweet's recommendation).</summary>
    public int? Bits { get; set; }
}

/// <summary>A declared column, checked and planned.</summary>
/// <param name="Table">The table.</param>
/// <param name="Column">The column.</param>
/// <param name="Deterministic">Whether deterministic mode is allowed on it.</param>
/// <param name="Indexes">Its blind indexes by name.</param>
/// <param name="Plan">The planner's verdict on all of its indexes together (null without indexes).</param>
internal sealed record DeclaredColumn(string Table, string Column, bool Deterministic, FrozenDictionary<string, BlindIndexDefinition> Indexes, BlindIndexPlan? Plan);

/// <summary>
/// The declared columns: those of <c>Crypto:Columns</c>, built once from validated settings, and the blind indexes of the
/// server-side registry (<see cref="BlindIndexRegistry"/>) that security admins manage while the service runs. A column
/// whose blind indexes the configuration declares takes them from there only; any other column takes its indexes from the
/// registry (and whether it may be deterministic from the configuration).
/// </summary>
internal sealed class CryptoColumns
{
    private readonly FrozenDictionary<(string Table, string Column), DeclaredColumn> _columns;
    private readonly BlindIndexRegistry? _registry;
    private readonly Dictionary<(string Table, string Column), long> _rows = [];

    public CryptoColumns(IOptions<CryptoColumnsOptions> options, BlindIndexRegistry? registry = null)
    {
        _registry = registry;
        var columns = new Dictionary<(string, string), DeclaredColumn>();
        foreach (var (settings, index) in options.Value.Columns.Select((c, i) => (c, i)))
        {
            var (column, _) = Plan(settings, $"Crypto:Columns:{index}");
            columns[(settings.Table, settings.Column)] = column!;
            if (settings.ExpectedRows is { } rows)
            {
                _rows[(settings.Table, settings.Column)] = rows;
            }
        }

        _columns = columns.ToFrozenDictionary();
    }

    /// <summary>The column as a request sees it: configuration and registry together.</summary>
    public DeclaredColumn? Find(string table, string column)
    {
        var configured = _columns.GetValueOrDefault((table, column));
        if (configured is { Indexes.Count: > 0 } || _registry?.Find(table, column) is not { } registered)
        {
            return configured;
        }

        return configured is null ? registered : registered with { Deterministic = configured.Deterministic };
    }

    /// <summary>The column as <c>Crypto:Columns</c> declares it, or null.</summary>
    public DeclaredColumn? FindConfigured(string table, string column) => _columns.GetValueOrDefault((table, column));

    /// <summary>The columns <c>Crypto:Columns</c> declares with blind indexes, for the registry's listing.</summary>
    public IEnumerable<DeclaredColumn> ConfiguredWithIndexes => _columns.Values.Where(c => c.Indexes.Count > 0);

    /// <summary>The expected rows <c>Crypto:Columns</c> declares for a column.</summary>
    public long? ConfiguredRows(string table, string column) => _rows.GetValueOrDefault((table, column));

    /// <summary>Checks one column's settings and plans its indexes; the errors name each setting at fault.</summary>
    public static (DeclaredColumn? Column, List<string> Errors) Plan(ColumnSettings settings, string path)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(settings.Table) || string.IsNullOrWhiteSpace(settings.Column))
        {
            errors.Add($"{path}: Table and Column are required.");
        }

        var deterministic = settings.Mode switch
        {
            "Randomized" => false,
            "Deterministic" => true,
            _ => (bool?)null,
        };
        if (deterministic is null)
        {
            errors.Add($"{path}:Mode '{settings.Mode}' is not supported. Use Randomized (default) or Deterministic.");
        }

        if (settings.BlindIndexes.Count > 0 && settings.ExpectedRows is not > 1)
        {
            errors.Add($"{path}:ExpectedRows is required for a column with blind indexes (at least 2): the leakage planner sizes the indexes for it.");
        }

        var definitions = new List<BlindIndexDefinition>();
        foreach (var (index, i) in settings.BlindIndexes.Select((x, i) => (x, i)))
        {
            var at = $"{path}:BlindIndexes:{i}";
            var normaliser = ParseNormaliser(index.Normaliser);
            var transform = ParseTransform(index.Transform);
            if (string.IsNullOrWhiteSpace(index.Name) || index.Name.Length > 255)
            {
                errors.Add($"{at}:Name is required (at most 255 characters).");
            }
            else if (definitions.Any(d => d.Name == index.Name))
            {
                errors.Add($"{at}:Name '{index.Name}' is declared twice on {settings.Table}.{settings.Column}.");
            }

            if (normaliser is null)
            {
                errors.Add($"{at}:Normaliser '{index.Normaliser}' is not supported. Use email, phone-e164, national-id or exact.");
            }

            if (transform is null)
            {
                errors.Add($"{at}:Transform '{index.Transform}' is not supported. Use whole, lower-case, prefix-N or last-N (N from 1 to 64).");
            }

            if (index.Bits is { } given && (given < 1 || given > CryptoServiceEndpoints.MaxIndexBits))
            {
                errors.Add($"{at}:Bits must be from 1 to {CryptoServiceEndpoints.MaxIndexBits}.");
            }

            if (errors.Count > 0 || normaliser is null || transform is null || settings.ExpectedRows is not { } rows)
            {
                continue;
            }

            // Bits not given come from the planner: the most this index may keep beside the ones declared before it.
            var bits = index.Bits ?? Math.Min(BlindIndexPlanner.MaximumBits(rows, normaliser, transform, definitions), CryptoServiceEndpoints.MaxIndexBits);
            if (bits < 1)
            {
                errors.Add($"{at}:Bits: the indexes declared before it on {settings.Table}.{settings.Column} use the whole leakage budget for {rows.ToString(CultureInfo.InvariantCulture)} rows.");
                continue;
            }

            definitions.Add(new BlindIndexDefinition(index.Name, bits, normaliser, transform));
        }

        BlindIndexPlan? plan = null;
        if (errors.Count == 0 && definitions.Count > 0)
        {
            // CipherSweet's rule over all of the column's indexes together: an attacker with the table sees them all.
            plan = BlindIndexPlanner.Evaluate(settings.ExpectedRows!.Value, definitions);
            if (!plan.IsAcceptable)
            {
                errors.Add($"{path}:BlindIndexes of {settings.Table}.{settings.Column}: {plan.Explanation}");
            }
        }

        return errors.Count > 0
            ? (null, errors)
            : (new DeclaredColumn(settings.Table, settings.Column, deterministic!.Value, definitions.ToFrozenDictionary(d => d.Name, StringComparer.Ordinal), plan), errors);
    }

    public static Normaliser? ParseNormaliser(string? name) => name switch
    {
        "email" => Normaliser.Email,
        "phone-e164" => Normaliser.PhoneE164(),
        "national-id" => Normaliser.NationalId,
        "exact" => Normaliser.Exact,
        _ => null,
    };

    public static IndexTransform? ParseTransform(string? transform)
    {
        if (string.IsNullOrEmpty(transform) || transform == "whole")
        {
            return IndexTransform.Whole;
        }

        if (transform == "lower-case")
        {
            return IndexTransform.LowerCase;
        }

        foreach (var (prefix, make) in new (string, Func<int, IndexTransform>)[] { ("prefix-", IndexTransform.Prefix), ("last-", IndexTransform.Last) })
        {
            if (transform.StartsWith(prefix, StringComparison.Ordinal)
                && int.TryParse(transform.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
                && n is >= 1 and <= 64)
            {
                return make(n);
            }
        }

        return null;
    }
}

/// <summary>Start-up check of <c>Crypto:Columns</c>: a refused plan stops the host (exit 78) naming the setting and the bits to keep.</summary>
internal sealed class CryptoColumnsValidator : IValidateOptions<CryptoColumnsOptions>
{
    public ValidateOptionsResult Validate(string? name, CryptoColumnsOptions options)
    {
        var errors = new List<string>();
        var seen = new HashSet<(string, string)>();
        foreach (var (column, index) in options.Columns.Select((c, i) => (c, i)))
        {
            errors.AddRange(CryptoColumns.Plan(column, $"Crypto:Columns:{index}").Errors);
            if (!seen.Add((column.Table, column.Column)))
            {
                errors.Add($"Crypto:Columns:{index}: {column.Table}.{column.Column} is declared twice.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
