using System.Security.Cryptography;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// Sign-out that holds on the server (OWASP ASVS 4.0.3 V3.3.1): a session cookie is self-contained, so clearing it in
/// the browser leaves any copy of it (taken by malware, a shared machine, a proxy log) valid until it expires. Every
/// session carries a random id (<c>sid</c>, OpenID Connect Front-Channel Logout §3); signing out records it here, and
/// the cookie check refuses a recorded session on every request. Entries go once the session could not be valid anyway.
/// </summary>
internal sealed class EndedSessions(IdentityStore store, TimeProvider time)
{
    /// <summary>The session-id claim of a sign-in session.</summary>
    public const string SessionIdClaim = "sid";

    /// <summary>A new session id: 128 random bits.</summary>
    public static string NewSessionId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    public async Task EndAsync(string sessionId, TimeSpan longestLifetime, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (!await store.EndedSessions.AnyAsync(s => s.SessionId == sessionId, cancellationToken))
        {
            store.EndedSessions.Add(new EndedSessionRecord { SessionId = sessionId, ExpiresAt = now + longestLifetime });
            try
            {
                await store.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException)
            {
                // Ended at the same moment by another request: the outcome is the same.
            }
        }

        await store.EndedSessions.Where(s => s.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken);
        await store.SignInSessions.Where(s => s.SessionId == sessionId).ExecuteDeleteAsync(cancellationToken);
    }

    public Task<bool> IsEndedAsync(string sessionId, CancellationToken cancellationToken) =>
        store.EndedSessions.AnyAsync(s => s.SessionId == sessionId, cancellationToken);
}
