using System.CommandLine;
using CrmSecurity.Crypto.Cli;
using CrmSecurity.Server.Cli;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// The host's verbs (key management, log analysis, ...). Each module contributes its commands here;
/// the web service itself runs when no verb is given.
/// </summary>
internal static class CommandLine
{
    public static RootCommand Create()
    {
        var root = new RootCommand("CRM security service: identity, field encryption and access-log analysis.");
        root.Add(Serve());
        root.Add(SigningKeyCommands.Create());
        root.Add(UserCommands.Create());
        root.Add(ClientCommands.Create());
        foreach (var command in CryptoCommands.Create(new CryptoCliHost { CreateBuilder = CryptoHosting.CreateVerbBuilder, Run = CliHost.RunAsync }))
        {
            root.Add(command);
        }

        root.Add(AuditCommands.Create());
        foreach (var command in AuditAnalyzerHosting.Commands())
        {
            root.Add(command);
        }

        return root;
    }

    /// <summary>
    /// <c>serve</c> runs the web host, which reads its own switches (<c>--urls</c>, any <c>--Section:Key=value</c>): the
    /// options here are only for its help, and other switches are left to the host.
    /// </summary>
    private static Command Serve()
    {
        var serve = new Command("serve", "Run the web service (the default when no verb is given). Host switches follow; " +
            "any setting can also be given as --Section:Key=value (e.g. --Identity:Issuer=https://login.example.com/).")
        {
            new Option<string>("--urls") { Description = "Where to listen, e.g. http://0.0.0.0:8080 (several separated by ';'). Default: http://localhost:5000, or the launch profile's address under dotnet run." },
            new Option<string>("--environment") { Description = "Development, Production (the default) or another name; appsettings.{Environment}.json is read too." },
            new Option<string>("--contentRoot") { Description = "Where appsettings.json is read from. Default: next to the executable." },
        };
        serve.TreatUnmatchedTokensAsErrors = false;
        return serve;
    }

    /// <summary>True when the arguments name a verb other than <c>serve</c>, or ask for help (also <c>serve --help</c>).</summary>
    public static bool IsVerb(string[] args)
    {
        if (args.Length == 0)
        {
            return false;
        }

        if (IsHelp(args[0]) || args[0] == "--version")
        {
            return true;
        }

        // The web host would take --help for a setting and start the service instead of explaining it.
        if (args[0] == "serve")
        {
            return args.Skip(1).Any(IsHelp);
        }

        return Create().Subcommands.Any(command => command.Name == args[0]);
    }

    private static bool IsHelp(string argument) => argument is "-h" or "--help" or "-?";

    public static string[] HostArguments(string[] args) => args.Length > 0 && args[0] == "serve" ? args[1..] : args;

    public static Task<int> InvokeAsync(string[] args) => Create().Parse(args).InvokeAsync();
}
