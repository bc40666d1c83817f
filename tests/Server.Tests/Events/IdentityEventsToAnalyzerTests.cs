using CrmSecurity.Server.Tests.Hosting;

namespace CrmSecurity.Server.Tests.Events;

public sealed class IdentityEventsToAnalyzerTests(InProcessHost host) : IClassFixture<InProcessHost>
{
    private const string IdentityRows = "SELECT event_key, client_id, user_id, line, scored FROM analyzer_live_events WHERE client_id = 'identity'";

    [Fact]
    public async Task A_client_credentials_token_reaches_the_analyzers_event_table_as_a_sign_in_and_is_scored()
    {
        await host.TokenAsync("events:write");

        var rows = await host.WaitForRowsAsync(IdentityRows + " AND line LIKE '%\"action\":\"login\"%token_issue%'", r => r.Count > 0 && r.All(row => (long)row["scored"]! == 1));

        var row = Assert.Single(rows);
        Assert.Equal(InProcessHost.Client, row["user_id"]);
        Assert.StartsWith("identity:", (string)row["event_key"]!, StringComparison.Ordinal);
        Assert.Equal(1L, (long)row["scored"]!);
        Assert.DoesNotContain("access_token", (string)row["line"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Repeated_token_requests_with_a_wrong_secret_arrive_as_failed_sign_ins_without_the_secret()
    {
        const string wrong = "not-the-secret-1234";
        for (var i = 0; i < 3; i++)
        {
            var (status, _) = await host.RequestTokenAsync(InProcessHost.Client, wrong, "events:write");
            Assert.Equal(401, status);
        }

        var rows = await host.WaitForRowsAsync(IdentityRows + " AND line LIKE '%\"action\":\"login_failed\"%token_rejected%'", r => r.Count >= 3);

        Assert.Equal(3, rows.Count);
        Assert.All(rows, row => Assert.Contains("\"outcome\":\"denied\"", (string)row["line"]!, StringComparison.Ordinal));
        Assert.All(rows, row => Assert.DoesNotContain(wrong, (string)row["line"]!, StringComparison.Ordinal));
    }
}
