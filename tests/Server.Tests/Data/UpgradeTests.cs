using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Tests.Data;

/// <summary>
/// A database made by the previous build (Fixtures/previous-build.db.gz, made by Fixtures/make-previous-build-db.py the
/// way people use the service: alice enrolled an authenticator, an admin shared a record and changed a role, a CRM app
/// sent events, an auditor opened the queue) keeps working after this build starts on it: the same people sign in the
/// same way, tokens are signed with the same keys, and what was stored in clear is now wrapped.
/// </summary>
public sealed class UpgradeTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-upgrade-").FullName;
    private WebApplicationFactory<Program>? _factory;
    private Uri _baseAddress = null!;
    private Previous _previous = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private string DatabasePath => Path.Combine(_directory, "security.db");

    public async ValueTask InitializeAsync()
    {
        var fixtures = Path.Combine(AppContext.BaseDirectory, "Data", "Fixtures");
        await using (var compressed = File.OpenRead(Path.Combine(fixtures, "previous-build.db.gz")))
        await using (var gzip = new GZipStream(compressed, CompressionMode.Decompress))
        await using (var database = File.Create(DatabasePath))
        {
            await gzip.CopyToAsync(database, Cancel);
        }

        _previous = JsonSerializer.Deserialize<Previous>(await File.ReadAllTextAsync(Path.Combine(fixtures, "previous-build.json"), Cancel))!;
        _previous.SigningKeyIds = [.. (await QueryAsync("SELECT KeyId FROM identity_signing_keys")).Select(r => (string)r["KeyId"]!)];
        _previous.ClearSecrets = await ClearSecretsAsync();
        var key = Path.Combine(_directory, "master.key");
        await File.WriteAllTextAsync(key, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), Cancel);

        var settings = new Dictionary<string, string?>
        {
            ["Database:Provider"] = "Sqlite",
            ["Database:ConnectionString"] = $"Data Source={DatabasePath}",
            ["Identity:AllowHttp"] = "true",
            ["Identity:DemoMode"] = "false",
            ["Identity:MailPickupDirectory"] = Path.Combine(_directory, "mail"),
            ["Crypto:MasterKey:Source"] = "File",
            ["Crypto:MasterKey:File"] = key,
            ["Crypto:KeyringPath"] = Path.Combine(_directory, "keyring.json"),
            ["AuditAnalyzer:DemoHistory:Enabled"] = "false",
        };
        (_factory, _baseAddress) = LoopbackHost.Start(settings);
    }

    [Fact]
    public async Task Tokens_are_signed_with_the_keys_the_previous_build_made_and_its_key_ring_is_now_wrapped()
    {
        using var http = Client();
        var token = (await OAuthFlows.ClientCredentialsAsync(http, "identity.admin", "demo-secops", "demo-secops-secret")).GetProperty("access_token").GetString()!;

        Assert.Contains(OAuthFlows.Header(token).GetProperty("kid").GetString(), _previous.SigningKeyIds);
        var rows = await QueryAsync("SELECT Xml FROM DataProtectionKeys");
        Assert.NotEmpty(rows);
        Assert.All(rows, row => Assert.DoesNotContain("in an unencrypted form", (string)row["Xml"]!, StringComparison.Ordinal));
        using var admin = Client(token);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync(new Uri("admin/api/users", UriKind.Relative), Cancel)).StatusCode);
    }

    [Fact]
    public async Task Alice_signs_in_with_the_authenticator_she_enrolled_before_the_upgrade()
    {
        using var http = Client();
        var secondStep = await PasswordAsync(http);

        using var verified = await SecondFactorAsync(http, secondStep, Totp.Code(_previous.AliceTotpKey, DateTimeOffset.UtcNow), recovery: false);

        Assert.Equal(HttpStatusCode.Redirect, verified.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("account", UriKind.Relative), Cancel)).StatusCode);
    }

    [Fact]
    public async Task Alice_signs_in_with_a_recovery_code_from_before_the_upgrade_once()
    {
        var code = _previous.AliceRecoveryCodes[^1];
        using (var http = Client())
        {
            using var verified = await SecondFactorAsync(http, await PasswordAsync(http), code, recovery: true);
            Assert.Equal(HttpStatusCode.Redirect, verified.StatusCode);
        }

        using var again = Client();
        using var reused = await SecondFactorAsync(again, await PasswordAsync(again), code, recovery: true);
        Assert.Equal(HttpStatusCode.OK, reused.StatusCode); // the form again, with the error: a recovery code works once
    }

    [Fact]
    public async Task A_copy_of_the_upgraded_database_file_holds_none_of_the_secrets_the_previous_build_kept_in_clear()
    {
        // Someone holding a copy of security.db (or a backup) after the upgrade reads its bytes, not its rows: SQLite
        // leaves a replaced value in the page's free space and the write-ahead log keeps earlier page versions, so a
        // secret wrapped "in place" could still be carved out of the file (and the Data Protection key mints tokens).
        await _factory!.DisposeAsync();
        _factory = null;
        SqliteConnection.ClearAllPools();

        var bytes = new List<byte>(await File.ReadAllBytesAsync(DatabasePath, Cancel));
        if (File.Exists(DatabasePath + "-wal"))
        {
            bytes.AddRange(await File.ReadAllBytesAsync(DatabasePath + "-wal", Cancel));
        }

        var file = System.Text.Encoding.Latin1.GetString([.. bytes]);
        Assert.All(_previous.ClearSecrets, secret => Assert.False(
            file.Contains(secret.Value, StringComparison.OrdinalIgnoreCase), $"the file still holds {secret.Key} in clear"));
    }

    private static async Task<string> PasswordAsync(HttpClient http)
    {
        using var login = await OAuthFlows.SubmitLoginAsync(http, "/account", "alice", "Alice-Sells-Widgets-42");
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        var location = login.Headers.Location!.OriginalString;
        Assert.Contains("login-2fa", location, StringComparison.OrdinalIgnoreCase);
        return location;
    }

    private static async Task<HttpResponseMessage> SecondFactorAsync(HttpClient http, string page, string code, bool recovery)
    {
        var form = await http.GetStringAsync(new Uri(page, UriKind.RelativeOrAbsolute), Cancel);
        var fields = new Dictionary<string, string>
        {
            ["Code"] = code,
            ["ReturnUrl"] = "/account",
            ["__RequestVerificationToken"] = OAuthFlows.AntiForgeryToken(form),
        };
        if (recovery)
        {
            fields["Recovery"] = "true";
        }

        return await http.PostAsync(new Uri("account/login-2fa", UriKind.Relative), new FormUrlEncodedContent(fields), Cancel);
    }

    private HttpClient Client(string? token = null)
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = _baseAddress };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }

    /// <summary>What the previous build kept in clear in the file: Data Protection master keys, the pseudonym key, alice's authenticator key and recovery codes.</summary>
    private async Task<Dictionary<string, string>> ClearSecretsAsync()
    {
        var secrets = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (row, i) in (await QueryAsync("SELECT Xml FROM DataProtectionKeys")).Select((row, i) => (row, i)))
        {
            var value = System.Text.RegularExpressions.Regex.Match((string)row["Xml"]!, "<value>([^<]+)</value>");
            Assert.True(value.Success, "the fixture's key ring should hold a clear master key");
            secrets[$"Data Protection master key {i}"] = value.Groups[1].Value;
        }

        secrets["the pseudonym key"] = (string)(await QueryAsync("SELECT value FROM analyzer_review_settings WHERE key = 'pseudonym_key'")).Single()["value"]!;
        secrets["alice's authenticator key"] = _previous.AliceTotpKey;
        foreach (var (code, i) in _previous.AliceRecoveryCodes.Select((code, i) => (code, i)))
        {
            secrets[$"alice's recovery code {i}"] = code;
        }

        return secrets;
    }

    private async Task<List<Dictionary<string, object?>>> QueryAsync(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        await connection.OpenAsync(Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync(Cancel);
        var rows = new List<Dictionary<string, object?>>();
        while (await reader.ReadAsync(Cancel))
        {
            rows.Add(Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, i => reader.IsDBNull(i) ? null : reader.GetValue(i)));
        }

        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        await TestDirectories.DeleteAsync(_directory);
    }

    private sealed class Previous
    {
        [System.Text.Json.Serialization.JsonPropertyName("alice_totp_key")]
        public string AliceTotpKey { get; set; } = "";

        [System.Text.Json.Serialization.JsonPropertyName("alice_recovery_codes")]
        public List<string> AliceRecoveryCodes { get; set; } = [];

        public List<string> SigningKeyIds { get; set; } = [];

        public Dictionary<string, string> ClearSecrets { get; set; } = [];
    }
}
