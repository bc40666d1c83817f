using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.Tokens;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Support;

/// <summary>A client's key pair for <c>private_key_jwt</c>: the public JWKS to register, and assertions it signs (RFC 7523 §3).</summary>
public sealed class ClientKeyPair : IDisposable
{
    private readonly AsymmetricAlgorithm _key;

    private ClientKeyPair(AsymmetricAlgorithm key, string algorithm, string keyId)
    {
        _key = key;
        Algorithm = algorithm;
        KeyId = keyId;
    }

    public string Algorithm { get; }

    public string KeyId { get; }

    public static ClientKeyPair Ec(string keyId = "es-1") => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), SecurityAlgorithms.EcdsaSha256, keyId);

    public static ClientKeyPair Rsa(string keyId = "rs-1") => new(RSA.Create(2048), SecurityAlgorithms.RsaSha256, keyId);

    /// <summary>The public key as one JWK (no private members).</summary>
    public JsonObject PublicJwk()
    {
        if (_key is ECDsa ec)
        {
            var p = ec.ExportParameters(includePrivateParameters: false);
            return new JsonObject { ["kty"] = "EC", ["crv"] = "P-256", ["kid"] = KeyId, ["use"] = "sig", ["x"] = Base64Url(p.Q.X!), ["y"] = Base64Url(p.Q.Y!) };
        }

        var r = ((RSA)_key).ExportParameters(includePrivateParameters: false);
        return new JsonObject { ["kty"] = "RSA", ["kid"] = KeyId, ["use"] = "sig", ["n"] = Base64Url(r.Modulus!), ["e"] = Base64Url(r.Exponent!) };
    }

    /// <summary>The JWKS text to put into <c>Identity:Clients:N:Jwks</c>.</summary>
    public string Jwks() => new JsonObject { ["keys"] = new JsonArray(PublicJwk()) }.ToJsonString();

    /// <summary>The public key as PEM (SubjectPublicKeyInfo): what an attacker who read the JWKS knows.</summary>
    public string PublicPem() => _key is ECDsa ec ? ec.ExportSubjectPublicKeyInfoPem() : ((RSA)_key).ExportSubjectPublicKeyInfoPem();

    /// <summary>The private key as PKCS#8 PEM, for a third-party client library.</summary>
    public string PrivatePem() => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>Signs <paramref name="claims"/> with this key, with the header a typical client library writes (typ JWT).</summary>
    public string Sign(JsonObject claims, string? type = "JWT")
    {
        var header = new JsonObject { ["alg"] = Algorithm, ["kid"] = KeyId };
        if (type is not null)
        {
            header["typ"] = type;
        }

        var input = Base64Url(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        var data = Encoding.ASCII.GetBytes(input);
        var signature = _key is ECDsa ec
            ? ec.SignData(data, HashAlgorithmName.SHA256) // IEEE P1363 r||s, as JWS requires (RFC 7518 §3.4)
            : ((RSA)_key).SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return input + "." + Base64Url(signature);
    }

    /// <summary>The claims of a valid assertion of <paramref name="clientId"/> for <paramref name="audience"/>, each new (fresh jti).</summary>
    public static JsonObject Claims(string clientId, string audience, TimeSpan? lifetime = null)
    {
        var now = DateTimeOffset.UtcNow;
        return new JsonObject
        {
            ["iss"] = clientId,
            ["sub"] = clientId,
            ["aud"] = audience,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["exp"] = now.Add(lifetime ?? TimeSpan.FromMinutes(2)).ToUnixTimeSeconds(),
        };
    }

    /// <summary>An unsigned JWT (<c>alg: none</c>, RFC 7519 §6).</summary>
    public static string WithAlgorithmNone(JsonObject claims) =>
        Base64Url(Encoding.UTF8.GetBytes("""{"alg":"none","typ":"JWT"}""")) + "." + Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString())) + ".";

    /// <summary>HS256 keyed with <paramref name="secret"/> (the algorithm-confusion attack uses the public key as the HMAC key).</summary>
    public string SignHs256(JsonObject claims, string secret)
    {
        var header = Base64Url(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { alg = "HS256", typ = "JWT", kid = KeyId })));
        var payload = Base64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        var signature = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.ASCII.GetBytes(header + "." + payload));
        return header + "." + payload + "." + Base64Url(signature);
    }

    public void Dispose() => _key.Dispose();
}
