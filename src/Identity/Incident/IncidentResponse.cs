using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Protocol;
using OpenIddict.Abstractions;

namespace CrmSecurity.Identity.Incident;

internal sealed record RevocationSummary(string Kind, string Value, long TokensRevoked, long AuthorizationsRevoked);

/// <summary>
/// The revocation steps of incident response: every stored token and authorization is revoked, a cut-off invalidates
/// tokens without a row (client-credentials access tokens) at introspection, and for a user the security stamp changes so
/// every sign-in cookie fails its next validation. These are steps only: who may take them, the model change and the
/// audit entry are <see cref="Admin.AdminOperations"/>'s, which runs them inside its change's transaction (red-team
/// finding 5), so a revocation is recorded in the hash chain exactly when it happened.
/// JWT access tokens already handed out stay cryptographically valid until they expire (10 minutes by default) for
/// resource servers that validate locally; introspection and this service's own APIs refuse them at once.
/// </summary>
internal sealed class IncidentResponse(
    IOpenIddictTokenManager tokens,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictApplicationManager applications,
    RevocationList revocations,
    BackchannelLogout backchannelLogout)
{
    /// <summary>Revokes everything <paramref name="user"/> holds. The user must be tracked by the change's store: the new security stamp is saved with the change.</summary>
    public async Task<RevocationSummary> RevokeUserAsync(CrmUser user, CancellationToken cancellationToken)
    {
        await revocations.CutOffAsync(RevocationCutoffRecord.Subject, user.Id, cancellationToken);
        var revokedTokens = await tokens.RevokeBySubjectAsync(user.Id, cancellationToken);
        var revokedAuthorizations = await authorizations.RevokeBySubjectAsync(user.Id, cancellationToken);

        // OWASP ASVS 4.0.3 V3.3.1 / V3.3.3: every session of the user ends (the stamp is checked on every request).
        user.SecurityStamp = Guid.NewGuid().ToString("N");
        // OpenID Connect Back-Channel Logout 1.0 §2.7: the clients end their sessions of the user too (every session: no sid).
        await backchannelLogout.NotifyAsync(user.Id, sessionId: null, cancellationToken);
        return new RevocationSummary("user", user.Id, revokedTokens, revokedAuthorizations);
    }

    /// <summary>Revokes every token of a client; null when there is no such client.</summary>
    public async Task<RevocationSummary?> RevokeClientAsync(string clientId, CancellationToken cancellationToken)
    {
        var application = await applications.FindByClientIdAsync(clientId, cancellationToken);
        if (application is null || await applications.GetIdAsync(application, cancellationToken) is not { } applicationId)
        {
            return null;
        }

        await revocations.CutOffAsync(RevocationCutoffRecord.Client, clientId, cancellationToken);
        var revokedTokens = await tokens.RevokeByApplicationIdAsync(applicationId, cancellationToken);
        var revokedAuthorizations = await authorizations.RevokeByApplicationIdAsync(applicationId, cancellationToken);
        return new RevocationSummary("client", clientId, revokedTokens, revokedAuthorizations);
    }
}
