using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Policy;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>
/// POSTs each finding change to one receiver as a Standard Webhooks call
/// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md): body
/// <c>{"type","timestamp","data"}</c> with the ECS document as data, signed in <c>webhook-signature</c>. The
/// <c>webhook-id</c> stays the same for every attempt and re-send of one change, so receivers can drop repeats.
/// 2xx is delivered; 408, 429, 5xx and network errors are retried with exponential backoff, honouring Retry-After;
/// any other answer (other 4xx, 3xx: redirects are not followed) is a permanent failure. Neither the secret nor
/// the URL (which may carry a receiver token) is logged: the receiver is named by its configured Name.
/// </summary>
internal sealed partial class WebhookDestination(
    WebhookOptions webhook, IHttpClientFactory clients, IOptions<ExportOptions> options, TimeProvider time, ILogger<WebhookDestination> logger)
    : IFindingDestination
{
    public const string ClientName = "audit-analyzer-webhooks";
    public const string EventType = "crm_security.finding.changed";
    private readonly ExportOptions _options = options.Value;
    private readonly Uri _url = new(webhook.Url!);
    private readonly string _secret = webhook.Secret!;

    public string Name { get; } = "webhook:" + webhook.Name;

    public Severity MinSeverity { get; } = SeverityNames.Parse(webhook.MinSeverity);

    public bool RealIdentities { get; } = webhook.RealIdentities;

    /// <summary>Stable per change: the finding id and the time of its version.</summary>
    public static string MessageId(ExportFinding finding) => $"msg_{finding.Id}_{finding.UpdatedAt.UtcTicks.ToString(CultureInfo.InvariantCulture)}";

    public static string Body(ExportFinding finding)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", EventType);
            w.WriteString("timestamp", finding.UpdatedAt.UtcDateTime);
            w.WritePropertyName("data");
            EcsDocument.Write(w, finding);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Whether an answer is worth retrying: 408 and 429 (RFC 9110 §15.5.9, RFC 6585 §4) and every 5xx.</summary>
    public static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)status >= 500;

    /// <summary>
    /// The wait before the next attempt: the receiver's Retry-After (delta-seconds or HTTP-date, RFC 9110 §10.2.3)
    /// when given, else exponential backoff; never more than the maximum.
    /// </summary>
    public static TimeSpan RetryDelay(RetryConditionHeaderValue? retryAfter, int attempt, DateTimeOffset now, ExportOptions options)
    {
        var asked = retryAfter switch
        {
            { Delta: { } delta } => delta,
            { Date: { } date } => date - now,
            _ => (TimeSpan?)null,
        };
        if (asked is { } wait)
        {
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > options.MaxRetryDelay ? options.MaxRetryDelay : wait;
        }

        return Backoff.Delay(attempt, options.RetryDelay, options.MaxRetryDelay);
    }

    public async Task<DeliveryResult> DeliverAsync(ExportFinding finding, CancellationToken cancellationToken)
    {
        var id = MessageId(finding);
        var body = Body(finding);
        var client = clients.CreateClient(ClientName);
        string failure = "";
        int? lastStatus = null;
        for (var attempt = 1; ; attempt++)
        {
            // Signed per attempt: the timestamp must be recent when the receiver checks it (the spec's tolerance).
            var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
            using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            request.Headers.Add(WebhookSignature.IdHeader, id);
            request.Headers.Add(WebhookSignature.TimestampHeader, timestamp.ToString(CultureInfo.InvariantCulture));
            request.Headers.Add(WebhookSignature.SignatureHeader, WebhookSignature.Sign(_secret, id, timestamp, body));
            RetryConditionHeaderValue? retryAfter = null;
            try
            {
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
                lastStatus = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    return DeliveryResult.Ok;
                }

                if (!IsTransient(response.StatusCode))
                {
                    return new DeliveryResult(false, lastStatus, $"the receiver answered {lastStatus}; not retried");
                }

                retryAfter = response.Headers.RetryAfter;
                failure = $"the receiver answered {lastStatus}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                // Network error or the client's timeout: the receiver may or may not have it; the webhook-id lets it tell.
                lastStatus = null;
                failure = e is TaskCanceledException ? "the call timed out" : $"the call failed ({(e as HttpRequestException)?.HttpRequestError})";
            }

            if (attempt >= webhook.MaxAttempts)
            {
                return new DeliveryResult(false, lastStatus, $"{failure}; gave up after {attempt} attempts");
            }

            var delay = RetryDelay(retryAfter, attempt, time.GetUtcNow(), _options);
            LogRetry(logger, webhook.Name!, finding.Id, failure, attempt, delay);
            await Task.Delay(delay, time, cancellationToken);
        }
    }

    [LoggerMessage(EventId = 6220, Level = LogLevel.Warning, Message = "Webhook {Webhook}: delivering finding {FindingId} failed ({Failure}, attempt {Attempt}); retrying in {Delay}")]
    private static partial void LogRetry(ILogger logger, string webhook, string findingId, string failure, int attempt, TimeSpan delay);
}
