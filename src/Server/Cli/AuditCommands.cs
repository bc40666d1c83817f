using System.CommandLine;
using System.Globalization;
using CrmSecurity.Identity.AuditTrail;
using CrmSecurity.Identity.Data;
using CrmSecurity.Server.Hosting;

namespace CrmSecurity.Server.Cli;

/// <summary><c>audit verify</c>: recompute the admin audit trail's hash chain and name the first entry that is not what was written.</summary>
internal static class AuditCommands
{
    /// <summary>EX_DATAERR from sysexits.h: the stored data is not what was written.</summary>
    public const int ChainBroken = 65;

    public static Command Create()
    {
        var verify = new Command("verify", "Recompute the hash chain of the admin audit trail. Exit 0 when intact; " +
            "exit 65 naming the first changed, removed or reordered entry otherwise.");
        verify.SetAction((_, cancellationToken) => CliHost.RunAsync(IdentityHostModule.CreateVerbBuilder(), async (services, token) =>
        {
            var result = await AuditChain.VerifyAsync(services.GetRequiredService<IdentityStore>(), token);
            if (result.Intact)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Audit trail intact: {result.Entries} entries, head hash {result.HeadHash}."));
                return ExitCodes.Success;
            }

            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Audit trail BROKEN at entry {result.FirstBroken}: {result.Problem}. The {result.Entries} entries before it verify (last good hash {result.HeadHash})."));
            return ChainBroken;
        }, cancellationToken));

        return new Command("audit", "The Identity module's append-only admin audit trail.") { verify };
    }
}
