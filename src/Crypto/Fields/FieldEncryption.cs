using System.Collections.Concurrent;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Subjects;

namespace CrmSecurity.Crypto.Fields;

/// <summary>
/// The runtime entry point of field encryption for one installation: the keyring, cached per-column
/// encryptors and blind indexes, data-subject keys and the event sink. Thread-safe; one per process
/// (registered as a singleton by <c>AddCrypto</c>).
/// </summary>
public sealed class FieldEncryption : IDisposable
{
    private readonly ConcurrentDictionary<FieldContext, FieldEncryptor> _randomized = new();
    private readonly ConcurrentDictionary<FieldContext, DeterministicFieldEncryptor> _deterministic = new();
    private readonly ConcurrentDictionary<(FieldContext, BlindIndexDefinition), BlindIndex> _indexes = new();

    /// <summary>Creates the runtime.</summary>
    /// <param name="keyring">The keyring (this object takes ownership).</param>
    /// <param name="subjectKeys">Data-subject keys, or null when crypto-shredding is not used.</param>
    /// <param name="events">Where access events go.</param>
    public FieldEncryption(Keyring keyring, SubjectKeyStore? subjectKeys, ICryptoEventSink events)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        ArgumentNullException.ThrowIfNull(events);
        Keyring = keyring;
        SubjectKeys = subjectKeys;
        Events = events;
    }

    /// <summary>The keyring.</summary>
    public Keyring Keyring { get; }

    /// <summary>Data-subject keys (null when not configured).</summary>
    public SubjectKeyStore? SubjectKeys { get; }

    /// <summary>Where access events go.</summary>
    public ICryptoEventSink Events { get; }

    /// <summary>The randomized encryptor of a column under the <c>fields</c> keyset (cached).</summary>
    /// <param name="context">The column.</param>
    public FieldEncryptor Encryptor(FieldContext context) =>
        _randomized.GetOrAdd(context, c => Keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(c));

    /// <summary>The deterministic encryptor of a column under the <c>fields</c> keyset (cached).</summary>
    /// <param name="context">The column.</param>
    public DeterministicFieldEncryptor DeterministicEncryptor(FieldContext context) =>
        _deterministic.GetOrAdd(context, c => Keyring.Get(Keyring.FieldsKeyset).CreateDeterministicFieldEncryptor(c));

    /// <summary>A blind index of a column under the <c>blind-index</c> keyset (cached).</summary>
    /// <param name="context">The column.</param>
    /// <param name="definition">The index.</param>
    public BlindIndex BlindIndex(FieldContext context, BlindIndexDefinition definition) =>
        _indexes.GetOrAdd((context, definition), k => Keyring.Get(Keyring.BlindIndexKeyset).CreateBlindIndex(k.Item1, k.Item2));

    /// <summary>Disposes every cached encryptor and index and zeroes the keyring.</summary>
    public void Dispose()
    {
        foreach (var e in _randomized.Values)
        {
            e.Dispose();
        }

        foreach (var e in _deterministic.Values)
        {
            e.Dispose();
        }

        foreach (var i in _indexes.Values)
        {
            i.Dispose();
        }

        Keyring.Dispose();
    }

    /// <summary>Keyset names only.</summary>
    public override string ToString() => $"FieldEncryption ({Keyring})";
}
