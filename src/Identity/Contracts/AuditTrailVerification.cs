using CrmSecurity.Crypto.Providers;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Data;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// Checks the admin audit trail's keyed hash chain, its head record, an expected head kept outside the database, and the
/// model tables against the newest fingerprint, naming the first thing that is not what was written. Reads only.
/// </summary>
public interface IAuditTrailVerifier
{
    /// <summary>Verifies the trail; <paramref name="expectedHead"/> is a head printed or logged earlier (<c>SEQ:MAC</c>).</summary>
    /// <exception cref="KeyManagementException">The audit key opens only with the installation's key-encryption key, and this one is not it.</exception>
    /// <exception cref="FormatException"><paramref name="expectedHead"/> is not <c>SEQ:MAC</c> (see <see cref="IsHead"/>).</exception>
    Task<AuditTrailCheck> VerifyAsync(string? expectedHead, CancellationToken cancellationToken);

    /// <summary>Whether <paramref name="text"/> is a head as <c>audit verify</c> prints it: a sequence number, a colon and at least 8 hex digits of the MAC.</summary>
    static bool IsHead(string? text) => AuditHead.TryParse(text, out _);
}

/// <summary>What a verification found.</summary>
/// <param name="Intact">True when every check passed.</param>
/// <param name="Entries">Entries that verified (all of them when intact; those before the first broken one otherwise).</param>
/// <param name="Head">The newest entry as <c>SEQ:MAC</c>, to keep outside the database; null for an empty trail or a broken one.</param>
/// <param name="FirstBroken">The sequence number of the first entry that is not what was written, when one is.</param>
/// <param name="Problem">What is wrong, when not intact.</param>
/// <param name="LastGoodHash">The MAC of the last entry that verified.</param>
public sealed record AuditTrailCheck(bool Intact, long Entries, string? Head, long? FirstBroken, string? Problem, string LastGoodHash);

internal sealed class AuditChainVerifier(IdentityStore store, IKeyEncryptionKey kek) : IAuditTrailVerifier
{
    public async Task<AuditTrailCheck> VerifyAsync(string? expectedHead, CancellationToken cancellationToken)
    {
        AuditHead? expected = null;
        if (expectedHead is not null)
        {
            expected = AuditHead.TryParse(expectedHead, out var head)
                ? head
                : throw new FormatException($"'{expectedHead}' is not SEQ:MAC (a sequence number, a colon and at least 8 hex digits of the MAC).");
        }

        var key = await AuditChain.ReadKeyAsync(store, kek, cancellationToken);
        var result = await AuditChain.VerifyAsync(store, key, expected, cancellationToken);
        return new AuditTrailCheck(result.Intact, result.Entries, result.Head?.ToString(), result.FirstBroken, result.Problem, result.LastGoodHash);
    }
}
