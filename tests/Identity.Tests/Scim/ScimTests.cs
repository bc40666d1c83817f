using System.Net;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Scim;

/// <summary>SCIM 2.0 through the real host over HTTP, with the request and response examples of RFC 7644.</summary>
public sealed class ScimTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private const string UserSchema = "urn:ietf:params:scim:schemas:core:2.0:User";
    private const string Enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    [Fact]
    public async Task Rfc7644_create_user_answers_201_with_location_version_and_the_stored_resource()
    {
        using var scim = await ScimClient.CreateAsync(host, "scim-create", "sales", "security_admin");

        // RFC 7644 §3.3's example, with a work address: this service keeps an e-mail address for every person.
        var created = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", """
            {
              "schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
              "userName":"bjensen",
              "externalId":"bjensen",
              "name":{ "formatted":"Ms. Barbara J Jensen III", "familyName":"Jensen", "givenName":"Barbara" },
              "emails":[{ "value":"bjensen@example.com", "type":"work", "primary":true }]
            }
            """);

        Assert.True(created.Status == HttpStatusCode.Created, created.ToString());
        Assert.Equal(ScimClient.MediaType, created.ContentType);
        var body = created.Json;
        Assert.Equal("bjensen", body.GetProperty("userName").GetString());
        Assert.Equal("bjensen", body.GetProperty("externalId").GetString());
        Assert.Equal("Ms. Barbara J Jensen III", body.GetProperty("displayName").GetString());
        Assert.True(body.GetProperty("active").GetBoolean());
        var meta = body.GetProperty("meta");
        Assert.Equal("User", meta.GetProperty("resourceType").GetString());
        Assert.Equal(created.Location, meta.GetProperty("location").GetString());
        Assert.EndsWith($"/scim/v2/Users/{created.Id}", created.Location, StringComparison.Ordinal);
        Assert.Equal(created.ETag, meta.GetProperty("version").GetString());
        Assert.StartsWith("W/\"", created.ETag, StringComparison.Ordinal);
        Assert.True(DateTimeOffset.Parse(meta.GetProperty("created").GetString()!, System.Globalization.CultureInfo.InvariantCulture) <= DateTimeOffset.Parse(meta.GetProperty("lastModified").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("sales", body.GetProperty("urn:crm-security:params:scim:schemas:extension:crm:2.0:User").GetProperty("businessUnit").GetString());

        // The change went through the admin path: audited with the client as the actor.
        var entry = await host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().SingleAsync(e => e.Action == "user.create" && e.TargetName == "bjensen", Cancel));
        Assert.Equal("scim-create-app", entry.ActorName);
        Assert.Equal("scim-create", entry.ClientId);

        var again = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", $$"""{"schemas":["{{UserSchema}}"],"userName":"bjensen","emails":[{"value":"other@example.com"}]}""");
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        Assert.Equal("uniqueness", again.Json.GetProperty("scimType").GetString());
        Assert.Equal("409", again.Json.GetProperty("status").GetString());
        Assert.Contains("urn:ietf:params:scim:api:messages:2.0:Error", again.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rfc7644_filters_select_users_and_pages_report_the_total()
    {
        using var scim = await ScimClient.CreateAsync(host, "scim-filter", "sales", "security_admin");
        var before = DateTimeOffset.UtcNow.AddSeconds(-1).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (name, mail) in new[] { ("flt-john", "john@example.org"), ("flt-jane", "jane@example.com"), ("flt-jim", "jim@example.com") })
        {
            var created = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", $$"""{"schemas":["{{UserSchema}}"],"userName":"{{name}}","emails":[{"value":"{{mail}}","type":"work"}]}""");
            Assert.True(created.Status == HttpStatusCode.Created, created.ToString());
        }

        async Task<List<string>> NamesAsync(string filter)
        {
            var reply = await scim.GetAsync("scim/v2/Users?filter=" + Uri.EscapeDataString(filter));
            Assert.True(reply.Status == HttpStatusCode.OK, $"{filter}: {reply}");
            Assert.Contains("urn:ietf:params:scim:api:messages:2.0:ListResponse", reply.Text, StringComparison.Ordinal);
            return [.. reply.Json.GetProperty("Resources").EnumerateArray().Select(r => r.GetProperty("userName").GetString()!).Where(n => n.StartsWith("flt-", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
        }

        // RFC 7644 §3.4.2.2's examples (attribute names and operators are case-insensitive).
        Assert.Equal(["flt-john"], await NamesAsync("userName Eq \"FLT-JOHN\""));
        Assert.Equal(["flt-jane", "flt-jim", "flt-john"], await NamesAsync("userName sw \"flt-J\""));
        Assert.Equal(["flt-jane", "flt-jim"], await NamesAsync("emails co \"example.com\""));
        Assert.Equal(["flt-jane", "flt-jim", "flt-john"], await NamesAsync($"meta.lastModified gt \"{before}\""));
        Assert.Empty(await NamesAsync("meta.lastModified gt \"2999-01-01T00:00:00Z\""));
        Assert.Equal(["flt-jane", "flt-jim"], await NamesAsync("emails[type eq \"work\" and value co \"@example.com\"]"));
        Assert.Equal(["flt-jim", "flt-john"], await NamesAsync("userName sw \"flt-j\" and (emails.value co \"example.org\" or userName ew \"im\")"));
        Assert.Equal(["flt-jane", "flt-jim", "flt-john"], await NamesAsync("userName sw \"flt\" and emails pr and active eq true"));
        Assert.Equal(["flt-jane"], await NamesAsync("userName sw \"flt\" and not (emails co \"jim\" or externalId pr or emails co \".org\")"));
        Assert.Empty(await NamesAsync("title pr"));

        // RFC 7644 §3.4.2.4: 1-based startIndex, count per page, totalResults over every match.
        var page = (await scim.GetAsync("scim/v2/Users?filter=" + Uri.EscapeDataString("userName sw \"flt-\"") + "&startIndex=2&count=1")).Json;
        Assert.Equal(3, page.GetProperty("totalResults").GetInt32());
        Assert.Equal(2, page.GetProperty("startIndex").GetInt32());
        Assert.Equal(1, page.GetProperty("itemsPerPage").GetInt32());
        Assert.Equal("flt-jim", page.GetProperty("Resources")[0].GetProperty("userName").GetString());
    }

    [Fact]
    public async Task Bad_and_hostile_filters_are_a_clear_400_invalidFilter()
    {
        using var scim = await ScimClient.CreateAsync(host, "scim-badfilter", "sales", "security_admin");
        var deep = string.Concat(Enumerable.Repeat("(", 200)) + "userName eq \"x\"" + string.Concat(Enumerable.Repeat(")", 200));
        var wide = string.Join(" or ", Enumerable.Range(0, 100).Select(i => $"userName eq \"u{i}\""));
        foreach (var filter in new[] { "userName eq", "userName zz \"x\"", "userName eq \"x\" and", "userName eq \"x\") or (1 eq 1", "userName eq x", deep, wide, new string('a', 5000), "active gt true" })
        {
            var reply = await scim.GetAsync("scim/v2/Users?filter=" + Uri.EscapeDataString(filter));
            Assert.True(reply.Status == HttpStatusCode.BadRequest, $"{filter[..Math.Min(40, filter.Length)]}: {reply}");
            Assert.Equal("invalidFilter", reply.Json.GetProperty("scimType").GetString());
            Assert.False(string.IsNullOrWhiteSpace(reply.Json.GetProperty("detail").GetString()));
        }
    }

    [Fact]
    public async Task Rfc7644_patch_adds_and_removes_group_members_and_replaces_attributes()
    {
        using var scim = await ScimClient.CreateAsync(host, "scim-patch", "sales", "security_admin");
        var babs = (await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", $$"""{"schemas":["{{UserSchema}}"],"userName":"babs","displayName":"Babs Jensen","emails":[{"value":"babs@example.com"}]}""")).Id;
        var mandy = (await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", $$"""{"schemas":["{{UserSchema}}"],"userName":"mandy","displayName":"Mandy Pepperidge","emails":[{"value":"mandy@example.com"}]}""")).Id;
        var group = await scim.SendAsync(HttpMethod.Post, "scim/v2/Groups", """{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Tour Guides"}""");
        Assert.True(group.Status == HttpStatusCode.Created, group.ToString());

        // RFC 7644 §3.5.2.1: add members.
        var added = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Groups/{group.Id}", $$"""
            { "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations":[{ "op":"add", "path":"members",
                "value":[ { "display":"Babs Jensen", "$ref":"https://example.com/v2/Users/{{babs}}", "value":"{{babs}}" },
                          { "display":"Mandy Pepperidge", "value":"{{mandy}}" } ] }] }
            """, group.ETag);
        Assert.True(added.Status == HttpStatusCode.OK, added.ToString());
        Assert.Equal(new[] { babs, mandy }.Order(StringComparer.Ordinal), added.Json.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("value").GetString()).Order(StringComparer.Ordinal)); // ids are random: compare as sets
        Assert.NotEqual(group.ETag, added.ETag);
        var babsView = (await scim.GetAsync($"scim/v2/Users/{babs}")).Json;
        Assert.Equal(group.Id, babsView.GetProperty("groups")[0].GetProperty("value").GetString());

        // RFC 7644 §3.5.2.2: remove one member by a value filter.
        var removed = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Groups/{group.Id}", $$"""
            { "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations":[{ "op":"remove", "path":"members[value eq \"{{mandy}}\"]" }] }
            """);
        Assert.True(removed.Status == HttpStatusCode.OK, removed.ToString());
        Assert.Equal([babs], removed.Json.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("value").GetString()));

        // RFC 7644 §3.5.2.3: replace attributes of a user, with and without a path.
        var replaced = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{babs}", $$"""
            { "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations":[
                { "op":"replace", "path":"emails[type eq \"work\"].value", "value":"babs.jensen@example.com" },
                { "op":"Replace", "value":{ "displayName":"Barbara Jensen", "{{Enterprise}}:department":"Tours" } },
                { "op":"add", "path":"externalId", "value":"hr-77" } ] }
            """);
        Assert.True(replaced.Status == HttpStatusCode.OK, replaced.ToString());
        Assert.Equal("babs.jensen@example.com", replaced.Json.GetProperty("emails")[0].GetProperty("value").GetString());
        Assert.Equal("Barbara Jensen", replaced.Json.GetProperty("displayName").GetString());
        Assert.Equal("Tours", replaced.Json.GetProperty(Enterprise).GetProperty("department").GetString());
        Assert.Equal("hr-77", replaced.Json.GetProperty("externalId").GetString());

        var noTarget = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{babs}", """{ "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations":[{ "op":"remove" }] }""");
        Assert.Equal(HttpStatusCode.BadRequest, noTarget.Status);
        Assert.Equal("noTarget", noTarget.Json.GetProperty("scimType").GetString());
    }

    [Fact]
    public async Task A_stale_If_Match_is_412_and_changes_nothing()
    {
        using var scim = await ScimClient.CreateAsync(host, "scim-etag", "sales", "security_admin");
        var created = await scim.SendAsync(HttpMethod.Post, "scim/v2/Users", $$"""{"schemas":["{{UserSchema}}"],"userName":"etag-user","emails":[{"value":"etag@example.com"}]}""");
        var patch = """{ "schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations":[{ "op":"replace", "path":"displayName", "value":"First" }] }""";
        var first = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{created.Id}", patch, created.ETag);
        Assert.Equal(HttpStatusCode.OK, first.Status);

        // RFC 7644 §3.14: the version the client held is no longer current.
        var stale = await scim.SendAsync(HttpMethod.Patch, $"scim/v2/Users/{created.Id}", patch.Replace("First", "Second", StringComparison.Ordinal), created.ETag);
        var staleDelete = await scim.SendAsync(HttpMethod.Delete, $"scim/v2/Users/{created.Id}", null, created.ETag);

        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.Status);
        Assert.Equal(HttpStatusCode.PreconditionFailed, staleDelete.Status);
        Assert.Equal("412", stale.Json.GetProperty("status").GetString());
        var now = await scim.GetAsync($"scim/v2/Users/{created.Id}");
        Assert.Equal("First", now.Json.GetProperty("displayName").GetString());
        Assert.True(now.Json.GetProperty("active").GetBoolean());
        Assert.Equal(first.ETag, now.ETag);
    }

    [Fact]
    public async Task Discovery_documents_describe_what_is_supported()
    {
        using var scim = await ScimClient.CreateAsync(host, "scim-discovery", "sales", "security_admin");

        var config = (await scim.GetAsync("scim/v2/ServiceProviderConfig")).Json;
        var types = (await scim.GetAsync("scim/v2/ResourceTypes")).Json;
        var schemas = (await scim.GetAsync("scim/v2/Schemas")).Json;
        var enterprise = await scim.GetAsync($"scim/v2/Schemas/{Enterprise}");

        Assert.True(config.GetProperty("patch").GetProperty("supported").GetBoolean());
        Assert.True(config.GetProperty("filter").GetProperty("supported").GetBoolean());
        Assert.True(config.GetProperty("etag").GetProperty("supported").GetBoolean());
        Assert.False(config.GetProperty("bulk").GetProperty("supported").GetBoolean());
        Assert.Equal("oauthbearertoken", config.GetProperty("authenticationSchemes")[0].GetProperty("type").GetString());
        Assert.Equal(["Group", "User"], types.GetProperty("Resources").EnumerateArray().Select(t => t.GetProperty("name").GetString()).Order(StringComparer.Ordinal));
        Assert.Contains(schemas.GetProperty("Resources").EnumerateArray(), s => s.GetProperty("id").GetString() == UserSchema);
        Assert.Equal(HttpStatusCode.OK, enterprise.Status);
        Assert.Contains(enterprise.Json.GetProperty("attributes").EnumerateArray(), a => a.GetProperty("name").GetString() == "manager");
    }
}
