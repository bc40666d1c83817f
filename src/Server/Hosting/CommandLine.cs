using System.CommandLine;
using System.Globalization;
using CrmSecurity.Identity;
using CrmSecurity.Identity.Data;
using CrmSecurity.Identity.Keys;
using CrmSecurity.Server.Data;

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
        root.Add(SigningKeys());
        return root;
    }

    /// <summary><c>signing-keys rotate [--now]</c> and <c>signing-keys list</c>: the Identity module's key ring.</summary>
    private static Command SigningKeys()
    {
        var now = new Option<bool>("--now")
        {
            Description = "Sign with the new key at once instead of after Identity:SigningKeys:PublishLead. " +
                "Only for a suspected key compromise: resource servers that cached the old key set reject new tokens until they refresh it.",
        };
        var rotate = new Command("rotate", "Create a new key generation. It is published in JWKS at once and signs after the publish lead.") { now };
        rotate.SetAction((parse, cancellationToken) => RunWithIdentityAsync(async (services, token) =>
        {
            var ring = services.GetRequiredService<SigningKeyRing>();
            var generation = await ring.RotateAsync(parse.GetValue(now), token);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Created signing-key generation {generation}."));
            Print(ring);
            return ExitCodes.Success;
        }, cancellationToken));

        var list = new Command("list", "Show the key generations, which one signs, and which are still published.");
        list.SetAction((_, cancellationToken) => RunWithIdentityAsync((services, _) =>
        {
            Print(services.GetRequiredService<SigningKeyRing>());
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));

        return new Command("signing-keys", "Manage the Identity module's token signing keys.") { rotate, list };
    }

    private static Task<int> RunWithIdentityAsync(Func<IServiceProvider, CancellationToken, Task<int>> verb, CancellationToken cancellationToken)
    {
        var builder = CliHost.CreateBuilder();
        builder.AddIdentity(DatabaseSetup.Configure);
        builder.Services.AddSingleton(new ModuleSchema("identity", typeof(IdentityStore), 1));
        return CliHost.RunAsync(builder, verb, cancellationToken);
    }

    private static void Print(SigningKeyRing ring)
    {
        var current = ring.Current.Number;
        var published = ring.Published.Select(g => g.Number).ToHashSet();
        Console.WriteLine("generation  state      signs from (UTC)          key ids");
        foreach (var generation in ring.Generations)
        {
            var state = generation.Number == current ? "signing"
                : generation.Number > current ? "next"
                : published.Contains(generation.Number) ? "retiring" : "retired";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{generation.Number,10}  {state,-9}  {generation.ActivatesAt.UtcDateTime,-24:yyyy-MM-dd HH:mm:ss}  {generation.Es256.Key.KeyId}, {generation.Rs256.Key.KeyId}"));
        }
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
