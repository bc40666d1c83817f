using System.CommandLine;
using System.Globalization;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Server.Hosting;

namespace CrmSecurity.Server.Cli;

/// <summary>
/// <c>clients list | create | rotate-secret | delete</c>: OIDC clients managed at run time from the command line. A thin
/// adapter: Identity validates, writes the audited change (naming the command line and the OS account as the actor) and
/// makes secrets (<see cref="IClientAdministration"/>), exactly as for the admin API and pages.
/// </summary>
internal static class ClientCommands
{
    public static Command Create() => new("clients", "OIDC clients registered with Identity (those of Identity:Clients are changed in configuration).")
    {
        List(),
        CreateClient(),
        RotateSecret(),
        Delete(),
    };

    private static Command List()
    {
        var list = new Command("list", "Every registered client: id, type, who manages it (configuration or admin), grants, scopes, redirect URIs. No secrets.");
        list.SetAction((parse, cancellationToken) => Run(async (clients, token) =>
        {
            foreach (var client in await clients.ListAsync(token))
            {
                Console.WriteLine(string.Join('\t', client.ClientId, client.ClientType, client.ManagedBy,
                    "grants=" + string.Join(',', client.GrantTypes), "scopes=" + string.Join(',', client.Scopes), "redirect_uris=" + string.Join(',', client.RedirectUris)));
            }

            return ExitCodes.Success;
        }, cancellationToken));
        return list;
    }

    private static Command CreateClient()
    {
        var clientId = new Option<string>("--client-id") { Description = "The client id (letters, digits, '_', '-', '.').", Required = true };
        var displayName = new Option<string?>("--display-name") { Description = "Shown on the consent page (default: the client id)." };
        var isPublic = new Option<bool>("--public") { Description = "A public client (browser or native app): no secret. Default: confidential, with a secret printed once." };
        var thirdParty = new Option<bool>("--third-party") { Description = "Ask users for consent (default: first party, no consent page)." };
        var grants = Repeatable("--grant", "A grant: authorization_code, refresh_token, client_credentials, device_code or token_exchange; repeatable.");
        var scopes = Repeatable("--scope", "A scope this server knows; repeatable.");
        var redirects = Repeatable("--redirect-uri", "An exact redirect URI (https, or a public client's http://127.0.0.1 loopback); repeatable.");
        var logouts = Repeatable("--post-logout-redirect-uri", "An exact post-logout redirect URI; repeatable.");
        var par = new Option<bool>("--require-par") { Description = "The client must push its authorization requests (RFC 9126)." };
        var create = new Command("create", "Register a client. A confidential client's secret is printed once, on stdout; only its hash is kept.")
        {
            clientId, displayName, isPublic, thirdParty, grants, scopes, redirects, logouts, par,
        };
        create.SetAction((parse, cancellationToken) => Run(async (clients, token) =>
        {
            var registration = new ClientRegistration(parse.GetValue(clientId)!, parse.GetValue(displayName), !parse.GetValue(isPublic), !parse.GetValue(thirdParty),
                parse.GetValue(grants) ?? [], parse.GetValue(scopes) ?? [], parse.GetValue(redirects) ?? [], parse.GetValue(logouts) ?? [], parse.GetValue(par));
            var result = await clients.CreateAsync(registration, Actor("clients create"), token);
            return Report(result);
        }, cancellationToken));
        return create;
    }

    private static Command RotateSecret()
    {
        var clientId = new Argument<string>("client-id") { Description = "The confidential client whose secret is replaced." };
        var overlap = new Option<string?>("--overlap") { Description = "How long the old secret keeps working: 0, 30m, 12h, 1d (default 1d, at most 30d)." };
        var rotate = new Command("rotate-secret", "Give a confidential client a new secret, printed once; the old one works until the overlap ends.") { clientId, overlap };
        rotate.SetAction((parse, cancellationToken) => Run(async (clients, token) =>
            Report(await clients.RotateSecretAsync(parse.GetValue(clientId)!, parse.GetValue(overlap), Actor("clients rotate-secret"), token)), cancellationToken));
        return rotate;
    }

    private static Command Delete()
    {
        var clientId = new Argument<string>("client-id") { Description = "The client to delete (made at run time; configuration's are removed there)." };
        var delete = new Command("delete", "Delete a client: every token it holds is revoked first.") { clientId };
        delete.SetAction((parse, cancellationToken) => Run(async (clients, token) =>
            Report(await clients.DeleteAsync(parse.GetValue(clientId)!, Actor("clients delete"), token)), cancellationToken));
        return delete;
    }

    private static Option<string[]> Repeatable(string name, string description) => new(name) { Description = description, AllowMultipleArgumentsPerToken = false };

    /// <summary>The audit trail names the command line and the account that ran it: no person of the model acts here.</summary>
    private static string Actor(string verb) => $"command line: {verb} (OS user {Environment.UserName})";

    private static Task<int> Run(Func<IClientAdministration, CancellationToken, Task<int>> verb, CancellationToken cancellationToken) =>
        CliHost.RunAsync(IdentityHosting.CreateVerbBuilder(), async (services, token) =>
        {
            await using var scope = services.CreateAsyncScope();
            return await verb(scope.ServiceProvider.GetRequiredService<IClientAdministration>(), token);
        }, cancellationToken);

    private static int Report(ClientAdministrationResult result)
    {
        if (result.Outcome != ClientAdministrationOutcome.Done)
        {
            Console.Error.WriteLine(result.Message);
            return result.Outcome == ClientAdministrationOutcome.Refused ? ExitCodes.Usage : ExitCodes.Failure;
        }

        Console.WriteLine(result.Message);
        if (result.ClientSecret is { } secret)
        {
            // Stdout only, for the person who ran the verb to hand to the client's operator; nothing of it is logged.
            Console.WriteLine("Client secret (shown this once; only its hash is kept):");
            Console.WriteLine(secret);
        }

        if (result.PreviousSecretValidUntil is { } until)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"The old secret keeps working until {until.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC."));
        }

        return ExitCodes.Success;
    }
}
