using System.Net;
using CrmSecurity.Identity.Tests.Support;
using Microsoft.EntityFrameworkCore;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Admin;

/// <summary>
/// wade, the demo's business-unit administrator of Sales West, as seeded (no privilege granted by the test): like a
/// Dynamics 365 business-unit administrator he creates users in his own unit on the console's create form, and the same
/// form posted for another unit is refused (OWASP ASVS 4.0.3 V4.2.1) with nothing created.
/// </summary>
public sealed class DemoBusinessUnitAdminTests(IdentityHost host) : IClassFixture<IdentityHost>
{
    private const string WadePassword = "Wade-Admins-The-West-42";

    [Fact]
    public async Task Wade_creates_a_user_in_sales_west_on_the_users_page_and_is_refused_in_sales_east()
    {
        using var http = host.CreateClient();
        Assert.Equal(HttpStatusCode.Redirect, (await SubmitLoginAsync(http, "/admin/users", "wade", WadePassword)).StatusCode);

        var inside = await CreateAsync(http, "westley", "sales-west");
        var message = await http.GetStringAsync(inside.Headers.Location, Cancel);
        var outside = await CreateAsync(http, "eastwood", "sales-east");
        var refusal = await outside.Content.ReadAsStringAsync(Cancel);

        Assert.True(inside.StatusCode == HttpStatusCode.Redirect, $"{(int)inside.StatusCode}: {await inside.Content.ReadAsStringAsync(Cancel)}");
        Assert.Contains("Created westley in Sales West.", message, StringComparison.Ordinal);
        Assert.Equal("sales-west", await host.WithStoreAsync(store => store.Users.AsNoTracking().Where(u => u.UserName == "westley").Select(u => u.BusinessUnit).SingleAsync(Cancel)));
        Assert.Equal(HttpStatusCode.Forbidden, outside.StatusCode);
        Assert.Contains("Sales East", refusal, StringComparison.Ordinal);
        Assert.False(await host.WithStoreAsync(store => store.Users.AnyAsync(u => u.UserName == "eastwood", Cancel)));
    }

    /// <summary>The create form as the page renders it (with its anti-forgery token), filled in and posted.</summary>
    private static async Task<HttpResponseMessage> CreateAsync(HttpClient http, string userName, string businessUnit)
    {
        var page = await http.GetStringAsync(new Uri("admin/users?create=1", UriKind.Relative), Cancel);
        return await http.PostAsync(new Uri("admin/users?handler=Create", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["new_user_name"] = userName,
            ["new_email"] = userName + "@staff.example",
            ["new_business_unit"] = businessUnit,
            ["__RequestVerificationToken"] = AntiForgeryToken(page),
        }), Cancel);
    }
}
