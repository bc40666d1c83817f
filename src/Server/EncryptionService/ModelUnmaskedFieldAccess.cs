using System.Globalization;
using System.Security.Claims;
using CrmSecurity.Identity.Authorization.Store;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>
/// Decrypt permission from the authorization model: the caller must be granted read_unmasked (or update) on the
/// entity field by their field security profiles. The decision uses a model at least as new as the token's
/// <c>perm_ver</c>, so a token issued after a grant is never refused on older data.
/// </summary>
internal sealed class ModelUnmaskedFieldAccess(AuthorizationModel model) : IUnmaskedFieldAccess
{
    public async ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken)
    {
        var subject = caller.FindFirst("sub")?.Value;
        var permVer = long.TryParse(caller.FindFirst("perm_ver")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? version : (long?)null;
        var snapshot = await model.ForTokenAsync(subject ?? "", permVer, cancellationToken);
        var (allowed, reason) = snapshot.UnmaskedRead(subject, caller.FindFirst("client_id")?.Value, request.Entity, request.Field);
        return allowed ? UnmaskedFieldDecision.Allow(reason) : UnmaskedFieldDecision.Deny(reason);
    }
}
