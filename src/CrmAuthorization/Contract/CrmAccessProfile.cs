namespace CrmSecurity.CrmAuthorization;

/// <summary>A decision made locally from a <see cref="CrmAccessProfile"/>: allowed or not, and why.</summary>
/// <param name="Allowed">Whether the action is allowed.</param>
/// <param name="Basis">privilege, owner, share, hierarchy; or no_privilege, outside_depth, disabled_user.</param>
/// <param name="Reason">One sentence.</param>
public sealed record CrmDecision(bool Allowed, string Basis, string Reason);

/// <summary>
/// One user's permissions at one permission version, decided locally: the same rules as the service's check
/// (deny by default; a privilege's depth, ownership by the user or a team, shares, the manager hierarchy), so a
/// CRM request can check many records and mask many fields without a round trip each. Immutable and thread-safe.
/// </summary>
public sealed class CrmAccessProfile
{
    private readonly HashSet<string> _teams;
    private readonly HashSet<string> _reports;
    private readonly Dictionary<string, EntityView> _entities;

    /// <summary>Makes a profile from the service's answer.</summary>
    public CrmAccessProfile(ProfileResponse response)
    {
        ArgumentNullException.ThrowIfNull(response);
        Response = response;
        _teams = new HashSet<string>(response.Teams, StringComparer.Ordinal);
        _reports = new HashSet<string>(response.Reports, StringComparer.Ordinal);
        _entities = response.Entities.ToDictionary(e => e.Key, e => new EntityView(e.Value), StringComparer.Ordinal);
    }

    /// <summary>The service's answer this profile was made from.</summary>
    public ProfileResponse Response { get; }

    /// <summary>The user's id.</summary>
    public string UserId => Response.UserId;

    /// <summary>The permission version (compare with a token's <c>perm_ver</c>).</summary>
    public long PermVer => Response.PermVer;

    /// <summary>The depth the user holds for an action on an entity (<see cref="Depth.None"/> for an unknown entity).</summary>
    public Depth DepthOf(string entity, CrmAction action) =>
        !Response.Disabled && _entities.TryGetValue(entity, out var view) && view.Privileges[(int)action] is { } privilege ? privilege.Depth : Depth.None;

    /// <summary>Whether the user holds the privilege at any depth ("requires contact:read").</summary>
    public bool Holds(string entity, CrmAction action) => DepthOf(entity, action) != Depth.None;

    /// <summary>May the user do <paramref name="action"/> to this record?</summary>
    public CrmDecision Check(string entity, CrmAction action, CrmRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (Response.Disabled)
        {
            return new CrmDecision(false, "disabled_user", $"Denied: user {Response.UserName} is disabled.");
        }

        if (!_entities.TryGetValue(entity, out var view) || view.Privileges[(int)action] is not { } privilege)
        {
            return new CrmDecision(false, "no_privilege", $"Denied: no role of {Response.UserName} grants {action.Name()} on {entity}.");
        }

        var grant = $"role '{privilege.Role}'{(privilege.Team is null ? "" : $" (via team '{privilege.Team}')")} grants {action.Name()} on {entity} at {privilege.Depth.Name()} depth";
        if (privilege.Depth == Depth.Organization)
        {
            return new CrmDecision(true, "privilege", $"Allowed: {grant}.");
        }

        var teamOwned = string.Equals(record.OwnerKind, "team", StringComparison.Ordinal);
        if (record.Owner is { } owner && (teamOwned ? _teams.Contains(owner) : string.Equals(owner, Response.UserId, StringComparison.Ordinal)))
        {
            return new CrmDecision(true, "owner", $"Allowed: {(teamOwned ? $"team '{owner}' of {Response.UserName}" : Response.UserName)} owns the record; {grant}.");
        }

        if (record.BusinessUnit is { } unit && privilege.BusinessUnits.Contains(unit))
        {
            return new CrmDecision(true, "privilege", $"Allowed: {grant}; the record's business unit '{unit}' is within it.");
        }

        foreach (var share in record.Shares ?? [])
        {
            var matches = string.Equals(share.Kind, "team", StringComparison.Ordinal) ? _teams.Contains(share.Principal) : string.Equals(share.Principal, Response.UserId, StringComparison.Ordinal);
            if (matches && share.Actions.Contains(action.Name(), StringComparer.Ordinal))
            {
                return new CrmDecision(true, "share", $"Allowed: the record is shared with {share.Kind} '{share.Principal}' for {string.Join(", ", share.Actions)}; shares apply because {grant}.");
            }
        }

        // A service share is bound to the record's location at share time: the id alone never matches.
        if (record.Id is { } id && view.Shared.TryGetValue(id, out var shared)
            && shared.FirstOrDefault(s => s.Locates(record) && s.Actions.Contains(action.Name(), StringComparer.Ordinal)) is { } match)
        {
            return new CrmDecision(true, "share", $"Allowed: the record is shared with {Response.UserName} or a team of theirs for {string.Join(", ", match.Actions)}; shares apply because {grant}.");
        }

        if (action == CrmAction.Read && !teamOwned && record.Owner is { } report && _reports.Contains(report))
        {
            return new CrmDecision(true, "hierarchy", $"Allowed: {Response.UserName} manages the record's owner; managers read their reports' records.");
        }

        return new CrmDecision(false, "outside_depth", $"Denied: {grant} only; the record is outside that depth and not shared with {Response.UserName} for {action.Name()}.");
    }

