using System.Net;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// <c>audit verify</c> run as the real executable against a real PostgreSQL database whose audit rows were written
/// through the admin API, then changed or removed behind the service's back with plain SQL.
/// </summary>
public sealed class AuditVerifyTests : IAsyncLifetime
{
    private PostgresDatabase _database = null!;
    private IdentityHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync(cancellationToken: Cancel);
        _host = new IdentityHost { SharedPostgres = _database.ConnectionString };
        await _host.InitializeAsync();
        using var admin = await AdminApi.SecOpsAsync(_host);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(HttpMethod.Put, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "own" })).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.SendAsync(HttpMethod.Put, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "business_unit" })).Status);
        Assert.Equal(HttpStatusCode.Created, (await admin.SendAsync(HttpMethod.Post, "admin/api/business-units", new { id = "apac", name = "APAC" })).Status);
    }

    [Fact]
    public async Task An_untouched_trail_verifies_and_the_verb_exits_zero()
    {
        var entries = await _host.WithStoreAsync(store => store.AuditTrail.CountAsync(Cancel));

        var (exitCode, output) = await VerifyAsync();

        Assert.True(exitCode == 0, output);
        Assert.Contains($"Audit trail intact: {entries} entries", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changed_row_is_named_as_the_first_broken_entry()
    {
        var target = await _host.WithStoreAsync(store => store.AuditTrail.AsNoTracking().Where(e => e.Action == "role.privilege").OrderBy(e => e.Sequence).FirstAsync(Cancel));

        // What an insider with database access would do: quietly make the grant look smaller than it was.
        await ExecuteAsync($"UPDATE {Table} SET {Column(nameof(AuditEntryRecord.After))} = replace({Column(nameof(AuditEntryRecord.After))}, '\"own\"', '\"none\"') WHERE {Column(nameof(AuditEntryRecord.Sequence))} = {target.Sequence}");
        var (exitCode, output) = await VerifyAsync();

        Assert.Equal(65, exitCode);
        Assert.Contains($"Audit trail BROKEN at entry {target.Sequence}:", output, StringComparison.Ordinal);
        Assert.Contains("role.privilege of security_role 'Sales representative' by demo-secops-app) was changed after it was written", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_deleted_row_is_named_as_missing()
    {
        var last = await _host.WithStoreAsync(store => store.AuditTrail.MaxAsync(e => e.Sequence, Cancel));

        await ExecuteAsync($"DELETE FROM {Table} WHERE {Column(nameof(AuditEntryRecord.Sequence))} = {last - 1}");
        var (exitCode, output) = await VerifyAsync();

        Assert.Equal(65, exitCode);
        Assert.Contains($"Audit trail BROKEN at entry {last}: entry {last - 1} is missing", output, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Output)> VerifyAsync() => ServerProcess.RunVerbAsync(["audit", "verify"], new Dictionary<string, string?>
    {
        ["Database__Provider"] = "PostgreSql",
        ["Database__ConnectionString"] = _database.ConnectionString,

        // The chain is keyed with a secret wrapped by the installation's key: the verb needs the host's (development) key.
        ["Crypto__MasterKey__Source"] = "File",
        ["Crypto__MasterKey__File"] = _host.Services.GetRequiredService<IConfiguration>()["Crypto:MasterKey:File"],
    }, cancellationToken: Cancel);

    private IEntityType Entity => _host.WithStoreAsync(store => Task.FromResult(store.Model.FindEntityType(typeof(AuditEntryRecord))!)).Result;

    private string Table => $"\"{Entity.GetTableName()}\"";

    private string Column(string property) =>
        $"\"{Entity.FindProperty(property)!.GetColumnName(StoreObjectIdentifier.Table(Entity.GetTableName()!, Entity.GetSchema()))}\"";

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync(Cancel);
        await using var command = new NpgsqlCommand(sql, connection);
        Assert.Equal(1, await command.ExecuteNonQueryAsync(Cancel));
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _database.DisposeAsync();
    }
}
