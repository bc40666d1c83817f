using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Incident;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Admin;

internal sealed partial class AdminOperations
{
    /// <summary>
    /// Creates a user (or an application user, bound to an OIDC client) through the same validators as every other path
    /// (red-team finding 11): ASP.NET Core Identity's user validators (user name characters, a valid and unique e-mail
    /// address) and password validators (length, deny list). Application users have no password, so they never sign in
    /// interactively; their client must exist and may have only one. Every refusal is problem details naming the field.
    /// </summary>
    public async Task<(string? Id, AdminProblem? Problem)> CreateUserAsync(AdminGuard guard, UserBody body, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(body.UserName) || body.UserName.Length > MaxIdLength)
        {
            return (null, AdminProblem.Invalid("user_name", $"user_name is required (at most {MaxIdLength} characters)."));
        }

        if (body.DisplayName is { Length: > MaxNameLength })
        {
            return (null, AdminProblem.Invalid("display_name", $"display_name is longer than {MaxNameLength} characters."));
        }

        if (body.Email is { Length: > MaxEmailLength })
        {
            return (null, AdminProblem.Invalid("email", $"email is longer than {MaxEmailLength} characters."));
        }

        var unit = body.BusinessUnit ?? "";
        if (guard.Snapshot.BusinessUnitIndex(unit) < 0)
        {
            return (null, AdminProblem.Invalid("business_unit", body.BusinessUnit is null ? "business_unit is required." : $"unknown business unit '{unit}'."));
        }

        if (guard.Require(SystemEntities.User, CrmAction.Create, unit) is { } denied)
        {
            return (null, denied);
        }

        var managerId = string.IsNullOrWhiteSpace(body.Manager) ? null : body.Manager.Trim();
        if (managerId is not null)
        {
            // Naming a manager hands the manager read of the new user's records (design.md hierarchy): the same rule as
            // SetUserProfileAsync, assign on system_user in the unit, and a manager the caller may view (naming a user of
            // another unit would reveal whether it exists).
            if (guard.Require(SystemEntities.User, CrmAction.Assign, unit) is { } assignDenied)
            {
                return (null, assignDenied);
            }

            var manager = guard.Snapshot.User(managerId);
            if (manager is null || manager.Definition.ApplicationClientId is not null
                || !guard.Covers(SystemEntities.User, CrmAction.Read, guard.Snapshot.BusinessUnits[manager.BusinessUnit].Id))
            {
                return (null, AdminProblem.Invalid("manager", $"unknown user '{managerId}' (the manager must be a person you may view)."));
            }
        }

        var clientId = string.IsNullOrWhiteSpace(body.ApplicationClientId) ? null : body.ApplicationClientId.Trim();
        if (clientId is not null)
        {
            // An application user signs in with nothing: its client's credentials act as it (Dynamics 365 application users).
            if (!string.IsNullOrEmpty(body.Password))
            {
                return (null, AdminProblem.Invalid("password", "An application user has no password: its client's own tokens act as it, and it cannot sign in interactively. Leave password out."));
            }

            // Binding a client to a user gives every token the client obtains for itself that user's rights: it changes
            // what the client can do, an organisation-wide object.
            if (guard.Require(SystemEntities.Client, CrmAction.Update) is { } clientDenied)
            {
                return (null, clientDenied);
            }

            if (clientId.Length > MaxIdLength || await applications.FindByClientIdAsync(clientId, cancellationToken) is null)
            {
                return (null, AdminProblem.Invalid("application_client_id", $"There is no OIDC client '{clientId}' to bind the application user to."));
            }
        }

        var email = string.IsNullOrWhiteSpace(body.Email) ? null : body.Email.Trim();
        var user = new CrmUser
        {
            UserName = body.UserName.Trim(),
            Email = email,
            DisplayName = string.IsNullOrWhiteSpace(body.DisplayName) ? body.UserName.Trim() : body.DisplayName.Trim(),
            BusinessUnit = unit,
            ApplicationClientId = clientId,
            ManagerId = managerId,
            SecurityStamp = Guid.NewGuid().ToString("N"),
            LockoutEnabled = true,
        };
        user.NormalizedUserName = users.NormalizeName(user.UserName);
        user.NormalizedEmail = users.NormalizeEmail(email);

