using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Authorization;

/// <summary>The AuthZEN Authorization API 1.0 through the real host, with the spec's example requests in this model's terms.</summary>
public sealed class AuthZenTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private string Id(string userName) => host.Services.GetRequiredService<AuthorizationModel>().Current.Users.Single(u => u.UserName == userName).Id;

    private async Task<HttpClient> PepAsync(string client = CrmClient, string secret = CrmSecret, string scope = "authz.decide")
    {
        var http = host.CreateClient();
        var token = (await ClientCredentialsAsync(http, scope, client, secret)).GetProperty("access_token").GetString()!;
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body, string? RequestId)> PostAsync(HttpClient http, string path, string json, string? requestId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (requestId is not null)
        {
            request.Headers.Add("X-Request-ID", requestId);
        }

        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(),
            response.Headers.TryGetValues("X-Request-ID", out var values) ? values.Single() : null);
    }

    [Fact]
    public async Task The_discovery_metadata_names_the_evaluation_endpoints_without_a_token()
    {
        using var http = host.CreateClient();

        var metadata = JsonDocument.Parse(await http.GetStringAsync(new Uri(".well-known/authzen-configuration", UriKind.Relative), Cancel)).RootElement;

        Assert.Equal(host.Issuer.TrimEnd('/'), metadata.GetProperty("policy_decision_point").GetString());
        Assert.Equal(host.Issuer + "access/v1/evaluation", metadata.GetProperty("access_evaluation_endpoint").GetString());
        Assert.Equal(host.Issuer + "access/v1/evaluations", metadata.GetProperty("access_evaluations_endpoint").GetString());
    }

    [Fact]
    public async Task The_specs_access_evaluation_example_is_decided_by_the_model_with_its_reason()
    {
        using var pep = await PepAsync();

        // The AuthZEN 1.0 Access Evaluation example (subject, resource, action with properties, context), in this model's terms.
        var (status, body, requestId) = await PostAsync(pep, "access/v1/evaluation", $$"""
            {
              "subject": { "type": "user", "id": "{{Id("alice")}}" },
              "resource": { "type": "contact", "id": "123", "properties": { "owner": "{{Id("bob")}}", "business_unit": "sales-west" } },
              "action": { "name": "read", "properties": { "method": "GET" } },
              "context": { "time": "1985-10-26T01:22-07:00" }
            }
            """, "req-42");
        var (_, denied, _) = await PostAsync(pep, "access/v1/evaluation", $$"""
            { "subject": { "type": "user", "id": "{{Id("ed")}}" }, "resource": { "type": "contact", "id": "123", "properties": { "owner": "{{Id("bob")}}", "business_unit": "sales-west" } }, "action": { "name": "read" } }
            """);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("decision").GetBoolean());
        Assert.Contains("Sales West", body.GetProperty("context").GetProperty("reason_admin").GetProperty("en").GetString(), StringComparison.Ordinal);
        Assert.Equal("sales_rep", body.GetProperty("context").GetProperty("crm").GetProperty("role").GetProperty("id").GetString());
        Assert.Equal("req-42", requestId);
        Assert.False(denied.GetProperty("decision").GetBoolean());
    }

    [Fact]
    public async Task The_specs_evaluations_example_answers_each_and_honours_the_semantic()
    {
        using var pep = await PepAsync();
        var alice = Id("alice");
        var bob = Id("bob");
        var ed = Id("ed");
        string Batch(string semantic) => $$"""
            {
              "subject": { "type": "user", "id": "{{alice}}" },
              "action": { "name": "read" },
              "options": { "evaluations_semantic": "{{semantic}}" },
              "evaluations": [
                { "resource": { "type": "contact", "id": "c-1", "properties": { "owner": "{{bob}}", "business_unit": "sales-west" } } },
                { "resource": { "type": "contact", "id": "c-2", "properties": { "owner": "{{ed}}", "business_unit": "sales-east" } } },
                { "action": { "name": "update" }, "resource": { "type": "contact", "id": "c-3", "properties": { "owner": "{{alice}}", "business_unit": "sales-west" } } }
              ]
            }
            """;

        var all = await PostAsync(pep, "access/v1/evaluations", Batch("execute_all"));
        var denyFirst = await PostAsync(pep, "access/v1/evaluations", Batch("deny_on_first_deny"));
        var permitFirst = await PostAsync(pep, "access/v1/evaluations", Batch("permit_on_first_permit"));
        var single = await PostAsync(pep, "access/v1/evaluations", $$"""{ "subject": { "type": "user", "id": "{{alice}}" }, "action": { "name": "read" }, "resource": { "type": "contact" } }""");

        Assert.Equal(HttpStatusCode.OK, all.Status);
        Assert.Equal([true, false, true], all.Body.GetProperty("evaluations").EnumerateArray().Select(e => e.GetProperty("decision").GetBoolean()));
        Assert.Equal([true, false], denyFirst.Body.GetProperty("evaluations").EnumerateArray().Select(e => e.GetProperty("decision").GetBoolean()));
        Assert.Equal([true], permitFirst.Body.GetProperty("evaluations").EnumerateArray().Select(e => e.GetProperty("decision").GetBoolean()));
        // Without evaluations the request is one evaluation, answered as one.
        Assert.True(single.Body.GetProperty("decision").GetBoolean());
    }

    [Fact]
    public async Task A_caller_cannot_ask_about_another_tenants_subject()
    {
        await using (var scope = host.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<Clients.ClientRegistry>().RegisterAsync(
                new ClientSettings { ClientId = "other-tenant-pep", ClientSecret = "other-tenant-pep-secret", GrantTypes = ["client_credentials"], Scopes = ["authz.decide"], Tenants = ["other"] }, Cancel);
        }

        using var other = await PepAsync("other-tenant-pep", "other-tenant-pep-secret");
        using var http = host.CreateClient();
        var carol = await SignInAsync(http, "carol", "Carol-Reads-The-Logs-42", "openid authz.decide");
        using var carolsApp = host.CreateClient();
        carolsApp.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", carol.GetProperty("access_token").GetString());
        var aboutAlice = $$"""{ "subject": { "type": "user", "id": "{{Id("alice")}}" }, "action": { "name": "read" }, "resource": { "type": "contact" } }""";

        var single = await PostAsync(other, "access/v1/evaluation", aboutAlice);
        var batch = await PostAsync(other, "access/v1/evaluations", $$"""{ "action": { "name": "read" }, "resource": { "type": "contact" }, "evaluations": [ { "subject": { "type": "user", "id": "{{Id("alice")}}" } } ] }""");
        var userAboutOther = await PostAsync(carolsApp, "access/v1/evaluation", aboutAlice);

        Assert.Equal(HttpStatusCode.Forbidden, single.Status);
        Assert.Contains("tenant", single.Body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(single.Body.TryGetProperty("decision", out _));
        Assert.Equal(HttpStatusCode.Forbidden, batch.Status);
        Assert.Equal(HttpStatusCode.Forbidden, userAboutOther.Status);
    }

    [Fact]
    public async Task Bad_requests_name_the_field_and_other_scopes_are_refused()
    {
        using var pep = await PepAsync();
        using var wrongScope = await PepAsync(scope: "crm.api");
        using var anonymous = host.CreateClient();
        const string valid = """{ "subject": { "type": "user", "id": "x" }, "action": { "name": "read" }, "resource": { "type": "contact" } }""";

        var badType = await PostAsync(pep, "access/v1/evaluation", """{ "subject": { "type": "group", "id": "x" }, "action": { "name": "read" }, "resource": { "type": "contact" } }""");
        var badAction = await PostAsync(pep, "access/v1/evaluation", $$"""{ "subject": { "type": "user", "id": "{{Id("alice")}}" }, "action": { "name": "can_dance" }, "resource": { "type": "contact" } }""");
        var badSemantic = await PostAsync(pep, "access/v1/evaluations", """{ "options": { "evaluations_semantic": "maybe" }, "evaluations": [ {} ] }""");

        Assert.Equal(HttpStatusCode.BadRequest, badType.Status);
        Assert.True(badType.Body.GetProperty("errors").TryGetProperty("subject.type", out _));
        Assert.True(badAction.Body.GetProperty("errors").TryGetProperty("action.name", out _));
        Assert.True(badSemantic.Body.GetProperty("errors").TryGetProperty("options.evaluations_semantic", out _));
        Assert.Equal(HttpStatusCode.Forbidden, (await PostAsync(wrongScope, "access/v1/evaluation", valid)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(anonymous, "access/v1/evaluation", valid)).Status);
    }
}
