using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Server.Tests.AuditReview;

/// <summary>
/// The real host on a loopback port in demo mode (carol the auditor, dave the security admin), on a SQLite file of its
/// own folder or on a PostgreSQL database, with the scorer polling every 200 ms and a first-party test client through
/// which users sign in with the code flow and get tokens for the review API and the admin API.
/// </summary>
public sealed partial class ReviewHost : IAsyncDisposable
{
    public const string Client = "review-test";
    public const string ClientSecret = "review-test-secret";
    public const string Redirect = "http://127.0.0.1:5099/callback";
    public const string CarolPassword = "Carol-Reads-The-Logs-42";
    public const string DavePassword = "Dave-Guards-The-Keys-42";

    private readonly WebApplicationFactory<Program> _factory;

    private ReviewHost(WebApplicationFactory<Program> factory, Uri baseAddress, string directory, IReadOnlyDictionary<string, string?> settings)
    {
        _factory = factory;
        BaseAddress = baseAddress;
        Directory = directory;
        Settings = settings;
    }

    public Uri BaseAddress { get; }

    public string Directory { get; }

    public IReadOnlyDictionary<string, string?> Settings { get; }

    public static CancellationToken Cancel => TestContext.Current.CancellationToken;

    public static ReviewHost Start(string? postgres = null, Action<IServiceCollection>? services = null)
    {
        var directory = System.IO.Directory.CreateTempSubdirectory("crm-review-").FullName;
        var settings = new Dictionary<string, string?>
        {
            ["Identity:AllowHttp"] = "true",
            ["Identity:DemoMode"] = "true",
            ["AuditAnalyzer:DemoHistory:Enabled"] = "false", // the tests fill the queue themselves
            ["Identity:MailPickupDirectory"] = Path.Combine(directory, "mail"),
            ["Identity:Throttling:TokenPerIpPerSecond"] = "100000",
            ["Identity:Throttling:TokenPerClientPerSecond"] = "100000",
            ["Identity:Clients:0:ClientId"] = Client,
            ["Identity:Clients:0:ClientSecret"] = ClientSecret,
            ["Identity:Clients:0:GrantTypes:0"] = "authorization_code",
            ["Identity:Clients:0:Scopes:0"] = "openid",
            ["Identity:Clients:0:Scopes:1"] = "findings:read",
            ["Identity:Clients:0:Scopes:2"] = "identity.admin",
            ["Identity:Clients:0:RedirectUris:0"] = Redirect,
            ["Identity:Clients:0:FirstParty"] = "true",
            ["AuditAnalyzer:Live:PollInterval"] = "00:00:00.2",
            ["AuditAnalyzer:Live:LeaseDuration"] = "00:00:05",
            ["AuditAnalyzer:Live:Partitions"] = "2",
            ["AuditAnalyzer:Export:SettleTime"] = "00:00:00.5",
            ["Serilog:MinimumLevel:Default"] = "Warning",
            ["Database:Provider"] = postgres is null ? "Sqlite" : "PostgreSql",
            ["Database:ConnectionString"] = postgres ?? $"Data Source={Path.Combine(directory, "service.db")}",
        };
        var (factory, baseAddress) = LoopbackHost.Start(settings, services is null ? null : builder => builder.ConfigureServices(services));
        return new ReviewHost(factory, baseAddress, directory, settings);
    }

