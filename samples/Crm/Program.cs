using System.Security.Claims;
using CrmSecurity.Samples.Crm;
using CrmSecurity.Crypto.EntityFramework;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using CrmSecurity.Samples.Crm.Security;
using CrmSecurity.CrmAuthorization;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.EntityFrameworkCore;

var builder = WebApplication.CreateBuilder(args);
var service = builder.Configuration["Crm:Service"] ?? "http://localhost:5080";
var dataDirectory = Path.GetFullPath(builder.Configuration["Crm:DataDirectory"] ?? "data", builder.Environment.ContentRootPath);

var feed = builder.Configuration.GetSection("Crm:Events").Get<EventFeedOptions>() ?? new EventFeedOptions();
feed.Endpoint ??= $"{service}/analyzer/events";
feed.TokenEndpoint ??= $"{service}/connect/token";
feed.ClientId ??= builder.Configuration["Crm:ClientId"] ?? "demo-crm";
feed.ClientSecret ??= builder.Configuration["Crm:ClientSecret"];
feed.Tenant ??= builder.Configuration["Crm:Tenant"] ?? "demo";
builder.Services.AddSingleton(feed);
builder.Services.AddSingleton(new EventFeedIdentity(feed.ClientId, feed.Tenant));
builder.Services.AddSingleton(sp => new AccessEventSender(feed, new HttpClient { Timeout = TimeSpan.FromSeconds(30) }, sp.GetRequiredService<ILogger<AccessEventSender>>()));
builder.Services.AddHostedService(sp => sp.GetRequiredService<AccessEventSender>());

builder.Services.AddSingleton(sp => SampleCrypto.Open(
    dataDirectory, builder.Environment.IsDevelopment(), sp.GetRequiredService<AccessEventSender>(), sp.GetRequiredService<ILoggerFactory>().CreateLogger("Crypto")));
// Every encrypted value a query reads is checked for the signed-in user before it is decrypted, and each decrypt (or
// refusal) is an access event sent to the analyzer with the others.
builder.Services.AddHttpContextAccessor();
builder.Services.AddScoped<ContactDecryptAuthorizer>();
builder.Services.AddDbContext<CrmDbContext>((sp, options) => options
    .UseSqlite($"Data Source={Path.Combine(dataDirectory, "crm.db")}")
    .UseFieldEncryption(sp.GetRequiredService<FieldEncryption>(), tenant: () => feed.Tenant, sp.GetRequiredService<ContactDecryptAuthorizer>()));

// The authorization model comes from the service's decision API (profiles cached per user and perm_ver).
builder.Services.AddCrmAuthorization(options =>
{
    options.Issuer = new Uri(service.TrimEnd('/') + "/");
    options.ClientId = builder.Configuration["Crm:ClientId"] ?? "demo-crm";
    options.ClientSecret = builder.Configuration["Crm:ClientSecret"];
    options.RequireHttps = !builder.Environment.IsDevelopment() && !builder.Environment.IsEnvironment("Testing");
    // How soon a model change or a finding opened or closed reaches this app (cached profiles and checks).
    options.ProfileRevalidation = builder.Configuration.GetValue("Crm:ProfileRevalidation", options.ProfileRevalidation);
});
builder.Services.AddSingleton<ContactAccess>();
builder.Services.AddSingleton<BackchannelLogoutReceiver>();
builder.Services.AddAuthentication(options =>
    {
        options.DefaultScheme = CookieAuthenticationDefaults.AuthenticationScheme;
        options.DefaultChallengeScheme = OpenIdConnectDefaults.AuthenticationScheme;
    })
    .AddCookie(options =>
    {
        options.Cookie.Name = "crm-sample";
        options.Cookie.SameSite = SameSiteMode.Lax;
        // Sessions the service ended by a back-channel logout token are over here too.
        options.Events.OnValidatePrincipal = context => context.HttpContext.RequestServices.GetRequiredService<BackchannelLogoutReceiver>().ValidateAsync(context);
        // 403 in place, not a redirect to an access-denied page this sample does not have; a refused export is an access
        // event like a done one.
        options.Events.OnRedirectToAccessDenied = context =>
        {
            var http = context.HttpContext;
            if (http.Request.Path.StartsWithSegments("/contacts/export", StringComparison.OrdinalIgnoreCase))
            {
                http.RequestServices.GetRequiredService<AccessEventSender>().Write(new AccessEvent
                {
                    UserId = Program.UserId(http.User), UserName = http.User.Identity?.Name, Action = "export", Entity = "contact", RecordCount = 0, Outcome = "denied",
                    SourceIp = http.Connection.RemoteIpAddress?.ToString()
                });
            }

            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync("Not allowed: your roles, or an open finding about you, do not allow this.", http.RequestAborted);
        };
    })
    .AddOpenIdConnect(options =>
    {
        // Nothing here is specific to our service: the stock handler against its discovery document.
        options.Authority = service;
        options.RequireHttpsMetadata = service.StartsWith("https:", StringComparison.Ordinal) || !(builder.Environment.IsDevelopment() || builder.Environment.IsEnvironment("Testing"));
        options.ClientId = builder.Configuration["Crm:ClientId"] ?? "demo-crm";
        options.ClientSecret = builder.Configuration["Crm:ClientSecret"];
        options.ResponseType = "code";
        options.UsePkce = true;
        options.SaveTokens = true;
        options.GetClaimsFromUserInfoEndpoint = true;
        options.MapInboundClaims = false;
        if (!options.RequireHttpsMetadata)
        {
            // Plain-HTTP development only: the correlation and nonce cookies are SameSite=None; Secure by default, which a
            // client on http:// other than a browser's localhost exception never sends back.
            options.CorrelationCookie.SecurePolicy = options.NonceCookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            options.CorrelationCookie.SameSite = options.NonceCookie.SameSite = SameSiteMode.Lax;
        }

        options.TokenValidationParameters.NameClaimType = "preferred_username";
        options.TokenValidationParameters.RoleClaimType = "role";
        foreach (var scope in (builder.Configuration["Crm:Scopes"] ?? "openid profile email roles offline_access").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            options.Scope.Add(scope);
        }
    });
