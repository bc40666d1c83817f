using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Identity;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// Application users have no password (red-team finding 11): their client's own tokens act as them, and nothing may let
/// them sign in interactively. As a password validator this holds on every path that sets a password (creation, reset,
/// change, add), including a password-reset link mailed to the application user's address.
/// </summary>
internal sealed class ApplicationUsersHaveNoPassword : IPasswordValidator<CrmUser>
{
    public const string Code = "PasswordApplicationUser";

    public Task<IdentityResult> ValidateAsync(UserManager<CrmUser> manager, CrmUser user, string? password) =>
        Task.FromResult(user.ApplicationClientId is null
            ? IdentityResult.Success
            : IdentityResult.Failed(new IdentityError
            {
                Code = Code,
                Description = "This is an application user: it has no password and cannot sign in; its client's credentials act as it.",
            }));
}
