using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// Where a person is signed in (OWASP ASVS 4.0.3 V3.3.4: users can view and log out of any or all of their active
/// sessions): every sign-in session is recorded when it starts; the owner sees the open ones on the account page and
/// ends any of them, which ends it server-side for every copy of its cookie (<see cref="EndedSessions"/>). A person can
/// only see and end their own sessions: every query is bounded by the signed-in user's id, never by the session id alone.
/// </summary>
internal sealed class SignInSessions(
    IdentityStore store, EndedSessions ended, IOptions<IdentitySettings> settings, TimeProvider time, Protocol.BackchannelLogout backchannelLogout)
{
    private const int UserAgentLength = 300;

    /// <summary>Records a session that just started; expired records are dropped on the way.</summary>
    public async Task StartedAsync(string userId, string sessionId, string methods, HttpContext http, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var agent = http.Request.Headers.UserAgent.ToString();
        store.SignInSessions.Add(new SignInSessionRecord
        {
            SessionId = sessionId,
            UserId = userId,
            SignedInAt = now,
            ExpiresAt = now + settings.Value.Sessions.AbsoluteTimeout,
            Methods = methods.Length > 64 ? methods[..64] : methods,
            UserAgent = agent.Length > UserAgentLength ? agent[..UserAgentLength] : agent,
            SourceIp = http.Connection.RemoteIpAddress?.ToString(),
        });
        await store.SaveChangesAsync(cancellationToken);
        await store.SignInSessions.Where(s => s.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken);
    }

    /// <summary>The user's open sessions, newest first.</summary>
    public async Task<List<SignInSessionRecord>> OpenAsync(string userId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var open = await store.SignInSessions.AsNoTracking().Where(s => s.UserId == userId).ToListAsync(cancellationToken);
        return [.. open.Where(s => s.ExpiresAt > now).OrderByDescending(s => s.SignedInAt)];
    }

    /// <summary>
    /// How a page names a session: not the session id itself (it travels in ID tokens and cookies), but 64 bits of its
    /// SHA-256, enough to tell one person's sessions apart and useless to anyone else.
    /// </summary>
    public static string Handle(string sessionId) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sessionId)).AsSpan(0, 8));

    /// <summary>Ends the user's own open session named by <paramref name="handle"/>; false when the user has no such session.</summary>
    public async Task<bool> EndAsync(string userId, string handle, CancellationToken cancellationToken)
    {
        var mine = await store.SignInSessions.AsNoTracking().Where(s => s.UserId == userId).Select(s => s.SessionId).ToListAsync(cancellationToken);
        if (mine.Find(sessionId => string.Equals(Handle(sessionId), handle, StringComparison.Ordinal)) is not { } match)
        {
            return false;
        }

        await ended.EndAsync(match, settings.Value.Sessions.AbsoluteTimeout, cancellationToken);
        // OpenID Connect Back-Channel Logout 1.0 §2.7: the clients end what came from that session too.
        await backchannelLogout.NotifyAsync(userId, match, cancellationToken);
        return true;
    }

    /// <summary>Ends every open session of the user except <paramref name="keep"/>; returns how many ended.</summary>
    public async Task<int> EndOthersAsync(string userId, string? keep, CancellationToken cancellationToken)
    {
        var others = await store.SignInSessions.AsNoTracking()
            .Where(s => s.UserId == userId && s.SessionId != keep).Select(s => s.SessionId).ToListAsync(cancellationToken);
        foreach (var sessionId in others)
        {
            await ended.EndAsync(sessionId, settings.Value.Sessions.AbsoluteTimeout, cancellationToken);
            await backchannelLogout.NotifyAsync(userId, sessionId, cancellationToken);
        }

        return others.Count;
    }

    /// <summary>Forgets the records of the user's other sessions after a credential change ended them by other means.</summary>
    public Task ForgetOthersAsync(string userId, string? keep, CancellationToken cancellationToken) =>
        store.SignInSessions.Where(s => s.UserId == userId && s.SessionId != keep).ExecuteDeleteAsync(cancellationToken);
}
