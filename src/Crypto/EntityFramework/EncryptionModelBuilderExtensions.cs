using System.Linq.Expressions;
using System.Reflection;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace CrmSecurity.Crypto.EntityFramework;

/// <summary>
/// Marks entity properties as encrypted in <c>OnModelCreating</c>. The CLR property keeps the plaintext and
/// is not mapped; the ciphertext goes to a shadow property <c>{Property}_encrypted</c> (binary column) and each
/// blind index to <c>{Property}_bidx_{name}</c> (binary column with a database index). Encryption happens in
/// SaveChanges and decryption when rows are read, through the interceptor that
/// <see cref="FieldEncryptionDbContextExtensions.UseFieldEncryption"/> adds: that is how the row id (the
/// primary key), which a value converter never sees, is bound into randomized ciphertexts.
/// </summary>
public static class EncryptionModelBuilderExtensions
{
    /// <summary>Encrypts a string property.</summary>
    /// <typeparam name="TEntity">The entity.</typeparam>
    /// <param name="entity">The entity builder.</param>
    /// <param name="property">The property, e.g. <c>c =&gt; c.Email</c>.</param>
    /// <param name="mode">Randomized (default, bound to the row) or deterministic (equality lookup on the ciphertext).</param>
    public static EncryptedPropertyBuilder<TEntity> Encrypted<TEntity>(this EntityTypeBuilder<TEntity> entity, Expression<Func<TEntity, string?>> property, EncryptionMode mode = EncryptionMode.Randomized)
        where TEntity : class
    {
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(property);
        var member = property.Body is MemberExpression { Member: PropertyInfo info } ? info : throw new ArgumentException("Pass a property access such as c => c.Email.", nameof(property));
        var metadata = Metadata(entity);
        if (metadata.Properties.Any(p => p.Name == member.Name))
        {
            throw new InvalidOperationException($"{typeof(TEntity).Name}.{member.Name} is already encrypted.");
        }

        var encrypted = new EncryptedProperty(member, mode);
        metadata.Properties.Add(encrypted);
        entity.Ignore(member.Name);
        entity.Property<byte[]?>(encrypted.CiphertextProperty);
        return new EncryptedPropertyBuilder<TEntity>(entity, encrypted);
    }

    /// <summary>
    /// Encrypts this entity's fields under per-data-subject keys (for crypto-shredding): <paramref name="subject"/>
    /// gives the subject id (for example the contact id). Only randomized encryption is allowed for such entities.
    /// </summary>
    /// <typeparam name="TEntity">The entity.</typeparam>
    /// <param name="entity">The entity builder.</param>
    /// <param name="subject">The property holding the subject id.</param>
    public static EntityTypeBuilder<TEntity> HasDataSubject<TEntity>(this EntityTypeBuilder<TEntity> entity, Expression<Func<TEntity, object?>> subject)
        where TEntity : class
    {
        ArgumentNullException.ThrowIfNull(entity);
        ArgumentNullException.ThrowIfNull(subject);
        var body = subject.Body is UnaryExpression { NodeType: ExpressionType.Convert } convert ? convert.Operand : subject.Body;
        var member = body is MemberExpression { Member: PropertyInfo info } ? info : throw new ArgumentException("Pass a property access such as c => c.Id.", nameof(subject));
        Metadata(entity).SubjectProperty = member.Name;
        return entity;
    }

    internal static EncryptedEntity Metadata<TEntity>(EntityTypeBuilder<TEntity> entity)
        where TEntity : class
    {
        if (entity.Metadata.FindAnnotation(EncryptedEntity.Annotation)?.Value is EncryptedEntity existing)
        {
            return existing;
        }

        var created = new EncryptedEntity();
        entity.HasAnnotation(EncryptedEntity.Annotation, created);
        return created;
    }
}

/// <summary>Adds blind indexes to an encrypted property.</summary>
/// <typeparam name="TEntity">The entity.</typeparam>
public sealed class EncryptedPropertyBuilder<TEntity>
    where TEntity : class
{
    private readonly EntityTypeBuilder<TEntity> _entity;
    private readonly EncryptedProperty _property;

    internal EncryptedPropertyBuilder(EntityTypeBuilder<TEntity> entity, EncryptedProperty property)
    {
        _entity = entity;
        _property = property;
    }

    /// <summary>
    /// Adds a blind index, checked by <see cref="BlindIndexPlanner"/> together with the property's other indexes
    /// for <paramref name="expectedRows"/> rows: a configuration that leaks more than CipherSweet's rule allows
    /// (or is useless) throws here, with the explanation, when the model is built.
    /// </summary>
    /// <param name="name">Index name (unique per property).</param>
    /// <param name="normaliser">How values are normalised.</param>
    /// <param name="bits">Bits kept.</param>
    /// <param name="expectedRows">How many rows the table is expected to hold.</param>
    /// <param name="transform">Which part of the value is indexed (whole when null).</param>
    public EncryptedPropertyBuilder<TEntity> WithBlindIndex(string name, Normaliser normaliser, int bits, long expectedRows, IndexTransform? transform = null)
    {
        var definition = new BlindIndexDefinition(name, bits, normaliser, transform);
        if (_property.Indexes.Any(i => i.Definition.Name == name))
        {
            throw new InvalidOperationException($"{typeof(TEntity).Name}.{_property.Name} already has a blind index named '{name}'.");
        }

        BlindIndexPlanner.Require(expectedRows, [.. _property.Indexes.Select(i => i.Definition), definition]);
        var shadow = EncryptedProperty.IndexProperty(_property.Name, name);
        _property.Indexes.Add((definition, shadow));
        _entity.Property<byte[]?>(shadow);
        _entity.HasIndex(shadow);
        return this;
    }
}
