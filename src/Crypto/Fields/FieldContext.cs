using System.Buffers.Binary;
using System.Text;

namespace CrmSecurity.Crypto.Fields;

/// <summary>
/// Where a value lives: tenant, table and column. Every ciphertext is bound to it (and randomized ones also to
/// their row), so a value copied to another column, table or tenant fails to decrypt.
/// </summary>
public sealed record FieldContext
{
    /// <summary>Longest tenant, table or column name in UTF-8 bytes.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>Creates a context; names are case-sensitive and must be non-empty.</summary>
    /// <param name="tenant">The tenant (organisation) the data belongs to.</param>
    /// <param name="table">The table (entity) name.</param>
    /// <param name="column">The column (field) name.</param>
    public FieldContext(string tenant, string table, string column)
    {
        Tenant = Check(tenant, nameof(tenant));
        Table = Check(table, nameof(table));
        Column = Check(column, nameof(column));
    }

    /// <summary>The tenant.</summary>
    public string Tenant { get; }

    /// <summary>The table.</summary>
    public string Table { get; }

    /// <summary>The column.</summary>
    public string Column { get; }

    /// <summary>
    /// Canonical encoding used in associated data and key derivation: for each of tenant, table, column a
    /// 2-byte big-endian length followed by its UTF-8 bytes.
    /// </summary>
    internal byte[] Encode()
    {
        var parts = new[] { Tenant, Table, Column };
        var buffer = new byte[parts.Sum(p => 2 + Encoding.UTF8.GetByteCount(p))];
        var offset = 0;
        foreach (var part in parts)
        {
            var written = Encoding.UTF8.GetBytes(part, buffer.AsSpan(offset + 2));
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(offset), (ushort)written);
            offset += 2 + written;
        }

        return buffer;
    }

    private static string Check(string value, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, name);
        if (Encoding.UTF8.GetByteCount(value) > MaxNameBytes)
        {
            throw new ArgumentException($"The {name} name is longer than {MaxNameBytes} UTF-8 bytes.", name);
        }

        return value;
    }
}
