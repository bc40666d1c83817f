using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    /// <summary>The role the first administrator gets: the policy files' security administrator.</summary>
    public const string FirstAdministratorRole = "security_admin";

    /// <summary>
    /// The installation's first security administrator, for a database nobody can administer yet: a person in the root
    /// business unit with <see cref="FirstAdministratorRole"/> and no password, made in one audited change like every
    /// other (the same validators as <see cref="CreateUserAsync"/>, a <c>user.create</c> and a <c>user.roles</c> entry
    /// naming <paramref name="actor"/>). Refused, naming them, as soon as anyone is a security administrator
    /// (<see cref="SecurityAdministrators"/>): from then on people are made by an administrator, through the guard.
    /// </summary>
    public async Task<(string? Id, IReadOnlyList<string> Administrators, AdminProblem? Problem)> CreateFirstAdministratorAsync(
        AdminActor actor, string userName, string email, CancellationToken cancellationToken)
    {
        userName = userName.Trim();
        email = email.Trim();
        if (userName.Length is 0 or > MaxIdLength)
        {
            return (null, [], AdminProblem.Invalid("user_name", $"The user name is required (at most {MaxIdLength} characters)."));
        }

        if (email.Length is 0 or > MaxEmailLength)
        {
            // The setup link and every later reset go to this address; Identity requires it unique and valid.
            return (null, [], AdminProblem.Invalid("email", $"The e-mail address is required (at most {MaxEmailLength} characters)."));
        }

        var administrators = new List<string>();
        CrmUser? created = null;
        var problem = await changes.ApplyAsync(actor, async context =>
        {
            // Read here, inside the transaction and after the model-version lock, not from this process's snapshot: an
            // administrator made meanwhile by a running service, or a second run at the same moment, is seen.
            var version = await ModelLoader.VersionAsync(context.Store, cancellationToken);
            var current = (await ModelLoader.LoadAsync(context.Store, model.Policies, cancellationToken)).Build(version);
            administrators.AddRange(SecurityAdministrators(current));
            if (administrators.Count > 0)
            {
                return AdminProblem.Conflict($"The installation already has a security administrator ({string.Join(", ", administrators)}). " +
                    "New administrators are made by one of them, on the admin pages or the admin API.");
            }

            var role = current.RoleIndex(FirstAdministratorRole);
            if (role < 0)
            {
                return AdminProblem.Conflict($"The authorization model has no role '{FirstAdministratorRole}' (policies/authorization/roles.json seeds it): " +
                    "there is no security administrator role to give.");
            }

            var user = new CrmUser
            {
                UserName = userName,
                Email = email,
                DisplayName = userName,
                BusinessUnit = current.BusinessUnits[current.RootBusinessUnit].Id,
                SecurityStamp = Guid.NewGuid().ToString("N"),
                LockoutEnabled = true,
            };
            user.NormalizedUserName = users.NormalizeName(user.UserName);
            user.NormalizedEmail = users.NormalizeEmail(email);
            if (await AddUserAsync(context, user, password: null, cancellationToken) is { } refused)
            {
                return refused;
            }

            context.Store.CrmUserRoles.Add(new UserRoleRecord { UserId = user.Id, RoleId = FirstAdministratorRole });
            context.Audit(new AuditChange("user.roles", "system_user", user.Id, userName, new { roles = Array.Empty<string>() },
                new { roles = new[] { current.Roles[role].Name } }, AdminEventActions.Assign, user.Id, $"first security administrator '{userName}'"));
            created = user;
            return null;
        }, cancellationToken);
        return (problem is null ? created?.Id : null, administrators, problem);
    }

    /// <summary>
    /// Who can administer people across the whole organisation: enabled users and application users that may create users
    /// and give roles at organization depth (a disabled one holds nothing). Business-unit admins do not count: none of them
    /// can make an administrator for the whole organisation.
    /// </summary>
    internal static IEnumerable<string> SecurityAdministrators(AuthorizationSnapshot snapshot)
    {
        var entity = snapshot.EntityIndex(SystemEntities.User);
        if (entity < 0)
        {
            yield break;
        }

        for (var user = 0; user < snapshot.Users.Length; user++)
        {
            if (snapshot.DepthOf(user, entity, CrmAction.Create) == Depth.Organization && snapshot.DepthOf(user, entity, CrmAction.Assign) == Depth.Organization)
            {
                yield return snapshot.Users[user].UserName;
            }
        }
    }
}