    public HttpClient CreateClient(string? token = null)
    {
        var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() }) { BaseAddress = BaseAddress };
        if (token is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return http;
    }

    /// <summary>demo-crm's client-credentials token for sending events (RFC 6749 §4.4).</summary>
    public async Task<string> WriterTokenAsync()
    {
        using var http = CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "events:write" }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("demo-crm:demo-crm-secret")));
        return await AccessTokenAsync(http, request);
    }

    /// <summary>A user's access token through the authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636), signing in on the login form.</summary>
    public async Task<string> UserTokenAsync(string userName, string password)
    {
        using var http = CreateClient();
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
        var authorize = QueryHelpers.AddQueryString("connect/authorize", new Dictionary<string, string?>
        {
            ["client_id"] = Client,
            ["response_type"] = "code",
            ["redirect_uri"] = Redirect,
            ["scope"] = "openid findings:read identity.admin",
            ["state"] = "s" + Guid.NewGuid().ToString("N"),
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = "S256",
        });
        var first = await http.GetAsync(new Uri(authorize, UriKind.Relative), Cancel);
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        var login = first.Headers.Location!;
        var returnUrl = QueryHelpers.ParseQuery(login.IsAbsoluteUri ? login.Query : login.OriginalString[login.OriginalString.IndexOf('?', StringComparison.Ordinal)..])["ReturnUrl"].ToString();
        var signedIn = await SignInAsync(http, userName, password, returnUrl);
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        var back = await http.GetAsync(signedIn.Headers.Location, Cancel);
        Assert.Equal(HttpStatusCode.Redirect, back.StatusCode);
        var code = QueryHelpers.ParseQuery(back.Headers.Location!.Query)["code"].ToString();
        Assert.False(string.IsNullOrEmpty(code), $"no code in {back.Headers.Location}");

        using var request = new HttpRequestMessage(HttpMethod.Post, "connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code",
                ["code"] = code,
                ["redirect_uri"] = Redirect,
                ["code_verifier"] = verifier,
            }),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Client}:{ClientSecret}")));
        return await AccessTokenAsync(http, request);
    }

    /// <summary>Posts the login form with its anti-forgery token, as a browser does.</summary>
    public static async Task<HttpResponseMessage> SignInAsync(HttpClient http, string userName, string password, string returnUrl)
    {
        var page = await http.GetStringAsync(new Uri("account/login?ReturnUrl=" + Uri.EscapeDataString(returnUrl), UriKind.Relative), Cancel);
        var form = new Dictionary<string, string>
        {
            ["Username"] = userName,
            ["Password"] = password,
            ["ReturnUrl"] = returnUrl,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        };
        return await http.PostAsync(new Uri("account/login", UriKind.Relative), new FormUrlEncodedContent(form), Cancel);
    }

    public static string AntiForgeryToken(string page) => AntiForgery().Match(page) is { Success: true } match
        ? WebUtility.HtmlDecode(match.Groups["token"].Value)
        : throw new InvalidOperationException("The page has no anti-forgery token.");

    public static string Line(string eventId, string user, string action, DateTimeOffset time, string extra = "") =>
        $"{{\"event_id\":\"{eventId}\",\"timestamp\":\"{time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"{action}\"{extra}}}";

    /// <summary>A login and a large contact export by <paramref name="user"/> at 03:00 UTC <paramref name="daysAgo"/> days ago.</summary>
    public async Task PostNightExportAsync(string writer, string user, int daysAgo, long records, string prefix)
    {
        var night = DateTimeOffset.UtcNow.Date.AddDays(-daysAgo).AddHours(3);
        var lines = string.Join('\n',
            Line(prefix + "-1", user, "login", new DateTimeOffset(night, TimeSpan.Zero)),
            Line(prefix + "-2", user, "export", new DateTimeOffset(night.AddMinutes(4), TimeSpan.Zero), $",\"entity\":\"contact\",\"record_count\":{records}"));
        using var http = CreateClient(writer);
        using var response = await http.PostAsync(new Uri("analyzer/events", UriKind.Relative), new StringContent(lines, Encoding.UTF8, "application/x-ndjson"), Cancel);
        Assert.True(response.IsSuccessStatusCode, $"events refused: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Cancel)}");
    }

    /// <summary>Waits up to 20 s for the queue (with <paramref name="query"/>) to list a finding that satisfies <paramref name="match"/>.</summary>
    public async Task<JsonElement> WaitForQueueItemAsync(string token, string query, Func<JsonElement, bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var (status, body) = await GetAsync(token, "analyzer/review/findings" + query);
            Assert.Equal(HttpStatusCode.OK, status);
            if (body.GetProperty("items").EnumerateArray().FirstOrDefault(match) is { ValueKind: JsonValueKind.Object } found)
            {
                return found;
            }

            Assert.True(DateTime.UtcNow < deadline, $"no matching finding in the queue ({query}) within 20 seconds: {body}");
            await Task.Delay(200, Cancel);
        }
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(string token, string path)
    {
        using var http = CreateClient(token);
        using var response = await http.GetAsync(new Uri(path, UriKind.Relative), Cancel);
        return (response.StatusCode, await BodyAsync(response));
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(string token, HttpMethod method, string path, object? body = null)
    {
        using var http = CreateClient(token);
        using var request = new HttpRequestMessage(method, path)
        {
            Content = body is null ? null : new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, Cancel);
        return (response.StatusCode, await BodyAsync(response));
    }

    /// <summary>Rows of Identity's audit trail (SQLite hosts), oldest first.</summary>
    public async Task<List<(string Action, string ActorName, string TargetId, string? After)>> AuditEntriesAsync()
    {
        await using var connection = new SqliteConnection(Settings["Database:ConnectionString"]);
        await connection.OpenAsync(Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT Action, ActorName, TargetId, After FROM identity_audit_trail ORDER BY Sequence";
        await using var reader = await command.ExecuteReaderAsync(Cancel);
        var rows = new List<(string, string, string, string?)>();
        while (await reader.ReadAsync(Cancel))
        {
            rows.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
        }

        return rows;
    }

    /// <summary>Rows in one table (SQLite hosts).</summary>
    public async Task<long> CountAsync(string table)
    {
        await using var connection = new SqliteConnection(Settings["Database:ConnectionString"]);
        await connection.OpenAsync(Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)(await command.ExecuteScalarAsync(Cancel))!;
    }

    /// <summary>Runs the real <c>audit verify</c> verb on the host's database.</summary>
    public Task<(int ExitCode, string Output)> VerifyAuditChainAsync() => ServerProcess.RunVerbAsync(
        ["audit", "verify"],
        new Dictionary<string, string?>
        {
            ["Database__Provider"] = Settings["Database:Provider"],
            ["Database__ConnectionString"] = Settings["Database:ConnectionString"],
            ["Identity__MailPickupDirectory"] = Path.Combine(Directory, "mail"),

            // The chain is keyed with a secret wrapped by the installation's key: the verb needs the host's key.
            ["Crypto__MasterKey__Source"] = "File",
            ["Crypto__MasterKey__File"] = _factory.Services.GetRequiredService<IConfiguration>()["Crypto:MasterKey:File"],
        },
        Directory,
        Cancel);

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        SqliteConnection.ClearAllPools();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
                return;
            }
            catch (IOException) when (attempt < 10)
            {
                await Task.Delay(200);
            }
        }
    }

    private static async Task<string> AccessTokenAsync(HttpClient http, HttpRequestMessage request)
    {
        using var response = await http.SendAsync(request, Cancel);
        var body = await response.Content.ReadAsStringAsync(Cancel);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"token request failed: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
    }

    private static async Task<JsonElement> BodyAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync(Cancel);
        return text.Length > 0 && text.TrimStart()[0] is '{' or '[' ? JsonDocument.Parse(text).RootElement.Clone() : default;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"(?<token>[^\"]+)\"")]
    private static partial Regex AntiForgery();
}
