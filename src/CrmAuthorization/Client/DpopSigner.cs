using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace CrmSecurity.CrmAuthorization;

/// <summary>
/// The CRM app's DPoP key and the proofs it signs (RFC 9449 §4.2): an ECDSA P-256 key made when the app starts and never
/// written anywhere, so the app's tokens are bound to this process; a token copied out of it (a log, a memory dump of
/// another process, a proxy) is useless elsewhere. A restart makes a new key and simply fetches a new token.
/// </summary>
internal sealed class DpopSigner : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly byte[] _header;
    private readonly TimeProvider _time;

    public DpopSigner(TimeProvider time)
    {
        _time = time;
        var point = _key.ExportParameters(includePrivateParameters: false).Q;
        // RFC 9449 §4.2: typ dpop+jwt, an asymmetric alg, and the public key as jwk (no private member).
        _header = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["typ"] = "dpop+jwt",
            ["alg"] = "ES256",
            ["jwk"] = new Dictionary<string, string> { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64Url(point.X!), ["y"] = Base64Url(point.Y!) },
        });
    }

    /// <summary>A proof for one request: a fresh jti, htu without query and fragment (§4.2), ath when a token is sent (§7), the server's nonce (§8).</summary>
    public string Proof(HttpMethod method, Uri uri, string? accessToken, string? nonce)
    {
        var payload = new Dictionary<string, object>
        {
            ["jti"] = Base64Url(RandomNumberGenerator.GetBytes(16)),
            ["htm"] = method.Method,
            ["htu"] = uri.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped),
            ["iat"] = _time.GetUtcNow().ToUnixTimeSeconds(),
        };
        if (accessToken is not null)
        {
            payload["ath"] = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken)));
        }

        if (nonce is not null)
        {
            payload["nonce"] = nonce;
        }

        var input = Base64Url(_header) + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(payload));
        // RFC 7518 §3.4: R || S, which is .NET's default (IEEE P1363) format.
        return input + "." + Base64Url(_key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256));
    }

    public void Dispose() => _key.Dispose();

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
