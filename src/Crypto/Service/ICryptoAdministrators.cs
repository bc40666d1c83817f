using System.Security.Claims;
using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Crypto.Service;

/// <summary>Whether a caller may administer the encryption service's settings (the blind-index registry), and who they are.</summary>
/// <param name="Allowed">True only when the caller's privileges allow the action.</param>
/// <param name="Reason">Which privilege allowed it, or why it was refused (it goes into the audit event and the answer).</param>
/// <param name="UserId">The caller as the authorization model knows them (a user id, or a client's application user), when known.</param>
public sealed record CryptoAdminDecision(bool Allowed, string Reason, string? UserId = null)
{
    /// <summary>An allow, naming the caller and the privilege.</summary>
    /// <param name="userId">The caller.</param>
    /// <param name="reason">Which privilege allowed it.</param>
    public static CryptoAdminDecision Allow(string userId, string reason) => new(true, reason, userId);

    /// <summary>A refusal, saying why.</summary>
    /// <param name="reason">Why it was refused.</param>
    /// <param name="userId">The caller, when known.</param>
    public static CryptoAdminDecision Deny(string reason, string? userId = null) => new(false, reason, userId);
}

/// <summary>
/// The seam between the encryption service's admin API and the authorization model: blind-index definitions are field
/// security, so a caller reads them with <c>read</c> and changes them with <c>create</c>, <c>update</c> or <c>delete</c> on
/// field security profiles at organization depth (security admins; auditors read). The host wires the authorization model
/// (Identity) here; without it every admin call is refused (deny by default) and the CLI verbs remain.
/// </summary>
public interface ICryptoAdministrators
{
    /// <summary>Decides whether <paramref name="caller"/> may do <paramref name="action"/> on the service's settings.</summary>
    /// <param name="caller">The validated access token's principal.</param>
    /// <param name="action"><see cref="CrmAction.Read"/>, <see cref="CrmAction.Create"/>, <see cref="CrmAction.Update"/> or <see cref="CrmAction.Delete"/>.</param>
    /// <param name="sourceIp">Where the request came from.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>The decision, its reason, and the caller.</returns>
    ValueTask<CryptoAdminDecision> CheckAsync(ClaimsPrincipal caller, CrmAction action, string? sourceIp, CancellationToken cancellationToken);
}

/// <summary>The default: no authorization model is known, so nobody administers over HTTP (deny by default).</summary>
internal sealed class DenyCryptoAdministrators : ICryptoAdministrators
{
    public const string Reason = "no authorization model is configured in this host, so the registry is managed with the blind-index verbs only (deny by default)";

    public ValueTask<CryptoAdminDecision> CheckAsync(ClaimsPrincipal caller, CrmAction action, string? sourceIp, CancellationToken cancellationToken) =>
        ValueTask.FromResult(CryptoAdminDecision.Deny(Reason));
}
