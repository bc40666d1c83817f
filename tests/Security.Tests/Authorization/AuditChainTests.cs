using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using CrmSecurity.Security.Tests.Support;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using static CrmSecurity.Security.Tests.Authorization.AdminConsole;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// Red-team finding 12: the audit chain was unkeyed and <c>audit verify</c> missed tampering. A database writer
/// recomputed the chain after changing an actor and verify said "intact"; deleting the newest entry and inserting a role
/// grant directly in SQL both passed; verify itself appended an entry. Now each entry is MACed under a key the database
/// does not hold in clear, a keyed head record and a head kept outside the database catch truncation, every entry records
/// a keyed fingerprint of the model that verify compares with the tables, and verify only reads. The attacker here holds
/// the SQLite file (a copy of it, so every test tampers with its own) but not the installation's master key.
/// </summary>
public sealed partial class AuditChainTests(SecurityHost host) : IClassFixture<SecurityHost>, IAsyncLifetime
{
    public async ValueTask InitializeAsync()
    {
        var secops = await SecOpsTokenAsync(host);
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, secops, "admin/api/roles/sales_rep/privileges/invoice/read", new { depth = "own" })).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await PutAsync(host, secops, $"admin/api/users/{DemoIds.Of("grace")}/zoneinfo", new { zoneinfo = "America/Denver" })).Status);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task Verify_only_reads_running_it_twice_leaves_the_entry_count_unchanged()
    {
        var before = await CountAsync(host.DatabasePath);

        var first = await VerifyAsync(host.DatabasePath);
        var second = await VerifyAsync(host.DatabasePath);

        Assert.True(first.ExitCode == 0, first.Output);
        Assert.True(second.ExitCode == 0, second.Output);
        Assert.Contains($"Audit trail intact: {before} entries", second.Output, StringComparison.Ordinal);
        Assert.Equal(before, await CountAsync(host.DatabasePath));
    }

    [Fact]
    public async Task The_audit_key_is_only_in_the_database_wrapped_and_opens_with_no_other_master_key()
    {
        var stored = (await host.QueryAsync("SELECT Value FROM identity_secrets WHERE Name = 'audit-chain'")).Single()["Value"] as string;
        var otherKey = Path.Combine(host.Directory, "another-master.key");
        await File.WriteAllTextAsync(otherKey, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), Personas.Cancel);

        var (exitCode, output) = await VerifyWithKeyAsync(host.DatabasePath, otherKey);

        Assert.StartsWith("kwp1:", stored, StringComparison.Ordinal);
        Assert.True(exitCode == 78, output);
        Assert.Contains("Crypto:MasterKey", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_database_writer_who_changes_an_actor_and_recomputes_the_chain_is_caught()
    {
        var copy = await CopyDatabaseAsync();
        var target = (await QueryAsync(copy, "SELECT Sequence FROM identity_audit_trail WHERE Action = 'role.privilege' ORDER BY Sequence LIMIT 1")).Single();
        var sequence = (long)target["Sequence"]!;

        // Blame someone else, then rewrite every hash from there on with what an attacker can compute (SHA-256, as the
        // unkeyed chain was made), the head record included.
        await ExecuteAsync(copy, "UPDATE identity_audit_trail SET ActorName = 'carol', ActorId = @carol WHERE Sequence = @sequence", ("@carol", DemoIds.Of("carol")), ("@sequence", sequence));
        await RecomputeWithoutTheKeyAsync(copy, sequence);
        var (exitCode, output) = await VerifyAsync(copy);

        Assert.Equal(65, exitCode);
        Assert.Contains($"Audit trail BROKEN at entry {sequence}:", output, StringComparison.Ordinal);
        Assert.Contains("was changed after it was written", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deleting_the_newest_entry_is_caught_by_the_head_record_and_a_head_put_back_by_the_head_kept_outside()
    {
        var secops = await SecOpsTokenAsync(host);
        var oldHead = (await host.QueryAsync("SELECT Sequence, Mac, HeadMac FROM identity_audit_head")).Single();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host, secops, $"identity/admin/users/{DemoIds.Of("erin")}/revoke", new { reason = "drill" })).Status);
        var kept = HeadOf((await VerifyAsync(host.DatabasePath)).Output);
        var copy = await CopyDatabaseAsync();
        var newest = (long)(await QueryAsync(copy, "SELECT MAX(Sequence) AS Newest FROM identity_audit_trail")).Single()["Newest"]!;

        await ExecuteAsync(copy, "DELETE FROM identity_audit_trail WHERE Sequence >= @newest", ("@newest", newest));
        var truncated = await VerifyAsync(copy);
        await ExecuteAsync(copy, "UPDATE identity_audit_head SET Sequence = @s, Mac = @m, HeadMac = @h",
            ("@s", oldHead["Sequence"]), ("@m", oldHead["Mac"]), ("@h", oldHead["HeadMac"]));
        var headPutBack = await VerifyAsync(copy);
        var withKeptHead = await VerifyAsync(copy, "--expect-head", kept);

        Assert.StartsWith($"{newest}:", kept, StringComparison.Ordinal);
        Assert.True(truncated.ExitCode == 65, truncated.Output);
        Assert.Contains("the newest entries were deleted", truncated.Output, StringComparison.Ordinal);
        Assert.True(headPutBack.ExitCode == 0, headPutBack.Output); // consistent again: only an anchor outside the database tells
        Assert.True(withKeptHead.ExitCode == 65, withKeptHead.Output);
        Assert.Contains($"the head kept outside the database is entry {newest}", withKeptHead.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_role_grant_inserted_with_sql_is_named_as_the_model_part_that_changed()
    {
        var copy = await CopyDatabaseAsync();

        await ExecuteAsync(copy, "INSERT INTO authz_role_privileges (RoleId, Entity, Action, Depth) VALUES ('sales_rep', 'invoice', 'export', 'organization')");
        var (exitCode, output) = await VerifyAsync(copy);

        Assert.Equal(65, exitCode);
        Assert.Contains("roles (roles and their privileges)", output, StringComparison.Ordinal);
        Assert.Contains("changed outside the audited path", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_user_re_enabled_with_sql_is_named_as_the_users_part()
    {
        var secops = await SecOpsTokenAsync(host);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host, secops, $"identity/admin/users/{DemoIds.Of("ed")}/disable", new { reason = "left the company" })).Status);
        var copy = await CopyDatabaseAsync();
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(host, secops, $"identity/admin/users/{DemoIds.Of("ed")}/enable", new { reason = "test done" })).Status);

        await ExecuteAsync(copy, "UPDATE AspNetUsers SET IsDisabled = 0 WHERE Id = @ed", ("@ed", DemoIds.Of("ed")));
        var (exitCode, output) = await VerifyAsync(copy);

        Assert.Equal(65, exitCode);
        Assert.Contains("users (users'", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_entry_the_writer_cannot_mac_appended_after_the_head_is_caught()
    {
        var copy = await CopyDatabaseAsync();
        var newest = (await QueryAsync(copy, "SELECT * FROM identity_audit_trail ORDER BY Sequence DESC LIMIT 1")).Single();

        // A forged grant of the auditor role to the attacker, chained by hand after the newest entry.
        await ExecuteAsync(copy, """
            INSERT INTO identity_audit_trail (Sequence, Timestamp, ActorId, ActorName, Action, TargetKind, TargetId, TargetName, ModelVersion, PreviousHash, Hash, Scheme)
            VALUES (@seq, @ts, 'system', 'start-up', 'user.roles', 'system_user', @alice, 'alice', 1, @prev, @hash, 'hmac-sha256')
            """, ("@seq", (long)newest["Sequence"]! + 1), ("@ts", newest["Timestamp"]), ("@alice", DemoIds.Of("alice")), ("@prev", newest["Hash"]),
            ("@hash", Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))));
        var (exitCode, output) = await VerifyAsync(copy);

        Assert.Equal(65, exitCode);
        Assert.Contains($"Audit trail BROKEN at entry {(long)newest["Sequence"]! + 1}:", output, StringComparison.Ordinal);
    }

    private Task<(int ExitCode, string Output)> VerifyAsync(string database, params string[] arguments) => VerifyWithKeyAsync(database, host.MasterKeyPath, arguments);

    private static Task<(int ExitCode, string Output)> VerifyWithKeyAsync(string database, string masterKey, params string[] arguments) =>
        ServerProcess.RunVerbAsync(["audit", "verify", .. arguments], new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={database}",
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = masterKey,
        }, cancellationToken: Personas.Cancel);

    /// <summary>A consistent copy of the live database (SQLite's VACUUM INTO), for one test to tamper with.</summary>
    private async Task<string> CopyDatabaseAsync()
    {
        var copy = Path.Combine(host.Directory, $"copy-{Guid.NewGuid():N}.db");
        await host.ExecuteAsync($"VACUUM INTO '{copy}'");
        return copy;
    }

    private static async Task<long> CountAsync(string database) =>
        (long)(await QueryAsync(database, "SELECT COUNT(*) AS Entries FROM identity_audit_trail")).Single()["Entries"]!;

    private static string HeadOf(string output) => HeadLine().Match(output) is { Success: true } match
        ? match.Groups["head"].Value
        : throw new InvalidOperationException("verify printed no head: " + output);

    /// <summary>
    /// What a database writer can do without the key: recompute each hash from <paramref name="from"/> on as SHA-256 over
    /// the entry (the unkeyed chain's rule) and chain it, and point the head record at the result.
    /// </summary>
    internal static async Task RecomputeWithoutTheKeyAsync(string database, long from)
    {
        var entries = await QueryAsync(database, "SELECT * FROM identity_audit_trail ORDER BY Sequence");
        var previous = from == 1 ? new string('0', 64) : (string)entries.Single(e => (long)e["Sequence"]! == from - 1)["Hash"]!;
        foreach (var entry in entries.Where(e => (long)e["Sequence"]! >= from))
        {
            entry["PreviousHash"] = previous;
            var hash = UnkeyedHash(entry);
            await ExecuteAsync(database, "UPDATE identity_audit_trail SET PreviousHash = @p, Hash = @h WHERE Sequence = @s",
                ("@p", previous), ("@h", hash), ("@s", entry["Sequence"]));
            previous = hash;
        }

        await ExecuteAsync(database, "UPDATE identity_audit_head SET Sequence = @s, Mac = @m", ("@s", entries[^1]["Sequence"]), ("@m", previous));
    }

    /// <summary>SHA-256 over the entry's fields as a JSON array: how the unkeyed chain hashed (EF stores the timestamp as ticks/1000 &lt;&lt; 11 | offset).</summary>
    internal static string UnkeyedHash(Dictionary<string, object?> entry)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            json.WriteNumberValue((long)entry["Sequence"]!);
            json.WriteNumberValue(((long)entry["Timestamp"]! >> 11) * 1000);
            foreach (var column in new[] { "ActorId", "ActorName", "ClientId", "Action", "TargetKind", "TargetId", "TargetName", "Before", "After", "SourceIp" })
            {
                json.WriteStringValue(entry[column] as string);
            }

            json.WriteNumberValue((long)entry["ModelVersion"]!);
            json.WriteStringValue(entry["PreviousHash"] as string);
            json.WriteEndArray();
        }

        return Convert.ToHexStringLower(SHA256.HashData(buffer.ToArray()));
    }

    internal static async Task<List<Dictionary<string, object?>>> QueryAsync(string database, string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        await connection.OpenAsync(Personas.Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        await using var reader = await command.ExecuteReaderAsync(Personas.Cancel);
        var rows = new List<Dictionary<string, object?>>();
        while (await reader.ReadAsync(Personas.Cancel))
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, i => reader.IsDBNull(i) ? null : reader.GetValue(i)));
        }

        return rows;
    }

    internal static async Task ExecuteAsync(string database, string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        await connection.OpenAsync(Personas.Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        await command.ExecuteNonQueryAsync(Personas.Cancel);
    }

    [GeneratedRegex(@"head (?<head>\d+:[0-9a-f]+)")]
    private static partial Regex HeadLine();
}

