using System.Globalization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Incident;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// Every admin change, for the admin API and the admin pages alike. Each one checks the caller's admin privileges on the
/// snapshot the change starts from, validates the input naming the field, and runs as one <see cref="ModelChanges"/>
/// transaction that appends a hash-chained audit entry (actor, target names, before and after, source IP) and emits the
/// access event; a refusal anywhere rolls the whole change back.
/// </summary>
internal sealed partial class AdminOperations(
    ModelChanges changes, AuthorizationModel model, IncidentResponse incidents, UserManager<CrmUser> users, IOpenIddictApplicationManager applications,
    Clients.ClientRules clientRules, Clients.VerifiedSecretCache verifiedSecrets)
{
    public const int MaxIdLength = 100;

    /// <summary>ASP.NET Core Identity's column sizes for display names and e-mail addresses.</summary>
    public const int MaxNameLength = 200;

    public const int MaxEmailLength = 256;

    /// <summary>The roles named, each one held in full by the caller unless the target already has it.</summary>
    private static (List<RoleInfo> Roles, AdminProblem? Problem) Roles(AdminGuard guard, List<string> ids, string field, int[]? current = null)
    {
        var roles = new List<RoleInfo>();
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            var index = guard.Snapshot.RoleIndex(id);
            if (index < 0)
            {
                return ([], AdminProblem.Invalid($"{field}[{i}]", $"unknown role '{id}'."));
            }

            var role = guard.Snapshot.Roles[index];
            if (!(current?.Contains(index) ?? false) && guard.RequireHolds(role) is { } escalation)
            {
                return ([], escalation);
            }

            if (!roles.Contains(role))
            {
                roles.Add(role);
            }
        }

        return (roles, null);
    }

    private static AdminProblem? Identifier(string? id, string field) =>
        string.IsNullOrWhiteSpace(id) || id.Length > MaxIdLength || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')
            ? AdminProblem.Invalid(field, $"{field} is required: 1 to {MaxIdLength} letters, digits, '_', '-' or '.'.")
            : null;

    private static Task<AdminProblem?> StaleAsync(ChangeContext context, string kind, string id, string name, int current, int? expected, CancellationToken cancellationToken) =>
        expected is { } e && e != current
            ? ConflictAsync(context, kind, id, name, current.ToString(CultureInfo.InvariantCulture), e.ToString(CultureInfo.InvariantCulture), cancellationToken)!
            : Task.FromResult<AdminProblem?>(null);

    /// <summary>RFC 9110 §13.1.1: the client's copy (If-Match / version) is not the current one; 409 names who changed it last.</summary>
    private static async Task<AdminProblem?> ConflictAsync(ChangeContext context, string kind, string id, string name, string current, string expected, CancellationToken cancellationToken)
    {
        var last = await context.Store.AuditTrail.AsNoTracking().Where(a => a.TargetId == id).OrderByDescending(a => a.Sequence)
            .Select(a => new { a.ActorName, a.Timestamp, a.Action }).FirstOrDefaultAsync(cancellationToken);
        var by = last is null ? "" : string.Create(CultureInfo.InvariantCulture, $" ({last.Action} by {last.ActorName} at {last.Timestamp.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z)");
        return new AdminProblem(StatusCodes.Status409Conflict, "Edit conflict",
            $"The {kind} '{name}' was changed by someone else{by}: you edited version {expected}, the current version is {current}. Reload it and apply your change again.",
            new Dictionary<string, string[]> { ["version"] = [$"expected {expected}, current {current}"] });
    }

    private static string Reasoned(string what, string? reason) => string.IsNullOrWhiteSpace(reason) ? what : $"{what}: {reason}";
}
