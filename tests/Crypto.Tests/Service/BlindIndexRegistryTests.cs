using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Crypto.Keys.Insecure;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Crypto.Tests.Service;

/// <summary>
/// The real host (demo organisation, Crypto module and its service on, a fresh keyring) with the clients an installation
/// registers around the blind-index registry: a CRM app's back end (<c>crm-app</c>, client credentials) that was, by
/// mistake, also given <c>crypto:admin</c>, and the security console (<c>crypto-console</c>) people sign in to.
/// </summary>
public sealed class RegistryHost : IAsyncLifetime
{
    public const string Secret = "registry-test-client-secret";
    public const string CrmApp = "crm-app";
    public const string Console = "crypto-console";
    public const string ConsoleRedirect = "http://localhost:5093/callback";

    private readonly string _directory = Directory.CreateTempSubdirectory("crm-crypto-registry-").FullName;
    private WebApplicationFactory<Program>? _factory;

    public Uri BaseAddress { get; private set; } = null!;

    public string EventFile => Path.Combine(_directory, "crypto-access-events.jsonl");

    public async ValueTask InitializeAsync()
    {
        var keyFile = Path.Combine(_directory, "master.key");
        var keyring = Path.Combine(_directory, "keyring.json");
        using (var kek = LocalMasterKey.Generate())
        {
            await File.WriteAllTextAsync(keyFile, InsecureCleartextKeyMaterial.ExportBase64(kek), TestContext.Current.CancellationToken);
            using var created = Keyring.CreateNew();
            created.Save(keyring, kek);
        }

        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Identity:AllowHttp"] = "true",
            ["Identity:DemoMode"] = "true",
            ["Identity:MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            ["AuditAnalyzer:DemoHistory:Enabled"] = "false",
            ["Modules:Crypto:Enabled"] = "true",
            ["Crypto:KeyringPath"] = keyring,
            ["Crypto:MasterKey:Source"] = "File",
            ["Crypto:MasterKey:File"] = keyFile,
            ["Crypto:AccessEventLog"] = EventFile,
            // A column the configuration owns: its index stays read-only in the registry.
            ["Crypto:Columns:0:Table"] = "contact",
            ["Crypto:Columns:0:Column"] = "email",
            ["Crypto:Columns:0:ExpectedRows"] = "1000000",
            ["Crypto:Columns:0:BlindIndexes:0:Name"] = "email_eq",
            ["Crypto:Columns:0:BlindIndexes:0:Normaliser"] = "email",
            ["Serilog:MinimumLevel:Default"] = "Warning",
            ["Identity:Clients:0:ClientId"] = CrmApp,
            ["Identity:Clients:0:ClientSecret"] = Secret,
            ["Identity:Clients:0:GrantTypes:0"] = "client_credentials",
            ["Identity:Clients:0:Scopes:0"] = "crypto:index",
            ["Identity:Clients:0:Scopes:1"] = "crypto:admin",
            ["Identity:Clients:0:Tenants:0"] = "demo",
            ["Identity:Clients:1:ClientId"] = Console,
            ["Identity:Clients:1:ClientSecret"] = Secret,
            ["Identity:Clients:1:FirstParty"] = "true",
            ["Identity:Clients:1:GrantTypes:0"] = "authorization_code",
            ["Identity:Clients:1:Scopes:0"] = "openid",
            ["Identity:Clients:1:Scopes:1"] = "crypto:admin",
            ["Identity:Clients:1:Tenants:0"] = "demo",
            ["Identity:Clients:1:RedirectUris:0"] = ConsoleRedirect,
        };
        (_factory, BaseAddress) = LoopbackHost.Start(settings);
    }

