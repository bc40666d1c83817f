using System.Linq.Expressions;
using System.Security.Claims;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Samples.Crm.Data;

namespace CrmSecurity.Samples.Crm.Security;

/// <summary>A contact as this user may see it: each secured field hidden, masked, or in clear.</summary>
public sealed record ContactView(Guid Id, string FullName, string OwnerName, string BusinessUnit, FieldValue Email, FieldValue Phone, FieldValue NationalId);

/// <summary>One field's value for display: <see cref="Shown"/> is null when the field is hidden from the user.</summary>
public sealed record FieldValue(FieldAccess Access, string? Shown)
{
    public bool Hidden => Access == FieldAccess.Hidden;

    public bool Masked => Access == FieldAccess.Masked;
}

/// <summary>
/// The authorization model applied to the sample's contacts: the list query is narrowed in SQL to what the user's
/// privilege covers (never loading rows to discard them), single records are checked with the explanation, and
/// secured fields are hidden or masked by the user's field security profiles. Deny by default: no privilege, no rows.
/// </summary>
public sealed class ContactAccess(CrmDecisions decisions)
{
    public const string Entity = "contact";

    private static readonly string[] SecuredFields = ["email", "phone", "national_id"];

    public Task<CrmAccessProfile> ProfileAsync(ClaimsPrincipal user, CancellationToken cancellationToken) =>
        decisions.ProfileAsync(user, cancellationToken);

    /// <summary>The records of <paramref name="entityName"/> that the user's privilege for <paramref name="action"/> covers, as a WHERE clause.</summary>
    public static IQueryable<T> Visible<T>(IQueryable<T> records, CrmAccessProfile profile, CrmAction action = CrmAction.Read, string entityName = Entity)
        where T : class, IOwnedRecord
    {
        var response = profile.Response;
        if (response.Disabled || !response.Entities.TryGetValue(entityName, out var entity) || !entity.Privileges.TryGetValue(action.Name(), out var privilege)
            || !CrmNames.TryParseDepth(privilege.Depth, out var depth) || depth == Depth.None)
        {
            return records.Where(_ => false);
        }

        if (depth == Depth.Organization)
        {
            return records;
        }

        var me = response.UserId;
        var units = privilege.BusinessUnits.ToList();
        List<string> reports = action == CrmAction.Read ? [.. response.Reports] : [];
        Expression<Func<T, bool>> visible = c => c.Owner == me || units.Contains(c.BusinessUnit) || reports.Contains(c.Owner);

        // A record shared through the service is visible only where it was shared: same id and business unit (and owner,
        // when the share names one), never by id alone.
        var record = visible.Parameters[0];
        var body = visible.Body;
        foreach (var share in entity.SharedRecords.Where(s => s.Actions.Contains(action.Name(), StringComparer.Ordinal)))
        {
            if (!Guid.TryParse(share.RecordId, out var id))
            {
                continue;
            }

            var unit = share.BusinessUnit;
            var owner = share.Owner;
            Expression<Func<T, bool>> located = owner is null
                ? c => c.Id == id && c.BusinessUnit == unit
                : c => c.Id == id && c.BusinessUnit == unit && c.Owner == owner;
            body = Expression.OrElse(body, new Rebind(located.Parameters[0], record).Visit(located.Body));
        }

        return records.Where(Expression.Lambda<Func<T, bool>>(body, record));
    }

    /// <summary>Puts one lambda's body onto another's parameter, so the predicates combine into one WHERE clause.</summary>
    private sealed class Rebind(ParameterExpression from, ParameterExpression to) : ExpressionVisitor
    {
        protected override Expression VisitParameter(ParameterExpression node) => node == from ? to : base.VisitParameter(node);
    }

    public static CrmDecision Check(CrmAccessProfile profile, Contact contact, CrmAction action) =>
        profile.Check(Entity, action, new CrmRecord { Id = contact.Id.ToString(), Owner = contact.Owner, BusinessUnit = contact.BusinessUnit });

    public static ContactView Project(CrmAccessProfile profile, Contact contact) => new(
        contact.Id, contact.FullName, contact.OwnerName, contact.BusinessUnit,
        Field(profile, "email", contact.Email), Field(profile, "phone", contact.Phone), Field(profile, "national_id", contact.NationalId));

    /// <summary>The secured fields the user sees at all (for the fields of an access event).</summary>
    public static IReadOnlyList<string> VisibleFields(CrmAccessProfile profile) =>
        [.. SecuredFields.Where(f => profile.Field(Entity, f) != FieldAccess.Hidden)];

    private static FieldValue Field(CrmAccessProfile profile, string field, string? value)
    {
        var access = profile.Field(Entity, field);
        return access switch
        {
            FieldAccess.Hidden => new(access, null),
            FieldAccess.Masked => new(access, CrmAccessProfile.Mask(value, profile.MaskOf(Entity, field))),
            _ => new(access, value),
        };
    }
}
