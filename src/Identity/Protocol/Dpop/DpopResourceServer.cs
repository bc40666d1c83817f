using System.Security.Claims;
using System.Text.Json;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Net.Http.Headers;

namespace CrmSecurity.Identity.Protocol.Dpop;

/// <summary>
/// DPoP at this host's APIs (RFC 9449 §7), wired into every scheme of <see cref="ResourceServerBearer"/>: a token sent as
/// <c>Authorization: DPoP</c> needs a proof of the key its <c>cnf.jkt</c> names, for this method and URI, with <c>ath</c>
/// (§7.1); a DPoP-bound token sent as <c>Bearer</c> is refused (§7.2), so a stolen token is useless without the key.
/// </summary>
internal static class DpopResourceServer
{
    /// <summary>HttpContext item: the request used the DPoP scheme.</summary>
    private const string SchemeItem = "CrmSecurity.Dpop.Scheme";

    /// <summary>HttpContext item: the DPoP error (code, description) to name in the challenge.</summary>
    private const string ErrorItem = "CrmSecurity.Dpop.Error";

    /// <summary>RFC 9449 §7.1: takes the token of <c>Authorization: DPoP &lt;token&gt;</c>; a Bearer header is left to JwtBearer.</summary>
    public static Task OnMessageReceived(MessageReceivedContext context)
    {
        var authorization = context.Request.Headers.Authorization;
        if (authorization.Count == 1 && authorization[0] is { } value
            && value.StartsWith(DpopProofs.Scheme + " ", StringComparison.OrdinalIgnoreCase))
        {
            context.HttpContext.Items[SchemeItem] = true;
            context.Token = value[(DpopProofs.Scheme.Length + 1)..].Trim();
            if (context.Token.Length == 0)
            {
                context.NoResult();
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Checks the binding of a token whose signature, issuer, audience and revocation have been validated.</summary>
    public static async Task<bool> CheckAsync(TokenValidatedContext context)
    {
        var http = context.HttpContext;
        var thumbprint = Thumbprint(context.Principal!);
        var usedDpop = http.Items.ContainsKey(SchemeItem);
        if (!usedDpop)
        {
            if (thumbprint is null)
            {
                return true; // a plain bearer token, sent as one
            }

            // RFC 9449 §7.2: a DPoP-bound token presented as a bearer token is refused; whoever holds it without the key
            // gets nothing from it.
            return Fail(context, "invalid_token", "The access token is bound to a DPoP key; send it with the DPoP scheme and a proof (RFC 9449 section 7.2).");
        }

        if (thumbprint is null)
        {
            // RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens; a bearer token does not become one by the header.
            return Fail(context, "invalid_token", "The access token is not DPoP-bound; send it with the Bearer scheme (RFC 9449 section 7.1).");
        }

        var services = http.RequestServices;
        var proofs = services.GetRequiredService<DpopProofs>();
        var origin = services.GetRequiredService<PublicOrigin>().Value;
        // RFC 9449 §4.3 item 9: htu is compared with the public address of this request, never with its Host header.
        var uri = new Uri(origin, (http.Request.PathBase + http.Request.Path).ToUriComponent().TrimStart('/'));
        var token = (context.SecurityToken as Microsoft.IdentityModel.JsonWebTokens.JsonWebToken)?.EncodedToken;
        var check = proofs.Check(http.Request.Headers[DpopProofs.Header], http.Request.Method, uri, token ?? "", requireNonce: false);
        if (check.Proof is not { } proof)
        {
            return Fail(context, check.Error!, check.Description!);
        }

        // RFC 9449 §7.1 / §6.1: the proof's key is the one the token is bound to.
        if (!System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.ASCII.GetBytes(proof.Thumbprint), System.Text.Encoding.ASCII.GetBytes(thumbprint)))
        {
            return Fail(context, DpopProofs.InvalidProof, "The DPoP proof is signed by another key than the one the access token is bound to (RFC 9449 section 7.1).");
        }

        // RFC 9449 §11.1: a proof is used once, here as at the token endpoint.
        var client = context.Principal!.FindFirst("client_id")?.Value ?? "";
        if (!await proofs.TrySpendAsync(services.GetRequiredService<IdentityStore>(), proof, client, http.RequestAborted))
        {
            return Fail(context, DpopProofs.InvalidProof, "The DPoP proof was already used; sign a new one for each request (RFC 9449 section 11.1).");
        }

        return true;
    }

    /// <summary>
    /// RFC 9449 §7.1 and RFC 6750 §3: the challenge names both schemes this API accepts, with the error on the scheme the
    /// client used, and the algorithms accepted in proofs.
    /// </summary>
    public static Task OnChallenge(JwtBearerChallengeContext context)
    {
        var http = context.HttpContext;
        var algs = $"algs=\"{string.Join(' ', DpopProofs.Algorithms)}\"";
        var usedDpop = http.Items.ContainsKey(SchemeItem);
        if (!usedDpop && http.Items[ErrorItem] is null)
        {
            // No token, or a bearer token JwtBearer refused and describes itself: add the DPoP challenge beside its Bearer one.
            http.Response.OnStarting(() =>
            {
                http.Response.Headers.Append(HeaderNames.WWWAuthenticate, $"{DpopProofs.Scheme} {algs}");
                return Task.CompletedTask;
            });
            return Task.CompletedTask;
        }

        var (error, description) = http.Items[ErrorItem] is (string code, string text)
            ? (code, text)
            : ("invalid_token", "The access token is missing or not valid.");
        var detail = $"error=\"{error}\", error_description=\"{description}\"";
        context.HandleResponse();
        http.Response.StatusCode = StatusCodes.Status401Unauthorized;
        if (usedDpop)
        {
            http.Response.Headers.Append(HeaderNames.WWWAuthenticate, $"{DpopProofs.Scheme} {detail}, {algs}");
            http.Response.Headers.Append(HeaderNames.WWWAuthenticate, "Bearer");
        }
        else
        {
            http.Response.Headers.Append(HeaderNames.WWWAuthenticate, $"Bearer {detail}");
            http.Response.Headers.Append(HeaderNames.WWWAuthenticate, $"{DpopProofs.Scheme} {algs}");
        }

        return Task.CompletedTask;
    }

    private static bool Fail(TokenValidatedContext context, string error, string description)
    {
        context.HttpContext.Items[ErrorItem] = (error, description);
        context.Fail(description);
        return false;
    }

    /// <summary>The <c>cnf.jkt</c> of the token (RFC 9449 §6.1), or null when it is not DPoP-bound.</summary>
    internal static string? Thumbprint(ClaimsPrincipal principal)
    {
        if (principal.FindFirst("cnf")?.Value is not { Length: > 0 } cnf)
        {
            return null;
        }

        try
        {
            using var json = JsonDocument.Parse(cnf);
            return json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("jkt", out var jkt) && jkt.ValueKind == JsonValueKind.String
                ? jkt.GetString()
                // A cnf this service does not issue (x5t#S256 of RFC 8705): bound to something this API cannot check.
                : "";
        }
        catch (JsonException)
        {
            return "";
        }
    }
}