    /// <summary>A verb of the real executable on this host's database, keyring and master key, as an operator on another host runs it.</summary>
    public Task<(int ExitCode, string Output)> RunVerbAsync(params string[] arguments) =>
        ServerProcess.RunVerbAsync(arguments, new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(_directory, "security.db")}",
            ["Crypto__KeyringPath"] = Path.Combine(_directory, "keyring.json"),
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = Path.Combine(_directory, "master.key"),
            ["Crypto__AccessEventLog"] = EventFile,
        }, _directory, TestContext.Current.CancellationToken);

    public HttpClient CreateClient(string? accessToken = null)
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() }) { BaseAddress = BaseAddress };
        if (accessToken is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", accessToken);
        }

        return http;
    }

    /// <summary>The CRM app's own token (client credentials).</summary>
    public async Task<string> CrmAppTokenAsync(string scope)
    {
        using var http = CreateClient();
        var body = await OAuthFlows.ClientCredentialsAsync(http, scope, CrmApp, Secret);
        return body.GetProperty("access_token").GetString()!;
    }

    /// <summary>A person's token from the security console (authorization code with PKCE).</summary>
    public async Task<string> PersonTokenAsync(string user)
    {
        using var http = CreateClient();
        var body = await OAuthFlows.SignInAsync(http, user, DemoPasswords.ByUser[user], "openid crypto:admin", Console, Secret, ConsoleRedirect);
        return body.GetProperty("access_token").GetString()!;
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(string token, HttpMethod method, string path, object? body = null)
    {
        using var http = CreateClient(token);
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) };
        using var response = await http.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public async Task<JsonElement[]> EventsAsync() =>
        File.Exists(EventFile)
            ? [.. (await File.ReadAllLinesAsync(EventFile, TestContext.Current.CancellationToken)).Select(line => JsonDocument.Parse(line).RootElement.Clone())]
            : [];

    /// <summary>
    /// The rows of <c>identity_access_events</c> (what Identity's access-event writer stores, off the request path) the
    /// query gives, once at least <paramref name="atLeast"/> have arrived or 30 s have passed.
    /// </summary>
    public async Task<List<string[]>> TrailAsync(string sql, int atLeast)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var rows = new List<string[]>();
            await using (var connection = new SqliteConnection($"Data Source={Path.Combine(_directory, "security.db")}"))
            {
                await connection.OpenAsync(TestContext.Current.CancellationToken);
                await using var command = connection.CreateCommand();
                command.CommandText = sql;
                await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
                while (await reader.ReadAsync(TestContext.Current.CancellationToken))
                {
                    rows.Add([.. Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!)]);
                }
            }

            if (rows.Count >= atLeast || waited.Elapsed > TimeSpan.FromSeconds(30))
            {
                return rows;
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        await TestDirectories.DeleteAsync(_directory);
    }
}

/// <summary>
/// The server-side registry of blind-index definitions (issue 16), through the real host: security admins define
/// indexes over the admin API, the leakage planner checks each one, every change is audited, and callers of the service
/// name an index and get its bits. The attacks: a CRM app client cannot create or alter a definition, even when it was
/// registered with the admin scope; a caller cannot lower (or raise) the bits of an index.
/// </summary>
public sealed class BlindIndexRegistryTests(RegistryHost host) : IClassFixture<RegistryHost>
{
    private const string Admin = "crypto/v1/admin/blind-indexes";

    [Fact]
    public async Task A_security_admin_defines_an_index_the_planner_sizes_and_callers_then_name_it()
    {
        var dave = await host.PersonTokenAsync("dave");

        var (status, body) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/lead/mobile/mobile_eq", new { normaliser = "phone-e164", expectedRows = 1_000_000 });

        Assert.True(status == HttpStatusCode.OK, $"{status} {body}");
        Assert.True(body.GetProperty("changed").GetBoolean());
        var index = body.GetProperty("column").GetProperty("indexes")[0];
        Assert.Equal("mobile_eq", index.GetProperty("name").GetString());
        Assert.Equal(18, index.GetProperty("bits").GetInt32()); // floor(log2(1,000,000 / 2)): C >= 2
        Assert.True(body.GetProperty("column").GetProperty("plan").GetProperty("acceptable").GetBoolean());

        var app = await host.CrmAppTokenAsync("crypto:index");
        var (computed, answer) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index",
            new { tenant = "demo", table = "lead", column = "mobile", index = "mobile_eq", value = "+1 415 555 0100" });
        Assert.True(computed == HttpStatusCode.OK, $"{computed} {answer}");
        Assert.Equal(18, answer.GetProperty("bits").GetInt32());

