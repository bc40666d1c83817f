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
        var shared = entity.SharedRecords.Where(s => s.Value.Contains(action.Name(), StringComparer.Ordinal))
            .Select(s => Guid.TryParse(s.Key, out var id) ? id : Guid.Empty).ToList();
        List<string> reports = action == CrmAction.Read ? [.. response.Reports] : [];
        return records.Where(c => c.Owner == me || units.Contains(c.BusinessUnit) || shared.Contains(c.Id) || reports.Contains(c.Owner));
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
