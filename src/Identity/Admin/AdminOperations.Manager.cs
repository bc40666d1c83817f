using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// The directory attributes of a person as a provisioning client (SCIM, RFC 7643) states them: names, e-mail address,
/// the client's own id for the person, department and manager. Null leaves an attribute as it is; an empty string clears
/// an optional one. <see cref="Version"/> is the user's concurrency stamp (If-Match).
/// </summary>
internal sealed record ProfileBody(
    string? UserName,
    string? DisplayName,
    string? Email,
    string? ExternalId,
    string? Department,
    string? ManagerId,
    string? Version = null);

internal sealed partial class AdminOperations
{
    public const int MaxExternalIdLength = 256;

    /// <summary>
    /// The users console's edit of a person's display name and e-mail address (<c>PUT /admin/api/users/{id}</c> and the users
    /// page): the same audited change as a provisioning client's (<c>user.profile</c>), with its validators and its version
    /// check (RFC 9110 §13.1.1 If-Match: a stale version is a 409 naming who changed the user last).
    /// </summary>
    public Task<AdminProblem?> UpdateUserProfileAsync(AdminGuard guard, string userId, UserProfileBody body, CancellationToken cancellationToken) =>
        SetUserProfileAsync(guard, userId, new ProfileBody(null, body.DisplayName, body.Email, null, null, null, body.Version), cancellationToken);

    /// <summary>
    /// Changes a user's directory attributes in one audited change (<c>user.profile</c>, before and after). The manager is
    /// part of the authorization model (a manager reads their reports' records, design.md hierarchy), so setting one needs
    /// <c>assign</c> on the user, and the manager must be a user the caller may view; a manager chain that loops is
    /// refused. A new user name or e-mail address goes through ASP.NET Core Identity's validators, as at creation.
    /// </summary>
    public async Task<AdminProblem?> SetUserProfileAsync(AdminGuard guard, string userId, ProfileBody body, CancellationToken cancellationToken)
    {
        if (body.UserName is { } name && (string.IsNullOrWhiteSpace(name) || name.Length > MaxIdLength))
        {
            return AdminProblem.Invalid("user_name", $"user_name is required (at most {MaxIdLength} characters).");
        }

        if (body.DisplayName is { Length: > MaxNameLength })
        {
            return AdminProblem.Invalid("display_name", $"display_name is longer than {MaxNameLength} characters.");
        }

        if (body.Email is { Length: > MaxEmailLength })
        {
            return AdminProblem.Invalid("email", $"email is longer than {MaxEmailLength} characters.");
        }

        if (body.ExternalId is { Length: > MaxExternalIdLength })
        {
            return AdminProblem.Invalid("external_id", $"external_id is longer than {MaxExternalIdLength} characters.");
        }

        if (body.Department is { Length: > MaxNameLength })
        {
            return AdminProblem.Invalid("department", $"department is longer than {MaxNameLength} characters.");
        }

        var snapshot = guard.Snapshot;
        var managerId = body.ManagerId is null ? null : body.ManagerId.Trim();
        if (managerId is { Length: > 0 })
        {
            // The manager must be someone the caller may see: naming a user of another unit would reveal whether it exists.
            var manager = snapshot.User(managerId);
            if (manager is null || !guard.Covers(SystemEntities.User, CrmAction.Read, snapshot.BusinessUnits[manager.BusinessUnit].Id))
            {
                return AdminProblem.Invalid("manager", $"unknown user '{managerId}' (the manager must be a user you may view).");
            }

            // A loop in the manager chain would make the hierarchy rule walk for ever (and make each a manager of the other).
            for (var at = manager; at is not null; at = at.Manager >= 0 ? snapshot.Users[at.Manager] : null)
            {
                if (at.Id == userId)
                {
                    return AdminProblem.Invalid("manager", $"'{manager.UserName}' reports (directly or not) to this user: a manager chain cannot loop.");
                }
            }
        }

        var action = managerId is null ? CrmAction.Update : CrmAction.Assign;
        return await ChangeUserAsync(guard, userId, action, "directory attributes", body.Version, async (context, user, info) =>
        {
            var before = new { user_name = user.UserName, display_name = user.DisplayName, email = user.Email, external_id = user.ExternalId, department = user.Department, manager = user.ManagerId };
            if (body.UserName is { } userName && userName.Trim() != user.UserName)
            {
                user.UserName = userName.Trim();
                user.NormalizedUserName = users.NormalizeName(user.UserName);
            }

            if (body.Email is { } email && (email.Trim() is var trimmed) && trimmed != (user.Email ?? ""))
            {
                user.Email = trimmed.Length == 0 ? null : trimmed;
                user.NormalizedEmail = users.NormalizeEmail(user.Email);
                user.EmailConfirmed = false;
                if (user.NormalizedEmail is not null && await context.Store.Users.AnyAsync(u => u.NormalizedEmail == user.NormalizedEmail && u.Id != userId, cancellationToken))
                {
                    return Field(StatusCodes.Status409Conflict, "email", $"The e-mail address '{user.Email}' is already used by another user.");
                }
            }

            if (body.DisplayName is { } display)
            {
                user.DisplayName = string.IsNullOrWhiteSpace(display) ? user.UserName : display.Trim();
            }

            if (body.ExternalId is { } external)
            {
                user.ExternalId = string.IsNullOrWhiteSpace(external) ? null : external.Trim();
            }

            if (body.Department is { } department)
            {
                user.Department = string.IsNullOrWhiteSpace(department) ? null : department.Trim();
            }

            if (managerId is not null)
            {
                user.ManagerId = managerId.Length == 0 ? null : managerId;
            }

            // The same validators as creation (red-team finding 11): user name characters, a valid and unique address.
            var errors = new List<Microsoft.AspNetCore.Identity.IdentityError>();
            foreach (var validator in users.UserValidators)
            {
                errors.AddRange((await validator.ValidateAsync(users, user)).Errors);
            }

            if (errors.Count > 0)
            {
                return Refusal(errors);
            }

            var after = new { user_name = user.UserName, display_name = user.DisplayName, email = user.Email, external_id = user.ExternalId, department = user.Department, manager = user.ManagerId };
            context.Audit(new AuditChange("user.profile", "system_user", userId, user.UserName!, before, after, TargetUser: userId));
            return null;
        }, cancellationToken);
    }
}
