using System.Security.Claims;
using CrmSecurity.Crypto.Service;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>
/// The encryption service's admin rights from Identity's authorization model (<see cref="ICrmRights"/>): blind-index
/// definitions decide what an encrypted field reveals, so they are field security and follow the privileges on field
/// security profiles (<c>field_security_profile</c>, the model's system entity): read to list, create/update/delete to
/// change. Security and system admins hold them; auditors read; a CRM app's application user holds none. A person
/// without the second factor the installation requires for privileged areas is refused (OWASP ASVS 4.0.3 V4.3.1).
/// </summary>
internal sealed class IdentityCryptoAdministrators(ICrmRights rights) : ICryptoAdministrators
{
    // Identity's name for field security profiles (policies/authorization/roles.json); its contract exposes rights on
    // any system entity by name.
    private const string FieldSecurityProfile = "field_security_profile";

    public ValueTask<CryptoAdminDecision> CheckAsync(ClaimsPrincipal caller, CrmAction action, string? sourceIp, CancellationToken cancellationToken)
    {
        if (rights.Identify(caller, sourceIp) is not { } actor)
        {
            return ValueTask.FromResult(CryptoAdminDecision.Deny("the caller is not a user or application user the authorization model knows (deny by default)"));
        }

        if (actor.NeedsSecondFactor)
        {
            return ValueTask.FromResult(CryptoAdminDecision.Deny($"{actor.Name} must sign in with two-step verification to administer the encryption service", actor.Id));
        }

        var name = action.ToString().ToLowerInvariant();
        return ValueTask.FromResult(actor.Refusal(FieldSecurityProfile, action) is { } refusal
            ? CryptoAdminDecision.Deny($"{actor.Name} may not {name} blind-index definitions: {refusal}", actor.Id)
            : CryptoAdminDecision.Allow(actor.Id, $"{name} on {FieldSecurityProfile}"));
    }
}
