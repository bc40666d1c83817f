using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.Server.Tests.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Server.Tests.Telemetry;

/// <summary>The modules' meters move after real requests to the real host (listened to in-process).</summary>
public sealed class MetricsTests(DemoHost host) : IClassFixture<DemoHost>, IDisposable
{
    private const string CrmClient = "demo-crm";
    private const string CrmSecret = "demo-crm-secret";

    private readonly ConcurrentDictionary<string, long> _totals = new(StringComparer.Ordinal);
    private MeterListener? _listener;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_client_credentials_token_counts_as_issued_by_grant_type()
    {
        var before = Total("crm_security.identity.tokens_issued", "grant_type=client_credentials");

        await host.TokenAsync("events:write", CrmClient, CrmSecret);

        Assert.True(Total("crm_security.identity.tokens_issued", "grant_type=client_credentials") >= before + 1);
    }

    [Fact]
    public async Task Decisions_count_by_outcome()
    {
        using var http = host.CreateClient(await host.TokenAsync("authz.decide", CrmClient, CrmSecret));
        var alice = host.Services.GetRequiredService<IDirectorySource>().Current.Users.Single(u => u.UserName == "alice").UserId;
        var (allowed, denied) = (Total("crm_security.identity.authorization_decisions", "outcome=allow"), Total("crm_security.identity.authorization_decisions", "outcome=deny"));

        using var read = await http.PostAsJsonAsync("authz/v1/check", new { user_id = alice, entity = "contact", action = "read" }, Cancel);
        using var export = await http.PostAsJsonAsync("authz/v1/check", new { user_id = alice, entity = "invoice", action = "delete" }, Cancel);

        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(HttpStatusCode.OK, export.StatusCode);
        Assert.True(Total("crm_security.identity.authorization_decisions", "outcome=allow") >= allowed + 1);
        Assert.True(Total("crm_security.identity.authorization_decisions", "outcome=deny") >= denied + 1);
    }

    [Fact]
    public async Task Ingested_events_count_by_client_and_result()
    {
        using var http = host.CreateClient(await host.TokenAsync("events:write", CrmClient, CrmSecret));
        var id = Guid.NewGuid().ToString("N");
        // 10:00 UTC yesterday by the host's clock: events older than the retention are refused (and counted as rejected).
        var yesterday = new DateTimeOffset(host.Services.GetRequiredService<TimeProvider>().GetUtcNow().UtcDateTime.Date.AddDays(-1).AddHours(10), TimeSpan.Zero);
        var (first, second) = (yesterday.ToString("O", CultureInfo.InvariantCulture), yesterday.AddMinutes(1).ToString("O", CultureInfo.InvariantCulture));
        var batch = $$"""
            {"event_id":"{{id}}-1","timestamp":"{{first}}","user_id":"metrics-user","action":"read","entity":"contact"}
            {"event_id":"{{id}}-2","timestamp":"{{second}}","user_id":"metrics-user","action":"list","entity":"contact","record_count":20}
            {"timestamp":"not a time","user_id":"metrics-user","action":"read"}
            """;
        string Tags(string result) => $"client={CrmClient},result={result}";
        var (accepted, rejected, duplicate) = (Total("crm_security.analyzer.events_ingested", Tags("accepted")), Total("crm_security.analyzer.events_ingested", Tags("rejected")), Total("crm_security.analyzer.events_ingested", Tags("duplicate")));

        for (var i = 0; i < 2; i++)
        {
            using var response = await http.PostAsync("analyzer/events", new StringContent(batch, Encoding.UTF8, "application/x-ndjson"), Cancel);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.True(Total("crm_security.analyzer.events_ingested", Tags("accepted")) >= accepted + 2);
        Assert.True(Total("crm_security.analyzer.events_ingested", Tags("rejected")) >= rejected + 2);
        Assert.True(Total("crm_security.analyzer.events_ingested", Tags("duplicate")) >= duplicate + 2);
    }

    [Fact]
    public async Task Stored_findings_are_observed_by_detector_and_severity()
    {
        // The demo history's planted bulk export is scored in the background; its finding is counted within a bounded wait.
        _listener ??= Listen(_totals);
        for (var attempt = 0; attempt < 150 && Latest("crm_security.analyzer.findings", "detector=bulk_export") <= 0; attempt++)
        {
            await Task.Delay(200, Cancel);
            _listener!.RecordObservableInstruments();
        }

        Assert.True(Latest("crm_security.analyzer.findings", "detector=bulk_export") > 0, string.Join('\n', _totals.Select(t => $"{t.Key} {t.Value}")));
    }

    public void Dispose() => _listener?.Dispose();

    private long Total(string instrument, string tags)
    {
        _listener ??= Listen(_totals);
        return SumOf(instrument, tags);
    }

    private long SumOf(string instrument, string tags) =>
        _totals.Where(t => t.Key.StartsWith(instrument + "|", StringComparison.Ordinal) && t.Key.Contains(tags, StringComparison.Ordinal)).Sum(t => t.Value);

    private long Latest(string instrument, string tags) => Total(instrument + "#latest", tags);

    /// <summary>Counters are summed per instrument and tag set; observable instruments keep their latest value under "#latest".</summary>
    private static MeterListener Listen(ConcurrentDictionary<string, long> sums)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name.StartsWith("CrmSecurity.", StringComparison.Ordinal))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var tagText = string.Join(',', tags.ToArray().OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"));
            if (instrument.IsObservable)
            {
                sums[$"{instrument.Name}#latest|{tagText}"] = value;
            }
            else
            {
                sums.AddOrUpdate($"{instrument.Name}|{tagText}", value, (_, sum) => sum + value);
            }
        });
        listener.Start();
        return listener;
    }
}
