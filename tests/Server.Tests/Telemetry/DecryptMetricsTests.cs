using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CrmSecurity.Server.Tests.EncryptionService;

namespace CrmSecurity.Server.Tests.Telemetry;

/// <summary>The Crypto meter counts decrypts through the service by outcome, granted and refused.</summary>
public sealed class DecryptMetricsTests(GrantingCryptoServiceHost host) : IClassFixture<GrantingCryptoServiceHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Granted_and_refused_decrypts_count_by_outcome()
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument is { Name: "crm_security.crypto.decrypts", Meter.Name: "CrmSecurity.Crypto" })
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "outcome")
                {
                    lock (counts)
                    {
                        counts[(string)tag.Value!] = counts.GetValueOrDefault((string)tag.Value!) + value;
                    }
                }
            }
        });
        listener.Start();
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var email = await EncryptAsync(http, "email", "metrics-row");
        var nationalId = await EncryptAsync(http, "national_id", "metrics-row");

        using var granted = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "metrics-row", ciphertext = email }, Cancel);
        using var refused = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "national_id", rowId = "metrics-row", ciphertext = nationalId }, Cancel);

        Assert.Equal(HttpStatusCode.OK, granted.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        lock (counts)
        {
            Assert.True(counts.GetValueOrDefault("success") >= 1, string.Join(", ", counts));
            Assert.True(counts.GetValueOrDefault("denied") >= 1, string.Join(", ", counts));
        }
    }

    private static async Task<string> EncryptAsync(HttpClient http, string column, string rowId)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column, rowId, mode = "randomized", plaintext = "value-for-metrics" }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"encrypt failed: {(int)response.StatusCode} {body}");
        return body.GetProperty("ciphertext").GetString()!;
    }
}
