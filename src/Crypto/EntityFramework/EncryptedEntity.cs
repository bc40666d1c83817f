using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Fields;
using Microsoft.EntityFrameworkCore.Metadata;

namespace CrmSecurity.Crypto.EntityFramework;

/// <summary>What the model builder recorded about an entity's encrypted properties (an entity-type annotation).</summary>
internal sealed class EncryptedEntity
{
    public const string Annotation = "CrmSecurity:FieldEncryption";

    public List<EncryptedProperty> Properties { get; } = [];

    /// <summary>The property holding the data-subject id, when fields are encrypted under per-subject keys.</summary>
    public string? SubjectProperty { get; set; }

    public static EncryptedEntity? Of(IReadOnlyEntityType entityType) => entityType.FindAnnotation(Annotation)?.Value as EncryptedEntity;

    /// <summary>The row id a randomized ciphertext is bound to: the primary key as invariant text (Guid as lower-case "D").</summary>
    public static string RowId(IReadOnlyKey key, Func<IReadOnlyProperty, object?> value)
    {
        if (key.Properties.Count == 1)
        {
            return Text(value(key.Properties[0]));
        }

        // Composite keys: each part length-prefixed so that no two keys give the same text.
        return string.Join('|', key.Properties.Select(p => Text(value(p))).Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Length}:{t}")));
    }

    public static string Text(object? value) => value switch
    {
        null => throw new InvalidOperationException("A key or data-subject value is null; encrypted fields need it to bind the ciphertext."),
        Guid guid => guid.ToString("D"),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}

/// <summary>One encrypted property: the CLR property (plaintext, not mapped), its ciphertext shadow property and its blind indexes.</summary>
internal sealed class EncryptedProperty(PropertyInfo property, EncryptionMode mode)
{
    public const string CiphertextSuffix = "_encrypted";

    public string Name { get; } = property.Name;

    public EncryptionMode Mode { get; } = mode;

    public string CiphertextProperty { get; } = property.Name + CiphertextSuffix;

    public List<(BlindIndexDefinition Definition, string Property)> Indexes { get; } = [];

    public Func<object, string?> Get { get; } = Compile<Func<object, string?>>(property, set: false);

    public Action<object, string?> Set { get; } = Compile<Action<object, string?>>(property, set: true);

    public static string IndexProperty(string property, string index) => $"{property}_bidx_{index}";

    private static T Compile<T>(PropertyInfo property, bool set)
    {
        var instance = Expression.Parameter(typeof(object), "entity");
        var typed = Expression.Convert(instance, property.DeclaringType!);
        if (!set)
        {
            return Expression.Lambda<T>(Expression.Property(typed, property), instance).Compile();
        }

        var value = Expression.Parameter(typeof(string), "value");
        return Expression.Lambda<T>(Expression.Assign(Expression.Property(typed, property), value), instance, value).Compile();
    }
}
