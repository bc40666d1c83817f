using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Crypto.Subjects;

namespace CrmSecurity.Crypto.Service;

/// <summary>
/// The column encryptors and blind indexes one request uses, each derived on first use and disposed (keys zeroed) with
/// the request. Not <see cref="FieldEncryption"/>'s per-column cache: table and column names come from callers here, and
/// a cache keyed by them would grow without bound. A batch of many values of one column derives its key once. The keyring
/// is the one current when the request began: a keyring reloaded meanwhile serves the next request.
/// </summary>
internal sealed class ColumnCiphers(Keyring keyring, SubjectKeyStore? subjectKeys) : IDisposable
{
    private readonly Dictionary<(string Tenant, string Subject), Keyset> _subjects = [];
    private readonly Dictionary<(string Subject, FieldContext Context), FieldEncryptor> _subjectEncryptors = [];
    private readonly Dictionary<FieldContext, FieldEncryptor> _randomized = [];
    private readonly Dictionary<FieldContext, DeterministicFieldEncryptor> _deterministic = [];
    private readonly Dictionary<(FieldContext, string, uint), BlindIndex> _indexes = [];

    /// <summary>AES-256-GCM for the column, from the <c>fields</c> keyset.</summary>
    public FieldEncryptor Randomized(FieldContext context)
    {
        if (!_randomized.TryGetValue(context, out var encryptor))
        {
            _randomized[context] = encryptor = keyring.Get(Keyring.FieldsKeyset).CreateFieldEncryptor(context);
        }

        return encryptor;
    }

    /// <summary>Whether data-subject keys are configured (the host always configures them).</summary>
    public bool HasSubjectKeys => subjectKeys is not null;

    /// <summary>
    /// AES-256-GCM for the column under the data subject's own key: the scheme of the .NET path
    /// (<c>HasDataSubject</c>), the subject-key store's one-version keyset for (tenant, subject) made on first encrypt.
    /// </summary>
    /// <exception cref="FieldDecryptionException"><see cref="DecryptFailureReason.SubjectShredded"/> once shredded; <see cref="DecryptFailureReason.WrongKeyset"/> when decrypting for a subject that has no key.</exception>
    public async ValueTask<FieldEncryptor> SubjectAsync(FieldContext context, string subject, bool create, CancellationToken cancellationToken)
    {
        if (_subjectEncryptors.TryGetValue((subject, context), out var encryptor))
        {
            return encryptor;
        }

        var store = subjectKeys ?? throw new InvalidOperationException("No subject-key store is configured.");
        if (!_subjects.TryGetValue((context.Tenant, subject), out var keyset))
        {
            keyset = create
                ? await store.GetOrCreateAsync(context.Tenant, subject, cancellationToken)
                : await store.FindAsync(context.Tenant, subject, cancellationToken) ?? throw new FieldDecryptionException(DecryptFailureReason.WrongKeyset, "The data subject has no key.");
            _subjects[(context.Tenant, subject)] = keyset;
        }

        _subjectEncryptors[(subject, context)] = encryptor = keyset.CreateFieldEncryptor(context);
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

    /// <summary>
    /// The declared blind index of the column under each version of the <c>blind-index</c> keyset a lookup tries, primary
    /// first (the primary alone outside a blind-index rotation).
    /// </summary>
    public IReadOnlyList<BlindIndex> LookupIndexes(FieldContext context, BlindIndexDefinition definition)
    {
        var keyset = keyring.Get(Keyring.BlindIndexKeyset);
        var versions = keyset.LookupVersions();
        var indexes = new BlindIndex[versions.Count];
        for (var i = 0; i < versions.Count; i++)
        {
            if (!_indexes.TryGetValue((context, definition.Name, versions[i]), out var index))
            {
                _indexes[(context, definition.Name, versions[i])] = index = keyset.CreateBlindIndex(context, definition, versions[i]);
            }

            indexes[i] = index;
        }

        return indexes;
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

        foreach (var encryptor in _subjectEncryptors.Values)
        {
            encryptor.Dispose();
        }

        foreach (var keyset in _subjects.Values)
        {
            keyset.Dispose();
        }
    }
}
