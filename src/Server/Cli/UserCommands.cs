using System.CommandLine;
using System.Globalization;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Server.Hosting;

namespace CrmSecurity.Server.Cli;

/// <summary>
/// <c>users create-admin --user-name NAME --email EMAIL</c>: the first security administrator of an installation without
/// demo mode. A thin adapter: Identity decides, writes the audited change and makes the link (<see cref="IFirstAdministrator"/>).
/// </summary>
internal static class UserCommands
{
    /// <summary>Refused: the installation already has a security administrator.</summary>
    public const int AdministratorExists = ExitCodes.Failure;

    public static Command Create()
    {
        var userName = new Option<string>("--user-name") { Description = "The administrator's sign-in name.", Required = true };
        var email = new Option<string>("--email") { Description = "The administrator's e-mail address (later password resets go there).", Required = true };
        var createAdmin = new Command("create-admin", "Create the first security administrator on a database that has none, and print a one-time " +
            "link (valid for Identity:Passwords:ResetLinkLifetime, 24 h by default) on which they choose their password. Refused (exit 1) once " +
            "anyone is a security administrator. Needs Identity:Issuer, the service's public address, which the link names.")
        {
            userName,
            email,
        };
        createAdmin.SetAction((parse, cancellationToken) => CliHost.RunAsync(IdentityHosting.CreateVerbBuilder(), async (services, token) =>
        {
            // The audit trail names the command line (and the account that ran it), not a person of the model: nobody is yet.
            var actor = $"command line: users create-admin (OS user {Environment.UserName})";
            var result = await services.GetRequiredService<IFirstAdministrator>().CreateAsync(parse.GetValue(userName)!, parse.GetValue(email)!, actor, token);
            switch (result.Outcome)
            {
                case FirstAdministratorOutcome.Created:
                    // The link goes to stdout only, for the person who ran the verb to hand over; it holds a reset token, never
                    // a password, and nothing of it is logged.
                    Console.WriteLine(result.Message);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"Give them this one-time link to choose a password; it works until {result.SetupLinkExpires!.Value.UtcDateTime:yyyy-MM-dd HH:mm} UTC:"));
                    Console.WriteLine(result.SetupLink!.AbsoluteUri);
                    return ExitCodes.Success;
                case FirstAdministratorOutcome.AdministratorExists:
                    Console.Error.WriteLine(result.Message);
                    return AdministratorExists;
                case FirstAdministratorOutcome.NotConfigured:
                    // A missing setting is a configuration error, like every other one the host reports (EX_CONFIG).
                    Console.Error.WriteLine(result.Message);
                    return ExitCodes.Configuration;
                default:
                    Console.Error.WriteLine(result.Message);
                    return ExitCodes.Usage;
            }
        }, cancellationToken));

        return new Command("users", "People of the Identity module.") { createAdmin };
    }
}
