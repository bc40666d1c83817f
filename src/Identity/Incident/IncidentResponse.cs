using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;

namespace CrmSecurity.Identity.Incident;

internal sealed record RevocationSummary(string Kind, string Value, long TokensRevoked, long AuthorizationsRevoked);

/// <summary>
/// One call that ends everything a user or a client holds: every stored token and authorization is revoked,
/// a cut-off invalidates tokens without a row (client-credentials access tokens) at introspection, and for a
/// user the security stamp changes so every sign-in cookie fails its next validation.
/// JWT access tokens already handed out stay cryptographically valid until they expire (10 minutes by
/// default) for resource servers that validate locally; introspection reports them inactive at once.
/// </summary>
internal sealed class IncidentResponse(
    UserManager<CrmUser> users,
    IOpenIddictTokenManager tokens,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictApplicationManager applications,
    RevocationList revocations,
    AccessEvents events)
{
    public async Task<RevocationSummary?> RevokeUserAsync(string userId, string actor, string reason, CancellationToken cancellationToken)
    {
        var user = await users.FindByIdAsync(userId);
        if (user is null)
        {
            return null;
        }

        await revocations.CutOffAsync(RevocationCutoffRecord.Subject, user.Id, cancellationToken);
        var revokedTokens = await tokens.RevokeBySubjectAsync(user.Id, cancellationToken);
        var revokedAuthorizations = await authorizations.RevokeBySubjectAsync(user.Id, cancellationToken);
        await users.UpdateSecurityStampAsync(user);
        await WriteAsync(actor, user.Id, "revoke_all_sessions_and_tokens", reason, cancellationToken);
        return new RevocationSummary("user", user.Id, revokedTokens, revokedAuthorizations);
    }

    public async Task<RevocationSummary?> RevokeClientAsync(string clientId, string actor, string reason, CancellationToken cancellationToken)
    {
        var application = await applications.FindByClientIdAsync(clientId, cancellationToken);
        if (application is null || await applications.GetIdAsync(application, cancellationToken) is not { } applicationId)
        {
            return null;
        }

        await revocations.CutOffAsync(RevocationCutoffRecord.Client, clientId, cancellationToken);
        var revokedTokens = await tokens.RevokeByApplicationIdAsync(applicationId, cancellationToken);
        var revokedAuthorizations = await authorizations.RevokeByApplicationIdAsync(applicationId, cancellationToken);
        await WriteAsync(actor, null, "revoke_all_client_tokens", $"client={clientId}; {reason}", cancellationToken);
        return new RevocationSummary("client", clientId, revokedTokens, revokedAuthorizations);
    }

    /// <summary>Disables (or re-enables) a user. Disabling revokes every token and session of the user at once.</summary>
    public async Task<RevocationSummary?> SetDisabledAsync(string userId, bool disabled, string actor, string reason, CancellationToken cancellationToken)
    {
        var user = await users.FindByIdAsync(userId);
        if (user is null)
        {
            return null;
        }

        user.IsDisabled = disabled;
        await users.UpdateAsync(user);
        await WriteAsync(actor, user.Id, disabled ? "disable_user" : "enable_user", reason, cancellationToken);
        return disabled
            ? await RevokeUserAsync(userId, actor, "user disabled", cancellationToken)
            : new RevocationSummary("user", user.Id, 0, 0);
    }

    private ValueTask WriteAsync(string actor, string? targetUser, string privilege, string reason, CancellationToken cancellationToken) =>
        events.WriteAsync(new AccessEvent
        {
            Timestamp = events.Time.GetUtcNow(),
            UserId = actor,
            Action = AccessActions.AdminChange,
            TargetUser = targetUser,
            Privilege = privilege,
            Details = reason,
        }, cancellationToken);
}
