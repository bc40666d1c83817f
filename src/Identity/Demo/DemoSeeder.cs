using System.Security.Cryptography;
using System.Text;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Incident;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Demo;

/// <summary>
/// Demo mode: on an empty database, seeds an organisation to try the model on (business units, teams, a business-unit
/// limited admin role, users with roles, field security profiles and a manager), an application user for the
/// security-operations client, and the clients <c>demo-crm</c>, <c>demo-spa</c> and <c>demo-secops</c>; then prints
/// the sign-ins. Everything goes through the audited change pipeline. Refused in Production by <see cref="IdentitySettingsValidator"/>.
/// </summary>
internal sealed partial class DemoSeeder(IServiceScopeFactory scopes, IOptions<IdentitySettings> settings, ILogger<DemoSeeder> logger) : IHostedService, IDemoSeeding
{
    public const string WestAdminRole = "west_user_admin";
    public const string SecOpsApplicationUser = "demo-secops-app";

    /// <summary>Whether this start seeded an empty database (other demo data, such as access history, follows only then).</summary>
    public bool SeededThisStart { get; private set; }

    internal static readonly DemoUnit[] Units =
    [
        new("sales", "Sales", null),
        new("sales-west", "Sales West", "sales"),
        new("sales-east", "Sales East", "sales"),
        new("support", "Customer Support", null),
        new("marketing", "Marketing", null),
        new("finance", "Finance", null),
        new("compliance", "Compliance", null),
        new("security", "IT Security", null),
    ];

    internal static readonly DemoUser[] Users =
    [
        new("bob", "Bob Manager", "bob@demo.example", ["sales_manager"], "sales-west", "Bob-Manages-The-Team-42", Zone: "America/Los_Angeles"),
        new("alice", "Alice Sales", "alice@demo.example", ["sales_rep"], "sales-west", "Alice-Sells-Widgets-42", Manager: "bob", Zone: "America/Los_Angeles"),
        new("ed", "Ed East", "ed@demo.example", ["sales_rep"], "sales-east", "Ed-Sells-In-The-East-42", Zone: "America/New_York"),
        new("carol", "Carol Auditor", "carol@demo.example", ["auditor"], "compliance", "Carol-Reads-The-Logs-42", Zone: "Europe/London"),
        new("dave", "Dave Security", "dave@demo.example", ["security_admin"], "security", "Dave-Guards-The-Keys-42", Profiles: ["all_secured_fields"], Zone: "Europe/Berlin"),
        new("erin", "Erin Support", "erin@demo.example", ["support_agent"], "support", "Erin-Solves-Cases-42", Profiles: ["support_contact_details"], Zone: "Europe/Dublin"),
        new("frank", "Frank Finance", "frank@demo.example", ["finance"], "finance", "Frank-Counts-Money-42", Profiles: ["finance_banking"], Zone: "Europe/Paris"),
        new("grace", "Grace Marketing", "grace@demo.example", ["marketing"], "marketing", "Grace-Runs-Campaigns-42", Profiles: ["marketing_contact_details"], Zone: "America/Chicago"),
        new("wade", "Wade West Admin", "wade@demo.example", [WestAdminRole], "sales-west", "Wade-Admins-The-West-42", Profiles: ["sales_contact_details"], Zone: "America/Denver"),
    ];

    internal static readonly DemoTeam[] Teams =
    [
        new("west-sales", "Sales West team", "sales-west", ["alice", "bob"], [], ["sales_contact_details"]),
        new("east-sales", "Sales East team", "sales-east", ["ed"], [], ["sales_contact_details"]),
    ];

