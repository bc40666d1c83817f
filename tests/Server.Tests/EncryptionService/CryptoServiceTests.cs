using System.Net;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using CrmSecurity.Crypto.Service;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>The host with a read_unmasked seam that grants exactly <c>contact.email</c> to <see cref="CryptoServiceHost.AllScopesClient"/>.</summary>
public sealed class GrantingCryptoServiceHost : CryptoServiceHost
{
    internal override IUnmaskedFieldAccess? Access { get; } = new GrantsContactEmail();

    private sealed class GrantsContactEmail : IUnmaskedFieldAccess
    {
        public ValueTask<UnmaskedFieldDecision> CheckAsync(ClaimsPrincipal caller, UnmaskedFieldRequest request, CancellationToken cancellationToken) =>
            ValueTask.FromResult(request is { Entity: "contact", Field: "email" } && caller.FindFirst("sub")?.Value == AllScopesClient
                ? UnmaskedFieldDecision.Allow("test grant read_unmasked contact.email")
                : UnmaskedFieldDecision.Deny("test seam: no grant on this field"));
    }
}

public sealed class CryptoServiceTests(GrantingCryptoServiceHost host) : IClassFixture<GrantingCryptoServiceHost>
{
    private const string Secret = "ada.lovelace+crm@example.org";

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_value_encrypted_for_a_row_decrypts_when_the_caller_holds_read_unmasked_and_the_decrypt_is_audited()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var ciphertext = await EncryptAsync(http, "contact", "email", "row-1", Secret);

        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "row-1", ciphertext }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Secret, body.GetProperty("plaintext").GetString());
        Assert.DoesNotContain(Secret, ciphertext, StringComparison.Ordinal);

        var audit = Assert.Single(await host.FileEventsAsync(), e => RecordId(e) == "row-1" && e.GetProperty("outcome").GetString() == "success");
        Assert.Equal("decrypt", audit.GetProperty("action").GetString());
        Assert.Equal(CryptoServiceHost.AllScopesClient, audit.GetProperty("user_id").GetString());
        Assert.Equal("acme", audit.GetProperty("tenant").GetString());
        Assert.Equal("contact", audit.GetProperty("entity").GetString());
        Assert.Equal(["email"], audit.GetProperty("fields").EnumerateArray().Select(f => f.GetString()));
        var stored = Assert.Single(await host.StoredEventAsync(audit.GetProperty("event_id").GetString()!));
        Assert.Equal("decrypt", stored["Action"]);
        Assert.Equal("success", stored["Outcome"]);
        Assert.Contains("entity contact, record row-1, fields email", (string?)stored["Details"], StringComparison.Ordinal);
        AssertNeverWritten(Secret);
    }

    [Fact]
    public async Task Deterministic_values_are_equal_for_equal_plaintexts_and_decrypt_without_a_row()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var first = await EncryptAsync(http, "contact", "email", null, "same@example.org", "deterministic");
        var second = await EncryptAsync(http, "contact", "email", null, "same@example.org", "deterministic");

        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", mode = "deterministic", ciphertext = first }, Cancel);

        Assert.Equal(first, second);
        Assert.Equal("same@example.org", (await response.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("plaintext").GetString());
    }

    [Fact]
    public async Task A_field_the_seam_does_not_grant_is_refused_without_decrypting_and_the_refusal_is_audited()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var ciphertext = await EncryptAsync(http, "contact", "national_id", "row-2", "AB123456C");

        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "national_id", rowId = "row-2", ciphertext }, Cancel);
        var text = await response.Content.ReadAsStringAsync(Cancel);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("may not see contact.national_id of this record unmasked", text, StringComparison.Ordinal);
        Assert.DoesNotContain("AB123456C", text, StringComparison.Ordinal);
        var audit = Assert.Single(await host.FileEventsAsync(), e => RecordId(e) == "row-2");
        Assert.Equal("denied", audit.GetProperty("outcome").GetString());
        Assert.Equal("test seam: no grant on this field", audit.GetProperty("details").GetString());
        AssertNeverWritten("AB123456C");
    }

    [Fact]
    public async Task A_tampered_ciphertext_is_rejected_naming_the_ciphertext_and_nothing_of_the_value_comes_back()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var ciphertext = await EncryptAsync(http, "contact", "email", "row-3", "tamper-me@example.org");
        var chars = ciphertext.ToCharArray();
        chars[^3] = chars[^3] == 'A' ? 'B' : 'A'; // flip bits inside the GCM tag
        var tampered = new string(chars);

        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "row-3", ciphertext = tampered }, Cancel);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.True(problem.GetProperty("errors").TryGetProperty("ciphertext", out _));
        Assert.Equal("AuthenticationFailed", problem.GetProperty("reason").GetString());
        Assert.DoesNotContain("tamper-me", problem.ToString(), StringComparison.Ordinal);
        var audit = Assert.Single(await host.FileEventsAsync(), e => RecordId(e) == "row-3");
        Assert.Equal("error", audit.GetProperty("outcome").GetString());
    }

    [Fact]
    public async Task A_ciphertext_presented_for_another_row_or_column_is_refused_naming_what_does_not_match()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        var ciphertext = await EncryptAsync(http, "contact", "email", "row-4", "moved@example.org");

        using var otherRow = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "row-5", ciphertext }, Cancel);
        using var otherTenant = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "globex", table = "contact", column = "email", rowId = "row-4", ciphertext }, Cancel);
        var rowProblem = await otherRow.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        var tenantProblem = await otherTenant.Content.ReadFromJsonAsync<JsonElement>(Cancel);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, otherRow.StatusCode);
        Assert.Equal("RowMismatch", rowProblem.GetProperty("reason").GetString());
        Assert.True(rowProblem.GetProperty("errors").TryGetProperty("rowId", out _));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, otherTenant.StatusCode);
        Assert.Equal("ColumnMismatch", tenantProblem.GetProperty("reason").GetString());
        Assert.DoesNotContain("moved@", rowProblem.ToString() + tenantProblem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Calls_without_a_token_are_401_and_a_token_without_the_decrypt_scope_is_403()
    {
        using var anonymous = host.CreateClient();
        using var encryptOnly = host.CreateClient(await host.TokenAsync(CryptoServiceHost.EncryptOnlyClient, "crypto:encrypt"));
        var request = new { tenant = "acme", table = "contact", column = "email", rowId = "row-6", ciphertext = "cf1:AAAA" };

        using var noToken = await anonymous.PostAsJsonAsync("crypto/v1/decrypt", request, Cancel);
        using var wrongScope = await encryptOnly.PostAsJsonAsync("crypto/v1/decrypt", request, Cancel);
        using var forged = host.CreateClient("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
        using var forgedToken = await forged.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "t", column = "c", rowId = "1", plaintext = "x" }, Cancel);

        Assert.Equal(HttpStatusCode.Unauthorized, noToken.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, wrongScope.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, forgedToken.StatusCode);
    }

    [Fact]
    public async Task Bad_requests_get_problem_details_naming_each_field_at_fault()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt"));

        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", column = "email", mode = "ecb", plaintext = (string?)null }, Cancel);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        using var noRow = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", plaintext = "x" }, Cancel);
        var noRowProblem = await noRow.Content.ReadFromJsonAsync<JsonElement>(Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = problem.GetProperty("errors").EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["mode", "plaintext", "rowId", "table"], errors);
        Assert.Equal(HttpStatusCode.BadRequest, noRow.StatusCode);
        Assert.Contains("rowId is required", noRowProblem.GetProperty("errors").GetProperty("rowId")[0].GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_above_the_size_limit_are_refused_before_any_work()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt"));
        // The documented limits: a request body of 256 KiB, a plaintext of 64 KiB (UTF-8).
        var big = new string('x', (256 * 1024) + 1024);
        var justTooLong = new string('y', (64 * 1024) + 1);

        using var tooBig = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "notes", rowId = "1", plaintext = big }, Cancel);
        using var valueTooLong = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "notes", rowId = "1", plaintext = justTooLong }, Cancel);
        var problem = await valueTooLong.Content.ReadFromJsonAsync<JsonElement>(Cancel);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooBig.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, valueTooLong.StatusCode);
        Assert.True(problem.GetProperty("errors").TryGetProperty("plaintext", out _));
    }

    [Fact]
    public async Task Blind_indexes_match_equal_normalised_values_and_differ_between_columns()
    {
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:index"));

        var lower = await IndexAsync(http, "email", "ada@example.org");
        var upper = await IndexAsync(http, "email", "  ADA@Example.ORG ");
        var other = await IndexAsync(http, "email", "bob@example.org");
        var otherColumn = await IndexAsync(http, "work_email", "ada@example.org");
        using var notAnEmail = await http.PostAsJsonAsync("crypto/v1/blind-index",
            new { tenant = "acme", table = "contact", column = "email", index = "email_eq", normaliser = "email", bits = 32, value = "not-an-email" }, Cancel);
        using var tooManyBits = await http.PostAsJsonAsync("crypto/v1/blind-index",
            new { tenant = "acme", table = "contact", column = "email", index = "email_eq", normaliser = "email", bits = 256, value = "a@b.org" }, Cancel);

        Assert.Equal(8, lower.Length); // 32 bits in hex
        Assert.Equal(lower, upper);
        Assert.NotEqual(lower, other);
        Assert.NotEqual(lower, otherColumn);
        Assert.Equal(HttpStatusCode.BadRequest, notAnEmail.StatusCode);
        Assert.True((await notAnEmail.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("errors").TryGetProperty("value", out _));
        Assert.Equal(HttpStatusCode.BadRequest, tooManyBits.StatusCode);
        AssertNeverWritten("ada@example.org");
    }

    private static async Task<string> EncryptAsync(HttpClient http, string table, string column, string? rowId, string plaintext, string mode = "randomized")
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table, column, rowId, mode, plaintext }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"encrypt failed: {(int)response.StatusCode} {body}");
        return body.GetProperty("ciphertext").GetString()!;
    }

    private static async Task<string> IndexAsync(HttpClient http, string column, string value)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/blind-index",
            new { tenant = "acme", table = "contact", column, index = "email_eq", normaliser = "email", bits = 32, value }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"blind-index failed: {(int)response.StatusCode} {body}");
        return body.GetProperty("index").GetString()!;
    }

    private void AssertNeverWritten(string plaintext)
    {
        Assert.NotEmpty(host.Logs); // the capture works: the host logs at Debug in these tests
        Assert.DoesNotContain(host.Logs, line => line.Contains(plaintext, StringComparison.Ordinal));
        if (File.Exists(host.EventFile))
        {
            Assert.DoesNotContain(plaintext, File.ReadAllText(host.EventFile), StringComparison.Ordinal);
        }
    }

    private static string? RecordId(JsonElement accessEvent) =>
        accessEvent.TryGetProperty("record_id", out var id) ? id.GetString() : null;
}

