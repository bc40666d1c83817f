using System.Text.Json;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Shared;

namespace CrmSecurity.Identity.Authorization.Policies;

/// <summary>
/// The authorization model's data from <c>policies/authorization/*.json</c>: entity declarations (always from the
/// files), and the organisation settings, business units, role templates and field security profiles that seed an
/// empty database. The same sections make the admin API's export and import document.
/// </summary>
internal sealed record PolicySet(
    OrganizationSettings Organization,
    IReadOnlyList<EntityDefinition> Entities,
    IReadOnlyList<BusinessUnitDefinition> BusinessUnits,
    IReadOnlyList<RoleDefinition> Roles,
    IReadOnlyList<FieldProfileDefinition> Profiles)
{
    public static readonly PolicySet Empty = new(new OrganizationSettings(), [], [], [], []);

    /// <summary>A builder holding the entity declarations only (what every model of this service knows).</summary>
    public AuthorizationModelBuilder CatalogueBuilder()
    {
        var builder = new AuthorizationModelBuilder();
        foreach (var entity in Entities)
        {
            builder.AddEntity(entity);
        }

        return builder;
    }
}

internal static class PolicyFiles
{
    public const string OrganizationSection = "organization";
    public const string BusinessUnitsSection = "business_units";
    public const string EntitiesSection = "entities";
    public const string RolesSection = "roles";
    public const string ProfilesSection = "field_security_profiles";

    /// <summary>A byte-order mark is skipped, a repeated name is a problem, and nothing after the root object is read.</summary>
    private static readonly PolicyJsonRules Rules = new() { SkipByteOrderMark = true, ReportDuplicateNames = true };

    /// <summary>Reads every <c>*.json</c> file of the directory (in name order) and checks that they fit together.</summary>
    /// <exception cref="PolicyException">Naming file, line and problem for everything wrong.</exception>
    public static PolicySet Load(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new PolicyException([$"{Display(directory)}: the policy directory does not exist"]);
        }

        var files = Directory.GetFiles(directory, "*.json").Order(StringComparer.Ordinal)
            .Select(path => (Display(path), File.ReadAllBytes(path))).ToList();
        if (files.Count == 0)
        {
            throw new PolicyException([$"{Display(directory)}: no policy files (*.json) in the directory"]);
        }

