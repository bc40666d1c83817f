using System.CommandLine;
using System.Globalization;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Server.Hosting;

namespace CrmSecurity.Server.Cli;

/// <summary><c>signing-keys rotate [--now] | list</c>: the Identity module's token signing keys.</summary>
internal static class SigningKeyCommands
{
    /// <summary><c>signing-keys rotate [--now]</c> and <c>signing-keys list</c>: the Identity module's key ring.</summary>
    public static Command Create()
    {
        var now = new Option<bool>("--now")
        {
            Description = "Sign with the new key at once instead of after Identity:SigningKeys:PublishLead. " +
                "Only for a suspected key compromise: resource servers that cached the old key set reject new tokens until they refresh it.",
        };
        var rotate = new Command("rotate", "Create a new key generation. It is published in JWKS at once and signs after the publish lead.") { now };
        rotate.SetAction((parse, cancellationToken) => RunWithIdentityAsync(async (services, token) =>
        {
            var keys = services.GetRequiredService<ISigningKeys>();
            var generation = await keys.RotateAsync(parse.GetValue(now), token);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Created signing-key generation {generation}."));
            Print(keys);
            return ExitCodes.Success;
        }, cancellationToken));

        var list = new Command("list", "Show the key generations, which one signs, and which are still published.");
        list.SetAction((_, cancellationToken) => RunWithIdentityAsync((services, _) =>
        {
            Print(services.GetRequiredService<ISigningKeys>());
            return Task.FromResult(ExitCodes.Success);
        }, cancellationToken));

        return new Command("signing-keys", "Manage the Identity module's token signing keys.") { rotate, list };
    }

    private static Task<int> RunWithIdentityAsync(Func<IServiceProvider, CancellationToken, Task<int>> verb, CancellationToken cancellationToken) =>
        CliHost.RunAsync(IdentityHosting.CreateVerbBuilder(), verb, cancellationToken);

    private static void Print(ISigningKeys keys)
    {
        Console.WriteLine("generation  state      signs from (UTC)          key ids");
        foreach (var generation in keys.Generations)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{generation.Number,10}  {generation.State,-9}  {generation.SignsFrom.UtcDateTime,-24:yyyy-MM-dd HH:mm:ss}  {string.Join(", ", generation.KeyIds)}"));
        }
    }
}
