using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Incident;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Demo;

/// <summary>
/// Demo mode: on an empty database, seeds four users (one per CRM role), the confidential client
/// <c>demo-crm</c>, the public client <c>demo-spa</c> and a security-operations client, and prints the
/// sign-ins. Refused in Production by <see cref="IdentitySettingsValidator"/>.
/// </summary>
internal sealed partial class DemoSeeder(IServiceScopeFactory scopes, IOptions<IdentitySettings> settings, ILogger<DemoSeeder> logger) : IHostedService
{
    internal static readonly DemoUser[] Users =
    [
        new("alice", "Alice Sales", "alice@demo.example", "sales_rep", "Sales West", "Alice-Sells-Widgets-42"),
        new("bob", "Bob Manager", "bob@demo.example", "sales_manager", "Sales West", "Bob-Manages-The-Team-42"),
        new("carol", "Carol Auditor", "carol@demo.example", "auditor", "Compliance", "Carol-Reads-The-Logs-42"),
        new("dave", "Dave Security", "dave@demo.example", "security_admin", "Security", "Dave-Guards-The-Keys-42"),
    ];

    internal static readonly ClientSettings[] Clients =
    [
        new()
        {
            ClientId = "demo-crm",
            DisplayName = "Demo CRM",
            ClientSecret = "demo-crm-secret",
            GrantTypes = ["authorization_code", "client_credentials", "refresh_token", GrantTypes.TokenExchange],
            Scopes = [Scopes.OpenId, Scopes.Profile, Scopes.Email, "roles", Scopes.OfflineAccess, "crm.api", "crm.reports"],
            RedirectUris = ["http://localhost:5081/signin-oidc", "http://127.0.0.1:5081/signin-oidc"],
            PostLogoutRedirectUris = ["http://localhost:5081/signout-callback-oidc", "http://127.0.0.1:5081/signout-callback-oidc"],
            FirstParty = true,
        },
        new()
        {
            ClientId = "demo-spa",
            DisplayName = "Demo single-page app",
            GrantTypes = ["authorization_code", "refresh_token"],
            Scopes = [Scopes.OpenId, Scopes.Profile, Scopes.Email, "roles", Scopes.OfflineAccess, "crm.api"],
            RedirectUris = ["http://localhost:5082/callback", "http://127.0.0.1:5082/callback"],
            PostLogoutRedirectUris = ["http://localhost:5082/", "http://127.0.0.1:5082/"],
            FirstParty = false,
        },
        new()
        {
            ClientId = "demo-secops",
            DisplayName = "Demo security operations",
            ClientSecret = "demo-secops-secret",
            GrantTypes = ["client_credentials"],
            Scopes = [IncidentEndpoints.AdminScope],
        },
    ];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!settings.Value.DemoMode)
        {
            return;
        }

        await using var scope = scopes.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var store = services.GetRequiredService<IdentityStore>();
        var applications = services.GetRequiredService<IOpenIddictApplicationManager>();
        if (await store.Users.AnyAsync(cancellationToken) || await applications.CountAsync(cancellationToken) > 0)
        {
            LogAlreadySeeded(logger);
            return;
        }

        var users = services.GetRequiredService<UserManager<CrmUser>>();
        var roles = services.GetRequiredService<RoleManager<IdentityRole>>();
        foreach (var demo in Users)
        {
            if (!await roles.RoleExistsAsync(demo.Role))
            {
                await roles.CreateAsync(new IdentityRole(demo.Role));
            }

            var user = new CrmUser
            {
                UserName = demo.UserName,
                DisplayName = demo.DisplayName,
                Email = demo.Email,
                EmailConfirmed = true,
                Tenant = "demo",
                BusinessUnit = demo.BusinessUnit,
            };
            Check(await users.CreateAsync(user, demo.Password), demo.UserName);
            Check(await users.AddToRoleAsync(user, demo.Role), demo.UserName);
        }

        var registry = services.GetRequiredService<ClientRegistry>();
        foreach (var client in Clients)
        {
            await registry.RegisterAsync(client, cancellationToken);
        }

        Console.WriteLine("Demo mode: seeded an empty database. Sign in at /account/login with:");
        foreach (var demo in Users)
        {
            Console.WriteLine($"  {demo.UserName,-6} {demo.Password,-26} role {demo.Role}");
        }

        Console.WriteLine("  clients: demo-crm (secret demo-crm-secret), demo-spa (public, PKCE), demo-secops (secret demo-secops-secret, scope identity.admin)");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static void Check(IdentityResult result, string userName)
    {
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"Demo user '{userName}' could not be created: {string.Join("; ", result.Errors.Select(e => e.Description))}");
        }
    }

    [LoggerMessage(EventId = 4300, Level = LogLevel.Information, Message = "Demo mode: the database already holds users or clients, so nothing was seeded")]
    private static partial void LogAlreadySeeded(ILogger logger);

    internal sealed record DemoUser(string UserName, string DisplayName, string Email, string Role, string BusinessUnit, string Password);
}
