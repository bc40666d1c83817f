using System.CommandLine;
using System.Globalization;
using CrmSecurity.Identity.Keys;
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

    private static Task<int> RunWithIdentityAsync(Func<IServiceProvider, CancellationToken, Task<int>> verb, CancellationToken cancellationToken) =>
        CliHost.RunAsync(IdentityHostModule.CreateVerbBuilder(), verb, cancellationToken);

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
}
