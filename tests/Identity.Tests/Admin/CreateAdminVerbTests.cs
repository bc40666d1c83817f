using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using CrmSecurity.Identity.Data;
using CrmSecurity.Tests.Support;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// <c>users create-admin</c>, the first run in production: the real executable on an empty SQLite database with demo
/// mode off and a configured master key and public origin, then the link followed over real HTTP against the started
/// service, as the person it was handed to would.
/// </summary>
public sealed partial class CreateAdminVerbTests : IAsyncLifetime
{
    private const string Password = "Ada-Chooses-Her-Own-Passphrase-7";
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-security-first-admin-").FullName;
    private readonly Uri _origin = new($"http://127.0.0.1:{ServerProcess.FreeLoopbackPort()}/");
    private readonly string _masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    private Dictionary<string, string?> Settings => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["Database__ConnectionString"] = $"Data Source={DatabaseFile}",
        ["Identity__DemoMode"] = "false",
        ["Identity__Issuer"] = _origin.AbsoluteUri,
        ["Identity__AllowHttp"] = "true",
        ["Identity__MailPickupDirectory"] = Path.Combine(_directory, "mail"),
        ["CRM_SECURITY_MASTER_KEY"] = _masterKey,
    };

    private string DatabaseFile => Path.Combine(_directory, "security.db");

    [Fact]
    public async Task On_an_empty_database_the_verb_makes_one_administrator_whose_link_sets_a_password_once_and_signs_in()
    {
        // Verbose: whatever the verb logs, at any level, must not hold the link's token.
        var verbose = new Dictionary<string, string?>(Settings) { ["Serilog__MinimumLevel__Default"] = "Verbose" };
        var (created, output) = await CreateAdminAsync("ada", "ada@example.org", verbose);
        var (again, refusal) = await CreateAdminAsync("mallory", "mallory@example.org", Settings);

        Assert.True(created == 0, output);
        var link = new Uri(SetupLink().Match(output).Value);
        var token = QueryHelpers.ParseQuery(link.Query)["token"].ToString();
        Assert.StartsWith(_origin.AbsoluteUri + "account/reset-password?user=", link.AbsoluteUri, StringComparison.Ordinal);
        Assert.Single(Regex.Matches(output, Regex.Escape(Uri.EscapeDataString(token))));
        Assert.Contains("Created the security administrator 'ada' (ada@example.org)", output, StringComparison.Ordinal);
        Assert.Matches(@"it works until \d{4}-\d\d-\d\d \d\d:\d\d UTC", output);
        Assert.Equal(1, again);
        Assert.Contains("already has a security administrator (ada)", refusal, StringComparison.Ordinal);
        Assert.DoesNotContain("reset-password", refusal, StringComparison.Ordinal);

        await using (var server = await ServerProcess.StartOnAsync(_origin, Settings, _directory, Cancel))
        {
            using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = server.BaseAddress };
            var (first, firstPage) = await SetPasswordAsync(http, link);
            var (second, secondPage) = await SetPasswordAsync(http, link);
            var signIn = await SubmitLoginAsync(http, "/admin", "ada", Password);
            var admin = await http.GetStringAsync(new Uri("admin", UriKind.Relative), Cancel);

            Assert.Equal(HttpStatusCode.OK, first);
            Assert.Contains("Your password was changed.", firstPage, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, second);
            Assert.Contains("This reset link is not valid.", secondPage, StringComparison.Ordinal); // one time only
            Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
            Assert.Equal("/admin", signIn.Headers.Location!.OriginalString);
            Assert.Contains("Signed in as <strong>ada</strong>", admin, StringComparison.Ordinal);
            Assert.DoesNotContain(token, server.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, server.Output, StringComparison.Ordinal);
        }

        var entries = await AuditTrailAsync();
        var creation = Assert.Single(entries, e => e.Action == "user.create");
        var role = Assert.Single(entries, e => e.Action == "user.roles");
        Assert.StartsWith("command line: users create-admin", creation.ActorName, StringComparison.Ordinal);
        Assert.Equal("ada", creation.TargetName);
        Assert.Contains("\"password\":false", creation.After, StringComparison.Ordinal);
        Assert.Equal(creation.ActorName, role.ActorName);
        Assert.Contains("Security administrator", role.After, StringComparison.Ordinal);
        Assert.DoesNotContain(entries, e => e.TargetName == "mallory");
        var (verified, verification) = await ServerProcess.RunVerbAsync(["audit", "verify"], Settings, _directory, Cancel);
        Assert.True(verified == 0, verification);
        Assert.Contains($"Audit trail intact: {entries.Count} entries", verification, StringComparison.Ordinal);
    }

    [Fact]
    public async Task In_Production_the_documented_commands_create_the_administrator_once()
    {
        // docs/install.md, "First run in production": the environment an installation has, nothing of a development checkout.
        var production = new Dictionary<string, string?>(Settings)
        {
            ["ASPNETCORE_ENVIRONMENT"] = null,
            ["DOTNET_ENVIRONMENT"] = null,
            ["Identity__DemoMode"] = null,
            ["Identity__AllowHttp"] = null,
            ["Identity__Issuer"] = "https://login.example.com/",
            ["AllowedHosts"] = "login.example.com",
        };

        var (created, output) = await CreateAdminAsync("ada", "ada@example.org", production);
        var (again, refusal) = await CreateAdminAsync("eve", "eve@example.org", production);

        Assert.True(created == 0, output);
        Assert.Matches(@"https://login\.example\.com/account/reset-password\?user=[0-9a-f-]{36}&token=\S+", output);
        Assert.Equal(1, again);
        Assert.Contains("The installation already has a security administrator (ada).", refusal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Where_a_security_administrator_exists_the_verb_is_refused_and_changes_nothing()
    {
        // An installation that already has administrators: the demo's (dave, and demo-secops's application user).
        var demo = new Dictionary<string, string?>(Settings) { ["Identity__DemoMode"] = "true" };
        await using (await ServerProcess.StartAsync(demo, _directory, cancellationToken: Cancel))
        {
        }

        var before = await AuditTrailAsync();
        var (exitCode, output) = await CreateAdminAsync("ada", "ada@example.org", Settings);

        Assert.Equal(1, exitCode);
        Assert.Contains("already has a security administrator (", output, StringComparison.Ordinal);
        Assert.Contains("dave", output, StringComparison.Ordinal);
        Assert.Contains("demo-secops-app", output, StringComparison.Ordinal);
        Assert.DoesNotContain("reset-password", output, StringComparison.Ordinal);
        Assert.Equal(before.Count, (await AuditTrailAsync()).Count);
        Assert.False(await WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName == "ada", Cancel)));
    }

    [Fact]
    public async Task Without_a_public_origin_the_verb_names_the_setting_and_creates_nobody()
    {
        var settings = Settings;
        settings["Identity__Issuer"] = null;

        var (exitCode, output) = await CreateAdminAsync("ada", "ada@example.org", settings);

        Assert.Equal(78, exitCode);
        Assert.Contains("Identity:Issuer is not set", output, StringComparison.Ordinal);
        Assert.False(await WithStoreAsync(store => store.Users.AnyAsync(Cancel)));
    }

    private Task<(int ExitCode, string Output)> CreateAdminAsync(string userName, string email, Dictionary<string, string?> settings) =>
        ServerProcess.RunVerbAsync(["users", "create-admin", "--user-name", userName, "--email", email], settings, _directory, Cancel);

    /// <summary>What the person does with the link: open it, type a password, submit the form (with its anti-forgery token).</summary>
    private static async Task<(HttpStatusCode Status, string Page)> SetPasswordAsync(HttpClient http, Uri link)
    {
        var form = await http.GetStringAsync(new Uri(link.PathAndQuery, UriKind.Relative), Cancel);
        var query = QueryHelpers.ParseQuery(link.Query);
        using var posted = await http.PostAsync(new Uri(link.AbsolutePath, UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["User"] = query["user"].ToString(),
            ["Token"] = query["token"].ToString(),
            ["NewPassword"] = Password,
            ["__RequestVerificationToken"] = AntiForgeryToken(form),
        }), Cancel);
        return (posted.StatusCode, await posted.Content.ReadAsStringAsync(Cancel));
    }

    private Task<List<AuditTrail.AuditEntryRecord>> AuditTrailAsync() =>
        WithStoreAsync(store => store.AuditTrail.AsNoTracking().OrderBy(e => e.Sequence).ToListAsync(Cancel));

    private async Task<T> WithStoreAsync<T>(Func<IdentityStore, Task<T>> query)
    {
        await using var store = new IdentityStore(new DbContextOptionsBuilder<IdentityStore>().UseSqlite($"Data Source={DatabaseFile};Pooling=false").UseOpenIddict().Options);
        return await query(store);
    }

    [GeneratedRegex(@"http://\S+/account/reset-password\?\S+")]
    private static partial Regex SetupLink();

    public ValueTask InitializeAsync() => ValueTask.CompletedTask;

    public async ValueTask DisposeAsync() => await TestDirectories.DeleteAsync(_directory);
}
