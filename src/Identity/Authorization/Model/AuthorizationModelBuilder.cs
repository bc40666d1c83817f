using System.Buffers.Binary;
using System.Collections.Frozen;
using System.IO.Hashing;
using System.Text;
using System.Text.RegularExpressions;
using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Identity.Authorization.Model;

/// <summary>One problem in a model: where it is (file and line, or the database object) and what is wrong.</summary>
internal sealed record ModelProblem(string Where, string Message)
{
    public override string ToString() => $"{Where}: {Message}";
}

/// <summary>A model that cannot be built; every problem is listed, not just the first.</summary>
internal sealed class ModelValidationException(IReadOnlyList<ModelProblem> problems)
    : Exception(string.Join(Environment.NewLine, problems))
{
    public IReadOnlyList<ModelProblem> Problems { get; } = problems;
}

/// <summary>
/// Collects entity declarations, business units, roles, field security profiles, teams, users and shares, checks
/// that they fit together (unknown names, duplicates, cycles) and builds an immutable <see cref="AuthorizationSnapshot"/>.
/// </summary>
internal sealed partial class AuthorizationModelBuilder
{
    private readonly List<EntityDefinition> _entities = [.. SystemEntities.All];
    private readonly List<BusinessUnitDefinition> _businessUnits = [];
    private readonly List<RoleDefinition> _roles = [];
    private readonly List<FieldProfileDefinition> _profiles = [];
    private readonly List<TeamDefinition> _teams = [];
    private readonly List<UserDefinition> _users = [];
    private readonly List<ShareDefinition> _shares = [];
    private readonly Dictionary<string, long> _storedFingerprints = new(StringComparer.Ordinal);

    public OrganizationSettings Organization { get; set; } = new();

    public IReadOnlyList<EntityDefinition> DeclaredEntities => _entities;

    public IReadOnlyList<BusinessUnitDefinition> BusinessUnitDefinitions => _businessUnits;

    public IReadOnlyList<RoleDefinition> RoleDefinitions => _roles;

    public IReadOnlyList<FieldProfileDefinition> ProfileDefinitions => _profiles;

    public AuthorizationModelBuilder AddEntity(EntityDefinition entity)
    {
        _entities.Add(entity);
        return this;
    }

    public AuthorizationModelBuilder AddBusinessUnit(BusinessUnitDefinition unit)
    {
        _businessUnits.Add(unit);
        return this;
    }

    public AuthorizationModelBuilder AddRole(RoleDefinition role)
    {
        _roles.Add(role);
        return this;
    }

    public AuthorizationModelBuilder AddFieldProfile(FieldProfileDefinition profile)
    {
        _profiles.Add(profile);
        return this;
    }

    public AuthorizationModelBuilder AddTeam(TeamDefinition team)
    {
        _teams.Add(team);
        return this;
    }

    /// <summary>Adds a user; <paramref name="storedFingerprint"/> is the fingerprint recorded with the user's current <c>perm_ver</c>.</summary>
    public AuthorizationModelBuilder AddUser(UserDefinition user, long storedFingerprint = 0)
    {
        _users.Add(user);
        _storedFingerprints[user.Id] = storedFingerprint;
        return this;
    }

    public AuthorizationModelBuilder AddShare(ShareDefinition share)
    {
        _shares.Add(share);
        return this;
    }

    /// <summary>
    /// Validates and indexes everything. A user whose decisions could differ from what their stored fingerprint
    /// describes gets <c>perm_ver</c> = <paramref name="version"/>; the others keep theirs.
    /// </summary>
    /// <exception cref="ModelValidationException">Listing every problem found.</exception>
    public AuthorizationSnapshot Build(long version)
    {
        var problems = new List<ModelProblem>();
        var (entities, fields) = BuildEntities(problems);
        var entityIndex = entities.ToDictionary(e => e.Name, e => e.Index, StringComparer.Ordinal);
        var (units, root) = BuildBusinessUnits(problems);
        var unitIndex = units.ToDictionary(u => u.Id, u => u.Index, StringComparer.Ordinal);
        var roles = BuildRoles(entityIndex, entities.Length, problems);
        var roleIndex = ToIndex(roles.Select(r => r.Id));
        var profiles = BuildProfiles(entities, fields, entityIndex, problems);
        var profileIndex = ToIndex(profiles.Select(p => p.Id));

        var userIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var user in _users)
        {
            if (!userIndex.TryAdd(user.Id, userIndex.Count))
            {
                problems.Add(new(Where(user.Origin, $"user '{user.UserName}'"), $"duplicate user id '{user.Id}'"));
            }
        }

