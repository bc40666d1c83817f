using System.Security.Claims;
using CrmSecurity.Crypto.Service;
using CrmSecurity.Identity.Contracts;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>The encryption service's decrypt permission from Identity's authorization model (its <see cref="IUnmaskedReads"/>).</summary>
internal sealed class IdentityUnmaskedFieldAccess(IUnmaskedReads reads) : IUnmaskedFieldAccess
{
    public async ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var decision = await reads.DecideAsync(
            caller, new UnmaskedRead(request.Entity, request.Field, request.RecordId, request.Record, request.UntrustedLocation), cancellationToken);
        return new UnmaskedFieldDecision(decision.Allowed, decision.Reason);
    }
}
