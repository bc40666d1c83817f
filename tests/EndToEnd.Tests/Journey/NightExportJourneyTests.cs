using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CrmSecurity.EndToEnd.Tests.Admin;
using CrmSecurity.Samples.Crm.Tests;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests.Journey;

/// <summary>
/// The whole product in one run, as its three kinds of users meet it: the service and the sample CRM as processes on
/// loopback, headless Chromium for the people. A security admin masks phone numbers for sales; a sales rep signs in to
/// the CRM through the identity provider and sees them masked; her manager exports every contact at 3 a.m. in his own time zone; the analyzer turns that into a
/// finding with the night hour and the volume as reasons, and while it is open the CRM (asking the service's check through
/// AddCrmAuthorization) refuses his next export; an auditor finds it in the reviewer queue, reveals who it is and dismisses
/// it, and his export works again; the audit trail, with her review in it, verifies.
/// </summary>
public sealed class NightExportJourneyTests : IAsyncLifetime
{
    private const string ClientId = "sample-crm-journey";
    private const string ClientSecret = "sample-crm-journey-secret-0123456789";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-journey-").FullName;
    private ServerProcess _service = null!;
    private SampleProcess _sample = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private string ServiceDatabase => Path.Combine(_directory, "service.db");

    private Dictionary<string, string?> ServiceSettings => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={ServiceDatabase}",
    };

    public async ValueTask InitializeAsync()
    {
        var port = SampleProcess.FreePort();
        var settings = ServiceSettings;
        settings["Identity__DemoMode"] = "true";
        settings["AuditAnalyzer__DemoHistory__Enabled"] = "false"; // this test writes the manager's own history, in his time zone
        settings["Identity__AllowHttp"] = "true";
        settings["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail");
        settings["AuditAnalyzer__Live__PollInterval"] = "00:00:00.2";
        settings["Identity__Clients__0__ClientId"] = ClientId;
        settings["Identity__Clients__0__ClientSecret"] = ClientSecret;
        settings["Identity__Clients__0__GrantTypes__0"] = "authorization_code";
        settings["Identity__Clients__0__GrantTypes__1"] = "client_credentials";
        settings["Identity__Clients__0__GrantTypes__2"] = "refresh_token";
        string[] scopes = ["openid", "profile", "email", "roles", "offline_access", "authz.decide", "events:write"];
        for (var i = 0; i < scopes.Length; i++)
        {
            settings[$"Identity__Clients__0__Scopes__{i}"] = scopes[i];
        }

        settings["Identity__Clients__0__RedirectUris__0"] = $"http://127.0.0.1:{port}/signin-oidc";
        settings["Identity__Clients__0__Tenants__0"] = "demo"; // the tenant it reports events on (the demo users' tenant)
        _service = await ServerProcess.StartAsync(settings, workingDirectory: _directory, cancellationToken: Cancel);
        _sample = await SampleProcess.StartAsync(port, new Dictionary<string, string>
        {
            ["Crm:Service"] = _service.BaseAddress.AbsoluteUri.TrimEnd('/'),
            ["Crm:ClientId"] = ClientId,
            ["Crm:ClientSecret"] = ClientSecret,
            ["Crm:Scopes"] = "openid profile email roles offline_access",
            ["Crm:DataDirectory"] = Path.Combine(_directory, "sample"),
            ["Crm:SeedContacts"] = "1500",
            // A finding opened or dismissed reaches the CRM's decisions within a second, not the default 30 s.
            ["Crm:ProfileRevalidation"] = "00:00:01",
            ["CRM_SAMPLE_MASTER_KEY"] = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        }, Cancel);

        _playwright = await Playwright.CreateAsync();
        _browser = await AdminSite.LaunchChromiumAsync(_playwright);
        Directory.CreateDirectory(Admin.AdminSite.Screenshots);
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
        if (_sample is not null)
        {
            await _sample.DisposeAsync();
        }

        if (_service is not null)
        {
            await _service.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public async Task A_3am_export_becomes_a_finding_that_an_auditor_reviews_and_dismisses_and_the_audit_trail_verifies()
    {
        using var api = new HttpClient { BaseAddress = _service.BaseAddress };

        // The manager lives where it is 3 a.m. now: set by a security admin (an audited change), learnt from by the analyzer.
        var zone = ZoneWhereItIsThreeAm(DateTimeOffset.UtcNow);
        var admin = await TokenAsync(api, "demo-secops", "demo-secops-secret", "identity.admin");
        var bob = await UserAsync(api, admin, "bob");
        using (var put = new HttpRequestMessage(HttpMethod.Put, $"admin/api/users/{bob}/zoneinfo") { Content = JsonContent.Create(new { zoneinfo = zone }) })
        {
            put.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            using var set = await api.SendAsync(put, Cancel);
            Assert.True(set.IsSuccessStatusCode, $"setting bob's zone to {zone}: {(int)set.StatusCode} {await set.Content.ReadAsStringAsync(Cancel)}");
        }

        // The security admin tightens what sales sees of contacts: phone numbers read, but masked (no read_unmasked).
        using (var put = new HttpRequestMessage(HttpMethod.Put, "admin/api/field-security-profiles/sales_contact_details")
        {
            Content = JsonContent.Create(new { permissions = new { contact = new { phone = "read", mobile = "read" } } }),
        })
        {
            put.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            using var set = await api.SendAsync(put, Cancel);
            Assert.True(set.IsSuccessStatusCode, $"masking sales' phone numbers: {(int)set.StatusCode} {await set.Content.ReadAsStringAsync(Cancel)}");
        }

        // Four weeks of his ordinary office-hours work in the CRM, sent as the CRM sends it.
        var writer = await TokenAsync(api, ClientId, ClientSecret, "events:write");
        var history = OfficeHoursHistory(bob, TimeZoneInfo.FindSystemTimeZoneById(zone), DateTimeOffset.UtcNow);
        using (var post = new HttpRequestMessage(HttpMethod.Post, "analyzer/events") { Content = new StringContent(history, Encoding.UTF8, "application/x-ndjson") })
        {
            post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", writer);
            using var posted = await api.SendAsync(post, Cancel);
            Assert.True(posted.IsSuccessStatusCode, await posted.Content.ReadAsStringAsync(Cancel));
        }

        await WaitAsync(() => Count("select count(*) from analyzer_live_events where scored = 0") == 0, "the history to be scored");

        // A sales rep signs in to the CRM through the identity provider and sees masked fields.
        var alice = await SignInToCrmAsync("alice", "Alice-Sells-Widgets-42");
        await Assertions.Expect(alice.Locator("table .masked").First).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^•+[0-9]{4}$")); // phone, last4 mask
        await Assertions.Expect(alice.Locator("table .hidden-field").First).ToHaveTextAsync("hidden"); // national ID
        await ScreenshotAsync(alice, "journey-sales-rep-masked-fields");

        // At 3 a.m. his time, the manager opens the CRM's export link, signs in and gets every contact he can see. The export
        // is the first thing he does: had he first opened the contact list (a thousand rows, two thousand values decrypted,
        // at 3 a.m.), the analyzer would have opened a critical finding about that within seconds, and the CRM would rightly
        // refuse the export (policies/risk-access.json denies export at high and critical): the journey raced the analyzer.
        var exportLink = new Uri(_sample.BaseAddress, "contacts/export").AbsoluteUri;
        var (manager, csv) = await SignInToCrmAndExportAsync("bob", "Bob-Manages-The-Team-42", exportLink);
        var exported = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1;
        Assert.True(exported > 500, $"the export held {exported} contacts");

        // The analyzer turns it into a finding: the night hour in his zone, and the volume against his habits. A SIEM-like
        // reader (demo-audit, given an application user with read on audit_finding) sees it under a pseudonym only.
        var reader = await FindingsReaderTokenAsync(api);
        JsonElement finding = default;
        await WaitAsync(async () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "analyzer/findings?limit=1000");
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", reader);
            using var response = await api.SendAsync(request, Cancel);
            var findings = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
            foreach (var candidate in findings.EnumerateArray())
            {
                // Scored as the events arrive: wait until the finding has taken in the export itself.
                if (candidate.GetRawText().Contains("03:00-03:59 local", StringComparison.Ordinal)
                    && candidate.GetRawText().Contains("records exported today", StringComparison.Ordinal))
                {
                    Assert.DoesNotContain(bob, candidate.GetRawText(), StringComparison.Ordinal);
                    finding = candidate;
                    return true;
                }
            }

            return false;
        }, "a finding about the 3 a.m. export");
        var id = finding.GetProperty("id").GetString()!;

        // While the finding is open, risk takes the export away in the CRM itself: AddCrmAuthorization asks the service's
        // check, which refuses export with basis risk. A refusal, not a step-up: a second factor would not change it. No
        // redirect is followed, so a challenge would show as one.
        await WaitAsync(async () => (await manager.Context.APIRequest.GetAsync(exportLink, new() { MaxRedirects = 0 })).Status == 403,
            "the CRM to refuse bob's next export while the finding about him is open");

        // An auditor finds it in the queue under a pseudonym, opens it, reveals who it is and dismisses it.
        var carol = await SignInToServiceAsync("carol", "Carol-Reads-The-Logs-42", "/review");
        var row = carol.Locator($"a[href='/review/findings/{id}']");
        await Assertions.Expect(row).ToHaveCountAsync(1);
        await Assertions.Expect(carol.Locator("main")).Not.ToContainTextAsync("bob");
        await ScreenshotAsync(carol, "journey-review-queue");
        await row.First.ClickAsync();
        await Assertions.Expect(carol.Locator("#reasons")).ToContainTextAsync("03:00-03:59 local");
        // The export decrypted every value it wrote and the sample reports each decrypt, so the finding scores the
        // decrypts and names the export among its reasons; the evidence timeline shows its newest events, decrypts.
        await Assertions.Expect(carol.Locator("#reasons")).ToContainTextAsync("records exported today");
        await Assertions.Expect(carol.Locator("#evidence")).ToContainTextAsync("decrypt");
        await carol.Locator("#reveal-reason").FillAsync("3 a.m. export of the sales team's contacts");
        await carol.Locator("#reveal").ClickAsync();
        await Assertions.Expect(carol.Locator("#revealed")).ToContainTextAsync("bob");
        await carol.Locator("#close-status").SelectOptionAsync("dismissed");
        await carol.Locator("#disposition").SelectOptionAsync("benign_true_positive");
        await carol.Locator("#close-note").FillAsync("Quarter-end export, agreed with his director beforehand.");
        await carol.Locator("#close").ClickAsync();
        await Assertions.Expect(carol.Locator("#status")).ToContainTextAsync("dismissed");
        await ScreenshotAsync(carol, "journey-finding-dismissed");

        // Her dismissal ends the risk effect: the CRM lets bob export again.
        await WaitAsync(async () => (await manager.Context.APIRequest.GetAsync(exportLink, new() { MaxRedirects = 0 })).Status == 200,
            "the CRM to allow bob's export again after the dismissal");

        // The audit trail holds the zone change, the reveal and the dismissal, and verifies.
        await _service.DisposeAsync();
        _service = null!;
        var (exit, output) = await ServerProcess.RunVerbAsync(["audit", "verify"], ServiceSettings, _directory, Cancel);
        Assert.True(exit == 0, output);
        var actions = Strings($"select Action from identity_audit_trail where TargetId in ('{bob}', '{id}') order by Sequence");
        Assert.Contains("user.zoneinfo", actions);
        Assert.Contains(actions, a => a.Contains("reveal", StringComparison.Ordinal));
        Assert.Contains(actions, a => a.Contains("dismiss", StringComparison.Ordinal) || a.Contains("status", StringComparison.Ordinal));
    }

    /// <summary>An IANA zone (Etc/GMT±N: POSIX signs, so Etc/GMT-3 is UTC+3) whose local hour is 3 at <paramref name="now"/>.</summary>
    private static string ZoneWhereItIsThreeAm(DateTimeOffset now)
    {
        var offset = 3 - now.UtcDateTime.Hour;
        if (offset < -12)
        {
            offset += 24;
        }
        else if (offset > 14)
        {
            offset -= 24;
        }

        return offset switch
        {
            0 => "Etc/UTC",
            > 0 => $"Etc/GMT-{offset}",
            _ => $"Etc/GMT+{-offset}",
        };
    }

    /// <summary>Weekdays of the last four weeks, 9:00 to 17:00 local: lists, reads and one small export a week.</summary>
    private static string OfficeHoursHistory(string userId, TimeZoneInfo zone, DateTimeOffset now)
    {
        var lines = new StringBuilder();
        var localToday = TimeZoneInfo.ConvertTime(now, zone).Date;
        for (var day = 28; day >= 1; day--)
        {
            var date = localToday.AddDays(-day);
            if (date.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
            {
                continue;
            }

            for (var hour = 9; hour <= 17; hour++)
            {
                var local = date.AddHours(hour).AddMinutes((day * 7 + hour * 11) % 50);
                var at = new DateTimeOffset(local, zone.GetUtcOffset(local));
                var action = hour == 10 && date.DayOfWeek == DayOfWeek.Thursday ? "export" : hour % 2 == 0 ? "list" : "read";
                var count = action switch { "export" => 30, "list" => 25, _ => 1 };
                lines.Append(CultureInfo.InvariantCulture, $$"""{"event_id":"history-{{day}}-{{hour}}","timestamp":"{{at:O}}","user_id":"{{userId}}","user_name":"bob","action":"{{action}}","entity":"contact","record_count":{{count}},"outcome":"success","client_id":"{{ClientId}}"}""").Append('\n');
            }
        }

        return lines.ToString();
    }

    private async Task<IPage> SignInToCrmAsync(string user, string password)
    {
        var context = await _browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(new Uri(_sample.BaseAddress, "contacts").AbsoluteUri);
        await SubmitLoginAsync(page, user, password);
        try
        {
            await page.WaitForAddressAsync(url => new Uri(url).Port == _sample.BaseAddress.Port && new Uri(url).AbsolutePath == "/contacts");
        }
        catch (TimeoutException e)
        {
            // Say where the browser stopped and what it showed, not only that it did not arrive.
            var text = await page.Locator("body").InnerTextAsync();
            throw new TimeoutException($"{user} did not reach the CRM's contacts: the browser is at {page.Url}, showing: {text[..Math.Min(text.Length, 600)]}", e);
        }

        return page;
    }

    /// <summary>Opens the CRM's export link, signs in at the identity provider on the way and returns the downloaded file.</summary>
    private async Task<(IPage Page, string Csv)> SignInToCrmAndExportAsync(string user, string password, string exportLink)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { AcceptDownloads = true });
        var page = await context.NewPageAsync();
        await page.GotoAsync(exportLink);
        IDownload download;
        try
        {
            download = await page.RunAndWaitForDownloadAsync(() => SubmitLoginAsync(page, user, password));
        }
        catch (TimeoutException e)
        {
            var text = await page.Locator("body").InnerTextAsync();
            throw new TimeoutException($"{user}'s export did not download: the browser is at {page.Url}, showing: {text[..Math.Min(text.Length, 600)]}", e);
        }

        Assert.Equal("contacts.csv", download.SuggestedFilename);
        return (page, await File.ReadAllTextAsync(await download.PathAsync(), Cancel));
    }

    private async Task<IPage> SignInToServiceAsync(string user, string password, string path)
    {
        var context = await _browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = _service.BaseAddress.AbsoluteUri });
        var page = await context.NewPageAsync();
        await page.GotoAsync(path);
        await SubmitLoginAsync(page, user, password);
        await page.WaitForAddressAsync(url => new Uri(url).AbsolutePath == path);
        return page;
    }

    private static async Task SubmitLoginAsync(IPage page, string user, string password)
    {
        await page.Locator("#username").FillAsync(user);
        await page.Locator("#password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
    }

    /// <summary>The first screen only: the contact list is a thousand rows long.</summary>
    private static Task<byte[]> ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Admin.AdminSite.Screenshots, name + ".png") });

    /// <summary>demo-audit's token after a security admin gave it an application user with read on audit_finding (admin API).</summary>
    private static async Task<string> FindingsReaderTokenAsync(HttpClient api)
    {
        var admin = await TokenAsync(api, "demo-secops", "demo-secops-secret", "identity.admin");
        async Task<JsonElement> SendAsync(HttpMethod method, string path, object body)
        {
            using var request = new HttpRequestMessage(method, path) { Content = JsonContent.Create(body) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", admin);
            using var response = await api.SendAsync(request, Cancel);
            var text = await response.Content.ReadAsStringAsync(Cancel);
            Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {text}");
            return text.Length > 0 ? JsonDocument.Parse(text).RootElement.Clone() : default;
        }

        await SendAsync(HttpMethod.Post, "admin/api/roles", new
        {
            id = "findings_reader",
            name = "Findings reader",
            description = "Reads pseudonymous findings",
            privileges = new Dictionary<string, Dictionary<string, string>> { ["audit_finding"] = new() { ["read"] = "organization" } },
        });
        var user = await SendAsync(HttpMethod.Post, "admin/api/users", new { user_name = "demo-audit-app", display_name = "Demo audit tool", business_unit = "compliance", application_client_id = "demo-audit" });
        await SendAsync(HttpMethod.Put, $"admin/api/users/{user.GetProperty("id").GetString()}/roles", new { roles = new[] { "findings_reader" } });
        return await TokenAsync(api, "demo-audit", "demo-audit-secret", "findings:read");
    }

    private static async Task<string> TokenAsync(HttpClient api, string client, string secret, string scope)
    {
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = client,
            ["client_secret"] = secret,
            ["scope"] = scope,
        });
        using var response = await api.PostAsync("connect/token", form, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        Assert.True(response.IsSuccessStatusCode, $"token for {client}: {body}");
        return body.GetProperty("access_token").GetString()!;
    }

    private static async Task<string> UserAsync(HttpClient api, string token, string userName)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "admin/api/users");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await api.SendAsync(request, Cancel);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(Cancel);
        var users = body.ValueKind == JsonValueKind.Array ? body : body.GetProperty("items");
        return users.EnumerateArray().Single(u => u.GetProperty("user_name").GetString() == userName).GetProperty("id").GetString()!;
    }

    private static async Task WaitAsync(Func<Task<bool>> done, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await done())
        {
            Assert.True(DateTime.UtcNow < deadline, $"gave up waiting for {what}");
            await Task.Delay(250, Cancel);
        }
    }

    private static Task WaitAsync(Func<bool> done, string what) => WaitAsync(() => Task.FromResult(done()), what);

    private long Count(string sql) => long.Parse(Strings(sql)[0], CultureInfo.InvariantCulture);

    private List<string> Strings(string sql)
    {
        using var connection = new SqliteConnection($"Data Source={ServiceDatabase};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var values = new List<string>();
        while (reader.Read())
        {
            values.Add(Convert.ToString(reader.GetValue(0), CultureInfo.InvariantCulture) ?? "");
        }

        return values;
    }
}
