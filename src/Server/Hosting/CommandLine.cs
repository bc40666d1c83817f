using System.CommandLine;
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
        root.Add(new Command("serve", "Run the web service (the default when no verb is given). Host switches such as --urls follow."));
        root.Add(SigningKeyCommands.Create());
        root.Add(KeyCommands.Create());
        root.Add(ReencryptCommand.Create());
        root.Add(AuditCommands.Create());
        foreach (var command in AuditAnalyzerHosting.Commands())
        {
            root.Add(command);
        }

        return root;
    }

    /// <summary>True when the arguments name a verb other than <c>serve</c>, or ask for help.</summary>
    public static bool IsVerb(string[] args)
    {
        if (args.Length == 0)
        {
            return false;
        }

        if (args[0] is "-h" or "--help" or "-?" or "--version")
        {
            return true;
        }

        return args[0] != "serve" && Create().Subcommands.Any(command => command.Name == args[0]);
    }

    public static string[] HostArguments(string[] args) => args.Length > 0 && args[0] == "serve" ? args[1..] : args;

    public static Task<int> InvokeAsync(string[] args) => Create().Parse(args).InvokeAsync();
}
