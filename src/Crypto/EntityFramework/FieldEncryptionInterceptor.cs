using System.Runtime.CompilerServices;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace CrmSecurity.Crypto.EntityFramework;

/// <summary>
/// Encrypts in SaveChanges (where the row's primary key is known) and decrypts as rows are materialized.
/// The plaintext each entity was read with is remembered, so only changed values are re-encrypted.
/// </summary>
internal sealed class FieldEncryptionInterceptor(FieldEncryption encryption, Func<string> tenant) : ISaveChangesInterceptor, IMaterializationInterceptor
{
    private readonly ConditionalWeakTable<object, Dictionary<string, string?>> _snapshots = new();
    private readonly ConditionalWeakTable<DbContext, SubjectCache> _subjects = new();

    public FieldEncryption Encryption => encryption;

    public string Tenant => tenant();

    public object InitializedInstance(MaterializationInterceptionData materializationData, object entity)
    {
        var metadata = EncryptedEntity.Of(materializationData.EntityType);
        if (metadata is null)
        {
            return entity;
        }

        var entityType = materializationData.EntityType;
        var table = entityType.GetTableName() ?? entityType.ShortName();
        var currentTenant = tenant();
        var rowId = new Lazy<string>(() => EncryptedEntity.RowId(entityType.FindPrimaryKey()!, p => materializationData.GetPropertyValue(p.Name)));
        var snapshot = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var property in metadata.Properties)
        {
            var ciphertext = materializationData.GetPropertyValue<byte[]?>(property.CiphertextProperty);
            string? plaintext = null;
            if (ciphertext is not null)
            {
                var context = new FieldContext(currentTenant, table, property.Name);
                plaintext = metadata.SubjectProperty is { } subjectProperty
                    ? Subjects(materializationData.Context).Encryptor(currentTenant, EncryptedEntity.Text(materializationData.GetPropertyValue(subjectProperty)), context, create: false)
                        .DecryptString(ciphertext, rowId.Value)
                    : property.Mode == EncryptionMode.Deterministic
                        ? encryption.DeterministicEncryptor(context).DecryptString(ciphertext)
                        : encryption.Encryptor(context).DecryptString(ciphertext, rowId.Value);
            }

            property.Set(entity, plaintext);
            snapshot[property.Name] = plaintext;
        }

        _snapshots.AddOrUpdate(entity, snapshot);
        return entity;
    }

    public InterceptionResult<int> SavingChanges(DbContextEventData eventData, InterceptionResult<int> result)
    {
        if (eventData.Context is { } context)
        {
            Encrypt(context);
        }

        return result;
    }

    public ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result, CancellationToken cancellationToken = default)
    {
        if (eventData.Context is { } context)
        {
            Encrypt(context);
        }

        return ValueTask.FromResult(result);
    }

    internal void Forget(DbContext context) => _subjects.Remove(context);

    private void Encrypt(DbContext context)
    {
        var currentTenant = tenant();
        foreach (var entry in context.ChangeTracker.Entries().ToList())
        {
            if (entry.State is not (EntityState.Added or EntityState.Modified or EntityState.Unchanged) || EncryptedEntity.Of(entry.Metadata) is not { } metadata)
            {
                continue;
            }

            _snapshots.TryGetValue(entry.Entity, out var snapshot);
            var table = entry.Metadata.GetTableName() ?? entry.Metadata.ShortName();
            foreach (var property in metadata.Properties)
            {
                var plaintext = property.Get(entry.Entity);
                string? previous = null;
                if (entry.State != EntityState.Added && snapshot is not null && snapshot.TryGetValue(property.Name, out previous) && previous == plaintext)
                {
                    continue; // unchanged: keep the stored ciphertext
                }

                Write(context, entry, metadata, property, new FieldContext(currentTenant, table, property.Name), plaintext);
                snapshot ??= _snapshots.GetValue(entry.Entity, _ => new Dictionary<string, string?>(StringComparer.Ordinal));
                snapshot[property.Name] = plaintext;
            }
        }
    }

    private void Write(DbContext context, EntityEntry entry, EncryptedEntity metadata, EncryptedProperty property, FieldContext field, string? plaintext)
    {
        if (plaintext is null)
        {
            entry.Property(property.CiphertextProperty).CurrentValue = null;
            foreach (var (_, index) in property.Indexes)
            {
                entry.Property(index).CurrentValue = null;
            }

            return;
        }

        byte[] ciphertext;
        if (metadata.SubjectProperty is { } subjectProperty)
        {
            var subject = EncryptedEntity.Text(entry.Property(subjectProperty).CurrentValue);
            ciphertext = Subjects(context).Encryptor(field.Tenant, subject, field, create: true).EncryptString(plaintext, RowId(entry));
        }
        else if (property.Mode == EncryptionMode.Deterministic)
        {
            ciphertext = encryption.DeterministicEncryptor(field).EncryptString(plaintext);
        }
        else
        {
            ciphertext = encryption.Encryptor(field).EncryptString(plaintext, RowId(entry));
        }

        entry.Property(property.CiphertextProperty).CurrentValue = ciphertext;
        foreach (var (definition, index) in property.Indexes)
        {
            entry.Property(index).CurrentValue = encryption.BlindIndex(field, definition).Compute(plaintext);
        }
    }

    private static string RowId(EntityEntry entry)
    {
        var key = entry.Metadata.FindPrimaryKey() ?? throw new InvalidOperationException($"{entry.Metadata.DisplayName()} has no primary key; randomized encryption binds the row id.");
        foreach (var part in key.Properties)
        {
            if (entry.Property(part.Name).IsTemporary)
            {
                // The database would assign the key only after the INSERT, too late to bind it into the ciphertext.
                throw new InvalidOperationException(
                    $"{entry.Metadata.DisplayName()}.{part.Name} is generated by the database, but randomized encryption binds the row id before the row is written. " +
                    "Use a client-generated key (a Guid, or a value you set) for entities with encrypted fields.");
            }
        }

        return EncryptedEntity.RowId(key, p => entry.Property(p.Name).CurrentValue);
    }

    private SubjectCache Subjects(DbContext? context) =>
        _subjects.GetValue(context ?? throw new InvalidOperationException("No DbContext."), _ => new SubjectCache(encryption));

    /// <summary>Subject keys looked up during one DbContext's life (contexts are short-lived, so a shred elsewhere is seen by the next one).</summary>
    private sealed class SubjectCache(FieldEncryption encryption)
    {
        private readonly Dictionary<(string Tenant, string Subject), Keyset> _keysets = [];
        private readonly Dictionary<(string Tenant, string Subject, FieldContext Field), FieldEncryptor> _encryptors = [];
        private readonly Lock _gate = new();

        public FieldEncryptor Encryptor(string tenant, string subject, FieldContext field, bool create)
        {
            lock (_gate)
            {
                if (_encryptors.TryGetValue((tenant, subject, field), out var cached))
                {
                    return cached;
                }

                if (!_keysets.TryGetValue((tenant, subject), out var keyset))
                {
                    var store = encryption.SubjectKeys ?? throw new InvalidOperationException("This entity is encrypted per data subject, but no subject key store is configured.");
                    keyset = create
                        ? store.GetOrCreate(tenant, subject)
                        : store.Find(tenant, subject) ?? throw new FieldDecryptionException(DecryptFailureReason.WrongKeyset, "The data subject has no key.");
                    _keysets[(tenant, subject)] = keyset;
                }

                var encryptor = keyset.CreateFieldEncryptor(field);
                _encryptors[(tenant, subject, field)] = encryptor;
                return encryptor;
            }
        }
    }
}
