using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>
/// The batch endpoints (<c>POST /crypto/v1/{encrypt,decrypt,blind-index,rewrap}/batch</c>) through the real host: each
/// item answered in order as its single call would have been, one bad item failing alone with an error naming it.
/// </summary>
public sealed class CryptoBatchTests(GrantingCryptoServiceHost host) : IClassFixture<GrantingCryptoServiceHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Batch_encrypt_answers_every_item_in_order_and_a_bad_item_fails_alone_naming_its_index_and_field()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt"));

        var (status, body) = await PostAsync(http, "crypto/v1/encrypt/batch", new object?[]
        {
            new { tenant = "acme", table = "contact", column = "email", rowId = "be-1", plaintext = "first@example.org" },
            new { tenant = "acme", table = "contact", column = "email", plaintext = "no-row@example.org" },
            new { tenant = "acme", table = "contact", column = "email", rowId = "be-3", plaintext = "third@example.org" },
            null,
        });

        Assert.Equal(HttpStatusCode.OK, status);
        var results = body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal([0, 1, 2, 3], results.Select(r => r.GetProperty("index").GetInt32()));
        Assert.StartsWith("cf1:", results[0].GetProperty("result").GetProperty("ciphertext").GetString(), StringComparison.Ordinal);
        Assert.Equal(1u, results[2].GetProperty("result").GetProperty("keyVersion").GetUInt32());
        var error = results[1].GetProperty("error");
        Assert.False(results[1].TryGetProperty("result", out _));
        Assert.Equal(400, error.GetProperty("status").GetInt32());
        Assert.Contains("rowId is required", error.GetProperty("errors").GetProperty("items[1].rowId")[0].GetString(), StringComparison.Ordinal);
        Assert.StartsWith("items[1].rowId: ", error.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(results[3].GetProperty("error").GetProperty("errors").TryGetProperty("items[3]", out _));
        Assert.DoesNotContain("no-row@", body.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batch_decrypt_serves_each_item_it_may_and_writes_one_access_event_per_item()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var first = await EncryptAsync(http, "contact", "email", "bd-1", "one@example.org");
        var second = await EncryptAsync(http, "contact", "email", "bd-2", "two@example.org");
        var secret = await EncryptAsync(http, "contact", "national_id", "bd-4", "AB123456C");

        var (status, body) = await PostAsync(http, "crypto/v1/decrypt/batch", new object?[]
        {
            new { tenant = "acme", table = "contact", column = "email", rowId = "bd-1", ciphertext = first },
            new { tenant = "acme", table = "contact", column = "email", rowId = "bd-1", ciphertext = second }, // another row's value
            new { tenant = "acme", table = "contact", column = "email", rowId = "bd-2", ciphertext = second },
            new { tenant = "acme", table = "contact", column = "national_id", rowId = "bd-4", ciphertext = secret }, // not granted
            new { tenant = "acme", table = "contact", column = "email", ciphertext = first }, // malformed: no row
        });

        Assert.Equal(HttpStatusCode.OK, status);
        var results = body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal("one@example.org", results[0].GetProperty("result").GetProperty("plaintext").GetString());
        Assert.Equal(422, results[1].GetProperty("error").GetProperty("status").GetInt32());
        Assert.Equal("RowMismatch", results[1].GetProperty("error").GetProperty("reason").GetString());
        Assert.True(results[1].GetProperty("error").GetProperty("errors").TryGetProperty("items[1].rowId", out _));
        Assert.Equal("two@example.org", results[2].GetProperty("result").GetProperty("plaintext").GetString());
        Assert.Equal(403, results[3].GetProperty("error").GetProperty("status").GetInt32());
        Assert.Contains("items[3]: The caller may not see contact.national_id", results[3].GetProperty("error").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(400, results[4].GetProperty("error").GetProperty("status").GetInt32());
        Assert.DoesNotContain("AB123456C", body.ToString(), StringComparison.Ordinal);

        // One access event per item that named a field validly: success, error, success, denied; none for the malformed one.
        var events = (await host.FileEventsAsync()).Where(e => e.TryGetProperty("record_id", out var id) && id.GetString()!.StartsWith("bd-", StringComparison.Ordinal)).ToList();
        Assert.Equal(["bd-1:success", "bd-1:error", "bd-2:success", "bd-4:denied"], events.Select(e => $"{e.GetProperty("record_id").GetString()}:{e.GetProperty("outcome").GetString()}"));
        Assert.All(events, e => Assert.Equal("decrypt", e.GetProperty("action").GetString()));
    }

    [Fact]
    public async Task Batch_blind_indexes_equal_the_single_calls_and_a_value_of_the_wrong_kind_fails_alone()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:index"));
        using var single = await http.PostAsJsonAsync("crypto/v1/blind-index", new { tenant = "acme", table = "contact", column = "email", index = "email_eq", value = "ada@example.org" }, Cancel);
        var expected = (await single.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("index").GetString();

        var (status, body) = await PostAsync(http, "crypto/v1/blind-index/batch", new object?[]
        {
            new { tenant = "acme", table = "contact", column = "email", index = "email_eq", value = " ADA@example.org" },
            new { tenant = "acme", table = "contact", column = "email", index = "email_eq", value = "not-an-email" },
            new { tenant = "acme", table = "contact", column = "work_email", index = "email_eq", value = "ada@example.org" },
        });

        Assert.Equal(HttpStatusCode.OK, status);
        var results = body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(expected, results[0].GetProperty("result").GetProperty("index").GetString());
        Assert.True(results[1].GetProperty("error").GetProperty("errors").TryGetProperty("items[1].value", out _));
        Assert.NotEqual(expected, results[2].GetProperty("result").GetProperty("index").GetString());
    }

    [Fact]
    public async Task A_batch_over_the_item_limit_is_refused_whole_naming_the_limit_and_nothing_is_decrypted()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var ciphertext = await EncryptAsync(http, "contact", "email", "limit-1", "limit@example.org");
        var items = Enumerable.Range(0, 1001).Select(_ => (object?)new { tenant = "acme", table = "contact", column = "email", rowId = "limit-1", ciphertext }).ToArray();

        var (status, body) = await PostAsync(http, "crypto/v1/decrypt/batch", items);
        var (empty, emptyBody) = await PostAsync(http, "crypto/v1/decrypt/batch", []);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal(1000, body.GetProperty("limit").GetInt32());
        Assert.Contains("more than the limit of 1000 (Crypto:Service:MaxBatchItems)", body.GetProperty("errors").GetProperty("items")[0].GetString(), StringComparison.Ordinal);
        Assert.DoesNotContain(await host.FileEventsAsync(), e => e.TryGetProperty("record_id", out var id) && id.GetString() == "limit-1");
        Assert.Equal(HttpStatusCode.BadRequest, empty);
        Assert.True(emptyBody.GetProperty("errors").TryGetProperty("items", out _));
    }

    [Fact]
    public async Task A_batch_body_may_exceed_the_single_calls_limit_and_above_its_own_limit_is_refused_before_it_is_read()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt"));
        // 80 values of 60,000 bytes: each within the single call's limits, 4.8 MB together, above the batch's 4 MiB.
        var value = new string('v', 60_000);
        var items = Enumerable.Range(0, 80).Select(i => (object?)new { tenant = "acme", table = "contact", column = "notes", rowId = $"big-{i}", plaintext = value }).ToArray();

        var (status, _) = await PostAsync(http, "crypto/v1/encrypt/batch", items);
        // 20 of them, 1.2 MB: above a single call's 256 KiB, within the batch's limit.
        var (within, withinBody) = await PostAsync(http, "crypto/v1/encrypt/batch", items[..20]);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Equal(HttpStatusCode.OK, within);
        Assert.Equal(20, withinBody.GetProperty("results").GetArrayLength());
    }

    [Fact]
    public async Task Each_batch_needs_the_scope_of_its_single_call()
    {
        using var anonymous = host.CreateClient();
        using var encryptOnly = host.CreateClient(await host.TokenAsync(CryptoServiceHost.EncryptOnlyClient, "crypto:encrypt"));
        var item = new { tenant = "acme", table = "contact", column = "email", rowId = "s-1", ciphertext = "cf1:AAAA", index = "email_eq", value = "a@b.org" };
        var body = new { items = new[] { item } };

        using var noToken = await anonymous.PostAsJsonAsync("crypto/v1/encrypt/batch", body, Cancel);
        var refused = new List<HttpStatusCode>();
        foreach (var path in new[] { "decrypt/batch", "blind-index/batch", "rewrap/batch", "rewrap" })
        {
            using var response = await encryptOnly.PostAsJsonAsync($"crypto/v1/{path}", path == "rewrap" ? (object)item : body, Cancel);
            refused.Add(response.StatusCode);
        }

        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
        Assert.All(refused, s => Assert.Equal(HttpStatusCode.Forbidden, s));
    }

    [Fact]
    public async Task A_batch_limit_out_of_range_stops_start_up_with_exit_78_naming_the_setting()
    {
        var (exitCode, output) = await CrmSecurity.Tests.Support.ServerProcess.StartExpectingExitAsync(new Dictionary<string, string?>
        {
            ["Database__Provider"] = "Sqlite",
            ["Database__ConnectionString"] = $"Data Source={Path.Combine(host.Directory, "limits.db")}",
            ["Modules__Crypto__Enabled"] = "true",
            ["Crypto__KeyringPath"] = host.KeyringPath,
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = host.MasterKeyPath,
            ["Crypto__Service__MaxBatchItems"] = "0",
            ["Crypto__Service__MaxBatchRequestBytes"] = "1024",
        }, Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("Crypto:Service:MaxBatchItems must be from 1 to 100000.", output, StringComparison.Ordinal);
        Assert.Contains("Crypto:Service:MaxBatchRequestBytes must be from 262144", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient http, string path, object?[] items)
    {
        using var response = await http.PostAsJsonAsync(path, new { items }, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private static async Task<string> EncryptAsync(HttpClient http, string table, string column, string rowId, string plaintext)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table, column, rowId, plaintext }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"encrypt failed: {(int)response.StatusCode} {body}");
        return body.GetProperty("ciphertext").GetString()!;
    }
}
