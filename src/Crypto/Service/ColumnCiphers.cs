using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Providers;

namespace CrmSecurity.Crypto.Service;

/// <summary>
/// The column encryptors and blind indexes one request uses, each derived on first use and disposed (keys zeroed) with
/// the request. Not <see cref="FieldEncryption"/>'s per-column cache: table and column names come from callers here, and
/// a cache keyed by them would grow without bound. A batch of many values of one column derives its key once.
/// </summary>
internal sealed class ColumnCiphers(Keyring keyring) : IDisposable
{
    private readonly Dictionary<FieldContext, FieldEncryptor> _randomized = [];
    private readonly Dictionary<FieldContext, DeterministicFieldEncryptor> _deterministic = [];
    private readonly Dictionary<(FieldContext, string), BlindIndex> _indexes = [];

    /// <summary>AES-256-GCM for the column, from the <c>fields</c> keyset.</summary>
    public FieldEncryptor Randomized(FieldContext context)
    {
        if (!_randomized.TryGetValue(context, out var encryptor))
        {
            _randomized[context] = encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(context);
        }

        return encryptor;
    }

    /// <summary>AES-SIV for the column, from the <c>fields</c> keyset.</summary>
    public DeterministicFieldEncryptor Deterministic(FieldContext context)
    {
        if (!_deterministic.TryGetValue(context, out var encryptor))
        {
            _deterministic[context] = encryptor = keyring.Get(Keyring.FieldsKeyset).CreateDeterministicFieldEncryptor(context);
        }

        return encryptor;
    }

    /// <summary>The declared blind index of the column, from the <c>blind-index</c> keyset.</summary>
    public BlindIndex BlindIndex(FieldContext context, BlindIndexDefinition definition)
    {
        if (!_indexes.TryGetValue((context, definition.Name), out var index))
        {
            _indexes[(context, definition.Name)] = index = keyring.Get(Keyring.BlindIndexKeyset).CreateBlindIndex(context, definition);
        }

        return index;
    }

    public void Dispose()
    {
        foreach (var encryptor in _randomized.Values)
        {
            encryptor.Dispose();
        }

        foreach (var encryptor in _deterministic.Values)
        {
            encryptor.Dispose();
        }

        foreach (var index in _indexes.Values)
        {
            index.Dispose();
        }
    }
}
