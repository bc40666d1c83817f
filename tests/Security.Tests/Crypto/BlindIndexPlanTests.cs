using System.Net;
using System.Text.Json;
using CrmSecurity.Tests.Support;

namespace CrmSecurity.Security.Tests.Crypto;

/// <summary>
/// Red-team finding 15: the HTTP blind-index endpoint skipped the leakage planner, so any caller picked 1 to 64 bits (64
/// bits of an email's HMAC identify it). Now the security team declares each column's blind indexes and expected rows in
/// <c>Crypto:Columns</c>; the planner (CipherSweet's rule, 2 &lt;= C &lt; sqrt(R)) sizes them at start, and a request
/// names a declared index and gets its planned bits: asking for more is refused naming <c>bits</c>.
/// </summary>
public sealed class BlindIndexPlanTests(CryptoSecurityHost host) : IClassFixture<CryptoSecurityHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_caller_asking_for_more_bits_than_the_plan_is_refused_naming_bits()
    {
        var token = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:index");

        var (status, body, _) = await host.PostAsync(token, "crypto/v1/blind-index",
            new { tenant = "demo", table = "contact", column = "email", index = "email_eq", normaliser = "email", bits = 64, value = "ceo@acme.example" });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        var bits = JsonDocument.Parse(body).RootElement.GetProperty("errors").GetProperty("bits")[0].GetString();
        Assert.Contains("beyond the plan", bits, StringComparison.Ordinal);
        Assert.Contains("keeps 18 bits", bits, StringComparison.Ordinal);
        Assert.DoesNotContain("ceo@acme", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_declared_index_answers_with_the_bits_the_planner_chose_for_the_columns_expected_rows()
    {
        var token = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:index");

        // One million expected rows: floor(log2(1,000,000 / 2)) = 18 bits keeps about 4 rows per index value (C >= 2).
        var (status, body, response) = await host.PostAsync(token, "crypto/v1/blind-index",
            new { tenant = "demo", table = "contact", column = "email", index = "email_eq", value = "Ada@Example.org" });
        var (again, againBody, _) = await host.PostAsync(token, "crypto/v1/blind-index",
            new { tenant = "demo", table = "contact", column = "email", index = "email_eq", value = " ada@example.ORG " });

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.OK, again);
        var answer = JsonDocument.Parse(body).RootElement;
        Assert.Equal(18, answer.GetProperty("bits").GetInt32());
        Assert.Equal(6, answer.GetProperty("index").GetString()!.Length); // 18 bits in 3 bytes of hex
        Assert.Equal(answer.GetProperty("index").GetString(), JsonDocument.Parse(againBody).RootElement.GetProperty("index").GetString());
        Assert.Contains("no-store", response.Headers.CacheControl?.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_index_nobody_declared_is_refused_naming_the_index()
    {
        var token = await host.ClientTokenAsync(CryptoSecurityHost.BackendClient, "crypto:index");

        var (undeclaredColumn, columnBody, _) = await host.PostAsync(token, "crypto/v1/blind-index",
            new { tenant = "demo", table = "contact", column = "phone", index = "phone_eq", normaliser = "phone-e164", bits = 32, value = "+14155550100" });
        var (undeclaredIndex, indexBody, _) = await host.PostAsync(token, "crypto/v1/blind-index",
            new { tenant = "demo", table = "contact", column = "email", index = "email_full", value = "ada@example.org" });

        Assert.Equal(HttpStatusCode.BadRequest, undeclaredColumn);
        Assert.Contains("no blind index declared", JsonDocument.Parse(columnBody).RootElement.GetProperty("errors").GetProperty("index")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, undeclaredIndex);
        Assert.Contains("declared: email_eq", JsonDocument.Parse(indexBody).RootElement.GetProperty("errors").GetProperty("index")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_declared_index_that_leaks_more_than_the_planner_allows_stops_start_up_naming_the_setting()
    {
        // 40 bits over 10,000 rows: every index value names one row, so equal e-mail addresses become linkable.
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Testing",
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(host.Directory, "planner.db")}",
            ["Modules__Crypto__Enabled"] = "true",
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = host.MasterKeyPath,
            ["Crypto__KeyringPath"] = host.KeyringPath,
            ["Crypto__Columns__0__Table"] = "contact",
            ["Crypto__Columns__0__Column"] = "email",
            ["Crypto__Columns__0__ExpectedRows"] = "10000",
            ["Crypto__Columns__0__BlindIndexes__0__Name"] = "email_eq",
            ["Crypto__Columns__0__BlindIndexes__0__Normaliser"] = "email",
            ["Crypto__Columns__0__BlindIndexes__0__Bits"] = "40",
        }, Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:Columns:0:BlindIndexes of contact.email", output, StringComparison.Ordinal);
        Assert.Contains("Keep at most 12 bits", output, StringComparison.Ordinal);
    }
}