        var users = _users.DistinctBy(u => u.Id, StringComparer.Ordinal).ToArray();
        var teams = BuildTeams(unitIndex, userIndex, roleIndex, profileIndex, problems);
        var teamsOfUser = new List<int>[users.Length];
        foreach (var team in teams)
        {
            foreach (var member in team.Members)
            {
                (teamsOfUser[member] ??= []).Add(team.Index);
            }
        }

        var userInfos = new UserInfo[users.Length];
        for (var i = 0; i < users.Length; i++)
        {
            var user = users[i];
            var where = Where(user.Origin, $"user '{user.UserName}'");
            var unit = root;
            if (user.BusinessUnitId is { } unitId && !unitIndex.TryGetValue(unitId, out unit))
            {
                problems.Add(new(where, $"unknown business unit '{unitId}'"));
                unit = root;
            }

            var manager = -1;
            if (user.ManagerId is { } managerId && !userIndex.TryGetValue(managerId, out manager))
            {
                problems.Add(new(where, $"unknown manager '{managerId}'"));
                manager = -1;
            }

            userInfos[i] = new UserInfo(i, user, Math.Max(unit, 0), manager,
                [.. teamsOfUser[i] ?? []],
                Resolve(user.Roles, roleIndex, "role", where, problems),
                Resolve(user.FieldProfiles, profileIndex, "field security profile", where, problems));
        }

        CheckManagerCycles(userInfos, problems);
        var shares = BuildShares(entityIndex, userIndex, ToIndex(teams.Select(t => t.Id)), unitIndex, problems);

        if (problems.Count > 0)
        {
            throw new ModelValidationException(problems);
        }

