namespace CrmSecurity.Crypto.BlindIndexes;

/// <summary>One blind index on a column: its name, how values are normalised, what part is indexed, and how many bits are kept.</summary>
public sealed record BlindIndexDefinition
{
    /// <summary>Defines a blind index.</summary>
    /// <param name="name">Name, unique per column (it is part of the index key's derivation).</param>
    /// <param name="bits">Bits of HMAC-SHA-256 kept, 1 to 256. Fewer bits leak less and match more false positives; see <see cref="BlindIndexPlanner"/>.</param>
    /// <param name="normaliser">Canonical form of the value.</param>
    /// <param name="transform">Which part of the normalised value is indexed; the whole value when null.</param>
    public BlindIndexDefinition(string name, int bits, Normaliser normaliser, IndexTransform? transform = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(normaliser);
        ArgumentOutOfRangeException.ThrowIfLessThan(bits, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bits, 256);
        Name = name;
        Bits = bits;
        Normaliser = normaliser;
        Transform = transform ?? IndexTransform.Whole;
    }

    /// <summary>The index name.</summary>
    public string Name { get; }

    /// <summary>Bits kept.</summary>
    public int Bits { get; }

    /// <summary>The normaliser.</summary>
    public Normaliser Normaliser { get; }

    /// <summary>The transform.</summary>
    public IndexTransform Transform { get; }

    /// <summary>Bytes of the stored index value: <c>ceil(Bits / 8)</c>.</summary>
    public int Bytes => (Bits + 7) / 8;

    /// <summary>log2 of how many distinct inputs this index can see (the transform limits it).</summary>
    public double InputDomainBits => Transform.Characters is { } n ? Math.Min(Normaliser.DomainBits, n * Normaliser.BitsPerCharacter) : Normaliser.DomainBits;
}