        return Parse(files, requireEntities: true);
    }

    /// <summary>Parses policy documents (files, or an import body) and validates them together.</summary>
    public static PolicySet Parse(IEnumerable<(string Name, byte[] Json)> documents, bool requireEntities, PolicySet? catalogue = null, bool allowEntities = true)
    {
        var problems = new List<string>();
        OrganizationSettings? organization = null;
        var entities = new List<EntityDefinition>();
        var units = new List<BusinessUnitDefinition>();
        var roles = new List<RoleDefinition>();
        var profiles = new List<FieldProfileDefinition>();
        foreach (var (name, json) in documents)
        {
            var root = PolicyNode.Parse(json, name, problems, Rules);
            if (root is null)
            {
                continue;
            }

            if (!root.IsObject)
            {
                problems.Add($"{name}:{root.Line}: a policy file is a JSON object with sections such as \"roles\"");
                continue;
            }

            var top = new PolicyObject(name, "policy", root, problems);
            if (top.Object(OrganizationSection, "organization") is { } org)
            {
                if (organization is not null)
                {
                    org.Problem(org.Line, "organization: declared twice (one file may hold it)");
                }

                organization = ReadOrganization(org);
            }

            units.AddRange(top.Objects(BusinessUnitsSection, "business unit").Select(ReadBusinessUnit).OfType<BusinessUnitDefinition>());
            if (!allowEntities && root[EntitiesSection] is { } declared)
            {
                top.Problem(declared.Line, "entities are declared in the policy files of the service, not imported");
            }

            entities.AddRange(top.Objects(EntitiesSection, "entity").Select(ReadEntity).OfType<EntityDefinition>());
            roles.AddRange(top.Objects(RolesSection, "role").Select(ReadRole).OfType<RoleDefinition>());
            profiles.AddRange(top.Objects(ProfilesSection, "field security profile").Select(ReadProfile).OfType<FieldProfileDefinition>());
            top.RejectUnknown();
        }

        if (requireEntities && entities.Count == 0 && problems.Count == 0)
        {
            problems.Add($"{documents.FirstOrDefault().Name ?? "policies"}: no entities are declared (an \"entities\" section is needed)");
        }

        var set = new PolicySet(organization ?? new OrganizationSettings(), catalogue?.Entities ?? entities, units, roles, profiles);
        if (problems.Count == 0)
        {
            // Names that must fit together across files: unknown entity, field or parent, duplicates, cycles.
            var builder = set.CatalogueBuilder();
            builder.Organization = set.Organization;
            foreach (var unit in set.BusinessUnits)
            {
                builder.AddBusinessUnit(unit);
            }

            if (set.BusinessUnits.Count == 0)
            {
                builder.AddBusinessUnit(new BusinessUnitDefinition("root", set.Organization.Name, null));
            }

            foreach (var role in set.Roles)
            {
                builder.AddRole(role);
            }

            foreach (var profile in set.Profiles)
            {
                builder.AddFieldProfile(profile);
            }

            try
            {
                builder.Build(0);
            }
            catch (ModelValidationException e)
            {
                problems.AddRange(e.Problems.Select(p => p.ToString()));
            }
        }

        return problems.Count > 0 ? throw new PolicyException(problems) : set;
    }

    private static OrganizationSettings ReadOrganization(PolicyObject org)
    {
        var defaults = new OrganizationSettings();
        var hierarchy = org.Object("manager_hierarchy", "organization.manager_hierarchy");
        var settings = new OrganizationSettings(
            org.String("name") ?? defaults.Name,
            hierarchy?.Boolean("enabled") ?? defaults.ManagerHierarchy,
            hierarchy?.Integer("depth", 1, OrganizationSettings.MaxHierarchyDepth) ?? defaults.ManagerHierarchyDepth,
            org.Origin(org.Line));
        hierarchy?.RejectUnknown();
        org.RejectUnknown();
        return settings;
    }

    private static BusinessUnitDefinition? ReadBusinessUnit(PolicyObject unit)
    {
        var id = unit.String("id", required: true);
        var name = unit.String("name") ?? id;
        var parent = unit.String("parent");
        unit.RejectUnknown();
        return id is null ? null : new BusinessUnitDefinition(id, name!, parent, unit.Origin(unit.Line));
    }

    private static EntityDefinition? ReadEntity(PolicyObject entity)
    {
        var name = entity.String("name", required: true);
        var display = entity.String("display_name");
        var fields = new List<FieldDefinition>();
        foreach (var field in entity.Objects("fields", $"field of entity '{name}'"))
        {
            var fieldName = field.String("name", required: true);
            var sensitivityText = field.String("sensitivity") ?? "public";
            if (!CrmNames.TryParseSensitivity(sensitivityText, out var sensitivity))
            {
                field.Problem(field.Node.LineOf("sensitivity"), $"field '{name}.{fieldName}': unknown sensitivity '{sensitivityText}' (use one of {CrmNames.SensitivityList})");
            }

            var mask = field.String("mask") ?? MaskStyles.Full;
            if (!MaskStyles.All.Contains(mask))
            {
                field.Problem(field.Node.LineOf("mask"), $"field '{name}.{fieldName}': unknown mask '{mask}' (use one of {string.Join(", ", MaskStyles.All)})");
            }

            var fieldDisplay = field.String("display_name");
            field.RejectUnknown();
            if (fieldName is not null)
            {
                fields.Add(new FieldDefinition(fieldName, fieldDisplay ?? fieldName, sensitivity, mask, field.Origin(field.Line)));
            }
        }

        entity.RejectUnknown();
        return name is null ? null : new EntityDefinition(name, display ?? name, fields, Origin: entity.Origin(entity.Line));
    }

    private static RoleDefinition? ReadRole(PolicyObject role)
    {
        var id = role.String("id", required: true);
        var name = role.String("name") ?? id;
        var description = role.String("description") ?? "";
        var privileges = new List<PrivilegeGrant>();
        if (role.Object("privileges", $"role '{id}' privileges") is { } map)
        {
            foreach (var (entity, line, actions) in map.Entries())
            {
                if (!actions.IsObject)
                {
                    role.Problem(line, $"role '{id}': privileges of '{entity}' must be an object of action: depth, e.g. {{\"read\": \"business_unit\"}}");
                    continue;
                }

                foreach (var (actionName, actionLine, depthNode) in actions.Properties!)
                {
                    if (!CrmNames.TryParseAction(actionName, out var action))
                    {
                        role.Problem(actionLine, $"role '{id}': unknown action '{actionName}' for entity '{entity}' (use one of {CrmNames.ActionList})");
                        continue;
                    }

                    if (depthNode.Kind != JsonTokenType.String || !CrmNames.TryParseDepth(depthNode.Text, out var depth))
                    {
                        role.Problem(depthNode.Line, $"role '{id}': unknown depth '{depthNode.Text}' for {entity}:{actionName} (use one of {CrmNames.DepthList})");
                        continue;
                    }

                    privileges.Add(new PrivilegeGrant(entity, action, depth, role.Origin(line)));
                }
            }
        }

        role.RejectUnknown();
        return id is null ? null : new RoleDefinition(id, name!, description, privileges, role.Origin(role.Line));
    }

    private static FieldProfileDefinition? ReadProfile(PolicyObject profile)
    {
        var id = profile.String("id", required: true);
        var name = profile.String("name") ?? id;
        var description = profile.String("description") ?? "";
        var permissions = new List<FieldPermission>();
        if (profile.Object("fields", $"field security profile '{id}' fields") is { } map)
        {
            foreach (var (key, line, value) in map.Entries())
            {
                var dot = key.IndexOf('.', StringComparison.Ordinal);
                if (dot <= 0 || dot == key.Length - 1)
                {
                    profile.Problem(line, $"field security profile '{id}': '{key}' must name a field as entity.field, e.g. contact.email");
                    continue;
                }

                if (value.Kind != JsonTokenType.String || !CrmNames.TryParseFieldGrant(value.Text, out var grant))
                {
                    profile.Problem(value.Line, $"field security profile '{id}': unknown grant '{value.Text}' for {key} (use one of {CrmNames.FieldGrantList})");
                    continue;
                }

                permissions.Add(new FieldPermission(key[..dot], key[(dot + 1)..], grant, profile.Origin(line)));
            }
        }

        profile.RejectUnknown();
        return id is null ? null : new FieldProfileDefinition(id, name!, description, permissions, profile.Origin(profile.Line));
    }

    /// <summary>A path as the operator would type it: relative to the working directory when below it.</summary>
    private static string Display(string path)
    {
        var full = Path.GetFullPath(path);
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, full);
        return relative.StartsWith("..", StringComparison.Ordinal) ? full : relative;
    }

    /// <summary>The export document: organisation, business units, roles and field security profiles, as the policy files write them.</summary>
    public static string Export(AuthorizationSnapshot snapshot)
    {
        var document = new Dictionary<string, object>
        {
            [OrganizationSection] = new Dictionary<string, object>
            {
                ["name"] = snapshot.Organization.Name,
                ["manager_hierarchy"] = new Dictionary<string, object>
                {
                    ["enabled"] = snapshot.Organization.ManagerHierarchy,
                    ["depth"] = snapshot.Organization.ManagerHierarchyDepth,
                },
            },
            [BusinessUnitsSection] = snapshot.BusinessUnits.OrderBy(u => u.Pre).Select(u => u.Parent < 0
                ? new Dictionary<string, string> { ["id"] = u.Id, ["name"] = u.Name }
                : new Dictionary<string, string> { ["id"] = u.Id, ["name"] = u.Name, ["parent"] = snapshot.BusinessUnits[u.Parent].Id }).ToList(),
            [RolesSection] = snapshot.Roles.Select(r => new Dictionary<string, object>
            {
                ["id"] = r.Id,
                ["name"] = r.Name,
                ["description"] = r.Definition.Description,
                ["privileges"] = snapshot.Entities
                    .Select(e => (e.Name, Actions: CrmNames.Actions
                        .Where(a => r.Depths[(e.Index * CrmNames.ActionCount) + (int)a] != 0)
                        .ToDictionary(a => a.Name(), a => ((Depth)r.Depths[(e.Index * CrmNames.ActionCount) + (int)a]).Name())))
                    .Where(e => e.Actions.Count > 0)
                    .ToDictionary(e => e.Name, e => e.Actions),
            }).ToList(),
            [ProfilesSection] = snapshot.Profiles.Select(p => new Dictionary<string, object>
            {
                ["id"] = p.Id,
                ["name"] = p.Name,
                ["description"] = p.Definition.Description,
                ["fields"] = snapshot.FieldTable.Where(f => p.Grants[f.Index] != 0)
                    .ToDictionary(f => $"{snapshot.Entities[f.Entity].Name}.{f.Name}", f => ((FieldGrant)p.Grants[f.Index]).Name()),
            }).ToList(),
        };
        return JsonSerializer.Serialize(document, ExportJson);
    }

    private static readonly JsonSerializerOptions ExportJson = new() { WriteIndented = true };
}
