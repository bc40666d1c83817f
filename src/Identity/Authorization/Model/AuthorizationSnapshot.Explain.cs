using System.Globalization;
using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Identity.Authorization.Model;

/// <summary>Who can access something, and every path that grants it.</summary>
internal sealed record AccessGrant(UserInfo User, string Access, IReadOnlyList<AccessPath> Paths);

/// <summary>
/// One path to access: a role (directly or through a team), a field security profile, a share, ownership or the
/// manager hierarchy. <see cref="Text"/> says it in a sentence fragment.
/// </summary>
internal sealed record AccessPath(string Kind, string Text, NamedRef? Role = null, NamedRef? Team = null, NamedRef? Profile = null, string? Depth = null, string? Grant = null);

/// <summary>The records of an entity a user may act on, in terms a WHERE clause can use.</summary>
internal sealed record ListFilter(Depth Depth, bool All, bool None, IReadOnlyList<string> BusinessUnits, IReadOnlyList<string> Owners, IReadOnlyList<SharedRecord> SharedRecords, IReadOnlyList<string> Principals);

internal sealed partial class AuthorizationSnapshot
{
    /// <summary>The decision in words and parts (allocates; not for the hot path).</summary>
    /// <param name="decision">The decision.</param>
    /// <param name="record">The record it was made for.</param>
    /// <param name="tokenPermVer">The perm_ver of the caller's token, if known (to flag a stale token).</param>
    /// <param name="entityOnly">The decision was about the entity, with no record (<see cref="CheckEntity"/>).</param>
    public CheckResponse Explain(in Decision decision, in RecordRef record, long? tokenPermVer = null, bool entityOnly = false)
    {
        var user = decision.User >= 0 ? Users[decision.User] : null;
        var entity = decision.Entity >= 0 ? Entities[decision.Entity] : null;
        var action = decision.Action.Name();
        var source = user is not null && decision.Source >= 0 ? Classes[user.Class].Sources[decision.Source] : (GrantSource?)null;
        var role = source is { } s ? new NamedRef(Roles[s.Role].Id, Roles[s.Role].Name) : null;
        var team = source is { Team: >= 0 } t ? new NamedRef(Teams[t.Team].Id, Teams[t.Team].Name) : null;
        var who = user?.UserName ?? "?";
        var grant = source is { } g ? $"{RolePhrase(g)} grants {action} on {entity?.Name} at {decision.Depth.Name()} depth" : "";
        CrmShare? share = null;
        string reason;
        switch (decision.Basis)
        {
            case DecisionBasis.Privilege when entityOnly:
                reason = $"Allowed: {grant} (no record was given: whether a record is covered depends on its owner and business unit).";
                break;
            case DecisionBasis.Privilege when decision.Depth == Depth.Organization:
                reason = $"Allowed: {grant}.";
                break;
            case DecisionBasis.Privilege:
                var unit = BusinessUnitName(record.BusinessUnit);
                reason = decision.Depth == Depth.BusinessUnit
                    ? $"Allowed: {grant}; the record is in {who}'s business unit '{unit}'."
                    : $"Allowed: {grant}; the record's business unit '{unit}' is '{BusinessUnits[user!.BusinessUnit].Name}' or below it.";
                break;
            case DecisionBasis.Owner:
                reason = record.OwnerKind == PrincipalKind.User
                    ? $"Allowed: {who} owns the record; {grant}."
                    : $"Allowed: team '{TeamName(record.Owner)}', which {who} is a member of, owns the record; {grant}.";
                break;
            case DecisionBasis.Share:
                share = ShareOf(decision, record);
                var with = share.Kind == "team" ? $"team '{TeamName(share.Principal)}' ({who} is a member)" : who;
                reason = $"Allowed: the record is shared with {with} for {string.Join(", ", share.Actions)}; shares apply because {grant}.";
                break;
            case DecisionBasis.Hierarchy:
                var owner = User(record.Owner!);
                reason = $"Allowed: {who} manages {owner?.UserName ?? record.Owner} ({decision.Levels} level{(decision.Levels == 1 ? "" : "s")} up), who owns the record; managers read their reports' records (hierarchy depth {Organization.ManagerHierarchyDepth}).";
                break;
            case DecisionBasis.NoPrivilege:
                reason = $"Denied: no role of {who} grants {action} on {entity?.Name}; without the privilege, shares and the manager hierarchy do not apply.";
                break;
            case DecisionBasis.OutsideDepth:
                var ownerText = record.Owner is null ? "has no owner given"
                    : record.OwnerKind == PrincipalKind.Team ? $"is owned by team '{TeamName(record.Owner)}'"
                    : $"is owned by {User(record.Owner)?.UserName ?? record.Owner}";
                var unitText = record.BusinessUnit is null ? "" : $" in '{BusinessUnitName(record.BusinessUnit)}'";
                reason = $"Denied: {grant} only; the record {ownerText}{unitText}, outside that depth, and it is not shared with {who} or {who}'s teams for {action}.";
                break;
            case DecisionBasis.DisabledUser:
                reason = $"Denied: user {who} is disabled.";
                break;
            case DecisionBasis.UnknownEntity:
                reason = "Denied: the entity is not declared in the model.";
                break;
            default:
                reason = "Denied: there is no such user in the model.";
                break;
        }

        return new CheckResponse
        {
            Allowed = decision.Allowed,
            Basis = BasisName(decision.Basis),
            Reason = reason,
            Role = role,
            ViaTeam = team,
            Depth = decision.Basis is DecisionBasis.NoPrivilege or DecisionBasis.UnknownUser or DecisionBasis.UnknownEntity or DecisionBasis.DisabledUser ? null : decision.Depth.Name(),
            Share = share,
            ManagerLevels = decision.Basis == DecisionBasis.Hierarchy ? decision.Levels : null,
            PermVer = user?.PermVer ?? 0,
            ModelVersion = Version,
            TokenStale = tokenPermVer is { } tokenVersion && user is not null && tokenVersion < user.PermVer,
        };
    }

