using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace CrmSecurity.Server.Tests.EncryptionService;

/// <summary>
/// Data-subject keys over HTTP (issue 16): a value encrypted with a <c>subject</c> is under that subject's own key (the
/// .NET path's scheme), and <c>POST /crypto/v1/subjects/{subject}/shred</c> makes every such value unreadable for good,
/// through the real host.
/// </summary>
public sealed class SubjectShredTests(GrantingCryptoServiceHost host) : IClassFixture<GrantingCryptoServiceHost>
{
    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    [Fact]
    public async Task After_a_shred_the_subjects_values_fail_as_shredded_and_other_subjects_values_still_decrypt()
    {
        using var app = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt crypto:decrypt crypto:rewrap"));
        var shredded = await EncryptAsync(app, "s-1", "subject-one", "one@example.org");
        var kept = await EncryptAsync(app, "s-2", "subject-two", "two@example.org");

        // Under the subject's key, not the column's: without the subject it is another keyset's value.
        Assert.Equal("one@example.org", await DecryptAsync(app, "s-1", "subject-one", shredded));
        using (var unnamed = await app.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "s-1", ciphertext = shredded }, Cancel))
        {
            Assert.Equal("WrongKeyset", (await unnamed.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("reason").GetString());
        }

        using var erasure = host.CreateClient(await host.TokenAsync(CryptoServiceHost.ShredClient, "crypto:shred"));
        using var shred = await erasure.PostAsJsonAsync("crypto/v1/subjects/subject-one/shred", new { tenant = "acme" }, Cancel);
        var shredBody = await shred.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(shred.StatusCode == HttpStatusCode.OK, shredBody.ToString());
        Assert.Equal("key_destroyed", shredBody.GetProperty("outcome").GetString());

        using var failed = await app.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "s-1", subject = "subject-one", ciphertext = shredded }, Cancel);
        var problem = await failed.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, failed.StatusCode);
        Assert.Equal("SubjectShredded", problem.GetProperty("reason").GetString());
        Assert.Contains("shredded", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("two@example.org", await DecryptAsync(app, "s-2", "subject-two", kept));

        // The batch and rewrap paths say the same, and nothing new can be encrypted for the subject.
        using var batch = await app.PostAsJsonAsync("crypto/v1/decrypt/batch", new
        {
            items = new object[]
            {
                new { tenant = "acme", table = "contact", column = "email", rowId = "s-1", subject = "subject-one", ciphertext = shredded },
                new { tenant = "acme", table = "contact", column = "email", rowId = "s-2", subject = "subject-two", ciphertext = kept },
            },
        }, Cancel);
        var results = (await batch.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal("SubjectShredded", results[0].GetProperty("error").GetProperty("reason").GetString());
        Assert.Equal("two@example.org", results[1].GetProperty("result").GetProperty("plaintext").GetString());
        using var rewrap = await app.PostAsJsonAsync("crypto/v1/rewrap", new { tenant = "acme", table = "contact", column = "email", rowId = "s-1", subject = "subject-one", ciphertext = shredded }, Cancel);
        Assert.Equal("SubjectShredded", (await rewrap.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("reason").GetString());
        using var again = await app.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "s-3", subject = "subject-one", plaintext = "new@example.org" }, Cancel);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Contains("\"subject\"", await again.Content.ReadAsStringAsync(Cancel), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_subject_in_deterministic_mode_or_of_bad_length_is_a_problem_naming_the_subject_field()
    {
        using var app = host.CreateClient(await host.TokenAsync(CryptoServiceHost.AllScopesClient, "crypto:encrypt"));

        using var deterministic = await app.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", mode = "deterministic", subject = "p", plaintext = "x@example.org" }, Cancel);
        using var empty = await app.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId = "r", subject = "", plaintext = "x@example.org" }, Cancel);

        Assert.Equal(HttpStatusCode.BadRequest, deterministic.StatusCode);
        Assert.Contains("subject is for randomized mode only", (await deterministic.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("errors").GetProperty("subject")[0].GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.True((await empty.Content.ReadFromJsonAsync<JsonElement>(Cancel)).GetProperty("errors").TryGetProperty("subject", out _));
    }

    private static async Task<string> EncryptAsync(HttpClient http, string rowId, string subject, string plaintext)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/encrypt", new { tenant = "acme", table = "contact", column = "email", rowId, subject, plaintext }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body.GetProperty("ciphertext").GetString()!;
    }

    private static async Task<string?> DecryptAsync(HttpClient http, string rowId, string subject, string ciphertext)
    {
        using var response = await http.PostAsJsonAsync("crypto/v1/decrypt", new { tenant = "acme", table = "contact", column = "email", rowId, subject, ciphertext }, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, body.ToString());
        return body.GetProperty("plaintext").GetString();
    }
}
