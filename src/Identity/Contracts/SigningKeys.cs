using CrmSecurity.Identity.Keys;

namespace CrmSecurity.Identity.Contracts;

/// <summary>The token signing keys, for the host's <c>signing-keys</c> verbs.</summary>
public interface ISigningKeys
{
    /// <summary>Every key generation, oldest first, with what it does now.</summary>
    IReadOnlyList<SigningKeyGeneration> Generations { get; }

    /// <summary>
    /// Adds a generation, published in JWKS at once; it signs after <c>Identity:SigningKeys:PublishLead</c>, or at once when
    /// <paramref name="immediately"/> (for a suspected key compromise). Returns the new generation's number.
    /// </summary>
    Task<int> RotateAsync(bool immediately, CancellationToken cancellationToken);
}

/// <summary>One generation of signing keys.</summary>
/// <param name="Number">The generation number (1 is the first).</param>
/// <param name="State"><c>signing</c>, <c>next</c> (published, signs later), <c>retiring</c> (still published) or <c>retired</c>.</param>
/// <param name="SignsFrom">When it starts (or started) to sign.</param>
/// <param name="KeyIds">The key ids (<c>kid</c>) of its ES256 and RS256 keys.</param>
public sealed record SigningKeyGeneration(int Number, string State, DateTimeOffset SignsFrom, IReadOnlyList<string> KeyIds);

internal sealed class RingSigningKeys(SigningKeyRing ring) : ISigningKeys
{
    public IReadOnlyList<SigningKeyGeneration> Generations
    {
        get
        {
            var current = ring.Current.Number;
            var published = ring.Published.Select(g => g.Number).ToHashSet();
            return [.. ring.Generations.Select(generation => new SigningKeyGeneration(
                generation.Number,
                generation.Number == current ? "signing"
                    : generation.Number > current ? "next"
                    : published.Contains(generation.Number) ? "retiring" : "retired",
                generation.ActivatesAt,
                [generation.Es256.Key.KeyId, generation.Rs256.Key.KeyId]))];
        }
    }

    public Task<int> RotateAsync(bool immediately, CancellationToken cancellationToken) => ring.RotateAsync(immediately, cancellationToken);
}