    public static string BasisName(DecisionBasis basis) => basis switch
    {
        DecisionBasis.Privilege => "privilege",
        DecisionBasis.Owner => "owner",
        DecisionBasis.Share => "share",
        DecisionBasis.Hierarchy => "hierarchy",
        DecisionBasis.NoPrivilege => "no_privilege",
        DecisionBasis.OutsideDepth => "outside_depth",
        DecisionBasis.DisabledUser => "disabled_user",
        DecisionBasis.UnknownEntity => "unknown_entity",
        _ => "unknown_user",
    };

    public string RolePhrase(GrantSource source) => source.Team >= 0
        ? $"role '{Roles[source.Role].Name}' (via team '{Teams[source.Team].Name}')"
        : $"role '{Roles[source.Role].Name}'";

    /// <summary>Users who hold <paramref name="action"/> on the entity at any depth, with every role path that grants it.</summary>
    public IReadOnlyList<AccessGrant> WhoCanAccessEntity(int entity, CrmAction action)
    {
        var cell = (entity * CrmNames.ActionCount) + (int)action;
        var result = new List<AccessGrant>();
        foreach (var user in Users)
        {
            var access = Classes[user.Class];
            if (user.Disabled || access.Depths[cell] == 0)
            {
                continue;
            }

            result.Add(new AccessGrant(user, ((Depth)access.Depths[cell]).Name(), RolePaths(access, cell)));
        }

        return result;
    }

    /// <summary>Users who see the field at all (masked or better), with the roles and field security profiles that grant it.</summary>
    public IReadOnlyList<AccessGrant> WhoCanAccessField(int field)
    {
        var info = FieldTable[field];
        var readCell = (info.Entity * CrmNames.ActionCount) + (int)CrmAction.Read;
        var result = new List<AccessGrant>();
        foreach (var user in Users)
        {
            var access = Classes[user.Class];
            var projected = access.Projection[field];
            if (user.Disabled || projected == FieldAccess.Hidden)
            {
                continue;
            }

            var paths = new List<AccessPath>(RolePaths(access, readCell));
            if (info.IsSecured)
            {
                foreach (var source in access.ProfileSources)
                {
                    var granted = (FieldGrant)Profiles[source.Profile].Grants[field];
                    if (granted == FieldGrant.None)
                    {
                        continue;
                    }

                    var profile = Profiles[source.Profile];
                    var team = source.Team >= 0 ? new NamedRef(Teams[source.Team].Id, Teams[source.Team].Name) : null;
                    var via = team is null ? "" : $" (via team '{team.Name}')";
                    paths.Add(new AccessPath(team is null ? "field_profile" : "field_profile_via_team",
                        $"field security profile '{profile.Name}'{via} grants {granted.Name()}", Profile: new NamedRef(profile.Id, profile.Name), Team: team, Grant: granted.Name()));
                }
            }

            result.Add(new AccessGrant(user, projected.Name(), paths));
        }

        return result;
    }

