using System.Text.Json.Nodes;

namespace CrmSecurity.Identity.Scim;

/// <summary>
/// The schema URNs this service speaks (RFC 7643 §8.7) and its discovery documents: ServiceProviderConfig (§5),
/// ResourceTypes (§6) and Schemas (§7), which tell a SCIM client what is supported before it tries.
/// </summary>
internal static class ScimSchemas
{
    public const string User = "urn:ietf:params:scim:schemas:core:2.0:User";
    public const string Group = "urn:ietf:params:scim:schemas:core:2.0:Group";
    public const string EnterpriseUser = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    /// <summary>This service's own extension: the business unit a user or group belongs to (the model's tenant boundary).</summary>
    public const string CrmUser = "urn:crm-security:params:scim:schemas:extension:crm:2.0:User";
    public const string CrmGroup = "urn:crm-security:params:scim:schemas:extension:crm:2.0:Group";

    public const string ListResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
    public const string PatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    public const string Error = "urn:ietf:params:scim:api:messages:2.0:Error";
    public const string ServiceProviderConfigSchema = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
    public const string ResourceTypeSchema = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
    public const string SchemaSchema = "urn:ietf:params:scim:schemas:core:2.0:Schema";

    /// <summary>Most resources a list returns in one page (RFC 7644 §3.4.2.4 <c>count</c> is capped here).</summary>
    public const int MaxResults = 200;

    /// <summary>Most operations in one PATCH request.</summary>
    public const int MaxOperations = 100;

    public static bool IsCore(string schema) =>
        string.Equals(schema, User, StringComparison.OrdinalIgnoreCase) || string.Equals(schema, Group, StringComparison.OrdinalIgnoreCase);

    public static JsonObject ServiceProviderConfig(string baseUrl, long maxPayload) => new()
    {
        ["schemas"] = new JsonArray(ServiceProviderConfigSchema),
        ["patch"] = new JsonObject { ["supported"] = true },
        ["bulk"] = new JsonObject { ["supported"] = false, ["maxOperations"] = 0, ["maxPayloadSize"] = 0 },
        ["filter"] = new JsonObject { ["supported"] = true, ["maxResults"] = MaxResults },
        ["changePassword"] = new JsonObject { ["supported"] = false },
        ["sort"] = new JsonObject { ["supported"] = false },
        ["etag"] = new JsonObject { ["supported"] = true },
        ["authenticationSchemes"] = new JsonArray(new JsonObject
        {
            ["type"] = "oauthbearertoken",
            ["name"] = "OAuth Bearer Token",
            ["description"] = "An access token of this server obtained with client credentials and scope scim (RFC 6750).",
            ["primary"] = true,
        }),
        ["meta"] = new JsonObject { ["resourceType"] = "ServiceProviderConfig", ["location"] = baseUrl + "/ServiceProviderConfig" },
        ["maxPayloadSize"] = maxPayload,
    };

    public static JsonArray ResourceTypes(string baseUrl) =>
    [
        ResourceType("User", "/Users", User, "A person who signs in", baseUrl, EnterpriseUser, CrmUser),
        ResourceType("Group", "/Groups", Group, "A team of the CRM authorization model", baseUrl, CrmGroup),
    ];

    private static JsonObject ResourceType(string name, string endpoint, string schema, string description, string baseUrl, params string[] extensions) => new()
    {
        ["schemas"] = new JsonArray(ResourceTypeSchema),
        ["id"] = name,
        ["name"] = name,
        ["endpoint"] = endpoint,
        ["description"] = description,
        ["schema"] = schema,
        ["schemaExtensions"] = new JsonArray([.. extensions.Select(e => (JsonNode)new JsonObject { ["schema"] = e, ["required"] = false })]),
        ["meta"] = new JsonObject { ["resourceType"] = "ResourceType", ["location"] = $"{baseUrl}/ResourceTypes/{name}" },
    };

    public static JsonArray Schemas(string baseUrl) =>
    [
        Schema(User, "User", "User Account", baseUrl,
            Attribute("userName", required: true, uniqueness: "server"),
            Attribute("externalId", caseExact: true),
            Attribute("displayName"),
            Attribute("active", type: "boolean"),
            Attribute("emails", multiValued: true, sub: [Attribute("value"), Attribute("type"), Attribute("primary", type: "boolean")]),
            Attribute("roles", multiValued: true, sub: [Attribute("value"), Attribute("display", mutability: "readOnly")]),
            Attribute("groups", multiValued: true, mutability: "readOnly", sub: [Attribute("value", mutability: "readOnly"), Attribute("display", mutability: "readOnly")]),
            Attribute("password", mutability: "writeOnly", returned: "never")),
        Schema(EnterpriseUser, "EnterpriseUser", "Enterprise User", baseUrl,
            Attribute("department"),
            Attribute("manager", type: "complex", sub: [Attribute("value"), Attribute("displayName", mutability: "readOnly")])),
        Schema(CrmUser, "CrmUser", "The user's place in the CRM authorization model", baseUrl,
            Attribute("businessUnit")),
        Schema(Group, "Group", "Group (a team of the CRM authorization model)", baseUrl,
            Attribute("displayName", required: true, mutability: "immutable"),
            Attribute("members", multiValued: true, sub: [Attribute("value", mutability: "immutable"), Attribute("display", mutability: "readOnly"), Attribute("type", mutability: "immutable")])),
        Schema(CrmGroup, "CrmGroup", "The team's place in the CRM authorization model", baseUrl,
            Attribute("businessUnit", mutability: "immutable")),
    ];

    private static JsonObject Schema(string id, string name, string description, string baseUrl, params JsonObject[] attributes) => new()
    {
        ["schemas"] = new JsonArray(SchemaSchema),
        ["id"] = id,
        ["name"] = name,
        ["description"] = description,
        ["attributes"] = new JsonArray([.. attributes]),
        ["meta"] = new JsonObject { ["resourceType"] = "Schema", ["location"] = $"{baseUrl}/Schemas/{id}" },
    };

    private static JsonObject Attribute(string name, string type = "string", bool multiValued = false, bool required = false, bool caseExact = false,
        string mutability = "readWrite", string returned = "default", string uniqueness = "none", JsonObject[]? sub = null)
    {
        var attribute = new JsonObject
        {
            ["name"] = name,
            ["type"] = sub is null ? type : "complex",
            ["multiValued"] = multiValued,
            ["required"] = required,
            ["caseExact"] = caseExact,
            ["mutability"] = mutability,
            ["returned"] = returned,
            ["uniqueness"] = uniqueness,
        };
        if (sub is not null)
        {
            attribute["subAttributes"] = new JsonArray([.. sub]);
        }

        return attribute;
    }
}
