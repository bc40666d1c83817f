using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Support;

/// <summary>A client's DPoP key (ECDSA P-256, made in the test) and the proofs it signs (RFC 9449 §4.2).</summary>
public sealed class DpopKey : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    /// <summary>The public JWK (RFC 7517) of the key.</summary>
    public Dictionary<string, string> Jwk
    {
        get
        {
            var parameters = _key.ExportParameters(false);
            return new() { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64Url(parameters.Q.X!), ["y"] = Base64Url(parameters.Q.Y!) };
        }
    }

    /// <summary>RFC 7638 thumbprint, computed here independently of the server.</summary>
    public string Thumbprint
    {
        get
        {
            var jwk = Jwk;
            return Base64Url(SHA256.HashData(Encoding.UTF8.GetBytes($$"""{"crv":"P-256","kty":"EC","x":"{{jwk["x"]}}","y":"{{jwk["y"]}}"}""")));
        }
    }

    /// <summary>A proof for <paramref name="method"/> <paramref name="url"/>; with <paramref name="accessToken"/> it carries ath (§4.2).</summary>
    public string Proof(
        string method, string url, string? accessToken = null, string? nonce = null, DateTimeOffset? issuedAt = null,
        string type = "dpop+jwt", string? jti = null, bool includeAth = true, object? jwk = null)
    {
        var header = new Dictionary<string, object> { ["typ"] = type, ["alg"] = "ES256", ["jwk"] = jwk ?? Jwk };
        var payload = new Dictionary<string, object>
        {
            ["jti"] = jti ?? Guid.NewGuid().ToString("N"),
            ["htm"] = method,
            ["htu"] = url,
            ["iat"] = (issuedAt ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
        };
        if (accessToken is not null && includeAth)
        {
            payload["ath"] = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        }

        if (nonce is not null)
        {
            payload["nonce"] = nonce;
        }

        var input = Base64Url(JsonSerializer.SerializeToUtf8Bytes(header)) + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(payload));
        return input + "." + Base64Url(_key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256));
    }

    public void Dispose() => _key.Dispose();
}
