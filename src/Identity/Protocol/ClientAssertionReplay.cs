using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Identity.Data;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// A client assertion (<c>private_key_jwt</c>) works once. OpenIddict has checked its signature against the client's
/// registered keys and its <c>iss</c>, <c>sub</c> and <c>aud</c>; this handler then requires a <c>jti</c> and an <c>exp</c>
/// in the near future, and records the <c>jti</c> in <c>identity_client_assertions</c> until <c>exp</c>. A second use
/// finds the row (the primary key makes the check and the record one atomic insert, on every instance sharing the
/// database) and is refused with <c>invalid_client</c> (RFC 7523 §3.2).
/// </summary>
internal sealed class RejectReplayedClientAssertions(IdentityStore store, TimeProvider time) : IOpenIddictServerHandler<ProcessAuthenticationContext>
{
    /// <summary>
    /// Longest lifetime left in an assertion that is accepted: the jti is kept that long. RFC 7523 §3 item 4 lets the
    /// server refuse an exp unreasonably far in the future; an hour covers the libraries in use (some sign for 60 minutes).
    /// </summary>
    public static readonly TimeSpan MaxRemainingLifetime = TimeSpan.FromHours(1);

    /// <summary>Allowance for the client's clock running ahead when it computes exp from its own now.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
        OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessAuthenticationContext>()
            .AddFilter<OpenIddictServerHandlerFilters.RequireClientAssertionPrincipal>()
            .UseScopedHandler<RejectReplayedClientAssertions>()
            // After OpenIddict's own client authentication (signature, iss/sub, aud, client type): only an assertion
            // the client really signed is recorded, so nobody can spend another client's jti in advance.
            .SetOrder(OpenIddictServerHandlers.ValidateClientSecret.Descriptor.Order + 500)
            .SetType(OpenIddictServerHandlerType.Custom)
            .Build();

    public async ValueTask HandleAsync(ProcessAuthenticationContext context)
    {
        var assertion = context.ClientAssertionPrincipal!;
        var clientId = assertion.GetClaim(Claims.Issuer) ?? "";
        var jti = assertion.GetClaim(Claims.JwtId);
        if (string.IsNullOrEmpty(jti))
        {
            // OpenID Connect Core §9: jti is REQUIRED, so that the server can refuse a replay.
            context.Reject(error: Errors.InvalidClient, description: "The client assertion has no 'jti' claim (OpenID Connect Core, section 9).");
            return;
        }

        var now = time.GetUtcNow();
        if (ExpiresAt(assertion.GetClaim(Claims.ExpiresAt)) is not { } expiresAt || expiresAt <= now)
        {
            // RFC 7523 §3 item 4: the JWT MUST have an exp, and MUST be rejected once it has passed. Checked here as well as
            // by OpenIddict because the replay record below is kept only until exp.
            context.Reject(error: Errors.InvalidClient, description: "The client assertion has expired or has no 'exp' claim (RFC 7523, section 3).");
            return;
        }

        if (expiresAt - now > MaxRemainingLifetime + ClockSkew)
        {
            // RFC 7523 §3 item 4: an exp unreasonably far in the future may be refused; it would pin the jti for as long.
            context.Reject(error: Errors.InvalidClient, description: $"The client assertion expires more than {MaxRemainingLifetime.TotalMinutes:0} minutes from now; sign a short-lived one.");
            return;
        }

        // Error descriptions stay ASCII: OpenIddict copies them into the WWW-Authenticate header of a 401.
        // RFC 7523 §3 item 7 and OpenID Connect Core §9: a jti used before is a replay.
        if (!await store.TrySpendOnceAsync(AssertionId(clientId, jti), clientId, expiresAt, now, context.CancellationToken))
        {
            context.Reject(error: Errors.InvalidClient, description: Replayed);
            return;
        }

        context.Transaction.Properties[ClientAssertionFailures.Property] = ClientAssertionFailures.Accepted;
    }

    private const string Replayed = "The client assertion was already used; sign a new one with a new 'jti' for each request.";

    private static string AssertionId(string clientId, string jti) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(clientId + "\n" + jti)));

    private static DateTimeOffset? ExpiresAt(string? exp) =>
        double.TryParse(exp, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and < 253402300799
            ? DateTimeOffset.FromUnixTimeMilliseconds((long)(seconds * 1000))
            : null;
}
