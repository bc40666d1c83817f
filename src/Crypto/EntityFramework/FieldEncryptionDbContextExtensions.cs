using System.Linq.Expressions;
using System.Reflection;
using CrmSecurity.Crypto.Fields;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

namespace CrmSecurity.Crypto.EntityFramework;

/// <summary>Turns field encryption on for a DbContext, queries encrypted fields by equality, and shreds data subjects.</summary>
public static class FieldEncryptionDbContextExtensions
{
    /// <summary>
    /// Adds the interceptor that encrypts on save and decrypts on read for entities configured with <c>Encrypted(...)</c>.
    /// Without an <paramref name="authorizer"/> (here or per context with <see cref="UseDecryptAuthorizer"/>) nothing is
    /// decrypted: every value is withheld and the refusal audited (deny by default).
    /// </summary>
    /// <param name="options">The context options.</param>
    /// <param name="encryption">The runtime (keyring, subject keys, events).</param>
    /// <param name="tenant">The tenant of this context's data (called per operation, so it can come from the current request).</param>
    /// <param name="authorizer">
    /// Decides each value before it is decrypted and names the reader for the access events; typically a scoped service
    /// for the current request's user (with <c>AddDbContext((services, options) =&gt; ...)</c>).
    /// </param>
    public static DbContextOptionsBuilder UseFieldEncryption(this DbContextOptionsBuilder options, FieldEncryption encryption, Func<string> tenant, IFieldDecryptAuthorizer? authorizer = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(encryption);
        ArgumentNullException.ThrowIfNull(tenant);
        // One shared interceptor for every context (EF Core keys its internal service provider on singleton
        // interceptors); this context's keys, tenant and reader go in its options.
        ((IDbContextOptionsBuilderInfrastructure)options).AddOrUpdateExtension(new FieldEncryptionOptionsExtension(encryption, tenant, authorizer));
        return options.AddInterceptors(FieldEncryptionInterceptor.Shared);
    }