/// <summary>
/// The host exactly as shipped: decrypt follows the authorization model, where a client acting for itself with no
/// application user bound to it holds no field grant, so its decrypt is refused.
/// </summary>
public sealed class DefaultDenyTests(CryptoServiceHost host) : IClassFixture<CryptoServiceHost>
{
    [Fact]
    public async Task A_client_without_a_field_grant_in_the_model_is_refused_and_the_refusal_is_a_denied_decrypt_event()
    {
        var cancel = TestContext.Current.CancellationToken;
        using var http = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt"));
        using var encrypted = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "7", plaintext = "default-deny@example.org" }, cancel);
        var ciphertext = (await encrypted.Content.ReadFromJsonAsync<JsonElement>(cancel)).GetProperty("ciphertext").GetString();

        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "7", ciphertext }, cancel);
        var text = await response.Content.ReadAsStringAsync(cancel);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains($"client '{CryptoServiceHost.AllScopesClient}' acts for itself and no application user", text, StringComparison.Ordinal);
        Assert.DoesNotContain("default-deny@", text, StringComparison.Ordinal);
        var audit = Assert.Single(await host.FileEventsAsync());
        Assert.Equal("decrypt", audit.GetProperty("action").GetString());
        Assert.Equal("denied", audit.GetProperty("outcome").GetString());
        var stored = Assert.Single(await host.StoredEventAsync(audit.GetProperty("event_id").GetString()!));
        Assert.Equal("denied", stored["Outcome"]);
        Assert.Equal(CryptoServiceHost.AllScopesClient, stored["ClientId"]);
    }
}