    /// <summary>Users for whom a check on this record allows the action, each with the path that decided.</summary>
    public IReadOnlyList<AccessGrant> WhoCanAccessRecord(int entity, CrmAction action, in RecordRef record)
    {
        var result = new List<AccessGrant>();
        foreach (var user in Users)
        {
            var decision = Check(user.Index, entity, action, record);
            if (!decision.Allowed)
            {
                continue;
            }

            var explained = Explain(decision, record);
            var kind = decision.Basis switch
            {
                DecisionBasis.Share => "share",
                DecisionBasis.Hierarchy => "hierarchy",
                DecisionBasis.Owner => "owner",
                _ => explained.ViaTeam is null ? "role" : "role_via_team",
            };
            var path = new AccessPath(kind, explained.Reason["Allowed: ".Length..].TrimEnd('.'), explained.Role, explained.ViaTeam, Depth: explained.Depth);
            result.Add(new AccessGrant(user, decision.Depth.Name(), [path]));
        }

        return result;
    }

    /// <summary>What a list query may return, for a WHERE clause (no rows loaded to be discarded).</summary>
    public ListFilter Filter(int user, int entity, CrmAction action)
    {
        var info = Users[user];
        var depth = DepthOf(user, entity, action);
        var principals = info.Teams.Select(t => Teams[t].Id).Prepend(info.Id).ToArray();
        if (depth == Depth.None)
        {
            return new ListFilter(depth, All: false, None: true, [], [], [], principals);
        }

        if (depth == Depth.Organization)
        {
            return new ListFilter(depth, All: true, None: false, [], [], [], principals);
        }

        var own = BusinessUnits[info.BusinessUnit];
        string[] units = depth switch
        {
            Depth.BusinessUnit => [own.Id],
            Depth.BusinessUnitAndChildren => [.. BusinessUnits.Where(own.Contains).OrderBy(u => u.Pre).Select(u => u.Id)],
            _ => [],
        };
        var owners = principals.ToList();
        if (action == CrmAction.Read && Organization.ManagerHierarchy)
        {
            owners.AddRange(info.Reports.Select(r => Users[r].Id));
        }

        // Shared records come with the location they were shared at: a WHERE clause matches id and location (finding 2).
        var shared = Shares.Where(s => s.Entity == entity && s.IsBound && s.Actions.Has(action)
                && (s.Kind == PrincipalKind.User ? s.Principal == user : Array.IndexOf(info.Teams, s.Principal) >= 0))
            .Select(s => SharedRecordOf(s, ActionSets.Of(action)))
            .DistinctBy(s => (s.RecordId, s.BusinessUnit, s.Owner, s.OwnerKind))
            .ToArray();
        return new ListFilter(depth, All: false, None: false, units, owners, shared, principals);
    }

    /// <summary>A bound share as the contract states it: record id, the location it was shared at, and the actions.</summary>
    public SharedRecord SharedRecordOf(ShareInfo share, ActionSet actions) => new()
    {
        RecordId = share.Definition.RecordId,
        BusinessUnit = BusinessUnits[share.BusinessUnit].Id,
        Owner = share.Definition.RecordOwner,
        OwnerKind = share.Definition.RecordOwner is null ? null : share.Definition.RecordOwnerKind.Name(),
        Actions = [.. actions.Actions().Select(a => a.Name())],
    };

    private List<AccessPath> RolePaths(AccessClass access, int cell)
    {
        var paths = new List<AccessPath>();
        foreach (var source in access.Sources)
        {
            var depth = (Depth)Roles[source.Role].Depths[cell];
            if (depth == Depth.None)
            {
                continue;
            }

            var role = Roles[source.Role];
            var team = source.Team >= 0 ? new NamedRef(Teams[source.Team].Id, Teams[source.Team].Name) : null;
            paths.Add(new AccessPath(team is null ? "role" : "role_via_team", $"{RolePhrase(source)} at {depth.Name()} depth",
                new NamedRef(role.Id, role.Name), team, Depth: depth.Name()));
        }

        return paths;
    }

    private CrmShare ShareOf(in Decision decision, in RecordRef record)
    {
        if (decision.IsStoredShare)
        {
            var stored = Shares[-1 - decision.Share];
            return new CrmShare
            {
                Principal = stored.Definition.PrincipalId,
                Kind = stored.Kind.Name(),
                Actions = [.. stored.Actions.Actions().Select(a => a.Name())],
            };
        }

        var share = record.Shares![decision.Share];
        return new CrmShare { Principal = share.Principal, Kind = share.Kind.Name(), Actions = [.. share.Actions.Actions().Select(a => a.Name())] };
    }

    private string BusinessUnitName(string? id) => id is not null && BusinessUnitIndex(id) is var index and >= 0 ? BusinessUnits[index].Name : id ?? "?";

    private string TeamName(string? id) => id is not null && TeamIndex(id) is var index and >= 0 ? Teams[index].Name : id ?? "?";

    internal static string Count(int value) => value.ToString(CultureInfo.InvariantCulture);
}