        var classes = BuildClasses(userInfos, teams, roles, profiles, entities, fields);
        ComputeReports(userInfos);
        ComputeFingerprints(version, userInfos, units, classes, shares, teams);
        return new AuthorizationSnapshot(version, Organization, entities, fields, units, root, roles, profiles, teams, userInfos, classes, shares);
    }

    private (EntityInfo[] Entities, FieldInfo[] Fields) BuildEntities(List<ModelProblem> problems)
    {
        var entities = new List<EntityInfo>();
        var fields = new List<FieldInfo>();
        var seen = new Dictionary<string, EntityDefinition>(StringComparer.Ordinal);
        foreach (var entity in _entities)
        {
            var where = Where(entity.Origin, $"entity '{entity.Name}'");
            if (!EntityName().IsMatch(entity.Name))
            {
                problems.Add(new(where, $"entity name '{entity.Name}' must be lower-case letters, digits and underscores, starting with a letter (at most 64)"));
                continue;
            }

            if (!seen.TryAdd(entity.Name, entity))
            {
                problems.Add(new(where, seen[entity.Name].IsSystem
                    ? $"duplicate name: '{entity.Name}' is a built-in entity of the service"
                    : $"duplicate entity name '{entity.Name}' (first declared at {seen[entity.Name].Origin ?? "another declaration"})"));
                continue;
            }

            var start = fields.Count;
            var local = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var field in entity.Fields)
            {
                var fieldWhere = Where(field.Origin, $"field '{entity.Name}.{field.Name}'");
                if (!EntityName().IsMatch(field.Name))
                {
                    problems.Add(new(fieldWhere, $"field name '{field.Name}' must be lower-case letters, digits and underscores, starting with a letter (at most 64)"));
                }
                else if (!local.TryAdd(field.Name, fields.Count))
                {
                    problems.Add(new(fieldWhere, $"duplicate field name '{field.Name}' in entity '{entity.Name}'"));
                }
                else
                {
                    fields.Add(new FieldInfo(fields.Count, entities.Count, field));
                }
            }

            entities.Add(new EntityInfo(entities.Count, entity.Name, entity.DisplayName, entity.IsSystem, start, fields.Count - start, local.ToFrozenDictionary(StringComparer.Ordinal)));
        }

        return ([.. entities], [.. fields]);
    }

    private (BusinessUnitInfo[] Units, int Root) BuildBusinessUnits(List<ModelProblem> problems)
    {
        var units = new List<BusinessUnitInfo>();
        var byId = new Dictionary<string, BusinessUnitDefinition>(StringComparer.Ordinal);
        var byName = new Dictionary<string, BusinessUnitDefinition>(StringComparer.OrdinalIgnoreCase);
        foreach (var unit in _businessUnits)
        {
            var where = Where(unit.Origin, $"business unit '{unit.Id}'");
            if (!ObjectId().IsMatch(unit.Id))
            {
                problems.Add(new(where, $"business unit id '{unit.Id}' must be lower-case letters, digits, '-', '_' or '.', at most 64"));
            }
            else if (!byId.TryAdd(unit.Id, unit))
            {
                problems.Add(new(where, $"duplicate business unit id '{unit.Id}'"));
            }
            else if (!byName.TryAdd(unit.Name, unit))
            {
                problems.Add(new(where, $"duplicate business unit name '{unit.Name}' (also '{byName[unit.Name].Id}')"));
            }
        }

        var definitions = byId.Values.ToList();
        var index = ToIndex(definitions.Select(d => d.Id));
        var roots = definitions.Where(d => d.ParentId is null).ToList();
        if (roots.Count != 1)
        {
            problems.Add(new(Where(definitions.FirstOrDefault()?.Origin, "business units"), roots.Count == 0
                ? "there is no root business unit (exactly one unit must have no parent)"
                : $"there are {roots.Count} root business units ({string.Join(", ", roots.Select(r => $"'{r.Id}'"))}); exactly one unit may have no parent"));
        }

        foreach (var unit in definitions)
        {
            var parent = -1;
            if (unit.ParentId is { } parentId && !index.TryGetValue(parentId, out parent))
            {
                problems.Add(new(Where(unit.Origin, $"business unit '{unit.Id}'"), $"unknown parent business unit '{parentId}'"));
                parent = -1;
            }

            units.Add(new BusinessUnitInfo(units.Count, unit.Id, unit.Name, parent));
        }

        // Cycle: walking up from any unit must reach the root within as many steps as there are units.
        var reported = new HashSet<int>();
        foreach (var unit in units)
        {
            var path = new List<int> { unit.Index };
            var current = unit.Parent;
            while (current >= 0 && path.Count <= units.Count)
            {
                if (path.Contains(current))
                {
                    var cycle = path.SkipWhile(p => p != current).Append(current).ToList();
                    if (reported.Add(cycle.Min()))
                    {
                        problems.Add(new(Where(definitions[unit.Index].Origin, $"business unit '{unit.Id}'"),
                            $"cycle in the business-unit tree: {string.Join(" -> ", cycle.Select(c => units[c].Id))}"));
                    }

                    break;
                }

                path.Add(current);
                current = units[current].Parent;
            }
        }

        var root = roots.Count == 1 ? index[roots[0].Id] : (units.Count > 0 ? 0 : -1);
        if (units.Count == 0)
        {
            return ([], -1);
        }

        // Pre-order numbering: a subtree is the interval [Pre, End).
        var children = units.Where(u => u.Parent >= 0).ToLookup(u => u.Parent);
        var counter = 0;
        var stack = new Stack<(BusinessUnitInfo Unit, bool Done)>();
        var visited = new bool[units.Count];
        foreach (var start in units.Where(u => u.Parent < 0))
        {
            stack.Push((start, false));
        }

        while (stack.Count > 0)
        {
            var (unit, done) = stack.Pop();
            if (done)
            {
                unit.End = counter;
                continue;
            }

            if (visited[unit.Index])
            {
                continue;
            }

            visited[unit.Index] = true;
            unit.Pre = counter++;
            stack.Push((unit, true));
            foreach (var child in children[unit.Index].Reverse())
            {
                stack.Push((child, false));
            }
        }

        return ([.. units], root);
    }

    private RoleInfo[] BuildRoles(Dictionary<string, int> entityIndex, int entityCount, List<ModelProblem> problems)
    {
        var roles = new List<RoleInfo>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var role in _roles)
        {
            var where = Where(role.Origin, $"role '{role.Id}'");
            if (!ObjectId().IsMatch(role.Id))
            {
                problems.Add(new(where, $"role id '{role.Id}' must be lower-case letters, digits, '-', '_' or '.', at most 64"));
                continue;
            }

            if (!ids.Add(role.Id))
            {
                problems.Add(new(where, $"duplicate role id '{role.Id}'"));
                continue;
            }

            if (!names.TryAdd(role.Name, role.Id))
            {
                problems.Add(new(where, $"duplicate role name '{role.Name}' (also role '{names[role.Name]}')"));
            }

            var depths = new byte[entityCount * CrmNames.ActionCount];
            var seen = new HashSet<(string, CrmAction)>();
            foreach (var privilege in role.Privileges)
            {
                var privilegeWhere = Where(privilege.Origin ?? role.Origin, $"role '{role.Id}'");
                if (!entityIndex.TryGetValue(privilege.Entity, out var entity))
                {
                    problems.Add(new(privilegeWhere, $"unknown entity '{privilege.Entity}' in role '{role.Id}'"));
                }
                else if (!seen.Add((privilege.Entity, privilege.Action)))
                {
                    problems.Add(new(privilegeWhere, $"duplicate privilege {privilege.Entity}:{privilege.Action.Name()} in role '{role.Id}'"));
                }
                else
                {
                    depths[(entity * CrmNames.ActionCount) + (int)privilege.Action] = (byte)privilege.Depth;
                }
            }

            roles.Add(new RoleInfo(roles.Count, role, depths));
        }

        return [.. roles];
    }

    private FieldProfileInfo[] BuildProfiles(EntityInfo[] entities, FieldInfo[] fields, Dictionary<string, int> entityIndex, List<ModelProblem> problems)
    {
        var profiles = new List<FieldProfileInfo>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var profile in _profiles)
        {
            var where = Where(profile.Origin, $"field security profile '{profile.Id}'");
            if (!ObjectId().IsMatch(profile.Id))
            {
                problems.Add(new(where, $"field security profile id '{profile.Id}' must be lower-case letters, digits, '-', '_' or '.', at most 64"));
                continue;
            }

            if (!ids.Add(profile.Id))
            {
                problems.Add(new(where, $"duplicate field security profile id '{profile.Id}'"));
                continue;
            }

            if (!names.TryAdd(profile.Name, profile.Id))
            {
                problems.Add(new(where, $"duplicate field security profile name '{profile.Name}' (also '{names[profile.Name]}')"));
            }

            var grants = new byte[fields.Length];
            foreach (var permission in profile.Permissions)
            {
                var permissionWhere = Where(permission.Origin ?? profile.Origin, $"field security profile '{profile.Id}'");
                if (!entityIndex.TryGetValue(permission.Entity, out var entity))
                {
                    problems.Add(new(permissionWhere, $"unknown entity '{permission.Entity}' in field security profile '{profile.Id}'"));
                }
                else if (!entities[entity].FieldIndex.TryGetValue(permission.Field, out var field))
                {
                    problems.Add(new(permissionWhere, $"unknown field '{permission.Entity}.{permission.Field}' in field security profile '{profile.Id}'"));
                }
                else if (!fields[field].IsSecured)
                {
                    problems.Add(new(permissionWhere, $"field '{permission.Entity}.{permission.Field}' is not secured (only sensitive and secret fields are granted by field security profiles)"));
                }
                else
                {
                    grants[field] = Math.Max(grants[field], (byte)permission.Grant);
                }
            }

            profiles.Add(new FieldProfileInfo(profiles.Count, profile, grants));
        }

        return [.. profiles];
    }

    private TeamInfo[] BuildTeams(
        Dictionary<string, int> unitIndex, Dictionary<string, int> userIndex, Dictionary<string, int> roleIndex, Dictionary<string, int> profileIndex, List<ModelProblem> problems)
    {
        var teams = new List<TeamInfo>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var team in _teams)
        {
            var where = Where(team.Origin, $"team '{team.Id}'");
            if (!ObjectId().IsMatch(team.Id))
            {
                problems.Add(new(where, $"team id '{team.Id}' must be lower-case letters, digits, '-', '_' or '.', at most 64"));
                continue;
            }

            if (!ids.Add(team.Id))
            {
                problems.Add(new(where, $"duplicate team id '{team.Id}'"));
                continue;
            }

            if (!names.TryAdd(team.Name, team.Id))
            {
                problems.Add(new(where, $"duplicate team name '{team.Name}' (also '{names[team.Name]}')"));
            }

            if (!unitIndex.TryGetValue(team.BusinessUnitId, out var unit))
            {
                problems.Add(new(where, $"unknown business unit '{team.BusinessUnitId}'"));
            }

            teams.Add(new TeamInfo(teams.Count, team.Id, team.Name, unit,
                [.. Resolve(team.Members, userIndex, "member", where, problems).Distinct()],
                Resolve(team.Roles, roleIndex, "role", where, problems),
                Resolve(team.FieldProfiles, profileIndex, "field security profile", where, problems)));
        }

        return [.. teams];
    }

    private static void CheckManagerCycles(UserInfo[] users, List<ModelProblem> problems)
    {
        var state = new byte[users.Length]; // 0 unvisited, 1 on the current path, 2 known to reach the top
        foreach (var start in users)
        {
            var path = new List<int>();
            var current = start.Index;
            while (current >= 0 && state[current] == 0)
            {
                state[current] = 1;
                path.Add(current);
                current = users[current].Manager;
            }

            if (current >= 0 && state[current] == 1)
            {
                var cycle = path.SkipWhile(p => p != current).Append(current).Select(p => users[p].UserName);
                problems.Add(new(Where(users[current].Definition.Origin, $"user '{users[current].UserName}'"), $"cycle in the manager hierarchy: {string.Join(" -> ", cycle)}"));
            }

            foreach (var visited in path)
            {
                state[visited] = 2;
            }
        }
    }

    private ShareInfo[] BuildShares(
        Dictionary<string, int> entityIndex, Dictionary<string, int> userIndex, Dictionary<string, int> teamIndex, Dictionary<string, int> unitIndex, List<ModelProblem> problems)
    {
        var shares = new List<ShareInfo>();
        foreach (var share in _shares)
        {
            var where = Where(share.Origin, $"share '{share.Id}'");
            if (!entityIndex.TryGetValue(share.Entity, out var entity))
            {
                problems.Add(new(where, $"unknown entity '{share.Entity}'"));
                continue;
            }

            var principals = share.PrincipalKind == PrincipalKind.User ? userIndex : teamIndex;
            if (!principals.TryGetValue(share.PrincipalId, out var principal))
            {
                problems.Add(new(where, $"unknown {share.PrincipalKind.Name()} '{share.PrincipalId}'"));
                continue;
            }

            var unit = -1;
            if (share.RecordBusinessUnit is { } unitId && !unitIndex.TryGetValue(unitId, out unit))
            {
                problems.Add(new(where, $"unknown business unit '{unitId}' of the shared record"));
                continue;
            }

            shares.Add(new ShareInfo(shares.Count, share, entity, principal, ActionSets.Of(share.Actions), unit));
        }

        return [.. shares];
    }

    private static AccessClass[] BuildClasses(UserInfo[] users, TeamInfo[] teams, RoleInfo[] roles, FieldProfileInfo[] profiles, EntityInfo[] entities, FieldInfo[] fields)
    {
        var classes = new List<AccessClass>();
        var byKey = new Dictionary<string, int>(StringComparer.Ordinal);
        var key = new StringBuilder();
        foreach (var user in users)
        {
            var sources = user.DirectRoles.Select(r => new GrantSource(r, -1))
                .Concat(user.Teams.SelectMany(t => teams[t].Roles.Select(r => new GrantSource(r, t))))
                .Distinct().OrderBy(s => s.Role).ThenBy(s => s.Team).ToArray();
            var profileSources = user.DirectProfiles.Select(p => new ProfileSource(p, -1))
                .Concat(user.Teams.SelectMany(t => teams[t].Profiles.Select(p => new ProfileSource(p, t))))
                .Distinct().OrderBy(s => s.Profile).ThenBy(s => s.Team).ToArray();

            key.Clear();
            foreach (var source in sources)
            {
                key.Append('r').Append(source.Role).Append(':').Append(source.Team).Append(';');
            }

            foreach (var source in profileSources)
            {
                key.Append('p').Append(source.Profile).Append(':').Append(source.Team).Append(';');
            }

            var text = key.ToString();
            if (!byKey.TryGetValue(text, out var index))
            {
                index = classes.Count;
                byKey[text] = index;
                classes.Add(MakeClass(sources, profileSources, roles, profiles, entities, fields));
            }

            user.Class = index;
        }

        return [.. classes];
    }

    private static AccessClass MakeClass(GrantSource[] sources, ProfileSource[] profileSources, RoleInfo[] roles, FieldProfileInfo[] profiles, EntityInfo[] entities, FieldInfo[] fields)
    {
        var cells = entities.Length * CrmNames.ActionCount;
        var depths = new byte[cells];
        var depthSource = new short[cells];
        Array.Fill(depthSource, (short)-1);
        for (var s = 0; s < sources.Length; s++)
        {
            var roleDepths = roles[sources[s].Role].Depths;
            for (var cell = 0; cell < cells; cell++)
            {
                // Union of roles: the deepest privilege wins; the first source giving it is the one named.
                if (roleDepths[cell] > depths[cell])
                {
                    depths[cell] = roleDepths[cell];
                    depthSource[cell] = (short)s;
                }
            }
        }

        var grants = new byte[fields.Length];
        var grantSource = new short[fields.Length];
        Array.Fill(grantSource, (short)-1);
        for (var s = 0; s < profileSources.Length; s++)
        {
            var profileGrants = profiles[profileSources[s].Profile].Grants;
            for (var field = 0; field < fields.Length; field++)
            {
                if (profileGrants[field] > grants[field])
                {
                    grants[field] = profileGrants[field];
                    grantSource[field] = (short)s;
                }
            }
        }

        var projection = new FieldAccess[fields.Length];
        foreach (var field in fields)
        {
            projection[field.Index] = Project(field, (Depth)depths[(field.Entity * CrmNames.ActionCount) + (int)CrmAction.Read],
                (Depth)depths[(field.Entity * CrmNames.ActionCount) + (int)CrmAction.Update], (FieldGrant)grants[field.Index]);
        }

        var roleIds = sources.Select(s => roles[s.Role].Id).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var hash = new XxHash64();
        hash.Append(depths);
        hash.Append(grants);
        // Names too: a cached explanation ("role 'Sales manager' grants ...") goes stale when a role is renamed.
        foreach (var source in sources)
        {
            hash.Append(Encoding.UTF8.GetBytes($"{roles[source.Role].Id}\n{roles[source.Role].Name}\n{source.Team}\n"));
        }

        return new AccessClass(sources, profileSources, depths, depthSource, grants, grantSource, projection, roleIds, (long)hash.GetCurrentHashAsUInt64());
    }

    /// <summary>
    /// Field access from the entity privileges and the field grant. Unsecured fields follow the record: read with
    /// read, update with update. Secured (sensitive, secret) fields need a profile too, as in Dynamics 365 field
    /// security: no grant hides the field, read shows a mask, read_unmasked the value, update allows changing it.
    /// </summary>
    internal static FieldAccess Project(FieldInfo field, Depth read, Depth update, FieldGrant grant)
    {
        if (read == Depth.None)
        {
            return FieldAccess.Hidden;
        }

        if (!field.IsSecured)
        {
            return update > Depth.None ? FieldAccess.Update : FieldAccess.Read;
        }

        return grant switch
        {
            FieldGrant.None => FieldAccess.Hidden,
            FieldGrant.Read => FieldAccess.Masked,
            FieldGrant.ReadUnmasked => FieldAccess.Read,
            _ => update > Depth.None ? FieldAccess.Update : FieldAccess.Read,
        };
    }

    private void ComputeReports(UserInfo[] users)
    {
        if (!Organization.ManagerHierarchy)
        {
            return;
        }

        var reports = new List<int>?[users.Length];
        foreach (var user in users)
        {
            var manager = user.Manager;
            for (var level = 1; manager >= 0 && level <= Organization.ManagerHierarchyDepth; level++)
            {
                (reports[manager] ??= []).Add(user.Index);
                manager = users[manager].Manager;
            }
        }

        foreach (var user in users)
        {
            user.Reports = reports[user.Index] is { } list ? [.. list.Order()] : [];
        }
    }

    private void ComputeFingerprints(long version, UserInfo[] users, BusinessUnitInfo[] units, AccessClass[] classes, ShareInfo[] shares, TeamInfo[] teams)
    {
        // A unit's subtree hash covers the ids below it: moving a unit changes what business_unit_and_children reaches.
        foreach (var unit in units.OrderByDescending(u => u.Pre))
        {
            var hash = new XxHash64();
            foreach (var other in units.Where(o => unit.Contains(o)).OrderBy(o => o.Pre))
            {
                hash.Append(Encoding.UTF8.GetBytes(other.Id + "\n"));
            }

            unit.SubtreeHash = (long)hash.GetCurrentHashAsUInt64();
        }

        var sharesOfUser = shares.Where(s => s.Kind == PrincipalKind.User).ToLookup(s => s.Principal);
        var sharesOfTeam = shares.Where(s => s.Kind == PrincipalKind.Team).ToLookup(s => s.Principal);
        var number = new byte[8];
        foreach (var user in users)
        {
            var hash = new XxHash64();
            void Add(long value)
            {
                BinaryPrimitives.WriteInt64LittleEndian(number, value);
                hash.Append(number);
            }

            void AddText(string text) => hash.Append(Encoding.UTF8.GetBytes(text + "\n"));

            Add(classes[user.Class].Fingerprint);
            Add(user.Disabled ? 1 : 0);
            AddText(units.Length > 0 ? units[user.BusinessUnit].Id : "");
            Add(units.Length > 0 ? units[user.BusinessUnit].SubtreeHash : 0);
            Add(Organization.ManagerHierarchy ? Organization.ManagerHierarchyDepth : 0);
            foreach (var team in user.Teams.Order())
            {
                AddText(teams[team].Id);
                AddText(teams[team].Name);
            }

            foreach (var report in user.Reports)
            {
                AddText(users[report].Id);
            }

            foreach (var share in sharesOfUser[user.Index].Concat(user.Teams.SelectMany(t => sharesOfTeam[t])).OrderBy(s => s.Definition.Id, StringComparer.Ordinal))
            {
                AddText(share.Definition.Id);
                Add((long)share.Actions);
                AddText(share.IsBound ? units[share.BusinessUnit].Id : "");
                AddText($"{share.Definition.RecordOwnerKind.Name()}:{share.Definition.RecordOwner}");
            }

            user.Fingerprint = (long)hash.GetCurrentHashAsUInt64();
            var stored = _storedFingerprints.GetValueOrDefault(user.Id);
            user.PermVer = stored == user.Fingerprint && user.Definition.PermVer > 0 ? user.Definition.PermVer : version;
        }
    }

    private static int[] Resolve(IEnumerable<string> ids, Dictionary<string, int> index, string kind, string where, List<ModelProblem> problems)
    {
        var result = new List<int>();
        foreach (var id in ids)
        {
            if (index.TryGetValue(id, out var value))
            {
                if (!result.Contains(value))
                {
                    result.Add(value);
                }
            }
            else
            {
                problems.Add(new(where, $"unknown {kind} '{id}'"));
            }
        }

        return [.. result];
    }

    private static Dictionary<string, int> ToIndex(IEnumerable<string> ids)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            index.TryAdd(id, index.Count);
        }

        return index;
    }

    private static string Where(string? origin, string fallback) => origin ?? fallback;

    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$")]
    internal static partial Regex EntityName();

    [GeneratedRegex("^[a-z0-9][a-z0-9_.-]{0,63}$")]
    internal static partial Regex ObjectId();
}