/// <summary>
/// Red-team finding 12, upgrade: a database made by the previous build (an unkeyed chain, and a share without a location)
/// keeps working. At first start its entries are sealed under the new audit key with an entry saying so, and verify
/// says intact from then on; the old share grants nothing until it is shared again with the record's business unit.
/// </summary>
public sealed class UnkeyedChainUpgradeTests : IAsyncLifetime
{
    private readonly PreviousBuildHost _host = new();

    public async ValueTask InitializeAsync() => await _host.InitializeAsync();

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();

    [Fact]
    public async Task An_unkeyed_chain_of_the_previous_build_is_sealed_at_first_start_and_verifies_from_then_on()
    {
        var entries = await _host.QueryAsync("SELECT Sequence, Action, Scheme, \"After\" FROM identity_audit_trail ORDER BY Sequence");
        var (exitCode, output) = await ServerProcess.RunVerbAsync(["audit", "verify"], new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={_host.DatabasePath}",
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = _host.MasterKeyPath,
        }, cancellationToken: Personas.Cancel);

        // The four entries the previous build wrote, then the seal (then whatever this start recorded after it).
        Assert.Equal(["policies.seed", "demo.seed", "share.create", "role.privilege", "audit.seal"], entries.Take(5).Select(e => (string)e["Action"]!));
        Assert.All(entries, e => Assert.Equal("hmac-sha256", e["Scheme"]));
        Assert.Contains("\"unkeyed_chain\":\"intact\"", (string)entries[4]["After"]!, StringComparison.Ordinal);
        Assert.True(exitCode == 0, output);
        Assert.Contains($"Audit trail intact: {entries.Count} entries", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_share_of_the_previous_build_grants_nothing_until_it_is_shared_again_with_the_records_unit()
    {
        var crm = await CrmDecisionTokenAsync(_host);
        var ed = DemoIds.Of("ed");
        var record = new { id = "c-1001", owner = DemoIds.Of("bob"), business_unit = "sales-west" };
        var before = await CheckAsync(_host, crm, ed, "contact", "read", record);

        var bound = await PostAsync(_host, await SecOpsTokenAsync(_host), "admin/api/shares", new
        {
            entity = "contact", record_id = "c-1001", record_business_unit = "sales-west", principal_kind = "user", principal_id = ed, actions = new[] { "read" },
        });
        var after = await CheckAsync(_host, crm, ed, "contact", "read", record);

        Assert.False(before.Allowed, before.ToString());
        Assert.Equal(HttpStatusCode.Created, bound.Status);
        Assert.True(after.Allowed, after.ToString());
        Assert.Equal("share", after.Basis);
        Assert.NotEmpty(await _host.QueryAsync("SELECT 1 FROM identity_audit_trail WHERE Action = 'share.bind'"));
    }

    /// <summary>The demo host started on the previous build's database (tests/Server.Tests/Data/Fixtures), with a new master key.</summary>
    private sealed class PreviousBuildHost : SecurityHost
    {
        public override async ValueTask InitializeAsync()
        {
            var fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "previous-build.db.gz");
            await using (var source = new GZipStream(File.OpenRead(fixture), CompressionMode.Decompress))
            await using (var target = File.Create(DatabasePath))
            {
                await source.CopyToAsync(target, Personas.Cancel);
            }

            await base.InitializeAsync();
        }
    }
}
