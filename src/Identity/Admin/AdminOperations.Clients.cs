using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Incident;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    /// <summary>
    /// Incident response for a client: every token it holds is revoked, audited in the same transaction. Clients belong to
    /// the whole organisation, so this needs update on oidc_client at organization depth.
    /// </summary>
    public async Task<(RevocationSummary? Summary, AdminProblem? Problem)> RevokeClientAsync(AdminGuard guard, string clientId, string? reason, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Client, CrmAction.Update) is { } denied)
        {
            return (null, denied);
        }

        RevocationSummary? summary = null;
        var problem = await changes.ApplyAsync(guard.Actor, async context =>
        {
            summary = await incidents.RevokeClientAsync(clientId, cancellationToken);
            if (summary is null)
            {
                return AdminProblem.NotFound("client", clientId);
            }

            context.Audit(new AuditChange("client.revoke", "oidc_client", clientId, clientId, null,
                new { reason, tokens_revoked = summary.TokensRevoked, authorizations_revoked = summary.AuthorizationsRevoked },
                Summary: Reasoned($"every token of client {clientId} revoked", reason)));
            return null;
        }, cancellationToken);
        return problem is null ? (summary, null) : (null, problem);
    }
}
