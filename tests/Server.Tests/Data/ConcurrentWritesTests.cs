using System.Net;
using CrmSecurity.Server.Tests.Hosting;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Tests.Data;

/// <summary>
/// Many people signing in at once on the embedded database. In SQLite's rollback-journal mode a commit needs every
/// reader gone, and EF Core's single-statement saves failed at once with "database is locked": sign-ins, code
/// redemptions and refreshes answered 500 under ordinary concurrency (seen in CI). The service keeps the file in WAL mode.
/// </summary>
public sealed class ConcurrentWritesTests(DemoHost host) : IClassFixture<DemoHost>
{
    [Fact]
    public async Task The_embedded_database_is_in_write_ahead_log_mode()
    {
        await using var connection = new SqliteConnection($"Data Source={host.DatabasePath};Pooling=false");
        await connection.OpenAsync(OAuthFlows.Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";

        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync(OAuthFlows.Cancel));
    }

    [Fact]
    public async Task Twenty_seven_people_signing_in_and_refreshing_at_once_all_get_their_tokens()
    {
        // Three browsers per person (within the per-account and per-IP sign-in budgets), all at once: every one writes
        // the user's sign-in, an authorization code, its redemption, a refresh token and its rotation.
        var flows = DemoPasswords.ByUser.SelectMany(person => Enumerable.Range(0, 3).Select(_ => SignInAndRefreshAsync(person.Key, person.Value)));
        var outcomes = await Task.WhenAll(flows);

        Assert.All(outcomes, outcome => Assert.True(outcome is null, outcome));
    }

    /// <summary>Null when the whole flow worked, else what went wrong (the assertion names every failed person).</summary>
    private async Task<string?> SignInAndRefreshAsync(string user, string password)
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() })
        {
            BaseAddress = host.BaseAddress,
        };
        try
        {
            var tokens = await OAuthFlows.SignInAsync(http, user, password);
            var (status, body) = await OAuthFlows.PostFormAsync(http, "connect/token", new Dictionary<string, string>
            {
                ["grant_type"] = "refresh_token",
                ["refresh_token"] = tokens.GetProperty("refresh_token").GetString()!,
            }, (OAuthFlows.CrmClient, OAuthFlows.CrmSecret));
            return status == HttpStatusCode.OK ? null : $"{user}: refresh answered {status} {body}";
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return $"{user}: {e.Message}";
        }
    }
}