        var problem = await changes.ApplyAsync(guard.Actor, context => AddUserAsync(context, user, body.Password, cancellationToken), cancellationToken);
        return (problem is null ? user.Id : null, problem);
    }

    /// <summary>
    /// The step of a change that adds <paramref name="user"/> (its names, unit and client already set): the uniqueness
    /// checks and Identity's validators, then the row and its <c>user.create</c> audit entry.
    /// </summary>
    internal async Task<AdminProblem?> AddUserAsync(ChangeContext context, CrmUser user, string? password, CancellationToken cancellationToken)
    {
        var clientId = user.ApplicationClientId;
        var email = user.Email;

        // Checked inside the transaction (changes are serialised on the model-version row), so two requests racing
        // for the same name, address or client do not both pass.
        if (clientId is not null && await context.Store.Users.AnyAsync(u => u.ApplicationClientId == clientId, cancellationToken))
        {
            return Field(StatusCodes.Status409Conflict, "application_client_id", $"Client '{clientId}' already has an application user; a client acts as one user only.");
        }

        // An address held twice breaks its owner's sign-in by e-mail and password reset: never create a second one.
        if (user.NormalizedEmail is not null && await context.Store.Users.AnyAsync(u => u.NormalizedEmail == user.NormalizedEmail, cancellationToken))
        {
            return Field(StatusCodes.Status409Conflict, "email", $"The e-mail address '{email}' is already used by another user.");
        }

        var errors = new List<IdentityError>();
        foreach (var validator in users.UserValidators)
        {
            errors.AddRange((await validator.ValidateAsync(users, user)).Errors
                // Application users receive no mail: an address is optional for them (Identity requires one when e-mail must be unique).
                .Where(e => !(clientId is not null && email is null && e.Code == nameof(IdentityErrorDescriber.InvalidEmail))));
        }

        if (!string.IsNullOrEmpty(password))
        {
            foreach (var validator in users.PasswordValidators)
            {
                errors.AddRange((await validator.ValidateAsync(users, user, password)).Errors);
            }
        }

        if (errors.Count > 0)
        {
            return Refusal(errors);
        }

        if (!string.IsNullOrEmpty(password))
        {
            user.PasswordHash = users.PasswordHasher.HashPassword(user, password);
        }

        context.Store.Users.Add(user);
        context.Audit(new AuditChange("user.create", "system_user", user.Id, user.UserName!, null,
            new { user_name = user.UserName, display_name = user.DisplayName, email, business_unit = user.BusinessUnit, application_client_id = clientId, manager = user.ManagerId, password = user.PasswordHash is not null },
            TargetUser: user.Id));
        return null;
    }

    /// <summary>Identity's validation errors as one problem, each under the field it is about; a duplicate is a conflict.</summary>
    private static AdminProblem Refusal(List<IdentityError> errors)
    {
        static string FieldOf(string code) => code switch
        {
            _ when code.StartsWith("Password", StringComparison.Ordinal) => "password",
            _ when code.EndsWith("UserName", StringComparison.Ordinal) => "user_name",
            _ when code.EndsWith("Email", StringComparison.Ordinal) => "email",
            _ => "$",
        };

        var byField = errors.GroupBy(e => FieldOf(e.Code)).ToDictionary(g => g.Key, g => g.Select(e => e.Description).ToArray());
        var conflict = errors.All(e => e.Code.StartsWith("Duplicate", StringComparison.Ordinal));
        return new AdminProblem(conflict ? StatusCodes.Status409Conflict : StatusCodes.Status400BadRequest,
            conflict ? "Conflict" : "The request is not valid", string.Join(" ", errors.Select(e => e.Description)), byField);
    }

    private static AdminProblem Field(int status, string field, string message) =>
        new(status, status == StatusCodes.Status409Conflict ? "Conflict" : "The request is not valid", message, new Dictionary<string, string[]> { [field] = [message] });

    public Task<AdminProblem?> SetUserRolesAsync(AdminGuard guard, string userId, NamesBody body, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Assign, "roles", body.Version, async (context, user, info) =>
        {
            var current = info?.DirectRoles ?? [];
            var (roles, problem) = Roles(guard, body.Roles ?? [], "roles", current);
            if (problem is not null)
            {
                return problem;
            }

            await context.Store.CrmUserRoles.Where(r => r.UserId == userId).ExecuteDeleteAsync(cancellationToken);
            context.Store.CrmUserRoles.AddRange(roles.Select(r => new UserRoleRecord { UserId = userId, RoleId = r.Id }));
            context.Audit(new AuditChange("user.roles", "system_user", userId, user.UserName!,
                new { roles = current.Select(r => guard.Snapshot.Roles[r].Name) }, new { roles = roles.Select(r => r.Name) }, AdminEventActions.Assign, userId));
            return null;
        }, cancellationToken);

    public Task<AdminProblem?> SetUserTeamsAsync(AdminGuard guard, string userId, NamesBody body, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Assign, "teams", body.Version, async (context, user, info) =>
        {
            var snapshot = guard.Snapshot;
            var current = info?.Teams ?? [];
            var wanted = new List<TeamInfo>();
            foreach (var (id, i) in (body.Teams ?? []).Select((id, i) => (id, i)))
            {
                var t = snapshot.TeamIndex(id);
                if (t < 0)
                {
                    return AdminProblem.Invalid($"teams[{i}]", $"unknown team '{id}'.");
                }

                if (!current.Contains(t))
                {
                    // Joining a team hands out its roles and field security profiles: the admin needs assign on the team
                    // and must hold every privilege and field grant it gives.
                    var team = snapshot.Teams[t];
                    var refused = guard.Require(SystemEntities.Team, CrmAction.Assign, snapshot.BusinessUnits[team.BusinessUnit].Id)
                        ?? team.Roles.Select(r => guard.RequireHolds(snapshot.Roles[r])).FirstOrDefault(p => p is not null)
                        ?? team.Profiles.Select(p => guard.RequireHolds(snapshot.Profiles[p])).FirstOrDefault(p => p is not null);
                    if (refused is not null)
                    {
                        return refused;
                    }
                }

                wanted.Add(snapshot.Teams[t]);
            }

            foreach (var removed in current.Where(t => !wanted.Exists(w => w.Index == t)))
            {
                if (guard.Require(SystemEntities.Team, CrmAction.Assign, snapshot.BusinessUnits[snapshot.Teams[removed].BusinessUnit].Id) is { } refused)
                {
                    return refused;
                }
            }

            await context.Store.TeamMembers.Where(m => m.UserId == userId).ExecuteDeleteAsync(cancellationToken);
            context.Store.TeamMembers.AddRange(wanted.DistinctBy(t => t.Id).Select(t => new TeamMemberRecord { TeamId = t.Id, UserId = userId }));
            context.Audit(new AuditChange("user.teams", "system_user", userId, user.UserName!,
                new { teams = current.Select(t => snapshot.Teams[t].Name) }, new { teams = wanted.Select(t => t.Name) }, AdminEventActions.Assign, userId));
            return null;
        }, cancellationToken);

    public async Task<AdminProblem?> SetUserBusinessUnitAsync(AdminGuard guard, string userId, NamesBody body, CancellationToken cancellationToken)
    {
        if (body.BusinessUnit is null || guard.Snapshot.BusinessUnitIndex(body.BusinessUnit) < 0)
        {
            return AdminProblem.Invalid("business_unit", body.BusinessUnit is null ? "business_unit is required." : $"unknown business unit '{body.BusinessUnit}'.");
        }

        // The admin must cover the new unit as well as the old one, or moving a user out of reach would be a way round.
        if (guard.Require(SystemEntities.User, CrmAction.Update, body.BusinessUnit) is { } denied)
        {
            return denied;
        }

        return await ChangeUserAsync(guard, userId, CrmAction.Update, "business unit", body.Version, (context, user, info) =>
        {
            var before = user.BusinessUnit;
            user.BusinessUnit = body.BusinessUnit;
            context.Audit(new AuditChange("user.business_unit", "system_user", userId, user.UserName!,
                new { business_unit = before }, new { business_unit = body.BusinessUnit }, TargetUser: userId));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    /// <summary>
    /// Sets the user's time zone. Nobody sets their own: the analyzer judges odd-hour access in this zone, so moving
    /// one's own zone would hide night-time work.
    /// </summary>
    public Task<AdminProblem?> SetUserZoneInfoAsync(AdminGuard guard, string userId, ZoneInfoBody body, CancellationToken cancellationToken)
    {
        var zone = string.IsNullOrWhiteSpace(body.ZoneInfo) ? null : body.ZoneInfo.Trim();
        if (zone is not null && ZoneInfoProblem(zone) is { } invalid)
        {
            return Task.FromResult<AdminProblem?>(AdminProblem.Invalid("zoneinfo", invalid));
        }

        return ChangeUserAsync(guard, userId, CrmAction.Update, "time zone", body.Version, (context, user, info) =>
        {
            var before = user.ZoneInfo;
            user.ZoneInfo = zone;
            context.Audit(new AuditChange("user.zoneinfo", "system_user", userId, user.UserName!,
                new { zoneinfo = before }, new { zoneinfo = zone }, TargetUser: userId));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);
    }

    /// <summary>
    /// Sets (or clears, with null) the user's hire and termination dates, both at once as the body states them. The dates are
    /// calendar days (ISO 8601 <c>yyyy-MM-dd</c>); a termination before the hire is refused naming <c>terminated</c>. Nobody
    /// sets their own: the analyzer treats access after the termination date as a leaver's, so moving one's own date would
    /// hide it. Setting a termination date does not disable the account (that stays its own audited action).
    /// </summary>
    public Task<AdminProblem?> SetUserEmploymentAsync(AdminGuard guard, string userId, EmploymentBody body, CancellationToken cancellationToken)
    {
        var (hired, hiredProblem) = Day(body.Hired, "hired");
        if (hiredProblem is not null)
        {
            return Task.FromResult<AdminProblem?>(hiredProblem);
        }

        var (terminated, terminatedProblem) = Day(body.Terminated, "terminated");
        if (terminatedProblem is not null)
        {
            return Task.FromResult<AdminProblem?>(terminatedProblem);
        }

        if (hired is { } h && terminated is { } t && t < h)
        {
            return Task.FromResult<AdminProblem?>(AdminProblem.Invalid("terminated",
                $"terminated ({t:yyyy-MM-dd}) is before hired ({h:yyyy-MM-dd}): the last working day cannot precede the first."));
        }

        return ChangeUserAsync(guard, userId, CrmAction.Update, "hire and termination dates", body.Version, (context, user, info) =>
        {
            var before = new { hired = Text(user.Hired), terminated = Text(user.Terminated) };
            user.Hired = hired;
            user.Terminated = terminated;
            context.Audit(new AuditChange("user.employment", "system_user", userId, user.UserName!,
                before, new { hired = Text(hired), terminated = Text(terminated) }, TargetUser: userId));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);

        static string? Text(DateOnly? day) => day?.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A calendar day in ISO 8601 extended form (<c>yyyy-MM-dd</c>, RFC 3339 <c>full-date</c>), or null for empty.</summary>
    private static (DateOnly? Day, AdminProblem? Problem) Day(string? text, string field)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return (null, null);
        }

        return DateOnly.TryParseExact(text.Trim(), "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out var day)
            ? (day, null)
            : (null, AdminProblem.Invalid(field, $"{field} '{text}' is not a date: use yyyy-MM-dd (for example 2026-03-31), or null to clear it."));
    }

    /// <summary>Why <paramref name="zone"/> is not a time zone id this system knows in IANA form, or null when it is.</summary>
    internal static string? ZoneInfoProblem(string zone)
    {
        if (zone.Length > 100)
        {
            return "zoneinfo is longer than 100 characters.";
        }

        try
        {
            // OpenID Connect Core §5.1: zoneinfo is a zoneinfo (IANA tz database) name; a Windows id is found too, so refuse it.
            return TimeZoneInfo.FindSystemTimeZoneById(zone).HasIanaId
                ? null
                : $"'{zone}' is a Windows time zone id; use the IANA name (for example Europe/Berlin).";
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return $"'{zone}' is not a known IANA time zone (for example Europe/Berlin, America/New_York).";
        }
    }

    /// <summary>
    /// Disables (or enables) a user as one model change: the model swaps in a snapshot where the user is disabled (so the
    /// decision API, the admin API and the encryption service refuse them at once), and disabling revokes every token,
    /// authorization and session of the user in the same transaction as the hash-chained audit entry (red-team finding 5).
    /// </summary>
    public async Task<(RevocationSummary? Summary, AdminProblem? Problem)> SetUserDisabledAsync(AdminGuard guard, string userId, bool disabled, string? reason, CancellationToken cancellationToken)
    {
        RevocationSummary? summary = null;
        var problem = await ChangeUserAsync(guard, userId, CrmAction.Update, "account", null, async (context, user, info) =>
        {
            var before = user.IsDisabled;
            user.IsDisabled = disabled;
            summary = disabled
                ? await incidents.RevokeUserAsync(user, cancellationToken)
                : new RevocationSummary("user", user.Id, 0, 0);
            context.Audit(new AuditChange(disabled ? "user.disable" : "user.enable", "system_user", userId, user.UserName!,
                new { disabled = before },
                new { disabled, reason, tokens_revoked = summary.TokensRevoked, authorizations_revoked = summary.AuthorizationsRevoked },
                TargetUser: userId, Summary: Reasoned($"{user.UserName} {(disabled ? "disabled" : "enabled")}", reason)));
            return null;
        }, cancellationToken, allowSelf: false);
        return problem is null ? (summary, null) : (null, problem);
    }

    /// <summary>
    /// Incident response for a user: every token, authorization and sign-in session ends, audited in the same transaction.
    /// An admin may do it to themselves (a suspected stolen session is the admin's own emergency too).
    /// </summary>
    public async Task<(RevocationSummary? Summary, AdminProblem? Problem)> RevokeUserAsync(AdminGuard guard, string userId, string? reason, CancellationToken cancellationToken)
    {
        RevocationSummary? summary = null;
        var problem = await ChangeUserAsync(guard, userId, CrmAction.Update, "sessions", null, async (context, user, info) =>
        {
            summary = await incidents.RevokeUserAsync(user, cancellationToken);
            context.Audit(new AuditChange("user.revoke", "system_user", userId, user.UserName!, null,
                new { reason, tokens_revoked = summary.TokensRevoked, authorizations_revoked = summary.AuthorizationsRevoked },
                TargetUser: userId, Summary: Reasoned($"every token and session of {user.UserName} revoked", reason)));
            return null;
        }, cancellationToken, allowSelf: true);
        return problem is null ? (summary, null) : (null, problem);
    }

    public Task<AdminProblem?> UnlockUserAsync(AdminGuard guard, string userId, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Update, "account", null, (context, user, info) =>
        {
            var before = new { locked_until = user.LockoutEnd, failed_attempts = user.AccessFailedCount };
            user.LockoutEnd = null;
            user.AccessFailedCount = 0;
            context.Audit(new AuditChange("user.unlock", "system_user", userId, user.UserName!, before, new { locked_until = (DateTimeOffset?)null, failed_attempts = 0 }, TargetUser: userId));
            return Task.FromResult<AdminProblem?>(null);
        }, cancellationToken);

    public Task<AdminProblem?> ResetMfaAsync(AdminGuard guard, string userId, CancellationToken cancellationToken) =>
        ChangeUserAsync(guard, userId, CrmAction.Update, "multi-factor authentication", null, async (context, user, info) =>
        {
            var before = user.TwoFactorEnabled;
            user.TwoFactorEnabled = false;
            // ASP.NET Core Identity keeps the authenticator key and recovery codes as user tokens of its own store.
            await context.Store.UserTokens.Where(t => t.UserId == userId && t.LoginProvider == "[AspNetUserStore]").ExecuteDeleteAsync(cancellationToken);

            // Passkeys (Identity's AspNetUserPasskeys) answer the second step and sign in on their own: a reset after a lost
            // or stolen device removes them too, or the device would still sign in (NIST SP 800-63B §6.1.2.1 lost authenticators).
            var passkeys = await context.Store.UserPasskeys.Where(p => p.UserId == userId).ExecuteDeleteAsync(cancellationToken);
            await context.Store.PasskeyUses.Where(p => p.UserId == userId).ExecuteDeleteAsync(cancellationToken);

            // Sessions signed in with the old second factor end too, in the same transaction: the next sign-in enrols a new one.
            var revoked = await incidents.RevokeUserAsync(user, cancellationToken);
            context.Audit(new AuditChange("user.reset_mfa", "system_user", userId, user.UserName!, new { mfa = before },
                new { mfa = false, passkeys_removed = passkeys, tokens_revoked = revoked.TokensRevoked }, TargetUser: userId));
            return null;
        }, cancellationToken, allowSelf: false);

    /// <summary>
    /// A change to one user: the admin needs <paramref name="action"/> on system_user covering the user's business unit,
    /// may not change themselves (unless <paramref name="allowSelf"/>), and the user's concurrency stamp is the version.
    /// </summary>
    private Task<AdminProblem?> ChangeUserAsync(AdminGuard guard, string userId, CrmAction action, string what, string? version,
        Func<ChangeContext, CrmUser, UserInfo?, Task<AdminProblem?>> change, CancellationToken cancellationToken, bool allowSelf = false) =>
        changes.ApplyAsync(guard.Actor, async context =>
        {
            var user = await context.Store.Users.SingleOrDefaultAsync(u => u.Id == userId, cancellationToken);
            if (user is null)
            {
                return AdminProblem.NotFound("user", userId);
            }

            if (guard.Require(SystemEntities.User, action, user.BusinessUnit) is { } denied)
            {
                return denied;
            }

            if (!allowSelf && guard.RequireNotSelf(userId, what) is { } self)
            {
                return self;
            }

            if (version is not null && !string.Equals(version, user.ConcurrencyStamp, StringComparison.Ordinal))
            {
                return await ConflictAsync(context, "user", userId, user.UserName ?? userId, user.ConcurrencyStamp ?? "", version, cancellationToken);
            }

            user.ConcurrencyStamp = Guid.NewGuid().ToString("N");
            return await change(context, user, guard.Snapshot.User(userId));
        }, cancellationToken);

    public static UserView View(AuthorizationSnapshot snapshot, CrmUser user, DateTimeOffset now)
    {
        var info = snapshot.User(user.Id);
        return new UserView(user.Id, user.UserName ?? user.Id, user.DisplayName ?? user.UserName ?? user.Id, user.BusinessUnit,
            info is null ? [] : [.. info.DirectRoles.Select(r => snapshot.Roles[r].Id)],
            info is null ? [] : [.. info.Teams.Select(t => snapshot.Teams[t].Id)],
            user.IsDisabled, user.LockoutEnd > now, user.TwoFactorEnabled, user.ConcurrencyStamp ?? "", user.ZoneInfo,
            user.Hired?.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            user.Terminated?.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            info is null ? [] : [.. info.DirectProfiles.Select(p => snapshot.Profiles[p].Id)],
            user.Email, user.ManagerId, user.ApplicationClientId, user.LockoutEnd > now ? user.LockoutEnd : null);
    }

    /// <summary>
    /// Sets (or clears, with null or "") the user's manager: the same audited change as a provisioning client's
    /// (<see cref="SetUserProfileAsync"/>, <c>user.profile</c>), so the manager must be a user the caller may view, the
    /// chain may not loop, the caller needs assign on the user and changes no manager of their own.
    /// </summary>
    public Task<AdminProblem?> SetUserManagerAsync(AdminGuard guard, string userId, ManagerBody body, CancellationToken cancellationToken) =>
        SetUserProfileAsync(guard, userId, new ProfileBody(null, null, null, null, null, body.Manager?.Trim() ?? "", body.Version), cancellationToken);
}
