using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmSecurity.Identity.Data;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace CrmSecurity.Identity.Protocol.Dpop;

/// <summary>A DPoP proof that passed every check of RFC 9449 §4.3 but the replay check (<see cref="DpopProofs.TrySpendAsync"/>).</summary>
/// <param name="Thumbprint">RFC 7638 SHA-256 thumbprint (base64url) of the proof's public key: the <c>cnf.jkt</c> it binds to.</param>
/// <param name="JwtId">The proof's <c>jti</c>.</param>
/// <param name="IssuedAt">The proof's <c>iat</c>.</param>
internal sealed record DpopProof(string Thumbprint, string JwtId, DateTimeOffset IssuedAt);

/// <summary>The outcome of checking a <c>DPoP</c> header: a proof, or the error code and an ASCII description (no quotes: it goes into <c>WWW-Authenticate</c>).</summary>
internal sealed record DpopCheck(DpopProof? Proof, string? Error, string? Description)
{
    public static DpopCheck Invalid(string description) => new(null, DpopProofs.InvalidProof, description);
}

/// <summary>
/// Checks DPoP proofs (RFC 9449 §4.3) for the token endpoint and for this host's APIs: one parser and one set of rules,
/// so both sides refuse the same things. Pure apart from the clock, the nonce protector and the replay store.
/// </summary>
internal sealed class DpopProofs(IOptions<IdentitySettings> settings, DpopNonces nonces, TimeProvider time)
{
    /// <summary>The request header carrying the proof (RFC 9449 §4.1).</summary>
    public const string Header = "DPoP";

    /// <summary>The response header carrying a server nonce (RFC 9449 §8.1).</summary>
    public const string NonceHeader = "DPoP-Nonce";

    /// <summary>The authorization scheme and token type of a DPoP-bound access token (RFC 9449 §5, §7.1).</summary>
    public const string Scheme = "DPoP";

    /// <summary>RFC 9449 §5, §7.1: the proof is missing or not acceptable.</summary>
    public const string InvalidProof = "invalid_dpop_proof";

    /// <summary>RFC 9449 §8: the proof must carry the nonce the server just provided.</summary>
    public const string UseNonce = "use_dpop_nonce";

    /// <summary>The proof's <c>typ</c> (RFC 9449 §4.2).</summary>
    public const string ProofType = "dpop+jwt";

    /// <summary>Longest proof read (a proof is a few hundred bytes; an RSA-4096 key makes it about 1.5 KB).</summary>
    private const int MaxProofLength = 8 * 1024;

    /// <summary>Allowance for a client clock running ahead of ours.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    /// <summary>
    /// RFC 9449 §4.3 item 5: asymmetric algorithms only, never <c>none</c> or an HMAC (a shared key proves nothing about
    /// the holder). Discovery lists them as <c>dpop_signing_alg_values_supported</c> (§5.1).
    /// </summary>
    public static readonly string[] Algorithms = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512"];

    /// <summary>Checks the <c>Identity:Dpop</c> settings.</summary>
    public static void ValidateSettings(DpopSettings settings, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(errors);
        if (settings.ProofLifetime <= TimeSpan.Zero || settings.ProofLifetime > TimeSpan.FromHours(1))
        {
            errors.Add("Identity:Dpop:ProofLifetime must be positive and at most 01:00:00 (RFC 9449 §11.1: proofs are short-lived), e.g. 00:05:00.");
        }

        if (settings.NonceLifetime <= TimeSpan.Zero || settings.NonceLifetime > TimeSpan.FromHours(1))
        {
            errors.Add("Identity:Dpop:NonceLifetime must be positive and at most 01:00:00, e.g. 00:05:00.");
        }
    }

    /// <summary>
    /// Checks the <c>DPoP</c> header of a request to <paramref name="requestUri"/> with <paramref name="method"/>
    /// (RFC 9449 §4.3). <paramref name="accessToken"/> is the token presented with it at a resource (§7: <c>ath</c>);
    /// <paramref name="requireNonce"/> demands a nonce this server issued (§8).
    /// </summary>
    public DpopCheck Check(StringValues headers, string method, Uri requestUri, string? accessToken, bool requireNonce)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(requestUri);
        // RFC 9449 §4.3 item 1: exactly one DPoP header.
        if (headers.Count != 1 || string.IsNullOrEmpty(headers[0]))
        {
            return DpopCheck.Invalid(headers.Count > 1 ? "More than one DPoP header was sent (RFC 9449 section 4.3)." : "The request has no DPoP proof (RFC 9449 section 4.3).");
        }

        var jwt = headers[0]!;
        var parts = jwt.Split('.');
        // RFC 9449 §4.3 item 2: a well-formed JWT (compact JWS: header, payload, signature).
        if (jwt.Length > MaxProofLength || parts.Length != 3 || parts.Any(p => p.Length == 0)
            || Json(parts[0]) is not { } header || Json(parts[1]) is not { } payload || Base64Url(parts[2]) is not { } signature)
        {
            return DpopCheck.Invalid("The DPoP proof is not a signed JWT (RFC 9449 section 4.3).");
        }

