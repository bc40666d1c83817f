using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;

namespace CrmSecurity.Authorization.Benchmarks;

/// <summary>
/// The size, generated with a fixed seed: 30 entities x 40 fields, 50 roles, 20 field security profiles,
/// 125 business units four levels deep, 300 teams and 10,000 users (1-3 roles, 0-2 profiles, 0-2 teams, managers).
/// </summary>
internal static class LargeModel
{
    public const int Entities = 30;
    public const int FieldsPerEntity = 40;
    public const int Roles = 50;
    public const int Users = 10_000;

    public static AuthorizationSnapshot Build(int seed = 42)
    {
        var random = new Random(seed);
        var builder = new AuthorizationModelBuilder { Organization = new OrganizationSettings("Bench", ManagerHierarchy: true, ManagerHierarchyDepth: 3) };
        for (var e = 0; e < Entities; e++)
        {
            var fields = new FieldDefinition[FieldsPerEntity];
            for (var f = 0; f < FieldsPerEntity; f++)
            {
                // 28 public or internal, 8 sensitive, 4 secret: the secured fields go through field security.
                var sensitivity = f < 20 ? Sensitivity.Public : f < 28 ? Sensitivity.Internal : f < 36 ? Sensitivity.Sensitive : Sensitivity.Secret;
                fields[f] = new FieldDefinition($"f{f:00}", $"Field {f}", sensitivity, f % 3 == 0 ? MaskStyles.Last4 : MaskStyles.Full);
            }

            builder.AddEntity(new EntityDefinition(Entity(e), $"Entity {e}", fields));
        }

        var units = new List<string> { "root" };
        builder.AddBusinessUnit(new BusinessUnitDefinition("root", "Organization", null));
        var level = new List<string> { "root" };
        for (var depth = 0; depth < 3; depth++)
        {
            var next = new List<string>();
            foreach (var parent in level)
            {
                for (var c = 0; c < (depth == 0 ? 4 : depth == 1 ? 5 : 5); c++)
                {
                    var id = $"{parent}-{c}";
                    builder.AddBusinessUnit(new BusinessUnitDefinition(id, id, parent));
                    next.Add(id);
                }
            }

            units.AddRange(next);
            level = next;
        }

        var depths = new[] { Depth.Own, Depth.BusinessUnit, Depth.BusinessUnitAndChildren, Depth.Organization };
        for (var r = 0; r < Roles; r++)
        {
            var privileges = new List<PrivilegeGrant>();
            foreach (var e in Enumerable.Range(0, Entities).OrderBy(_ => random.Next()).Take(random.Next(5, 16)))
            {
                foreach (var action in CrmNames.Actions)
                {
                    if (random.NextDouble() < 0.6)
                    {
                        privileges.Add(new PrivilegeGrant(Entity(e), action, depths[random.Next(depths.Length)]));
                    }
                }
            }

            builder.AddRole(new RoleDefinition(Role(r), $"Role {r}", "", privileges));
        }

        var grants = new[] { FieldGrant.Read, FieldGrant.ReadUnmasked, FieldGrant.Update };
        for (var p = 0; p < 20; p++)
        {
            var permissions = new List<FieldPermission>();
            foreach (var e in Enumerable.Range(0, Entities).OrderBy(_ => random.Next()).Take(8))
            {
                for (var f = 28; f < FieldsPerEntity; f++)
                {
                    if (random.NextDouble() < 0.4)
                    {
                        permissions.Add(new FieldPermission(Entity(e), $"f{f:00}", grants[random.Next(grants.Length)]));
                    }
                }
            }

            builder.AddFieldProfile(new FieldProfileDefinition($"profile-{p}", $"Profile {p}", "", permissions));
        }

        var teamMembers = Enumerable.Range(0, 300).Select(_ => new List<string>()).ToArray();
        for (var u = 0; u < Users; u++)
        {
            for (var t = random.Next(3); t > 0; t--)
            {
                teamMembers[random.Next(teamMembers.Length)].Add(User(u));
            }
        }

        for (var t = 0; t < teamMembers.Length; t++)
        {
            builder.AddTeam(new TeamDefinition($"team-{t}", $"Team {t}", units[random.Next(units.Count)], teamMembers[t],
                random.NextDouble() < 0.5 ? [Role(random.Next(Roles))] : [], random.NextDouble() < 0.3 ? [$"profile-{random.Next(20)}"] : []));
        }

        for (var u = 0; u < Users; u++)
        {
            var roles = Enumerable.Range(0, random.Next(1, 4)).Select(_ => Role(random.Next(Roles))).Distinct().ToArray();
            var profiles = Enumerable.Range(0, random.Next(3)).Select(_ => $"profile-{random.Next(20)}").Distinct().ToArray();
            var manager = u >= 100 ? User(random.Next(u / 10, u)) : null; // earlier users manage later ones: no cycles
            builder.AddUser(new UserDefinition(User(u), $"user{u}", $"User {u}", units[random.Next(units.Count)], manager, roles, profiles));
        }

        return builder.Build(1);
    }

    public static string Entity(int index) => $"entity{index:00}";

    public static string Role(int index) => $"role-{index:00}";

    public static string User(int index) => $"user-{index:00000}";

    /// <summary>A mix of requests: random users, entities, actions; records owned by the user, someone in the unit, or elsewhere.</summary>
    public static Request[] Requests(AuthorizationSnapshot snapshot, int count, int seed = 7)
    {
        var random = new Random(seed);
        var requests = new Request[count];
        for (var i = 0; i < count; i++)
        {
            var user = snapshot.Users[random.Next(snapshot.Users.Length)];
            var other = snapshot.Users[random.Next(snapshot.Users.Length)];
            var entity = Entity(random.Next(Entities));
            var action = CrmNames.Actions[random.Next(CrmNames.ActionCount)];
            var record = random.Next(3) switch
            {
                0 => new RecordRef($"r-{i}", user.Id, PrincipalKind.User, snapshot.BusinessUnits[user.BusinessUnit].Id),
                1 => new RecordRef($"r-{i}", other.Id, PrincipalKind.User, snapshot.BusinessUnits[user.BusinessUnit].Id),
                _ => new RecordRef($"r-{i}", other.Id, PrincipalKind.User, snapshot.BusinessUnits[other.BusinessUnit].Id),
            };
            requests[i] = new Request(user.Id, entity, snapshot.EntityIndex(entity), action, record);
        }

        return requests;
    }
}

/// <summary>One decision to make: by user id and entity name, as a request names them.</summary>
internal sealed record Request(string UserId, string Entity, int EntityIndex, CrmAction Action, RecordRef Record);