    internal static readonly ClientSettings[] Clients =
    [
        new()
        {
            ClientId = "demo-crm",
            DisplayName = "Demo CRM",
            ClientSecret = "demo-crm-secret",
            GrantTypes = ["authorization_code", "client_credentials", "refresh_token", GrantTypes.TokenExchange],
            Scopes = [Scopes.OpenId, Scopes.Profile, Scopes.Email, "roles", Scopes.OfflineAccess, "crm.api", "crm.reports", "events:write", "authz.decide"],
            RedirectUris = ["http://localhost:5081/signin-oidc", "http://127.0.0.1:5081/signin-oidc"],
            PostLogoutRedirectUris = ["http://localhost:5081/signout-callback-oidc", "http://127.0.0.1:5081/signout-callback-oidc"],
            FirstParty = true,
            Tenants = ["demo"],
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
            Tenants = ["demo"],
        },
        new()
        {
            ClientId = "demo-secops",
            DisplayName = "Demo security operations",
            ClientSecret = "demo-secops-secret",
            GrantTypes = ["client_credentials"],
            Scopes = [IncidentEndpoints.AdminScope],
            Tenants = ["demo"],
        },
        new()
        {
            ClientId = "demo-audit",
            DisplayName = "Demo audit tool",
            ClientSecret = "demo-audit-secret",
            GrantTypes = ["client_credentials"],
            Scopes = ["findings:read"],
            Tenants = ["demo"],
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
        var refused = await services.GetRequiredService<ModelChanges>().ApplyAsync(AdminActor.System("demo mode"), async context =>
        {
            var root = context.Before.BusinessUnits[context.Before.RootBusinessUnit].Id;
            foreach (var unit in Units)
            {
                store.BusinessUnits.Add(new() { Id = unit.Id, Name = unit.Name, ParentId = unit.Parent ?? root });
            }

            // A business-unit limited admin: creates and manages users and teams of Sales West only (a Dynamics 365
            // business-unit administrator's User privileges at business-unit depth), and holds the sales manager's
            // privileges so that it can hand out the sales roles (nobody grants what they do not hold).
            var salesManager = context.Before.Roles[context.Before.RoleIndex("sales_manager")];
            store.CrmRoles.Add(new() { Id = WestAdminRole, Name = "Sales West user administrator", Description = "Creates and manages the users and teams of its own business unit; holds the sales manager's privileges to hand them out." });
            store.RolePrivileges.AddRange(salesManager.Definition.Privileges.Select(p => new RolePrivilegeRecord { RoleId = WestAdminRole, Entity = p.Entity, Action = p.Action.Name(), Depth = p.Depth.Name() }));
            store.RolePrivileges.AddRange(
            [
                Privilege("system_user", CrmAction.Create, Depth.BusinessUnit),
                Privilege("system_user", CrmAction.Read, Depth.BusinessUnit),
                Privilege("system_user", CrmAction.Update, Depth.BusinessUnit),
                Privilege("system_user", CrmAction.Assign, Depth.BusinessUnit),
                Privilege("team", CrmAction.Read, Depth.BusinessUnit),
                Privilege("team", CrmAction.Assign, Depth.BusinessUnit),
                Privilege("security_role", CrmAction.Read, Depth.Organization),
                Privilege("field_security_profile", CrmAction.Read, Depth.Organization),
                Privilege("business_unit", CrmAction.Read, Depth.Organization),
            ]);
            await store.SaveChangesAsync(cancellationToken);

            var ids = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var demo in Users)
            {
                var user = new CrmUser
                {
                    Id = DemoUserId(demo.UserName),
                    UserName = demo.UserName,
                    DisplayName = demo.DisplayName,
                    Email = demo.Email,
                    EmailConfirmed = true,
                    Tenant = "demo",
                    BusinessUnit = demo.BusinessUnit,
                    ManagerId = demo.Manager is null ? null : ids[demo.Manager],
                    ZoneInfo = demo.Zone,
                };
                Check(await users.CreateAsync(user, demo.Password), demo.UserName);
                ids[demo.UserName] = user.Id;
                store.CrmUserRoles.AddRange(demo.Roles.Select(role => new UserRoleRecord { UserId = user.Id, RoleId = role }));
                store.UserFieldProfiles.AddRange((demo.Profiles ?? []).Select(profile => new UserFieldProfileRecord { UserId = user.Id, ProfileId = profile }));
            }

            // Admin calls made with demo-secops's own tokens act as this application user (no password: it cannot sign in).
            var application = new CrmUser
            {
                UserName = SecOpsApplicationUser,
                DisplayName = "Demo security operations (application user)",
                Email = "secops-app@demo.example",
                Tenant = "demo",
                BusinessUnit = root,
                ApplicationClientId = "demo-secops",
            };
            Check(await users.CreateAsync(application), SecOpsApplicationUser);
            store.CrmUserRoles.Add(new() { UserId = application.Id, RoleId = "security_admin" });
            store.UserFieldProfiles.Add(new() { UserId = application.Id, ProfileId = "all_secured_fields" });

            foreach (var team in Teams)
            {
                store.Teams.Add(new() { Id = team.Id, Name = team.Name, BusinessUnitId = team.BusinessUnit });
                store.TeamMembers.AddRange(team.Members.Select(member => new TeamMemberRecord { TeamId = team.Id, UserId = ids[member] }));
                store.TeamRoles.AddRange(team.Roles.Select(role => new TeamRoleRecord { TeamId = team.Id, RoleId = role }));
                store.TeamFieldProfiles.AddRange(team.Profiles.Select(profile => new TeamFieldProfileRecord { TeamId = team.Id, ProfileId = profile }));
            }

            context.Audit(new AuditChange("demo.seed", "organization", root, context.Before.Organization.Name, null, new
            {
                business_units = Units.Select(u => u.Id),
                users = Users.Select(u => u.UserName).Append(SecOpsApplicationUser),
                teams = Teams.Select(t => t.Id),
                roles = new[] { WestAdminRole },
            }, Summary: "demo organisation seeded"));
            return null;
        }, cancellationToken);
        if (refused is not null)
        {
            throw new InvalidOperationException($"Demo mode could not seed the model: {refused.Detail}");
        }

        var registry = services.GetRequiredService<ClientRegistry>();
        foreach (var client in Clients)
        {
            await registry.RegisterAsync(client, cancellationToken);
        }

        SeededThisStart = true;
        Console.WriteLine("Demo mode: seeded an empty database. Sign in at /account/login (admin pages at /admin) with:");
        foreach (var demo in Users)
        {
            Console.WriteLine($"  {demo.UserName,-6} {demo.Password,-26} role {string.Join(", ", demo.Roles)} in {demo.BusinessUnit}, time zone {demo.Zone}");
        }

        Console.WriteLine("  clients: demo-crm (secret demo-crm-secret), demo-spa (public, PKCE), demo-secops (secret demo-secops-secret, scope identity.admin), demo-audit (secret demo-audit-secret, scope findings:read); demo-crm may also send events (scope events:write)");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Demo users get stable ids, name-based (SHA-256, laid out as an RFC 9562 §5.8 version-8 UUID), so that sample
    /// data (samples/Crm) can name its records' owners before the service's database exists.
    /// </summary>
    internal static string DemoUserId(string userName)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("crm-security/demo-user/" + userName));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }

    private static RolePrivilegeRecord Privilege(string entity, CrmAction action, Depth depth) =>
        new() { RoleId = WestAdminRole, Entity = entity, Action = action.Name(), Depth = depth.Name() };

    private static void Check(IdentityResult result, string userName)
    {
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"Demo user '{userName}' could not be created: {string.Join("; ", result.Errors.Select(e => e.Description))}");
        }
    }

    [LoggerMessage(EventId = 4300, Level = LogLevel.Information, Message = "Demo mode: the database already holds users or clients, so nothing was seeded")]
    private static partial void LogAlreadySeeded(ILogger logger);

    internal sealed record DemoUnit(string Id, string Name, string? Parent);

    /// <summary>A demo user; <paramref name="Zone"/> is the IANA time zone the demo history's working hours follow.</summary>
    internal sealed record DemoUser(string UserName, string DisplayName, string Email, string[] Roles, string BusinessUnit, string Password, string? Manager = null, string[]? Profiles = null, string Zone = "UTC");

    internal sealed record DemoTeam(string Id, string Name, string BusinessUnit, string[] Members, string[] Roles, string[] Profiles);
}
