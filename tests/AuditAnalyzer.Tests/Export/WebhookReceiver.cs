using System.Collections.Concurrent;
using CrmSecurity.AuditAnalyzer.Export;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

/// <summary>One call as the receiver saw it, and whether its Standard Webhooks signature verified.</summary>
internal sealed record WebhookCall(string Id, string Timestamp, string Signature, string Body, bool Verified, int Answered);

/// <summary>A real Kestrel webhook receiver on loopback that verifies every call and answers as it is told.</summary>
internal sealed class WebhookReceiver : IAsyncDisposable
{
    public const string Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+O8OTPdb2YU=";

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<WebhookCall> _calls = new();

    private WebhookReceiver(Func<int, int> answer)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _app = builder.Build();
        var count = 0;
        _app.MapPost("/hook", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body);
            var body = await reader.ReadToEndAsync();
            var id = http.Request.Headers[WebhookSignature.IdHeader].ToString();
            var timestamp = http.Request.Headers[WebhookSignature.TimestampHeader].ToString();
            var signature = http.Request.Headers[WebhookSignature.SignatureHeader].ToString();
            var verified = WebhookSignature.Verify(Secret, id, timestamp, body, signature, DateTimeOffset.UtcNow);
            var status = verified ? answer(Interlocked.Increment(ref count)) : StatusCodes.Status401Unauthorized;
            _calls.Enqueue(new WebhookCall(id, timestamp, signature, body, verified, status));
            return Results.StatusCode(status);
        });
        _app.StartAsync().GetAwaiter().GetResult();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Url = address + "/hook";
    }

    public string Url { get; }

    public IReadOnlyList<WebhookCall> Calls => _calls.ToList();

    /// <summary>Starts a receiver; <paramref name="answer"/> maps the n-th verified call (from 1) to the status to answer.</summary>
    public static WebhookReceiver Start(Func<int, int> answer) => new(answer);

    public IDictionary<string, string?> Settings(string name = "siem", string minSeverity = "low") => new Dictionary<string, string?>
    {
        ["AuditAnalyzer:Export:Webhooks:0:Name"] = name,
        ["AuditAnalyzer:Export:Webhooks:0:Url"] = Url,
        ["AuditAnalyzer:Export:Webhooks:0:Secret"] = Secret,
        ["AuditAnalyzer:Export:Webhooks:0:MinSeverity"] = minSeverity,
    };

    /// <summary>Waits until a call matches; returns every call so far.</summary>
    public async Task<IReadOnlyList<WebhookCall>> WaitForAsync(Func<WebhookCall, bool> match, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!_calls.Any(match))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no matching webhook call within 30 seconds; got {_calls.Count}");
            await Task.Delay(100, cancellationToken);
        }

        return Calls;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