    /// <summary>
    /// Sets who reads through this context from now on, in place of the authorizer given with the options: for an
    /// application that learns its reader's permissions only after the context exists.
    /// </summary>
    /// <param name="context">A context using field encryption.</param>
    /// <param name="authorizer">Decides each value before it is decrypted.</param>
    public static DbContext UseDecryptAuthorizer(this DbContext context, IFieldDecryptAuthorizer authorizer)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(authorizer);
        FieldEncryptionInterceptor.Settings(context); // throws when field encryption is not on
        FieldEncryptionInterceptor.Shared.Authorize(context, authorizer);
        return context;
    }

    /// <summary>
    /// Whether <paramref name="property"/> of <paramref name="entity"/> was withheld from the reader when it was read (its
    /// authorizer refused it, so it reads null although a value is stored). Saving the entity keeps the stored value
    /// unless a new one is set.
    /// </summary>
    /// <param name="context">The context the entity was read through.</param>
    /// <param name="entity">The entity.</param>
    /// <param name="property">The encrypted property's name.</param>
    public static bool IsDecryptWithheld(this DbContext context, object entity, string property)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentException.ThrowIfNullOrEmpty(property);
        FieldEncryptionInterceptor.Settings(context);
        return FieldEncryptionInterceptor.Shared.IsWithheld(entity, property);
    }

    /// <summary>
    /// Rows whose encrypted <paramref name="property"/> equals <paramref name="value"/>, found through the blind
    /// index <paramref name="index"/> (for a deterministic property without an index: through its ciphertext under
    /// every key version that still decrypts). Blind indexes are truncated, so results can include false positives:
    /// compare the decrypted value before acting on a row (<see cref="WhereEncryptedEqualsAsync"/> does).
    /// </summary>
    /// <typeparam name="TEntity">The entity.</typeparam>
    /// <param name="set">The entity set.</param>
    /// <param name="property">The encrypted property.</param>
    /// <param name="value">The value to look for (normalised by the index's normaliser).</param>
    /// <param name="index">The blind index name; null for a deterministic property's ciphertext.</param>
    public static IQueryable<TEntity> WhereEncryptedMatches<TEntity>(this DbSet<TEntity> set, Expression<Func<TEntity, string?>> property, string value, string? index = null)
        where TEntity : class
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(property);
        ArgumentNullException.ThrowIfNull(value);
        var context = set.GetService<ICurrentDbContext>().Context;
        var settings = FieldEncryptionInterceptor.Settings(context);
        var entityType = context.Model.FindEntityType(typeof(TEntity)) ?? throw new InvalidOperationException($"{typeof(TEntity).Name} is not in the model.");
        var name = property.Body is MemberExpression { Member: PropertyInfo info } ? info.Name : throw new ArgumentException("Pass a property access.", nameof(property));
        var encrypted = EncryptedEntity.Of(entityType)?.Properties.SingleOrDefault(p => p.Name == name)
            ?? throw new InvalidOperationException($"{typeof(TEntity).Name}.{name} is not encrypted.");
        var field = new FieldContext(settings.Tenant(), entityType.GetTableName() ?? entityType.ShortName(), name);

        if (index is null)
        {
            if (encrypted.Mode != EncryptionMode.Deterministic || EncryptedEntity.Of(entityType)!.SubjectProperty is not null)
            {
                throw new InvalidOperationException($"{typeof(TEntity).Name}.{name} is randomized: name one of its blind indexes ({string.Join(", ", encrypted.Indexes.Select(i => i.Definition.Name))}).");
            }

            var keyset = settings.Encryption.Keyring.Get(Providers.Keyring.FieldsKeyset);
            var candidates = keyset.Versions.Where(v => v.Status != Keys.KeyStatus.Destroyed)
                .Select(v => DeterministicUnder(keyset, v.Version, field, value)).ToList();
            return set.Where(Contains<TEntity>(encrypted.CiphertextProperty, candidates));
        }

        var (definition, shadow) = encrypted.Indexes.SingleOrDefault(i => i.Definition.Name == index);
        if (definition is null)
        {
            throw new InvalidOperationException($"{typeof(TEntity).Name}.{name} has no blind index named '{index}'.");
        }

        // During a blind-index rotation a row's index may be under the old or the new version: look for both.
        var blinds = settings.Encryption.LookupIndexes(field, definition).Select(i => i.ComputeFragment(value)).ToList();
        return set.Where(blinds.Count == 1 ? Equal<TEntity>(shadow, blinds[0]) : Contains<TEntity>(shadow, blinds));
    }

    /// <summary>Like <see cref="WhereEncryptedMatches"/>, then drops false positives by comparing the decrypted values after normalisation.</summary>
    /// <typeparam name="TEntity">The entity.</typeparam>
    /// <param name="set">The entity set.</param>
    /// <param name="property">The encrypted property.</param>
    /// <param name="value">The value to look for.</param>
    /// <param name="index">The blind index name; null for a deterministic property's ciphertext.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    public static async Task<List<TEntity>> WhereEncryptedEqualsAsync<TEntity>(this DbSet<TEntity> set, Expression<Func<TEntity, string?>> property, string value, string? index = null, CancellationToken cancellationToken = default)
        where TEntity : class
    {
        ArgumentNullException.ThrowIfNull(property);
        var rows = await set.WhereEncryptedMatches(property, value, index).ToListAsync(cancellationToken);
        var get = property.Compile();
        Func<string, string?> normalise = index is null ? v => v : v => Normalise(set, property, index, v);
        var wanted = normalise(value);
        return [.. rows.Where(r => get(r) is { } v && wanted is not null && string.Equals(normalise(v), wanted, StringComparison.Ordinal))];
    }

    /// <summary>
    /// Crypto-shreds one data subject: destroys the subject's key in the subject-key store (so every field encrypted
    /// under it, in every copy of the data, is unreadable), records the tombstone, sets every blind index of that
    /// subject's rows to NULL in every entity of this model that has <c>HasDataSubject</c>, and writes the shred
    /// access event.
    /// </summary>
    /// <param name="context">A context using field encryption.</param>
    /// <param name="subjectId">The subject id.</param>
    /// <param name="actor">Who asked for it, for the audit event.</param>
    /// <param name="cancellationToken">Cancels the database calls.</param>
    /// <returns>Number of rows whose blind indexes were purged.</returns>
    public static async Task<int> ShredDataSubjectAsync(this DbContext context, string subjectId, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrWhiteSpace(subjectId);
        var settings = FieldEncryptionInterceptor.Settings(context);
        var store = settings.Encryption.SubjectKeys ?? throw new InvalidOperationException("No subject key store is configured.");
        await store.ShredAsync(settings.Tenant(), subjectId, actor, cancellationToken);
        FieldEncryptionInterceptor.Shared.Forget(context);
        return await PurgeBlindIndexesAsync(context, subjectId, cancellationToken);
    }

    /// <summary>
    /// After a backup was restored, makes every recorded shred hold again: re-applies the shreds recorded in the data
    /// database to the subject-key store (<see cref="Subjects.SubjectKeyStore.ReapplyShredsAsync"/>), and clears the
    /// blind indexes of every shredded subject of this context's tenant, which a restored data backup brings back.
    /// Idempotent.
    /// </summary>
    /// <param name="context">A context using field encryption.</param>
    /// <param name="actor">Who runs it, for the audit events.</param>
    /// <param name="cancellationToken">Cancels the database calls.</param>
    /// <returns>What the store re-applied, and the number of rows whose blind indexes were purged.</returns>
    public static async Task<(Subjects.ShredReapplication Store, int RowsPurged)> ReapplyShredsAsync(this DbContext context, string actor, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var settings = FieldEncryptionInterceptor.Settings(context);
        var store = settings.Encryption.SubjectKeys ?? throw new InvalidOperationException("No subject key store is configured.");
        var reapplied = await store.ReapplyShredsAsync([], actor, cancellationToken);
        FieldEncryptionInterceptor.Shared.Forget(context);
        var purged = 0;
        foreach (var shred in await store.ListShreddedAsync(settings.Tenant(), cancellationToken))
        {
            purged += await PurgeBlindIndexesAsync(context, shred.SubjectId, cancellationToken);
        }

        return (reapplied, purged);
    }

    private static async Task<int> PurgeBlindIndexesAsync(DbContext context, string subjectId, CancellationToken cancellationToken)
    {
        var sql = context.GetService<ISqlGenerationHelper>();
        var purged = 0;
        foreach (var entityType in context.Model.GetEntityTypes())
        {
            if (EncryptedEntity.Of(entityType) is not { SubjectProperty: { } subjectProperty } metadata)
            {
                continue;
            }

            var table = entityType.GetTableName()!;
            var storeObject = Microsoft.EntityFrameworkCore.Metadata.StoreObjectIdentifier.Table(table, entityType.GetSchema());
            var columns = metadata.Properties.SelectMany(p => p.Indexes).Select(i => entityType.FindProperty(i.Property)!.GetColumnName(storeObject)!).ToList();
            if (columns.Count == 0)
            {
                continue;
            }

            var subjectColumn = entityType.FindProperty(subjectProperty)!.GetColumnName(storeObject)!;
            object? subjectValue;
            try
            {
                subjectValue = System.ComponentModel.TypeDescriptor.GetConverter(entityType.FindProperty(subjectProperty)!.ClrType).ConvertFromInvariantString(subjectId);
            }
            catch (Exception e) when (e is FormatException or NotSupportedException or ArgumentException)
            {
                continue; // not a subject id of this entity's type (a shred of another entity's subject)
            }

            var statement = $"UPDATE {sql.DelimitIdentifier(table, entityType.GetSchema())} SET {string.Join(", ", columns.Select(c => sql.DelimitIdentifier(c) + " = NULL"))} WHERE {sql.DelimitIdentifier(subjectColumn)} = {{0}}";
            purged += await context.Database.ExecuteSqlRawAsync(statement, [subjectValue!], cancellationToken);
        }

        return purged;
    }

    // Null when the value is not of the normaliser's kind: it then equals nothing.
    private static string? Normalise<TEntity>(DbSet<TEntity> set, Expression<Func<TEntity, string?>> property, string index, string value)
        where TEntity : class
    {
        var context = set.GetService<ICurrentDbContext>().Context;
        var name = ((MemberExpression)property.Body).Member.Name;
        var definition = EncryptedEntity.Of(context.Model.FindEntityType(typeof(TEntity))!)!.Properties.Single(p => p.Name == name).Indexes.Single(i => i.Definition.Name == index).Definition;
        try
        {
            return definition.Transform.Apply(definition.Normaliser.Normalise(value));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static byte[] DeterministicUnder(Keys.Keyset keyset, uint version, FieldContext field, string value)
    {
        // Build a one-version view so the ciphertext is made under that version (equality must find rows not yet re-encrypted).
        var builder = Keys.KeysetBuilder.Restore(keyset.Name, keyset.Id);
        foreach (var key in keyset.Keys)
        {
            builder.AddExisting(key.Version, key.Version == version ? Keys.KeyStatus.Active : Keys.KeyStatus.Destroyed, key.CreatedAt, key.Version == version ? Primitives.SecretBytes.CopyOf(key.Material!.Span) : null, key.Version == version);
        }

        using var view = builder.Build();
        using var encryptor = view.CreateDeterministicFieldEncryptor(field);
        return encryptor.EncryptString(value);
    }

    private static Expression<Func<TEntity, bool>> Equal<TEntity>(string shadow, byte[] value)
    {
        var entity = Expression.Parameter(typeof(TEntity), "e");
        var column = Expression.Call(typeof(EF), nameof(EF.Property), [typeof(byte[])], entity, Expression.Constant(shadow));
        var holder = new ValueHolder { Value = value };
        return Expression.Lambda<Func<TEntity, bool>>(Expression.Equal(column, Expression.Property(Expression.Constant(holder), nameof(ValueHolder.Value))), entity);
    }

    private static Expression<Func<TEntity, bool>> Contains<TEntity>(string shadow, List<byte[]> values)
    {
        var entity = Expression.Parameter(typeof(TEntity), "e");
        var column = Expression.Call(typeof(EF), nameof(EF.Property), [typeof(byte[])], entity, Expression.Constant(shadow));
        Expression? body = null;
        foreach (var value in values)
        {
            var holder = new ValueHolder { Value = value };
            var equal = Expression.Equal(column, Expression.Property(Expression.Constant(holder), nameof(ValueHolder.Value)));
            body = body is null ? equal : Expression.OrElse(body, equal);
        }

        return Expression.Lambda<Func<TEntity, bool>>(body ?? Expression.Constant(false), entity);
    }


    // A closure-like holder so EF Core sends the value as a parameter rather than inlining it in the SQL.
    private sealed class ValueHolder
    {
        public byte[]? Value { get; init; }
    }
}
