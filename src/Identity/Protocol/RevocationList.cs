using System.Security.Claims;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Protocol;

/// <summary>
/// Revocation for tokens that have no OpenIddict token row, and cut-offs for incident response: every token
/// of a subject or client issued before a cut-off is invalid. Checked on every validation of our own tokens
/// (introspection, userinfo, refresh, token exchange), which is where revocation is visible (RFC 7662 §2.2).
/// </summary>
internal sealed class RevocationList(IdentityStore store, TimeProvider time)
{
    /// <summary>For a principal OpenIddict made from one of our tokens.</summary>
    public Task<bool> IsRevokedAsync(ClaimsPrincipal principal, CancellationToken cancellationToken) =>
        IsRevokedAsync(
            principal.GetClaim(Claims.JwtId),
            principal.GetClaim(Claims.Subject),
            [.. principal.GetPresenters().Concat([principal.GetClaim(Claims.ClientId)]).OfType<string>().Distinct()],
            principal.GetCreationDate(),
            cancellationToken);

    public async Task<bool> IsRevokedAsync(string? jti, string? subject, string[] clients, DateTimeOffset? issuedAt, CancellationToken cancellationToken)
    {
        if (jti is not null && await store.RevokedTokens.AnyAsync(t => t.TokenId == jti, cancellationToken))
        {
            return true;
        }

        var cutoffs = await store.RevocationCutoffs
            .Where(c => (c.Kind == RevocationCutoffRecord.Subject && c.Value == subject)
                || (c.Kind == RevocationCutoffRecord.Client && clients.Contains(c.Value)))
            .Select(c => c.RevokedBefore)
            .ToListAsync(cancellationToken);

        // A token without an issue time cannot be proven newer than a cut-off: treat it as revoked.
        return cutoffs.Count > 0 && (issuedAt is null || cutoffs.Any(cutoff => issuedAt < cutoff));
    }

    /// <summary>Adds one token (by its <c>jti</c>) until it would have expired anyway.</summary>
    public async Task RevokeAsync(string tokenId, DateTimeOffset? expiresAt, CancellationToken cancellationToken)
    {
        if (await store.RevokedTokens.AnyAsync(t => t.TokenId == tokenId, cancellationToken))
        {
            return;
        }

        var now = time.GetUtcNow();
        store.RevokedTokens.Add(new RevokedTokenRecord { TokenId = tokenId, RevokedAt = now, ExpiresAt = expiresAt ?? now.AddDays(1) });
        try
        {
            await store.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // Revoked concurrently by another request: the outcome is the same.
        }

        // Rows past their token's expiry protect nothing; keep the list as small as the live tokens.
        await store.RevokedTokens.Where(t => t.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken);
    }

    /// <summary>Every token of <paramref name="kind"/> <paramref name="value"/> issued up to now becomes invalid.</summary>
    public async Task CutOffAsync(string kind, string value, CancellationToken cancellationToken)
    {
        // One second past now. Issue times are whole seconds, truncated (RFC 7519 NumericDate), so "now" alone
        // would already catch every older token of this instance; the extra second absorbs clock skew between
        // instances, where another host whose clock runs ahead could stamp a token issued before this cut-off
        // with a later time. The price is that a new sign-in within that second is refused too.
        await SetCutOffAsync(kind, value, time.GetUtcNow().AddSeconds(1), cancellationToken);
    }

    /// <summary>
    /// Every token of <paramref name="kind"/> <paramref name="value"/> issued before this second becomes invalid, and a
    /// token issued from this second on stays valid: for a user's own credential change, whose new sign-in follows at once.
    /// Tokens issued earlier in the same second are not caught here; the caller revokes the stored tokens as well.
    /// </summary>
    public Task CutOffBeforeThisSecondAsync(string kind, string value, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        return SetCutOffAsync(kind, value, now.AddTicks(-(now.Ticks % TimeSpan.TicksPerSecond)), cancellationToken);
    }

    private async Task SetCutOffAsync(string kind, string value, DateTimeOffset cutoff, CancellationToken cancellationToken)
    {
        var existing = await store.RevocationCutoffs.FindAsync([kind, value], cancellationToken);
        if (existing is null)
        {
            store.RevocationCutoffs.Add(new RevocationCutoffRecord { Kind = kind, Value = value, RevokedBefore = cutoff });
        }
        else if (existing.RevokedBefore < cutoff)
        {
            // A cut-off only moves forward: an incident's cut-off is never shortened by a later, earlier one.
            existing.RevokedBefore = cutoff;
        }

        await store.SaveChangesAsync(cancellationToken);
    }
}
