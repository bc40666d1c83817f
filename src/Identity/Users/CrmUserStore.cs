using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;

namespace CrmSecurity.Identity.Users;

/// <summary>
/// ASP.NET Core Identity's EF Core user store, except for the second-factor secrets: the authenticator key is stored
/// encrypted and recovery codes as keyed digests (<see cref="UserSecretProtection"/>), in the same token rows and names
/// the stock store uses, so a database from an older build is read and converted in place. Redeeming a code removes it
/// in the same update of the user row as its concurrency stamp, so two concurrent uses of one code cannot both succeed.
/// </summary>
internal sealed class CrmUserStore(IdentityStore context, UserSecretProtection protection, IdentityErrorDescriber? describer = null)
    : UserStore<CrmUser, IdentityRole, IdentityStore>(context, describer)
{
    /// <summary>The stock store's login provider and token names for these values.</summary>
    public const string InternalLoginProvider = "[AspNetUserStore]";
    public const string AuthenticatorKeyTokenName = "AuthenticatorKey";
    public const string RecoveryCodesTokenName = "RecoveryCodes";

    public override async Task SetAuthenticatorKeyAsync(CrmUser user, string key, CancellationToken cancellationToken) =>
        await SetTokenAsync(user, InternalLoginProvider, AuthenticatorKeyTokenName,
            await protection.SealAuthenticatorKeyAsync(user.Id, key, cancellationToken), cancellationToken);

    public override async Task<string?> GetAuthenticatorKeyAsync(CrmUser user, CancellationToken cancellationToken) =>
        await GetTokenAsync(user, InternalLoginProvider, AuthenticatorKeyTokenName, cancellationToken) is { Length: > 0 } stored
            ? await protection.OpenAuthenticatorKeyAsync(user.Id, stored, cancellationToken)
            : null;

    public override async Task ReplaceCodesAsync(CrmUser user, IEnumerable<string> recoveryCodes, CancellationToken cancellationToken) =>
        await SetTokenAsync(user, InternalLoginProvider, RecoveryCodesTokenName,
            await protection.HashCodesAsync(recoveryCodes, cancellationToken), cancellationToken);

    public override async Task<bool> RedeemCodeAsync(CrmUser user, string code, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(code);
        var stored = await GetTokenAsync(user, InternalLoginProvider, RecoveryCodesTokenName, cancellationToken) ?? "";
        if (await protection.RedeemAsync(stored, code, cancellationToken) is not { } remaining)
        {
            return false;
        }

        await SetTokenAsync(user, InternalLoginProvider, RecoveryCodesTokenName, remaining, cancellationToken);
        return true;
    }

    public override async Task<int> CountCodesAsync(CrmUser user, CancellationToken cancellationToken) =>
        UserSecretProtection.Count(await GetTokenAsync(user, InternalLoginProvider, RecoveryCodesTokenName, cancellationToken));
}
