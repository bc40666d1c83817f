using System.Data.Common;
using System.Net;
using CrmSecurity.AuditAnalyzer.Review;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CrmSecurity.Server.Tests.AuditReview;

/// <summary>A review change whose audit entry cannot be written is not made: both share one transaction.</summary>
public sealed class ReviewAuditFailureTests : IAsyncLifetime
{
    private ReviewHost _host = null!;

    public ValueTask InitializeAsync()
    {
        _host = ReviewHost.Start(services: services => services.Replace(ServiceDescriptor.Singleton<IReviewAuditTrail, FailingAuditTrail>()));
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task When_the_audit_trail_fails_the_status_change_and_its_false_positive_feedback_are_rolled_back()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "olga", 1, 48_000, "af");
        var id = (await _host.WaitForQueueItemAsync(carol, "", _ => true)).GetProperty("id").GetString()!;

        var (status, _) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "dismissed", disposition = "false_positive", note = "lost" });
        var (_, detail) = await _host.GetAsync(carol, $"analyzer/review/findings/{id}");

        Assert.Equal(HttpStatusCode.InternalServerError, status);
        Assert.Equal("new", detail.GetProperty("review").GetProperty("status").GetString());
        Assert.Equal(0, detail.GetProperty("review").GetProperty("version").GetInt32());
        Assert.Empty(detail.GetProperty("notes").EnumerateArray());
        Assert.Equal(0, await _host.CountAsync("analyzer_false_positives"));
    }

    private sealed class FailingAuditTrail : IReviewAuditTrail
    {
        public Task AppendAsync(ReviewCaller actor, IReadOnlyList<ReviewAuditEntry> entries, DbTransaction transaction, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("the audit store is down");
    }
}
