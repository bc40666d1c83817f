using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>Signed webhooks from the real host to a real Kestrel receiver on loopback.</summary>
public sealed class WebhookDeliveryTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-webhook-").FullName;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A late database call of a stopped host may still hold a file; the temp folder is cleaned by the OS.
        }

        return ValueTask.CompletedTask;
    }

    private static bool IsFor(WebhookCall call, string user) =>
        JsonDocument.Parse(call.Body).RootElement.GetProperty("data").GetProperty("user").GetProperty("id").GetString() == user;

    [Fact]
    public async Task A_receiver_that_fails_first_gets_the_same_signed_call_again_and_accepts_it()
    {
        await using var receiver = WebhookReceiver.Start(n => n == 1 ? 500 : 200);
        await using var host = LiveHost.Start(_directory, extra: SyslogForwardingTests.Fast(receiver.Settings()));

        Assert.Equal(HttpStatusCode.OK, (await host.PostEventsAsync(await host.WriterTokenAsync(), ExportSamples.NightExport("carl", "w"))).Status);
        var carl = await host.PseudonymAsync("carl"); // receivers get pseudonyms unless configured with RealIdentities
        var calls = await receiver.WaitForAsync(c => c.Answered == 200 && IsFor(c, carl), Cancel);

        var first = calls[0];
        Assert.Equal(500, first.Answered);
        Assert.All(calls, c => Assert.True(c.Verified));
        var accepted = calls.First(c => c.Answered == 200);
        Assert.Equal(first.Id, accepted.Id); // the same message, retried: the receiver can drop a repeat by its id
        Assert.Equal(first.Body, accepted.Body);
        var body = JsonDocument.Parse(accepted.Body).RootElement;
        Assert.Equal(WebhookDestination.EventType, body.GetProperty("type").GetString());
        Assert.Equal("alert", body.GetProperty("data").GetProperty("event").GetProperty("kind").GetString());
        Assert.Equal(body.GetProperty("data").GetProperty("event").GetProperty("id").GetString(), accepted.Id.Split('_')[1]);
    }

    [Fact]
    public async Task A_4xx_answer_is_recorded_as_a_permanent_failure_without_a_retry_and_later_findings_still_go_out()
    {
        await using var receiver = WebhookReceiver.Start(n => n == 1 ? 422 : 200);
        await using var host = LiveHost.Start(_directory, extra: SyslogForwardingTests.Fast(receiver.Settings()));
        var writer = await host.WriterTokenAsync();

        Assert.Equal(HttpStatusCode.OK, (await host.PostEventsAsync(writer, ExportSamples.NightExport("carl", "p"))).Status);
        var refused = (await receiver.WaitForAsync(c => c.Answered == 422, Cancel)).Single(c => c.Answered == 422);
        Assert.Equal(HttpStatusCode.OK, (await host.PostEventsAsync(writer, ExportSamples.NightExport("dora", "q"))).Status);
        var dora = await host.PseudonymAsync("dora");
        var calls = await receiver.WaitForAsync(c => c.Answered == 200 && IsFor(c, dora), Cancel);

        Assert.Single(calls, c => c.Id == refused.Id);
        await using var scope = host.Services.CreateAsyncScope();
        var failure = await scope.ServiceProvider.GetRequiredService<ExportDbContext>().Failures.AsNoTracking().SingleAsync(Cancel);
        Assert.Equal(("webhook:siem", 422), (failure.Destination, failure.Status));
        Assert.Equal(refused.Id.Split('_')[1], failure.FindingId);
        Assert.DoesNotContain("MfKQ9r8", failure.Reason, StringComparison.Ordinal);

        // An operator sees the failure through the API, without the receiver's URL or secret.
        using var http = host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "analyzer/export/destinations");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await host.AuditorTokenAsync());
        using var response = await http.SendAsync(request, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var status = Assert.Single(JsonDocument.Parse(text).RootElement.EnumerateArray());
        Assert.Equal("webhook:siem", status.GetProperty("name").GetString());
        Assert.Equal(1, status.GetProperty("failures").GetInt32());
        Assert.Equal(422, status.GetProperty("recentFailures")[0].GetProperty("status").GetInt32());
        Assert.DoesNotContain(receiver.Url, text, StringComparison.Ordinal);
        Assert.DoesNotContain("MfKQ9r8", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(408, true)]
    [InlineData(429, true)]
    [InlineData(500, true)]
    [InlineData(503, true)]
    [InlineData(400, false)]
    [InlineData(401, false)]
    [InlineData(404, false)]
    [InlineData(301, false)]
    public void Only_408_429_and_5xx_are_retried(int status, bool transient) =>
        Assert.Equal(transient, WebhookDestination.IsTransient((HttpStatusCode)status));

    [Fact]
    public void Retry_after_is_honoured_in_seconds_or_as_a_date_and_capped_and_otherwise_the_wait_doubles()
    {
        var options = new ExportOptions { RetryDelay = TimeSpan.FromSeconds(1), MaxRetryDelay = TimeSpan.FromMinutes(5) };
        var now = ExportSamples.Updated;

        Assert.Equal(TimeSpan.FromSeconds(7), WebhookDestination.RetryDelay(new RetryConditionHeaderValue(TimeSpan.FromSeconds(7)), 1, now, options));
        Assert.Equal(TimeSpan.FromSeconds(30), WebhookDestination.RetryDelay(new RetryConditionHeaderValue(now.AddSeconds(30)), 1, now, options));
        Assert.Equal(TimeSpan.FromMinutes(5), WebhookDestination.RetryDelay(new RetryConditionHeaderValue(TimeSpan.FromHours(2)), 1, now, options));
        Assert.Equal(TimeSpan.Zero, WebhookDestination.RetryDelay(new RetryConditionHeaderValue(now.AddSeconds(-30)), 1, now, options));
        Assert.Equal([1, 2, 4, 8, 300], new[] { 1, 2, 3, 4, 20 }.Select(a => WebhookDestination.RetryDelay(null, a, now, options).TotalSeconds));
    }

    [Fact]
    public void A_change_keeps_its_message_id_and_the_body_carries_the_ecs_document()
    {
        var finding = ExportSamples.Finding();

        Assert.Equal($"msg_f-0123456789abcdef_{ExportSamples.Updated.UtcTicks}", WebhookDestination.MessageId(finding));
        Assert.NotEqual(WebhookDestination.MessageId(finding), WebhookDestination.MessageId(finding with { UpdatedAt = finding.UpdatedAt.AddSeconds(1) }));
        var body = JsonDocument.Parse(WebhookDestination.Body(finding)).RootElement;
        Assert.Equal("2026-11-20T09:30:00Z", body.GetProperty("timestamp").GetString());
        Assert.Equal("carl", body.GetProperty("data").GetProperty("user").GetProperty("id").GetString());
    }
}
