using System.Runtime.CompilerServices;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace CrmSecurity.Crypto.EntityFramework;

/// <summary>
/// Encrypts in SaveChanges (where the row's primary key is known) and decrypts as rows are materialized, each value only
/// after the context's <see cref="IFieldDecryptAuthorizer"/> allowed it, and each decision written as a <c>decrypt</c>
/// access event before any plaintext reaches the entity. The plaintext each entity was read with is remembered, so only
/// changed values are re-encrypted; a value that was withheld keeps its stored ciphertext unless the application sets a
/// new one.
/// </summary>
/// <remarks>
/// One instance serves every context: a materialization interceptor is a singleton interceptor, and EF Core builds an
/// internal service provider for each distinct set of them, so a new instance per context (per request) would build one
/// per request until EF Core refuses (<c>ManyServiceProvidersCreatedWarning</c>). What differs per context (the keys,
/// the tenant, the reader) travels in the options (<see cref="FieldEncryptionOptionsExtension"/>).
/// </remarks>
internal sealed class FieldEncryptionInterceptor : ISaveChangesInterceptor, IMaterializationInterceptor
{
    public static readonly FieldEncryptionInterceptor Shared = new();

    /// <summary>Most distinct reasons one access event lists (the rest are counted), so details stay small.</summary>
    private const int MaxReasons = 3;

    private readonly ConditionalWeakTable<object, Dictionary<string, string?>> _snapshots = new();
    private readonly ConditionalWeakTable<object, HashSet<string>> _withheld = new();
    private readonly ConditionalWeakTable<DbContext, SubjectCache> _subjects = new();
    private readonly ConditionalWeakTable<DbContext, IFieldDecryptAuthorizer> _authorizers = new();

    private FieldEncryptionInterceptor()
    {
    }

    /// <summary>The context's field-encryption settings, from its options.</summary>
    public static FieldEncryptionOptionsExtension Settings(DbContext context) =>
        context.GetService<IDbContextOptions>().FindExtension<FieldEncryptionOptionsExtension>()
        ?? throw new InvalidOperationException("Field encryption is not enabled on this DbContext: call UseFieldEncryption(...) in its options.");

    /// <summary>Sets the authorizer of one context (a request's reader), in place of the one given with the options.</summary>
    public void Authorize(DbContext context, IFieldDecryptAuthorizer contextAuthorizer) => _authorizers.AddOrUpdate(context, contextAuthorizer);

    /// <summary>Whether a value of <paramref name="entity"/> was withheld from the reader (not decrypted).</summary>
    public bool IsWithheld(object entity, string property) => _withheld.TryGetValue(entity, out var withheld) && withheld.Contains(property);

    public object InitializedInstance(MaterializationInterceptionData materializationData, object entity)
    {
        var metadata = EncryptedEntity.Of(materializationData.EntityType);
        if (metadata is null)
        {
            return entity;
        }

        var entityType = materializationData.EntityType;
        var table = entityType.GetTableName() ?? entityType.ShortName();
        var settings = Settings(materializationData.Context);
        var encryption = settings.Encryption;
        var currentTenant = settings.Tenant();
        var rowId = new Lazy<string>(() => EncryptedEntity.RowId(entityType.FindPrimaryKey()!, p => materializationData.GetPropertyValue(p.Name)));
        var reader = Authorizer(materializationData.Context, settings);
        var snapshot = new Dictionary<string, string?>(StringComparer.Ordinal);
        var withheld = new HashSet<string>(StringComparer.Ordinal);
        var plaintexts = new List<(EncryptedProperty Property, string? Plaintext)>(metadata.Properties.Count);
        var allowed = new List<(string Field, string Reason)>();
        var denied = new List<(string Field, string Reason)>();
        foreach (var property in metadata.Properties)
        {
            var ciphertext = materializationData.GetPropertyValue<byte[]?>(property.CiphertextProperty);
            if (ciphertext is null)
            {
                plaintexts.Add((property, null)); // no value stored: nothing to decrypt, nothing to audit
                continue;
            }

            // Deny by default: the reader's authorizer decides each value before it is decrypted (design.md: every
            // decrypt is permission-checked and audited, on every path).
            var context = new FieldContext(currentTenant, table, property.Name);
            var decision = reader.Authorize(new FieldDecryptRequest(context, rowId.Value, entity));
            if (!decision.Allowed)
            {
                withheld.Add(property.Name);
                denied.Add((property.Name, decision.Reason));
                plaintexts.Add((property, null));
                continue;
            }

            string plaintext;
            try
            {
                plaintext = metadata.SubjectProperty is { } subjectProperty
                    ? Subjects(materializationData.Context).Encryptor(currentTenant, EncryptedEntity.Text(materializationData.GetPropertyValue(subjectProperty)), context, create: false)
                        .DecryptString(ciphertext, rowId.Value)
                    : property.Mode == EncryptionMode.Deterministic
                        ? encryption.DeterministicEncryptor(context).DecryptString(ciphertext)
                        : encryption.Encryptor(context).DecryptString(ciphertext, rowId.Value);
            }
            catch (FieldDecryptionException e)
            {
                // The failed attempt is audited too; the query fails as before, and no plaintext of the row is released.
                Audit(encryption, reader, currentTenant, table, rowId.Value, "error", [(property.Name, $"{decision.Reason}; not decrypted: {e.Reason}")]);
                throw;
            }

            allowed.Add((property.Name, decision.Reason));
            plaintexts.Add((property, plaintext));
        }