    /// <summary>The access to one field (<see cref="FieldAccess.Hidden"/> for an unknown entity or field).</summary>
    public FieldAccess Field(string entity, string field) =>
        !Response.Disabled && _entities.TryGetValue(entity, out var view) && view.Fields.TryGetValue(field, out var access) ? access.Access : FieldAccess.Hidden;

    /// <summary>The mask style of a field: <c>full</c>, <c>email</c> or <c>last4</c>.</summary>
    public string MaskOf(string entity, string field) =>
        _entities.TryGetValue(entity, out var view) && view.Fields.TryGetValue(field, out var access) ? access.Mask : "full";

    /// <summary>Shows a value as a mask of the field's style: <c>a•••@example.com</c>, <c>••••1234</c>, <c>••••••</c>.</summary>
    public static string Mask(string? value, string style)
    {
        const string Dots = "••••••";
        if (string.IsNullOrEmpty(value))
        {
            return Dots;
        }

        return style switch
        {
            "email" when value.IndexOf('@', StringComparison.Ordinal) is var at and > 0 => value[0] + "•••" + value[at..],
            "last4" when value.Length > 4 => "••••" + value[^4..],
            _ => Dots,
        };
    }

    private sealed class EntityView
    {
        public EntityView(EntityProfile profile)
        {
            foreach (var (name, privilege) in profile.Privileges)
            {
                if (CrmNames.TryParseAction(name, out var action) && CrmNames.TryParseDepth(privilege.Depth, out var depth))
                {
                    Privileges[(int)action] = new Held(depth, privilege.Role?.Name ?? "?", privilege.ViaTeam?.Name, new HashSet<string>(privilege.BusinessUnits, StringComparer.Ordinal));
                }
            }

            Fields = profile.Fields.ToDictionary(
                f => f.Key,
                f => (Access: CrmNames.TryParseFieldAccess(f.Value.Access, out var access) ? access : FieldAccess.Hidden, f.Value.Mask),
                StringComparer.Ordinal);
            Shared = profile.SharedRecords.GroupBy(s => s.RecordId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        }

        public Held?[] Privileges { get; } = new Held?[CrmNames.ActionCount];

        public Dictionary<string, (FieldAccess Access, string Mask)> Fields { get; }

        public Dictionary<string, List<SharedRecord>> Shared { get; }
    }

    private sealed record Held(Depth Depth, string Role, string? Team, HashSet<string> BusinessUnits);
}