        // RFC 9449 §4.3 item 4: typ is dpop+jwt, so no other JWT the client signed passes as a proof (RFC 8725 §3.11).
        if (String(header, "typ") != ProofType)
        {
            return DpopCheck.Invalid("The DPoP proof must have typ dpop+jwt (RFC 9449 section 4.2).");
        }

        // RFC 9449 §4.3 item 5: an asymmetric algorithm this server supports.
        var alg = String(header, "alg");
        if (alg is null || !Algorithms.Contains(alg, StringComparer.Ordinal))
        {
            return DpopCheck.Invalid($"The DPoP proof's alg must be one of {string.Join(' ', Algorithms)} (RFC 9449 section 4.3).");
        }

        // RFC 9449 §4.3 items 6 and 7: the jwk is a public key (no private member) that verifies the signature.
        if (!header.TryGetProperty("jwk", out var jwk) || jwk.ValueKind != JsonValueKind.Object || PublicKey(jwk, alg) is not { } key)
        {
            return DpopCheck.Invalid("The DPoP proof's jwk must be a public EC or RSA key (2048 bits or more) matching its alg (RFC 9449 section 4.3).");
        }

        using (key.Algorithm)
        {
            if (!Verify(key.Algorithm, alg, Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), signature))
            {
                return DpopCheck.Invalid("The DPoP proof's signature does not verify with its jwk (RFC 9449 section 4.3).");
            }
        }

        // RFC 9449 §4.2 / §4.3 item 3: jti, htm, htu and iat are required.
        var jti = String(payload, "jti");
        var htm = String(payload, "htm");
        var htu = String(payload, "htu");
        if (string.IsNullOrEmpty(jti) || jti.Length > 256 || htm is null || htu is null
            || !payload.TryGetProperty("iat", out var iatValue) || iatValue.ValueKind != JsonValueKind.Number || !iatValue.TryGetDouble(out var iat))
        {
            return DpopCheck.Invalid("The DPoP proof needs the claims jti, htm, htu and iat (RFC 9449 section 4.2).");
        }

        // RFC 9449 §4.3 item 8: htm is the method of this request.
        if (!string.Equals(htm, method, StringComparison.Ordinal))
        {
            return DpopCheck.Invalid($"The DPoP proof's htm does not match the request method {method} (RFC 9449 section 4.3).");
        }

        // RFC 9449 §4.3 item 9: htu is this request's URI without query and fragment, after syntax- and scheme-based
        // normalisation (RFC 3986 §6.2.2, §6.2.3: case of scheme and host, default port, percent-encoding, dot segments).
        if (Normalize(htu) is not { } claimed || !string.Equals(claimed, Normalize(requestUri.AbsoluteUri), StringComparison.Ordinal))
        {
            return DpopCheck.Invalid("The DPoP proof's htu does not match the request URI (RFC 9449 section 4.3).");
        }

        // RFC 9449 §4.3 item 11: iat within the acceptable window; the jti is remembered as long (§11.1).
        var issuedAt = DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Clamp(iat * 1000, 0, 253402300799000));
        var now = time.GetUtcNow();
        if (issuedAt < now - settings.Value.Dpop.ProofLifetime || issuedAt > now + ClockSkew)
        {
            return DpopCheck.Invalid("The DPoP proof's iat is too old or in the future; sign a fresh proof for each request (RFC 9449 section 4.3).");
        }

        // RFC 9449 §4.3 item 10 / §8: the nonce this server provided.
        if (requireNonce && !nonces.IsValid(String(payload, "nonce")))
        {
            return new DpopCheck(null, UseNonce, "Authorization server requires nonce in DPoP proof (RFC 9449 section 8).");
        }

        // RFC 9449 §4.3 item 12 / §7: at a resource, ath is the hash of exactly the access token presented with the proof.
        if (accessToken is not null)
        {
            var expected = Encoding.ASCII.GetBytes(Base64UrlEncode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken))));
            if (String(payload, "ath") is not { } ath || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(ath), expected))
            {
                return DpopCheck.Invalid("The DPoP proof's ath is missing or is not the hash of the access token (RFC 9449 section 4.3).");
            }
        }

        return new DpopCheck(new DpopProof(key.Thumbprint, jti, issuedAt), null, null);
    }

    /// <summary>
    /// RFC 9449 §11.1: a proof is used once. Its <c>jti</c> (scoped to its key, so nobody can spend another key's jti)
    /// is recorded until the proof would be too old anyway; false when it was used before.
    /// </summary>
    public Task<bool> TrySpendAsync(IdentityStore store, DpopProof proof, string clientId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(proof);
        var id = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("dpop\0" + proof.Thumbprint + "\0" + proof.JwtId)));
        var now = time.GetUtcNow();
        return store.TrySpendOnceAsync(id, clientId, proof.IssuedAt + settings.Value.Dpop.ProofLifetime + ClockSkew, now, cancellationToken);
    }

    /// <summary>RFC 7638 §3: the SHA-256 thumbprint over the required members, in lexicographic order, without whitespace.</summary>
    public static string Thumbprint(JsonElement jwk)
    {
        var json = String(jwk, "kty") == "EC"
            ? $$"""{"crv":"{{String(jwk, "crv")}}","kty":"EC","x":"{{String(jwk, "x")}}","y":"{{String(jwk, "y")}}"}"""
            : $$"""{"e":"{{String(jwk, "e")}}","kty":"RSA","n":"{{String(jwk, "n")}}"}""";
        return Base64UrlEncode(SHA256.HashData(Encoding.UTF8.GetBytes(json)));
    }

    /// <summary>The URI as compared for htu: absolute http(s), normalised, without query and fragment.</summary>
    private static string? Normalize(string uri) =>
        Uri.TryCreate(uri, UriKind.Absolute, out var parsed) && (parsed.Scheme == Uri.UriSchemeHttps || parsed.Scheme == Uri.UriSchemeHttp)
            ? parsed.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped)
            : null;

    private sealed record Key(AsymmetricAlgorithm Algorithm, string Thumbprint);

    /// <summary>The public key of a jwk, or null when it is not an acceptable key for <paramref name="alg"/>.</summary>
    private static Key? PublicKey(JsonElement jwk, string alg)
    {
        // RFC 9449 §4.3 item 7: the jwk must not contain a private key (EC d; RSA d, p, q, dp, dq, qi, oth; oct k).
        string[] privateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
        if (privateMembers.Any(m => jwk.TryGetProperty(m, out _)))
        {
            return null;
        }

        try
        {
            switch (String(jwk, "kty"))
            {
                case "EC" when alg.StartsWith("ES", StringComparison.Ordinal):
                    var (curve, size, crv) = alg switch
                    {
                        "ES256" => (ECCurve.NamedCurves.nistP256, 32, "P-256"),
                        "ES384" => (ECCurve.NamedCurves.nistP384, 48, "P-384"),
                        _ => (ECCurve.NamedCurves.nistP521, 66, "P-521"),
                    };
                    if (String(jwk, "crv") != crv || Coordinate(jwk, "x", size) is not { } x || Coordinate(jwk, "y", size) is not { } y)
                    {
                        return null;
                    }

                    // ImportParameters refuses a point that is not on the curve (invalid-curve attacks).
                    return new Key(ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y } }), Thumbprint(jwk));
                case "RSA" when alg.StartsWith("RS", StringComparison.Ordinal) || alg.StartsWith("PS", StringComparison.Ordinal):
                    if (Canonical(jwk, "n") is not { Length: >= 256 } n || Canonical(jwk, "e") is not { Length: > 0 and <= 8 } e)
                    {
                        return null; // RSA below 2048 bits is not accepted (NIST SP 800-131A)
                    }

                    var rsa = RSA.Create();
                    rsa.ImportParameters(new RSAParameters { Modulus = n, Exponent = e });
                    return new Key(rsa, Thumbprint(jwk));
                default:
                    return null;
            }
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    private static byte[]? Coordinate(JsonElement jwk, string name, int size) => Canonical(jwk, name) is { } bytes && bytes.Length == size ? bytes : null;

    /// <summary>A base64url member, only in its canonical form: the thumbprint is over the text, so two spellings of one key must not give two thumbprints.</summary>
    private static byte[]? Canonical(JsonElement jwk, string name) =>
        String(jwk, name) is { } text && Base64Url(text) is { } bytes && Base64UrlEncode(bytes) == text && (bytes.Length == 0 || bytes[0] != 0 || name is "x" or "y") ? bytes : null;

    private static bool Verify(AsymmetricAlgorithm key, string alg, byte[] data, byte[] signature)
    {
        var hash = alg[2..] switch
        {
            "256" => HashAlgorithmName.SHA256,
            "384" => HashAlgorithmName.SHA384,
            _ => HashAlgorithmName.SHA512,
        };
        return key switch
        {
            // RFC 7518 §3.4: JWS ECDSA signatures are R || S, fixed width.
            ECDsa ec => ec.VerifyData(data, signature, hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation),
            RSA rsa => rsa.VerifyData(data, signature, hash, alg.StartsWith("PS", StringComparison.Ordinal) ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1),
            _ => false,
        };
    }

    private static JsonElement? Json(string part)
    {
        if (Base64Url(part) is not { } bytes)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(bytes);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? String(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static byte[]? Base64Url(string text)
    {
        if (text.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')))
        {
            return null;
        }

        var padded = text.Replace('-', '+').Replace('_', '/');
        padded += (padded.Length % 4) switch { 2 => "==", 3 => "=", 0 => "", _ => "!" };
        try
        {
            return Convert.FromBase64String(padded);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    internal static string Base64UrlEncode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
