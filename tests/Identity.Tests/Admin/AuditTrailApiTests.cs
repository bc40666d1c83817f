using System.Globalization;
using System.Net;
using System.Text.Json;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Npgsql;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// <c>/admin/api/audit</c> over real HTTP through the real host, as demo-secops (a security admin of the whole
/// organisation, who holds read on the audit trail): filters, paging, bad input, the chain's status, and the access event
/// each read leaves.
/// </summary>
public sealed class AuditTrailApiTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private static readonly SemaphoreSlim Once = new(1, 1);
    private static bool _changed;

    /// <summary>Changes through the admin API, so the trail has entries of several actions, targets and times.</summary>
    private async Task<AdminApi> SecOpsWithChangesAsync()
    {
        var secops = await AdminApi.SecOpsAsync(host);
        await Once.WaitAsync(Cancel);
        try
        {
            if (!_changed)
            {
                Assert.Equal(HttpStatusCode.NoContent, (await secops.SendAsync(HttpMethod.Put, "admin/api/roles/marketing/privileges/invoice/read", new { depth = "business_unit" })).Status);
                Assert.Equal(HttpStatusCode.NoContent, (await secops.SendAsync(HttpMethod.Put, "admin/api/roles/marketing/privileges/invoice/read", new { depth = "organization" })).Status);
                Assert.Equal(HttpStatusCode.Created, (await secops.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "audit-apac", name = "APAC" })).Status);
                _changed = true;
            }
        }
        finally
        {
            Once.Release();
        }

        return secops;
    }

    [Fact]
    public async Task Filtering_by_action_and_target_returns_only_those_entries_with_every_field()
    {
        using var secops = await SecOpsWithChangesAsync();

        var reply = await secops.GetAsync("admin/api/audit?action=role.privilege&target=marketing");

        Assert.True(reply.Status == HttpStatusCode.OK, reply.Text);
        var entries = reply.Json.GetProperty("entries").EnumerateArray().ToList();
        // The two changes made first (another test of the class may add a third).
        Assert.True(entries.Count >= 2, reply.Text);
        Assert.All(entries, e => Assert.Equal("role.privilege", e.GetProperty("action").GetString()));
        var last = entries[1];
        Assert.Equal("marketing", last.GetProperty("target").GetProperty("id").GetString());
        Assert.Equal("security_role", last.GetProperty("target").GetProperty("kind").GetString());
        Assert.Equal("demo-secops-app", last.GetProperty("actor_name").GetString());
        Assert.Equal("demo-secops", last.GetProperty("client_id").GetString());
        Assert.False(string.IsNullOrEmpty(last.GetProperty("actor_id").GetString()));
        Assert.False(string.IsNullOrEmpty(last.GetProperty("source_ip").GetString()));
        Assert.Equal(TimeSpan.Zero, last.GetProperty("timestamp").GetDateTimeOffset().Offset);
        Assert.EndsWith("Z", last.GetProperty("timestamp").GetString(), StringComparison.Ordinal);
        Assert.True(last.GetProperty("model_version").GetInt64() > 0);
        Assert.Equal(JsonValueKind.Object, last.GetProperty("before").ValueKind);
        Assert.Contains("\"organization\"", last.GetProperty("after").GetRawText(), StringComparison.Ordinal);
        Assert.True(entries[0].GetProperty("sequence").GetInt64() < last.GetProperty("sequence").GetInt64());
        Assert.Equal(JsonValueKind.Null, reply.Json.GetProperty("next_after").ValueKind);
    }

    [Fact]
    public async Task Actor_target_kind_and_time_range_narrow_the_list()
    {
        using var secops = await SecOpsWithChangesAsync();
        var unit = (await secops.GetAsync("admin/api/audit?target_kind=business_unit&target=audit-apac")).Json.GetProperty("entries")[0];
        var at = unit.GetProperty("timestamp").GetDateTimeOffset();

        var byActor = await secops.GetAsync("admin/api/audit?actor=demo-secops-app&limit=200");
        var byUnknownActor = await secops.GetAsync("admin/api/audit?actor=nobody-at-all");
        var around = await secops.GetAsync($"admin/api/audit?target=audit-apac&from={Iso(at.AddSeconds(-1))}&to={Iso(at.AddSeconds(1))}");
        var later = await secops.GetAsync($"admin/api/audit?target=audit-apac&from={Iso(at.AddSeconds(1))}");
        var earlier = await secops.GetAsync($"admin/api/audit?target=audit-apac&to={Iso(at)}");

        Assert.Equal("business_unit.create", unit.GetProperty("action").GetString());
        Assert.All(Entries(byActor), e => Assert.Equal("demo-secops-app", e.GetProperty("actor_name").GetString()));
        Assert.True(Entries(byActor).Count >= 3);
        Assert.Empty(Entries(byUnknownActor));
        Assert.Equal(unit.GetProperty("sequence").GetInt64(), Assert.Single(Entries(around)).GetProperty("sequence").GetInt64());
        Assert.Empty(Entries(later));
        Assert.Empty(Entries(earlier)); // to is exclusive
    }

    [Fact]
    public async Task Paging_with_after_and_limit_walks_the_trail_once_in_order_and_a_page_does_not_shift_when_entries_are_added()
    {
        using var secops = await SecOpsWithChangesAsync();
        var whole = Entries(await secops.GetAsync("admin/api/audit?limit=200")).Select(e => e.GetProperty("sequence").GetInt64()).ToList();

        var walked = new List<long>();
        long? after = 0;
        var firstPage = new List<long>();
        while (after is { } cursor)
        {
            var page = await secops.GetAsync($"admin/api/audit?limit=2&after={cursor}");
            Assert.True(page.Status == HttpStatusCode.OK, page.Text);
            var sequences = Entries(page).Select(e => e.GetProperty("sequence").GetInt64()).ToList();
            Assert.True(sequences.Count <= 2);
            if (cursor == 0)
            {
                firstPage = sequences;
            }

            walked.AddRange(sequences);
            after = page.Json.GetProperty("next_after").ValueKind == JsonValueKind.Null ? null : page.Json.GetProperty("next_after").GetInt64();
        }

        Assert.True(whole.Count >= 3, $"{whole.Count} entries");
        Assert.Equal(whole, walked);
        Assert.Equal(whole.Order(), whole);

        Assert.Equal(HttpStatusCode.NoContent, (await secops.SendAsync(HttpMethod.Put, "admin/api/roles/marketing/privileges/invoice/read", new { depth = "business_unit_and_children" })).Status);
        var again = Entries(await secops.GetAsync("admin/api/audit?limit=2&after=0")).Select(e => e.GetProperty("sequence").GetInt64()).ToList();
        Assert.Equal(firstPage, again);
    }

    [Theory]
    [InlineData("from=yesterday", "from")]
    [InlineData("from=06/12/2026", "from")]
    [InlineData("to=2026-13-01T00:00:00Z", "to")]
    [InlineData("from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "to")]
    [InlineData("after=-1", "after")]
    [InlineData("after=abc", "after")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=201", "limit")]
    [InlineData("limit=ten", "limit")]
    public async Task Bad_filter_input_is_a_400_problem_naming_the_parameter(string query, string parameter)
    {
        using var secops = await AdminApi.SecOpsAsync(host);

        var list = await secops.GetAsync($"admin/api/audit?{query}");
        var export = await secops.GetAsync($"admin/api/audit/export?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, list.Status);
        Assert.Contains(parameter, list.Error(parameter), StringComparison.Ordinal);
        Assert.Equal([parameter], list.Json.GetProperty("errors").EnumerateObject().Select(p => p.Name));
        // The export refuses the same input before it checks the export right (which secops does not hold).
        Assert.Equal(HttpStatusCode.BadRequest, export.Status);
    }

    [Fact]
    public async Task Verify_reports_an_intact_chain_with_its_head()
    {
        using var secops = await SecOpsWithChangesAsync();
        var count = await host.WithStoreAsync(store => store.AuditTrail.LongCountAsync(Cancel));

        var reply = await secops.GetAsync("admin/api/audit/verify");

        Assert.True(reply.Status == HttpStatusCode.OK, reply.Text);
        Assert.True(reply.Json.GetProperty("intact").GetBoolean(), reply.Text);
        Assert.True(reply.Json.GetProperty("entries").GetInt64() >= count);
        Assert.Matches("^[0-9]+:[0-9a-f]{8,}$", reply.Json.GetProperty("head").GetString()!);
        Assert.Equal(JsonValueKind.Null, reply.Json.GetProperty("first_broken").ValueKind);
    }

    [Fact]
    public async Task Each_read_of_the_trail_is_an_access_event_of_the_reader()
    {
        using var secops = await SecOpsWithChangesAsync();

        Assert.Equal(HttpStatusCode.OK, (await secops.GetAsync("admin/api/audit?action=business_unit.create&limit=7")).Status);
        Assert.Equal(HttpStatusCode.OK, (await secops.GetAsync("admin/api/audit/verify")).Status);
        await host.FlushEventsAsync();
        var events = await host.WithStoreAsync(store => store.AccessEvents.AsNoTracking()
            .Where(e => e.Action == "read" && e.Privilege == "audit_trail:read" && e.UserName == "demo-secops-app").ToListAsync(Cancel));

        Assert.Contains(events, e => e.Details!.StartsWith("action=business_unit.create&limit=7;", StringComparison.Ordinal) && e.ClientId == "demo-secops" && e.SourceIp is not null);
        Assert.Contains(events, e => e.Details == "verify: intact");
    }

    private static List<JsonElement> Entries(AdminApi.Reply reply)
    {
        Assert.True(reply.Status == HttpStatusCode.OK, reply.Text);
        return [.. reply.Json.GetProperty("entries").EnumerateArray()];
    }

    private static string Iso(DateTimeOffset time) =>
        Uri.EscapeDataString(time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
}

/// <summary>
/// <c>GET /admin/api/audit/verify</c> on a PostgreSQL database whose audit row was changed behind the service's back with
/// plain SQL: the API names that entry as the first broken one, as <c>audit verify</c> does.
/// </summary>
public sealed class AuditTrailApiTamperTests : IAsyncLifetime
{
    private PostgresDatabase _database = null!;
    private IdentityHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        _host = new IdentityHost { SharedPostgres = _database.ConnectionString };
        await _host.InitializeAsync();
    }

    [Fact]
    public async Task A_row_changed_with_sql_is_reported_broken_at_its_sequence()
    {
        using var secops = await AdminApi.SecOpsAsync(_host);
        Assert.Equal(HttpStatusCode.NoContent, (await secops.SendAsync(HttpMethod.Put, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "own" })).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await secops.SendAsync(HttpMethod.Put, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "business_unit" })).Status);
        var before = await secops.GetAsync("admin/api/audit/verify");
        var target = Assert.Single((await secops.GetAsync("admin/api/audit?action=role.privilege&target=sales_rep&limit=1")).Json.GetProperty("entries").EnumerateArray()).GetProperty("sequence").GetInt64();

        // What an insider with database access would do: quietly make the grant look smaller than it was.
        var entity = await _host.WithStoreAsync(store => Task.FromResult(store.Model.FindEntityType(typeof(AuditEntryRecord))!));
        var table = StoreObjectIdentifier.Table(entity.GetTableName()!, entity.GetSchema());
        string Column(string property) => $"\"{entity.FindProperty(property)!.GetColumnName(table)}\"";
        await using (var connection = new NpgsqlConnection(_database.ConnectionString))
        {
            await connection.OpenAsync(Cancel);
            await using var command = new NpgsqlCommand(
                $"UPDATE \"{entity.GetTableName()}\" SET {Column(nameof(AuditEntryRecord.After))} = replace({Column(nameof(AuditEntryRecord.After))}, '\"own\"', '\"none\"') WHERE {Column(nameof(AuditEntryRecord.Sequence))} = {target}",
                connection);
            Assert.Equal(1, await command.ExecuteNonQueryAsync(Cancel));
        }

        var after = await secops.GetAsync("admin/api/audit/verify");

        Assert.True(before.Json.GetProperty("intact").GetBoolean(), before.Text);
        Assert.Equal(HttpStatusCode.OK, after.Status);
        Assert.False(after.Json.GetProperty("intact").GetBoolean(), after.Text);
        Assert.Equal(target, after.Json.GetProperty("first_broken").GetInt64());
        Assert.Contains("changed after it was written", after.Json.GetProperty("problem").GetString(), StringComparison.Ordinal);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _database.DisposeAsync();
    }
}