builder.Services.AddAuthorization(options =>
{
    options.FallbackPolicy = options.DefaultPolicy;
    // Through AddCrmAuthorization's handler: the privilege, then the service's check, which may refuse (an open finding) or
    // oblige a step-up; a user who has not stepped up is sent back to the service for a second factor before the page runs.
    options.AddPolicy("contact:read", policy => policy.RequireAuthenticatedUser().AddRequirements(new CrmPermissionRequirement(ContactAccess.Entity, CrmAction.Read)));
    options.AddPolicy("contact:export", policy => policy.RequireAuthenticatedUser().AddRequirements(new CrmPermissionRequirement(ContactAccess.Entity, CrmAction.Export)));
});
builder.Services.AddRazorPages(options =>
{
    options.Conventions.AuthorizeFolder("/Contacts", "contact:read");
    options.Conventions.AuthorizePage("/Contacts/Export", "contact:export");
});

var app = builder.Build();
using (var scope = app.Services.CreateScope())
{
    var db = scope.ServiceProvider.GetRequiredService<CrmDbContext>();
    await db.Database.EnsureCreatedAsync();
    await SampleData.SeedAsync(db, builder.Configuration.GetValue("Crm:SeedContacts", 200), CancellationToken.None);
}

app.UseStaticFiles();
app.UseAuthentication();
app.UseAuthorization();
// Rows are decrypted synchronously as they are read, so the user's access profile is loaded before any page runs.
app.Use(async (context, next) =>
{
    await ContactDecryptAuthorizer.LoadProfileAsync(context, context.RequestServices.GetRequiredService<ContactAccess>());
    await next(context);
});
app.MapRazorPages();
// OpenID Connect Back-Channel Logout 1.0 §2.5: the service POSTs here, server to server, without a cookie or a form token.
app.MapPost("/backchannel-logout", (HttpContext http, BackchannelLogoutReceiver receiver) => receiver.ReceiveAsync(http))
    .AllowAnonymous().DisableAntiforgery();
app.MapGet("/signout", async (HttpContext http) =>
{
    await http.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
    await http.SignOutAsync(OpenIdConnectDefaults.AuthenticationScheme, new() { RedirectUri = "/" });
});

app.Lifetime.ApplicationStarted.Register(() => Log.Started(app.Logger, string.Join(", ", app.Urls), service));
await app.RunAsync();

/// <summary>The test host's entry point.</summary>
public partial class Program
{
    /// <summary>The signed-in user's id (<c>sub</c>), for access events.</summary>
    internal static string UserId(ClaimsPrincipal user) => user.FindFirst("sub")?.Value ?? "anonymous";
}
