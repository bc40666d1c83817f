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
    /// <summary>How long a replaced keyring stays usable for operations that began under it before its keys are zeroed.</summary>
    internal static readonly TimeSpan RetiredKeyringGrace = TimeSpan.FromSeconds(30);

    private readonly Lock _retiring = new();
    private readonly List<State> _retired = [];
    private State _state;
    private bool _disposed;

    /// <summary>Creates the runtime.</summary>
    /// <param name="keyring">The keyring (this object takes ownership).</param>
    /// <param name="subjectKeys">Data-subject keys, or null when crypto-shredding is not used.</param>
    /// <param name="events">Where access events go.</param>
    public FieldEncryption(Keyring keyring, SubjectKeyStore? subjectKeys, ICryptoEventSink events)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        ArgumentNullException.ThrowIfNull(events);
        _state = new State(keyring);
        SubjectKeys = subjectKeys;
        Events = events;
    }

    /// <summary>The keyring: the one loaded last (a running service reloads a rotated keyring without a restart).</summary>
    public Keyring Keyring => Volatile.Read(ref _state).Keyring;

    /// <summary>Data-subject keys (null when not configured).</summary>
    public SubjectKeyStore? SubjectKeys { get; }

    /// <summary>Where access events go.</summary>
    public ICryptoEventSink Events { get; }

    /// <summary>The randomized encryptor of a column under the <c>fields</c> keyset (cached).</summary>
    /// <param name="context">The column.</param>
    public FieldEncryptor Encryptor(FieldContext context)
    {
        var state = Volatile.Read(ref _state);
        return state.Randomized.GetOrAdd(context, c => state.Keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(c));
    }

    /// <summary>The deterministic encryptor of a column under the <c>fields</c> keyset (cached).</summary>
    /// <param name="context">The column.</param>
    public DeterministicFieldEncryptor DeterministicEncryptor(FieldContext context)
    {
        var state = Volatile.Read(ref _state);
        return state.Deterministic.GetOrAdd(context, c => state.Keyring.Get(Keyring.FieldsKeyset).CreateDeterministicFieldEncryptor(c));
    }

    /// <summary>A blind index of a column under the <c>blind-index</c> keyset (cached).</summary>
    /// <param name="context">The column.</param>
    /// <param name="definition">The index.</param>
    public BlindIndex BlindIndex(FieldContext context, BlindIndexDefinition definition)
    {
        var state = Volatile.Read(ref _state);
        var keyset = state.Keyring.Get(Keyring.BlindIndexKeyset);
        return state.Indexes.GetOrAdd((context, definition, keyset.PrimaryVersion), k => keyset.CreateBlindIndex(k.Item1, k.Item2, k.Item3));
    }

    /// <summary>A blind index of a column under one given (not destroyed) version of the <c>blind-index</c> keyset (cached), for the recompute job.</summary>
    /// <param name="context">The column.</param>
    /// <param name="definition">The index.</param>
    /// <param name="version">The key version.</param>
    internal BlindIndex BlindIndexUnder(FieldContext context, BlindIndexDefinition definition, uint version)
    {
        var state = Volatile.Read(ref _state);
        var keyset = state.Keyring.Get(Keyring.BlindIndexKeyset);
        return state.Indexes.GetOrAdd((context, definition, version), k => keyset.CreateBlindIndex(k.Item1, k.Item2, k.Item3));
    }

    /// <summary>
    /// The blind indexes a lookup tries, primary first: one per version of the <c>blind-index</c> keyset that is not
    /// destroyed. Outside a blind-index rotation that is the primary alone; during its window (a staged version, or the
    /// old version not yet destroyed) stored indexes may be under either version, so a lookup looks for both.
    /// </summary>
    /// <param name="context">The column.</param>
    /// <param name="definition">The index.</param>
    internal IReadOnlyList<BlindIndex> LookupIndexes(FieldContext context, BlindIndexDefinition definition)
    {
        var state = Volatile.Read(ref _state);
        var keyset = state.Keyring.Get(Keyring.BlindIndexKeyset);
        return [.. keyset.LookupVersions().Select(v => state.Indexes.GetOrAdd((context, definition, v), k => keyset.CreateBlindIndex(k.Item1, k.Item2, k.Item3)))];
    }

    /// <summary>
    /// Puts a newly loaded keyring in place, atomically: every operation that starts after this uses it (and its
    /// <c>subjects</c> keyset wraps data-subject keys). Operations already running finish under the old one, whose keys
    /// are zeroed after <see cref="RetiredKeyringGrace"/>, so a destroyed version's key does not outlive the reload by
    /// more than that.
    /// </summary>
    /// <param name="keyring">The new keyring (this object takes ownership).</param>
    internal void Replace(Keyring keyring)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        var wrapper = keyring.Keysets.FirstOrDefault(k => k.Name == Keyring.SubjectsKeyset) is { } subjects && SubjectKeys is not null
            ? SubjectKeys.UseWrapping(subjects)
            : null;
        var old = Interlocked.Exchange(ref _state, new State(keyring));
        old.RetiredWrapper = wrapper;
        lock (_retiring)
        {
            if (_disposed)
            {
                old.Dispose();
                return;
            }

            _retired.Add(old);
        }

        _ = RetireAsync(old);
    }

    /// <summary>Disposes every cached encryptor and index and zeroes the keyring (and any keyring replaced not yet zeroed).</summary>
    public void Dispose()
    {
        List<State> retired;
        lock (_retiring)
        {
            _disposed = true;
            retired = [.. _retired];
            _retired.Clear();
        }

        foreach (var state in retired)
        {
            state.Dispose();
        }

        Volatile.Read(ref _state).Dispose();
    }

    /// <summary>Keyset names only.</summary>
    public override string ToString() => $"FieldEncryption ({Keyring})";

    private async Task RetireAsync(State old)
    {
        await Task.Delay(RetiredKeyringGrace).ConfigureAwait(false);
        lock (_retiring)
        {
            if (!_retired.Remove(old))
            {
                return; // disposed with the runtime meanwhile
            }
        }

        old.Dispose();
    }

    /// <summary>One keyring and the encryptors and indexes derived from it.</summary>
    private sealed class State(Keyring keyring) : IDisposable
    {
        public Keyring Keyring { get; } = keyring;

        public ConcurrentDictionary<FieldContext, FieldEncryptor> Randomized { get; } = new();

        public ConcurrentDictionary<FieldContext, DeterministicFieldEncryptor> Deterministic { get; } = new();

        public ConcurrentDictionary<(FieldContext, BlindIndexDefinition, uint), BlindIndex> Indexes { get; } = new();

        /// <summary>The subject-key wrapper of the keyring this one replaced, zeroed with that keyring.</summary>
        public IDisposable? RetiredWrapper { get; set; }

        public void Dispose()
        {
            foreach (var e in Randomized.Values)
            {
                e.Dispose();
            }

            foreach (var e in Deterministic.Values)
            {
                e.Dispose();
            }

            foreach (var i in Indexes.Values)
            {
                i.Dispose();
            }

            RetiredWrapper?.Dispose();
            Keyring.Dispose();
        }
    }
}