        var audit = (await host.EventsAsync()).Where(e => e.GetProperty("privilege").GetString() == "crypto_blind_index" && e.GetProperty("record_id").GetString() == "lead.mobile").ToList();
        var change = Assert.Single(audit);
        Assert.Equal("admin_change", change.GetProperty("action").GetString());
        Assert.Equal("success", change.GetProperty("outcome").GetString());
        Assert.Contains("\"bits\":18", change.GetProperty("details").GetString(), StringComparison.Ordinal);
        Assert.Equal(RegistryHost.Console, change.GetProperty("client_id").GetString());
    }

    [Fact]
    public async Task A_crm_app_client_cannot_create_alter_or_remove_definitions_even_holding_the_admin_scope()
    {
        var dave = await host.PersonTokenAsync("dave");
        var (created, _) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/account/tax_id/tax_eq", new { normaliser = "national-id", expectedRows = 100_000 });
        Assert.Equal(HttpStatusCode.OK, created);

        // Its own token with crypto:admin: the scope alone is not enough, the model knows no privilege of this client.
        var app = await host.CrmAppTokenAsync("crypto:admin");
        var (create, createBody) = await host.SendAsync(app, HttpMethod.Put, $"{Admin}/account/tax_id/tax_wide", new { normaliser = "national-id", bits = 64 });
        var (alter, _) = await host.SendAsync(app, HttpMethod.Put, $"{Admin}/account/tax_id", new { expectedRows = 10 });
        var (remove, _) = await host.SendAsync(app, HttpMethod.Delete, $"{Admin}/account/tax_id/tax_eq");
        // Its everyday token (crypto:index) does not even reach the admin API.
        var everyday = await host.CrmAppTokenAsync("crypto:index");
        var (withIndexScope, _) = await host.SendAsync(everyday, HttpMethod.Put, $"{Admin}/account/tax_id/tax_wide", new { normaliser = "national-id", bits = 64 });

        Assert.Equal(HttpStatusCode.Forbidden, create);
        Assert.Contains("authorization model", createBody.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, alter);
        Assert.Equal(HttpStatusCode.Forbidden, remove);
        Assert.Equal(HttpStatusCode.Forbidden, withIndexScope);

        var (_, list) = await host.SendAsync(dave, HttpMethod.Get, Admin);
        var column = list.GetProperty("columns").EnumerateArray().Single(c => c.GetProperty("table").GetString() == "account");
        Assert.Equal(100_000, column.GetProperty("expectedRows").GetInt64());
        Assert.Equal(["tax_eq"], column.GetProperty("indexes").EnumerateArray().Select(i => i.GetProperty("name").GetString()));
        var denied = (await host.EventsAsync()).Where(e => e.GetProperty("record_id").GetString() == "account.tax_id" && e.GetProperty("outcome").GetString() == "denied").ToList();
        Assert.Equal(3, denied.Count);
        Assert.All(denied, e => Assert.Equal(RegistryHost.CrmApp, e.GetProperty("client_id").GetString()));
    }

    [Fact]
    public async Task Every_change_and_every_refused_attempt_reaches_the_access_event_trail_an_auditor_reads()
    {
        var dave = await host.PersonTokenAsync("dave");
        var app = await host.CrmAppTokenAsync("crypto:admin");

        var (defined, _) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/quote/ref/ref_eq", new { normaliser = "exact", expectedRows = 100_000 });
        var (appDefines, _) = await host.SendAsync(app, HttpMethod.Put, $"{Admin}/quote/ref/ref_wide", new { normaliser = "exact", bits = 64 });
        var (appRemoves, _) = await host.SendAsync(app, HttpMethod.Delete, $"{Admin}/quote/ref/ref_eq");
        var (removed, _) = await host.SendAsync(dave, HttpMethod.Delete, $"{Admin}/quote/ref/ref_eq");
        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.Forbidden, HttpStatusCode.Forbidden, HttpStatusCode.OK), (defined, appDefines, appRemoves, removed));

        // The query docs/crypto-operations.md gives auditors, on the table Identity's writer fills (as for shred and destroy).
        var trail = (await host.TrailAsync(
                "SELECT Timestamp, UserId, ClientId, Outcome, Details FROM identity_access_events WHERE Privilege = 'crypto_blind_index' AND Details LIKE '%record quote.ref%' ORDER BY Timestamp",
                atLeast: 4))
            .Select(r => (Client: r[2], Outcome: r[3], Details: r[4])).ToList();

        Assert.Equal(4, trail.Count);
        var changes = trail.Where(e => e.Outcome == "success").ToList();
        Assert.Equal(2, changes.Count);
        Assert.All(changes, e => Assert.Equal(RegistryHost.Console, e.Client));
        Assert.Contains(changes, e => e.Details.Contains("blind-index registry define ref_eq: before none after", StringComparison.Ordinal));
        Assert.Contains(changes, e => e.Details.Contains("blind-index registry remove ref_eq: before", StringComparison.Ordinal) && e.Details.EndsWith("\"indexes\":[]}", StringComparison.Ordinal));
        var refusals = trail.Where(e => e.Outcome == "denied").ToList();
        Assert.Equal(2, refusals.Count);
        Assert.All(refusals, e => Assert.Equal(RegistryHost.CrmApp, e.Client));
        Assert.Contains(refusals, e => e.Details.Contains("create refused", StringComparison.Ordinal));
        Assert.Contains(refusals, e => e.Details.Contains("delete refused", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sales_rep_with_the_admin_scope_is_refused_and_an_auditor_may_only_read()
    {
        var alice = await host.PersonTokenAsync("alice");
        var carol = await host.PersonTokenAsync("carol");

        var (aliceDefines, aliceBody) = await host.SendAsync(alice, HttpMethod.Put, $"{Admin}/campaign/phone/phone_eq", new { normaliser = "phone-e164", expectedRows = 50_000 });
        var (carolDefines, _) = await host.SendAsync(carol, HttpMethod.Put, $"{Admin}/campaign/phone/phone_eq", new { normaliser = "phone-e164", expectedRows = 50_000 });
        var (carolReads, carolList) = await host.SendAsync(carol, HttpMethod.Get, Admin);

        Assert.Equal(HttpStatusCode.Forbidden, aliceDefines);
        Assert.Contains("may not create", aliceBody.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, carolDefines);
        Assert.Equal(HttpStatusCode.OK, carolReads);
        Assert.DoesNotContain(carolList.GetProperty("columns").EnumerateArray(), c => c.GetProperty("table").GetString() == "campaign");
        // The configuration's column is listed, read-only.
        Assert.Contains(carolList.GetProperty("columns").EnumerateArray(), c => c.GetProperty("column").GetString() == "email" && c.GetProperty("source").GetString() == "configuration");
    }

    [Fact]
    public async Task A_definition_that_leaks_too_much_is_refused_with_the_planners_reason()
    {
        var dave = await host.PersonTokenAsync("dave");

        // 40 bits over 10,000 rows: every index value names one row, so equal values become linkable.
        var (status, body) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/opportunity/iban/iban_eq", new { normaliser = "exact", bits = 40, expectedRows = 10_000 });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var reason = body.GetProperty("errors").GetProperty("bits")[0].GetString()!;
        Assert.Contains("refused by the leakage planner", reason, StringComparison.Ordinal);
        Assert.Contains("C < 2", reason, StringComparison.Ordinal);
        Assert.Contains("Keep at most 12 bits", reason, StringComparison.Ordinal);
        var (_, list) = await host.SendAsync(dave, HttpMethod.Get, Admin);
        Assert.DoesNotContain(list.GetProperty("columns").EnumerateArray(), c => c.GetProperty("table").GetString() == "opportunity");
    }

    [Fact]
    public async Task A_defined_index_is_fixed_and_a_column_the_configuration_owns_is_read_only()
    {
        var dave = await host.PersonTokenAsync("dave");
        var (created, _) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/lead/email/email_eq", new { normaliser = "email", expectedRows = 1_000_000 });
        var (same, sameBody) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/lead/email/email_eq", new { normaliser = "email" });
        var (wider, widerBody) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/lead/email/email_eq", new { normaliser = "email", bits = 30 });
        var (configured, configuredBody) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/contact/email/email_prefix", new { normaliser = "email", transform = "prefix-3" });

        Assert.Equal(HttpStatusCode.OK, created);
        Assert.Equal(HttpStatusCode.OK, same);
        Assert.False(sameBody.GetProperty("changed").GetBoolean());
        Assert.Equal(HttpStatusCode.Conflict, wider);
        Assert.Contains("fixed once created", widerBody.GetProperty("errors").GetProperty("bits")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, configured);
        Assert.Contains("Crypto:Columns", configuredBody.GetProperty("errors").GetProperty("column")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_caller_cannot_lower_or_raise_the_bits_of_a_registered_index()
    {
        var dave = await host.PersonTokenAsync("dave");
        var (created, _) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/case/email/email_eq", new { normaliser = "email", expectedRows = 1_000_000 });
        Assert.Equal(HttpStatusCode.OK, created);
        var app = await host.CrmAppTokenAsync("crypto:index");

        var (lower, lowerBody) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index",
            new { tenant = "demo", table = "case", column = "email", index = "email_eq", bits = 8, value = "ada@example.org" });
        var (higher, higherBody) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index",
            new { tenant = "demo", table = "case", column = "email", index = "email_eq", bits = 64, value = "ada@example.org" });
        var (batch, batchBody) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index/batch",
            new { items = new[] { new { tenant = "demo", table = "case", column = "email", index = "email_eq", bits = 8, value = "ada@example.org" } } });
        var (matching, matchingBody) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index",
            new { tenant = "demo", table = "case", column = "email", index = "email_eq", bits = 18, value = "ada@example.org" });

        Assert.Equal(HttpStatusCode.BadRequest, lower);
        Assert.Contains("keeps 18 bits, not 8", lowerBody.GetProperty("errors").GetProperty("bits")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, higher);
        Assert.Contains("beyond the plan", higherBody.GetProperty("errors").GetProperty("bits")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, batch);
        Assert.True(batchBody.GetProperty("results")[0].GetProperty("error").GetProperty("errors").TryGetProperty("items[0].bits", out _), batchBody.ToString());
        Assert.Equal(HttpStatusCode.OK, matching);
        Assert.Equal(18, matchingBody.GetProperty("bits").GetInt32());
    }

    [Fact]
    public async Task A_definition_made_elsewhere_reaches_the_running_service_without_a_restart()
    {
        var app = await host.CrmAppTokenAsync("crypto:index");
        var request = new { tenant = "demo", table = "lead", column = "fax", index = "fax_eq", value = "+14155550199" };
        var (before, _) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index", request);
        Assert.Equal(HttpStatusCode.BadRequest, before);

        // Another host (here: the verb, in its own process) changes the shared database; this service has not seen it.
        var (exitCode, output) = await host.RunVerbAsync("blind-index", "define", "--table", "lead", "--column", "fax", "--name", "fax_eq", "--normaliser", "phone-e164", "--expected-rows", "1000000");
        Assert.True(exitCode == 0, output);

        var waited = System.Diagnostics.Stopwatch.StartNew();
        var status = before;
        while (status != HttpStatusCode.OK && waited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
            (status, _) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index", request);
        }

        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task A_removed_index_is_refused_to_callers_at_once()
    {
        var dave = await host.PersonTokenAsync("dave");
        var app = await host.CrmAppTokenAsync("crypto:index");
        var (created, _) = await host.SendAsync(dave, HttpMethod.Put, $"{Admin}/invoice/vat/vat_eq", new { normaliser = "exact", expectedRows = 100_000 });
        var (before, _) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index", new { tenant = "demo", table = "invoice", column = "vat", index = "vat_eq", value = "DE123" });

        var (removed, _) = await host.SendAsync(dave, HttpMethod.Delete, $"{Admin}/invoice/vat/vat_eq");
        var (after, afterBody) = await host.SendAsync(app, HttpMethod.Post, "crypto/v1/blind-index", new { tenant = "demo", table = "invoice", column = "vat", index = "vat_eq", value = "DE123" });

        Assert.Equal(HttpStatusCode.OK, created);
        Assert.Equal(HttpStatusCode.OK, before);
        Assert.Equal(HttpStatusCode.OK, removed);
        Assert.Equal(HttpStatusCode.BadRequest, after);
        Assert.True(afterBody.GetProperty("errors").TryGetProperty("index", out _));
    }
}