        // Written before any plaintext reaches the entity: a sink that fails stops the query, so nothing is read unaudited.
        if (denied.Count + allowed.Count > 0)
        {
            Audit(encryption, reader, currentTenant, table, rowId.Value, "denied", denied);
            Audit(encryption, reader, currentTenant, table, rowId.Value, "success", allowed);
        }

        foreach (var (property, plaintext) in plaintexts)
        {
            property.Set(entity, plaintext);
            if (!withheld.Contains(property.Name))
            {
                snapshot[property.Name] = plaintext;
            }
        }

        _snapshots.AddOrUpdate(entity, snapshot);
        if (withheld.Count > 0)
        {
            _withheld.AddOrUpdate(entity, withheld);
        }
        else
        {
            _withheld.Remove(entity);
        }

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

    private IFieldDecryptAuthorizer Authorizer(DbContext context, FieldEncryptionOptionsExtension settings) =>
        _authorizers.TryGetValue(context, out var own) ? own : settings.Authorizer ?? FieldDecryptAuthorizer.DenyAll;

    /// <summary>
    /// One <c>decrypt</c> access event for the values of one row with one outcome: the row, the fields, the reasons;
    /// never a value. Materialization is synchronous, so the sink's write is waited for here.
    /// </summary>
    private static void Audit(FieldEncryption encryption, IFieldDecryptAuthorizer reader, string currentTenant, string table, string rowId, string outcome, List<(string Field, string Reason)> fields)
    {
        if (fields.Count == 0)
        {
            return;
        }

        var reasons = fields.Select(f => f.Reason).Distinct(StringComparer.Ordinal).ToList();
        var details = string.Join("; ", reasons.Take(MaxReasons)) + (reasons.Count > MaxReasons ? $" (and {reasons.Count - MaxReasons} more reasons)" : "");
        var accessEvent = new CryptoAccessEvent(DateTimeOffset.UtcNow, reader.Reader.UserId, "decrypt", outcome)
        {
            Tenant = currentTenant,
            Entity = table,
            RecordId = rowId,
            Fields = [.. fields.Select(f => f.Field)],
            ClientId = reader.Reader.ClientId,
            SourceIp = reader.Reader.SourceIp,
            Details = details,
        };
        var write = encryption.Events.WriteAsync(accessEvent, CancellationToken.None);
        if (!write.IsCompletedSuccessfully)
        {
            write.AsTask().GetAwaiter().GetResult();
        }
    }

    private void Encrypt(DbContext context)
    {
        var encryption = Settings(context).Encryption;
        var currentTenant = Settings(context).Tenant();
        foreach (var entry in context.ChangeTracker.Entries().ToList())
        {
            if (entry.State is not (EntityState.Added or EntityState.Modified or EntityState.Unchanged) || EncryptedEntity.Of(entry.Metadata) is not { } metadata)
            {
                continue;
            }

            _snapshots.TryGetValue(entry.Entity, out var snapshot);
            _withheld.TryGetValue(entry.Entity, out var withheld);
            var table = entry.Metadata.GetTableName() ?? entry.Metadata.ShortName();
            foreach (var property in metadata.Properties)
            {
                var plaintext = property.Get(entry.Entity);
                if (entry.State != EntityState.Added && withheld is not null && withheld.Contains(property.Name))
                {
                    if (plaintext is null)
                    {
                        continue; // withheld from this reader, not cleared by it: the stored ciphertext stays
                    }

                    withheld.Remove(property.Name); // the application wrote a new value: encrypt it below
                }

                string? previous = null;
                if (entry.State != EntityState.Added && snapshot is not null && snapshot.TryGetValue(property.Name, out previous) && previous == plaintext)
                {
                    continue; // unchanged: keep the stored ciphertext
                }

                Write(encryption, context, entry, metadata, property, new FieldContext(currentTenant, table, property.Name), plaintext);
                snapshot ??= _snapshots.GetValue(entry.Entity, _ => new Dictionary<string, string?>(StringComparer.Ordinal));
                snapshot[property.Name] = plaintext;
            }
        }
    }

    private void Write(FieldEncryption encryption, DbContext context, EntityEntry entry, EncryptedEntity metadata, EncryptedProperty property, FieldContext field, string? plaintext)
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
        _subjects.GetValue(context ?? throw new InvalidOperationException("No DbContext."), c => new SubjectCache(Settings(c).Encryption));

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
