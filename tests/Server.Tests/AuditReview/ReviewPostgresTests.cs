using System.Net;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Server.Tests.AuditReview;

/// <summary>The review workflow on the real PostgreSQL: review changes and Identity's hash chain share one transaction there too.</summary>
public sealed class ReviewPostgresTests : IAsyncLifetime
{
    private PostgresDatabase _database = null!;
    private ReviewHost _host = null!;

    public async ValueTask InitializeAsync()
    {
        _database = await PostgresDatabase.CreateAsync(cancellationToken: TestContext.Current.CancellationToken);
        _host = ReviewHost.Start(_database.ConnectionString);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        await _database.DisposeAsync();
    }

    [Fact]
    public async Task An_auditor_dismisses_and_reveals_on_postgresql_and_the_audit_chain_verifies()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        var dave = await _host.UserTokenAsync("dave", ReviewHost.DavePassword);
        await _host.PostNightExportAsync(writer, "pia", 1, 48_000, "pg1");
        var id = (await _host.WaitForQueueItemAsync(carol, "", _ => true)).GetProperty("id").GetString()!;

        // Concurrent reviewers: both act on the same version; exactly one wins, the other gets 409.
        var results = await Task.WhenAll(
            _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "acknowledged", version = 0 }),
            _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/assign", new { assignee = "carol", version = 0 }));
        var (refused, _) = await _host.SendAsync(dave, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "dismissed", disposition = "false_positive" });
        var (dismissed, _) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "dismissed", disposition = "false_positive" });
        var (revealed, identity) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/reveal", new { reason = "case 7" });
        var (exit, output) = await _host.VerifyAuditChainAsync();

        Assert.Single(results, r => r.Status == HttpStatusCode.Conflict);
        Assert.Single(results, r => r.Status is HttpStatusCode.OK or HttpStatusCode.NoContent);
        Assert.Equal(HttpStatusCode.Forbidden, refused);
        Assert.Equal(HttpStatusCode.OK, dismissed);
        Assert.Equal(HttpStatusCode.OK, revealed);
        Assert.Equal("pia", identity.GetProperty("user_id").GetString());
        Assert.True(exit == 0, output);
        Assert.Contains("Audit trail intact", output, StringComparison.Ordinal);
    }
}
