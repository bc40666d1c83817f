using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Pages.Account;
using CrmSecurity.Identity.Protocol;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// The installation's first security administrator, on a database nobody can administer yet (a production start has no
/// demo people): the one way in that is not the admin API's guard, so it closes once anyone is a security administrator.
/// </summary>
public interface IFirstAdministrator
{
    /// <summary>
    /// Creates <paramref name="userName"/> with the security administrator role in the root business unit, through the
    /// audited model-change path (its audit entries name <paramref name="actor"/>), without a password, and makes a
    /// one-time, expiring link (the password-reset link, <c>Identity:Passwords:ResetLinkLifetime</c>) on which the person
    /// chooses one. Nothing is logged of the link. Refused when a security administrator exists, or the public origin the
    /// link must name (<c>Identity:Issuer</c>) is not known.
    /// </summary>
    Task<FirstAdministratorResult> CreateAsync(string userName, string email, string actor, CancellationToken cancellationToken);
}

/// <summary>What <see cref="IFirstAdministrator.CreateAsync"/> did.</summary>
public enum FirstAdministratorOutcome
{
    /// <summary>The administrator exists and <see cref="FirstAdministratorResult.SetupLink"/> is theirs.</summary>
    Created,

    /// <summary>Nothing was done: someone is a security administrator already (named in the message).</summary>
    AdministratorExists,

    /// <summary>Nothing was done: the input is not usable (the message names what and how to fix it).</summary>
    Refused,

    /// <summary>Nothing was done: a setting the link needs is missing (the message names the setting and how to set it).</summary>
    NotConfigured,
}

/// <summary>The outcome, a sentence for the person who asked, and for a created administrator the link to hand them.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="Message">One sentence saying what happened, or what to fix; never the link.</param>
/// <param name="UserId">The new user's id.</param>
/// <param name="SetupLink">The one-time link on which the administrator chooses a password: a secret, for them only.</param>
/// <param name="SetupLinkExpires">When the link stops working.</param>
public sealed record FirstAdministratorResult(
    FirstAdministratorOutcome Outcome, string Message, string? UserId = null, Uri? SetupLink = null, DateTimeOffset? SetupLinkExpires = null);

internal sealed class FirstAdministratorSetup(
    AdminOperations operations,
    UserManager<CrmUser> users,
    PublicOrigin origin,
    IOptions<DataProtectionTokenProviderOptions> tokens,
    TimeProvider time) : IFirstAdministrator
{
    public async Task<FirstAdministratorResult> CreateAsync(string userName, string email, string actor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(userName);
        ArgumentNullException.ThrowIfNull(email);
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);

        // Checked before anything is written: the link carries a reset token, and is built on the configured origin,
        // never guessed (OWASP ASVS 4.0.3 V5.1.5; see PublicOrigin).
        if (!origin.IsKnown)
        {
            return new(FirstAdministratorOutcome.NotConfigured,
                "Identity:Issuer is not set, and the setup link must name the service's public address. Set it as the service has it, " +
                "e.g. Identity__Issuer=https://login.example.com/ (required in Production anyway).");
        }

        var (id, administrators, problem) = await operations.CreateFirstAdministratorAsync(AdminActor.System(actor), userName, email, cancellationToken);
        if (administrators.Count > 0)
        {
            return new(FirstAdministratorOutcome.AdministratorExists, problem?.Detail ?? "The installation already has a security administrator.");
        }

        if (problem is not null || await users.FindByIdAsync(id!) is not { } user)
        {
            return new(FirstAdministratorOutcome.Refused, problem?.Detail ?? "The administrator could not be created.");
        }

        // The password-reset token (Identity's data-protected token, bound to the user's security stamp): it works once,
        // since setting the password changes the stamp, and only for Identity:Passwords:ResetLinkLifetime.
        var issued = time.GetUtcNow();
        var token = await users.GeneratePasswordResetTokenAsync(user);
        return new(FirstAdministratorOutcome.Created,
            $"Created the security administrator '{user.UserName}' ({user.Email}) in the root business unit, without a password.",
            user.Id, ResetPasswordModel.Link(origin, user.Id, token), issued + tokens.Value.TokenLifespan);
    }
}
