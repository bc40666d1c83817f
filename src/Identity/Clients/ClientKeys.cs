using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace CrmSecurity.Identity.Clients;

/// <summary>
/// The public keys a client signs its client assertions with (<c>private_key_jwt</c>, RFC 7523 §2.2, OpenID Connect Core §9),
/// given inline as a JWKS (<c>Identity:Clients:N:Jwks</c>). Checked at start, then handed to OpenIddict, which validates
/// each assertion's signature against exactly these keys.
/// </summary>
internal static class ClientKeys
{
    /// <summary>Key types a client may register: signatures only, asymmetric only.</summary>
    private static readonly string[] KeyTypes = ["RSA", "EC"];

    private static readonly string[] Curves = ["P-256", "P-384", "P-521"];

    /// <summary>Asymmetric JWS algorithms (RFC 7518 §3.1); <c>none</c> and the HMAC family are never accepted for a client key.</summary>
    private static readonly string[] Algorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

    /// <summary>Members that carry private or symmetric key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1).</summary>
    private static readonly string[] PrivateMembers = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

    /// <summary>Shortest RSA modulus accepted, in bits (NIST SP 800-131A: 2048).</summary>
    private const int MinimumRsaBits = 2048;

    /// <summary>True when the client authenticates with keys instead of (or besides) a secret.</summary>
    public static bool HasKeys(ClientSettings client) => !string.IsNullOrWhiteSpace(client.Jwks);

    /// <summary>Checks <see cref="ClientSettings.Jwks"/>; each error names <paramref name="path"/><c>:Jwks</c> and says what to fix.</summary>
    public static void Validate(ClientSettings client, string path, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(errors);
        if (!HasKeys(client))
        {
            return;
        }

        ValidateSet(client.Jwks!, $"{path}:Jwks", client.ClientId, errors);
    }

    /// <summary>
    /// Checks a JWKS as text, from configuration or fetched from the client's <c>jwks_uri</c>: the same rules apply to
    /// both, so a key set published at a URI can hold nothing the service would refuse in configuration.
    /// </summary>
    public static void ValidateSet(string jwks, string where, string clientId, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var before = errors.Count;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(jwks);
        }
        catch (JsonException e)
        {
            errors.Add($"{where} of client '{clientId}' is not valid JSON ({e.Message}). Give a JSON Web Key Set, e.g. {{\"keys\":[{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"...\",\"y\":\"...\"}}]}}.");
            return;
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("keys", out var keys) || keys.ValueKind != JsonValueKind.Array || keys.GetArrayLength() == 0)
            {
                // RFC 7517 §5: a JWK Set is an object whose "keys" member is an array of JWKs.
                errors.Add($"{where} of client '{clientId}' must be a JSON Web Key Set with at least one key: {{\"keys\":[ ... ]}} (RFC 7517 §5).");
                return;
            }

            var index = 0;
            var kids = new HashSet<string>(StringComparer.Ordinal);
            foreach (var key in keys.EnumerateArray())
            {
                ValidateKey(key, $"{where}:keys:{index}", clientId, kids, errors);
                index++;
            }
        }

        if (errors.Count == before && Parse(jwks).Keys.Count == 0)
        {
            errors.Add($"{where} of client '{clientId}' holds no key this service can use to verify a signature.");
        }
    }

    private static void ValidateKey(JsonElement key, string where, string clientId, HashSet<string> kids, List<string> errors)
    {
        if (key.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{where} of client '{clientId}' is not a JSON object (RFC 7517 §4).");
            return;
        }

        var kty = Text(key, "kty");
        if (kty is null || !KeyTypes.Contains(kty, StringComparer.Ordinal))
        {
            // Only asymmetric keys: a shared "oct" key would let the server (and anyone who reads its configuration) sign as the client.
            errors.Add($"{where} of client '{clientId}' has kty '{kty ?? "(none)"}', which is not supported. Register an RSA or EC public key.");
            return;
        }

        var privateParts = PrivateMembers.Where(member => key.TryGetProperty(member, out _)).ToList();
        if (privateParts.Count > 0)
        {
            // RFC 7517 §5 / RFC 7523 §2.2: the client keeps its private key; the server holds the public half only.
            errors.Add($"{where} of client '{clientId}' contains private key material ({string.Join(", ", privateParts)}). " +
                "Register the public key only: remove those members, and replace the key pair, since its private half has been disclosed in configuration.");
        }

        if (Text(key, "use") is { } use && use != "sig")
        {
            errors.Add($"{where} of client '{clientId}' has use '{use}'; a client authentication key has use 'sig' or none (RFC 7517 §4.2).");
        }

        if (Text(key, "alg") is { } alg && !Algorithms.Contains(alg, StringComparer.Ordinal))
        {
            errors.Add($"{where} of client '{clientId}' has alg '{alg}', which is not supported. Use one of {string.Join(", ", Algorithms)}.");
        }

        if (Text(key, "kid") is { } kid && !kids.Add(kid))
        {
            errors.Add($"{where} of client '{clientId}' repeats kid '{kid}'.");
        }

        if (kty == "RSA")
        {
            var modulus = Bytes(key, "n");
            if (modulus is null || Bytes(key, "e") is null)
            {
                errors.Add($"{where} of client '{clientId}' is an RSA key without base64url members n and e (RFC 7518 §6.3.1).");
            }
            else if (modulus.Length * 8 < MinimumRsaBits)
            {
                errors.Add($"{where} of client '{clientId}' is a {modulus.Length * 8}-bit RSA key; use at least {MinimumRsaBits} bits.");
            }
        }
        else
        {
            var crv = Text(key, "crv");
            if (crv is null || !Curves.Contains(crv, StringComparer.Ordinal))
            {
                errors.Add($"{where} of client '{clientId}' has crv '{crv ?? "(none)"}'; use P-256, P-384 or P-521.");
            }
            else if (Bytes(key, "x") is not { } x || Bytes(key, "y") is not { } y)
            {
                errors.Add($"{where} of client '{clientId}' is an EC key without base64url members x and y (RFC 7518 §6.2.1).");
            }
            else if (!IsPoint(crv, x, y))
            {
                errors.Add($"{where} of client '{clientId}' is not a valid {crv} public key (x and y are not a point on the curve).");
            }
        }
    }

    private static bool IsPoint(string crv, byte[] x, byte[] y)
    {
        var curve = crv switch { "P-256" => ECCurve.NamedCurves.nistP256, "P-384" => ECCurve.NamedCurves.nistP384, _ => ECCurve.NamedCurves.nistP521 };
        try
        {
            // Importing validates the coordinates' length and that the point lies on the curve.
            using var ec = ECDsa.Create(new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y } });
            return true;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>The key set OpenIddict stores with the registration; call after <see cref="Validate"/> found no error.</summary>
    public static JsonWebKeySet Parse(string jwks)
    {
        // Unusable keys are not skipped silently: Validate has refused them already, so none is left to skip.
        var set = new JsonWebKeySet(jwks) { SkipUnresolvedJsonWebKeys = false };
        return set;
    }

    private static string? Text(JsonElement key, string name) =>
        key.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static byte[]? Bytes(JsonElement key, string name)
    {
        if (Text(key, name) is not { Length: > 0 } text)
        {
            return null;
        }

        try
        {
            return Base64UrlEncoder.DecodeBytes(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
