using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Events;
using CrmSecurity.Identity.Users;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Federation;

/// <summary>What became of a sign-in through an upstream provider: signed in, or refused with what the page tells the person.</summary>
internal sealed record FederationOutcome(bool SignedIn, string? Refusal)
{
    public static readonly FederationOutcome Success = new(true, null);

    public static FederationOutcome Refused(string message) => new(false, message);
}

/// <summary>
/// The second half of a federated sign-in, after the OpenID Connect handler validated the upstream ID token into Identity's
/// external cookie:
/// <list type="bullet">
/// <item>the account is found by (issuer, subject) in ASP.NET Core Identity's external logins (<c>AspNetUserLogins</c>:
/// login provider = the validated <c>iss</c>, provider key = <c>sub</c>; OpenID Connect Core §2: only that pair identifies
/// an end-user), never by e-mail: anyone can register someone else's address at some provider and would take over the
/// account (OWASP ASVS 4.0.3 V2.1 / "account linking by e-mail");</item>
/// <item>an unknown pair creates a user when the provider has just-in-time creation, in its configured business unit, unless
/// another account holds the e-mail address it gives; otherwise the sign-in is refused;</item>
/// <item>the roles the provider's mapping rules name are set from the token's claims through <see cref="ModelChanges"/>, the
/// one audited path of every model change, with the provider as the actor;</item>
/// <item>a disabled, locked-out or application user is refused; the session records <c>amr</c> <c>fed</c> and <c>idp</c>.</item>
/// </list>
/// </summary>
internal sealed partial class FederatedSignIn(
    IOptions<FederationSettings> settings,
    UserManager<CrmUser> users,
    CrmSignInManager signIn,
    ModelChanges changes,
    AuthorizationModel model,
    AdminOperations operations,
    AccessEvents events,
    ILogger<FederatedSignIn> logger)
{
    /// <summary>
    /// RFC 8176 §1 lets parties agree on values beyond its registry; <c>fed</c> is the value Microsoft Entra ID uses for a
    /// federated sign-in (the IANA registry of RFC 8176 has none for it).
    /// </summary>
    public const string FederatedMethod = "fed";

    /// <summary>The name of the upstream provider the session came through, in the session, the ID token and the access token.</summary>
    public const string IdpClaim = "idp";

    public async Task<FederationOutcome> CompleteAsync(HttpContext http)
    {
        var external = await http.AuthenticateAsync(IdentityConstants.ExternalScheme);
        // One use: whatever happens next, the upstream identity is not kept around for a second attempt.
        await http.SignOutAsync(IdentityConstants.ExternalScheme);
        var principal = external.Principal;
        var name = principal?.FindFirst(FederationServices.ProviderClaim)?.Value;
        var issuer = principal?.FindFirst(FederationServices.IssuerClaim)?.Value;
        var subject = principal?.FindFirst("sub")?.Value;
        if (principal is null || name is null || issuer is null || string.IsNullOrEmpty(subject)
            || !settings.Value.Providers.TryGetValue(name, out var provider))
        {
            await WriteAsync(http, null, AccessActions.LoginFailed, "federation_no_pending_sign_in", Outcomes.Denied);
            return FederationOutcome.Refused("The sign-in through your company's provider did not complete. Start again from this page.");
        }

        var display = provider.DisplayName ?? name;
        var actor = new AdminActor("federation:" + name, $"{display} (federation)", null, http.Connection.RemoteIpAddress?.ToString());
        var user = await users.FindByLoginAsync(issuer, subject);
        if (user is null)
        {
            if (!provider.JustInTimeCreation)
            {
                await WriteAsync(http, null, AccessActions.LoginFailed, $"federation_account_not_linked; idp={name}", Outcomes.Denied);
                return FederationOutcome.Refused($"Your {display} account is not linked to an account here, and accounts are not created automatically for {display}. Ask your security administrator to set up your access.");
            }

            var (created, refusal) = await CreateAsync(http, name, provider, principal, issuer, subject, actor);
            if (created is null)
            {
                return FederationOutcome.Refused(refusal!);
            }

            user = created;
        }
        else
        {
            if (user.IsDisabled || user.ApplicationClientId is not null || await users.IsLockedOutAsync(user))
            {
                await WriteAsync(http, user, AccessActions.LoginFailed, $"{(user.IsDisabled ? "disabled" : user.ApplicationClientId is not null ? "application_user" : "locked_out")}; idp={name}", Outcomes.Denied);
                return FederationOutcome.Refused("This account cannot sign in at the moment. Ask your security administrator.");
            }

            if (await SyncRolesAsync(user.Id, provider, principal, actor, http.RequestAborted) is { } problem)
            {
                LogRoleSyncRefused(logger, name, problem.Detail);
                await WriteAsync(http, user, AccessActions.LoginFailed, $"federation_role_mapping_refused; idp={name}", Outcomes.Denied);
                return FederationOutcome.Refused("Your roles could not be brought up to date, so you were not signed in. Ask your security administrator.");
            }
        }

        await signIn.SignInWithClaimsAsync(user, new AuthenticationProperties { IsPersistent = false },
            [new Claim(CrmSignInManager.AmrClaim, FederatedMethod), new Claim(IdpClaim, name)]);
        await WriteAsync(http, user, AccessActions.Login, $"amr={FederatedMethod}; idp={name}", Outcomes.Success);
        return FederationOutcome.Success;
    }

    private async Task<(CrmUser? User, string? Refusal)> CreateAsync(
        HttpContext http, string name, FederationProviderSettings provider, ClaimsPrincipal principal, string issuer, string subject, AdminActor actor)
    {
        var display = provider.DisplayName ?? name;
        var email = principal.FindFirst("email")?.Value is { Length: > 0 and <= AdminOperations.MaxEmailLength } address ? address.Trim() : null;
        if (email is null)
        {
            // Every person here has an address (password resets, SCIM, the console's searches): an account without one
            // would fail creation later with a message about an empty address. Say what is missing, where it is set.
            LogCreateRefused(logger, name, $"the ID token carries no email claim; add 'email' to Identity:Federation:Providers:{name}:Scopes (or have the provider send it)");
            await WriteAsync(http, null, AccessActions.LoginFailed, $"federation_no_email; idp={name}", Outcomes.Denied);
            return (null, $"Your {display} account gave no e-mail address, which every account here needs, so none was created. Ask your security administrator.");
        }

        if (await users.FindByEmailAsync(email) is not null)
        {
            // The address says nothing about who owns the existing account: never link or merge on it.
            await WriteAsync(http, null, AccessActions.LoginFailed, $"federation_email_already_used; idp={name}", Outcomes.Denied);
            return (null, $"An account here already uses the e-mail address your {display} account gives. For your safety it is not linked to your {display} account automatically. Sign in with that account's password, or ask your security administrator to link them.");
        }

        var userName = await UserNameAsync(name, principal.FindFirst("preferred_username")?.Value, issuer, subject);
        var user = new CrmUser
        {
            UserName = userName,
            Email = email,
            DisplayName = principal.FindFirst("name")?.Value is { Length: > 0 and <= AdminOperations.MaxNameLength } shown ? shown : userName,
            BusinessUnit = provider.BusinessUnit,
            SecurityStamp = Guid.NewGuid().ToString("N"),
            LockoutEnabled = true,
        };
        user.NormalizedUserName = users.NormalizeName(user.UserName);
        user.NormalizedEmail = users.NormalizeEmail(email);

        var problem = await changes.ApplyAsync(actor, async context =>
        {
            if (context.Before.BusinessUnitIndex(provider.BusinessUnit ?? "") < 0)
            {
                return AdminProblem.Invalid("business_unit", $"Identity:Federation:Providers:{name}:BusinessUnit names no business unit ('{provider.BusinessUnit}').");
            }

            if (await operations.AddUserAsync(context, user, null, http.RequestAborted) is { } refused)
            {
                return refused;
            }

            context.Store.UserLogins.Add(new IdentityUserLogin<string> { LoginProvider = issuer, ProviderKey = subject, ProviderDisplayName = name, UserId = user.Id });
            context.Audit(new AuditChange("user.link_login", "system_user", user.Id, user.UserName!, null,
                new { idp = name, issuer, subject }, TargetUser: user.Id));
            return await SetManagedRolesAsync(context, user, [], provider, principal, http.RequestAborted);
        }, http.RequestAborted);

        if (problem is not null)
        {
            LogCreateRefused(logger, name, problem.Detail);
            await WriteAsync(http, null, AccessActions.LoginFailed, $"federation_create_refused; idp={name}", Outcomes.Denied);
            return (null, $"An account could not be created for your {display} account. Ask your security administrator.");
        }

        return (await users.FindByIdAsync(user.Id), null);
    }

    /// <summary>Sets the provider-managed roles of a linked user from this sign-in's claims, when they differ.</summary>
    private async Task<AdminProblem?> SyncRolesAsync(string userId, FederationProviderSettings provider, ClaimsPrincipal principal, AdminActor actor, CancellationToken cancellationToken)
    {
        if (provider.RoleMappings.Count == 0)
        {
            return null;
        }

        // Most sign-ins change nothing: only a difference goes through a model change (and its audit entry).
        var snapshot = model.Current;
        var current = snapshot.User(userId)?.DirectRoles.Select(r => snapshot.Roles[r].Id).ToHashSet(StringComparer.Ordinal) ?? [];
        if (Wanted(current, provider, principal, snapshot.RoleIndex).SetEquals(current))
        {
            return null;
        }

        return await changes.ApplyAsync(actor, async context =>
        {
            var user = await context.Store.Users.SingleOrDefaultAsync(u => u.Id == userId, cancellationToken);
            if (user is null)
            {
                return AdminProblem.NotFound("user", userId);
            }

            var before = await context.Store.CrmUserRoles.Where(r => r.UserId == userId).Select(r => r.RoleId).ToListAsync(cancellationToken);
            user.ConcurrencyStamp = Guid.NewGuid().ToString("N");
            return await SetManagedRolesAsync(context, user, before, provider, principal, cancellationToken);
        }, cancellationToken);
    }

    private static async Task<AdminProblem?> SetManagedRolesAsync(
        ChangeContext context, CrmUser user, List<string> before, FederationProviderSettings provider, ClaimsPrincipal principal, CancellationToken cancellationToken)
    {
        var current = before.ToHashSet(StringComparer.Ordinal);
        var wanted = Wanted(current, provider, principal, context.Before.RoleIndex);
        if (wanted.SetEquals(current))
        {
            return null;
        }

        await context.Store.CrmUserRoles.Where(r => r.UserId == user.Id).ExecuteDeleteAsync(cancellationToken);
        context.Store.CrmUserRoles.AddRange(wanted.Order(StringComparer.Ordinal).Select(r => new UserRoleRecord { UserId = user.Id, RoleId = r }));
        string NameOf(string id) => context.Before.RoleIndex(id) is var i and >= 0 ? context.Before.Roles[i].Name : id;
        context.Audit(new AuditChange("user.roles", "system_user", user.Id, user.UserName!,
            new { roles = before.Order(StringComparer.Ordinal).Select(NameOf) }, new { roles = wanted.Order(StringComparer.Ordinal).Select(NameOf) },
            AdminEventActions.Assign, user.Id));
        return null;
    }

    /// <summary>
    /// The roles the user should hold: every role no rule names stays as it is; a role some rule names is held exactly when a
    /// rule for it matches. A rule grants only its configured role id, and only one the model knows (deny by default).
    /// </summary>
    internal static HashSet<string> Wanted(HashSet<string> current, FederationProviderSettings provider, ClaimsPrincipal principal, Func<string, int> roleIndex)
    {
        var managed = provider.RoleMappings.Select(r => r.Role!).ToHashSet(StringComparer.Ordinal);
        var matched = provider.RoleMappings
            .Where(rule => principal.FindAll(rule.Claim!).Any(claim => string.Equals(claim.Value, rule.Value, StringComparison.Ordinal)))
            .Select(rule => rule.Role!)
            .Where(role => roleIndex(role) >= 0);
        var wanted = current.Where(role => !managed.Contains(role)).ToHashSet(StringComparer.Ordinal);
        wanted.UnionWith(matched);
        return wanted;
    }

    /// <summary>
    /// A user name for a new user: <c>&lt;provider&gt;.&lt;preferred_username&gt;</c> in the characters Identity allows, so it
    /// never equals a local user's name by accident; a hash of (issuer, subject) is added when it is taken.
    /// </summary>
    private async Task<string> UserNameAsync(string provider, string? preferred, string issuer, string subject)
    {
        var allowed = users.Options.User.AllowedUserNameCharacters;
        var cleaned = new string((preferred ?? "").Where(c => allowed.Contains(c, StringComparison.Ordinal)).Take(60).ToArray());
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(issuer + "\n" + subject)))[..10];
        var name = cleaned.Length > 0 ? $"{provider}.{cleaned}" : $"{provider}.{hash}";
        return await users.FindByNameAsync(name) is null ? name : $"{name}-{hash}";
    }

    private ValueTask WriteAsync(HttpContext http, CrmUser? user, string action, string details, string outcome) =>
        events.WriteSignInAsync(http, user?.Id ?? "unknown", user?.UserName, user?.Tenant, action, details, outcome);

    [LoggerMessage(EventId = 4471, Level = LogLevel.Warning, Message = "A user could not be created for a sign-in through {Provider}: {Problem}")]
    private static partial void LogCreateRefused(ILogger logger, string provider, string problem);

    [LoggerMessage(EventId = 4472, Level = LogLevel.Warning, Message = "The roles of a user signing in through {Provider} could not be set: {Problem}")]
    private static partial void LogRoleSyncRefused(ILogger logger, string provider, string problem);
}
