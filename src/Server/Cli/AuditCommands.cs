using System.CommandLine;
using System.Globalization;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Identity.Contracts;
using CrmSecurity.Server.Hosting;

namespace CrmSecurity.Server.Cli;

/// <summary>
/// <c>audit verify [--expect-head SEQ:MAC]</c>: check the admin audit trail's keyed hash chain, its head record, an
/// expected head kept outside the database, and the model tables against the newest fingerprint; name the first thing
/// that is not what was written. Read-only: it runs none of the Identity module's start-up work (seeding, sealing,
/// clients), so verifying never adds an entry.
/// </summary>
internal static class AuditCommands
{
    /// <summary>EX_DATAERR from sysexits.h: the stored data is not what was written.</summary>
    public const int ChainBroken = 65;

    /// <summary>EX_USAGE from sysexits.h.</summary>
    public const int Usage = 64;

    public static Command Create()
    {
        var expectHead = new Option<string?>("--expect-head")
        {
            Description = "A head printed earlier by this verb or logged by the service (event 4420), as SEQ:MAC, kept outside " +
                "the database: the trail must still contain that entry with that MAC (catches deleting the newest entries).",
        };
        var verify = new Command("verify", "Verify the keyed hash chain of the admin audit trail. Exit 0 when intact; " +
            "exit 65 naming the first changed, removed or reordered entry, a deleted head, or a model part changed outside the audit trail.")
        {
            expectHead,
        };
        verify.SetAction((parse, cancellationToken) =>
        {
            var expected = parse.GetValue(expectHead);
            if (expected is not null && !IAuditTrailVerifier.IsHead(expected))
            {
                Console.Error.WriteLine($"--expect-head '{expected}' is not SEQ:MAC (a sequence number, a colon and at least 8 hex digits of the MAC).");
                return Task.FromResult(Usage);
            }

            return CliHost.RunAsync(ReadOnlyBuilder(), async (services, token) =>
            {
                AuditTrailCheck result;
                try
                {
                    result = await services.GetRequiredService<IAuditTrailVerifier>().VerifyAsync(expected, token);
                }
                catch (KeyManagementException e)
                {
                    // The audit key opens only with the installation's KEK: a copy of the database elsewhere can neither
                    // verify nor forge the chain. The message names the setting (Crypto:MasterKey), never key material.
                    return ServerHost.ConfigurationError(e.Message);
                }

                if (result.Intact)
                {
                    Console.WriteLine(result.Head is { } head
                        ? string.Create(CultureInfo.InvariantCulture,
                            $"Audit trail intact: {result.Entries} entries, head {head}; the model matches what the newest entry recorded. Keep the head outside the database and check it later with --expect-head {head}.")
                        : "Audit trail intact: 0 entries.");
                    return ExitCodes.Success;
                }

                Console.WriteLine(result.FirstBroken is { } first
                    ? string.Create(CultureInfo.InvariantCulture,
                        $"Audit trail BROKEN at entry {first}: {result.Problem}. The {result.Entries} entries before it verify (last good hash {result.LastGoodHash}).")
                    : string.Create(CultureInfo.InvariantCulture, $"Audit trail BROKEN: {result.Problem}. The {result.Entries} entries verify."));
                return ChainBroken;
            }, cancellationToken);
        });

        return new Command("audit", "The Identity module's append-only admin audit trail.") { verify };
    }

    /// <summary>
    /// The database, its schema check and the installation's key only: no hosted service of the Identity module (policy
    /// seeding, demo data, sealing, client registration) runs, so the verb writes nothing to the trail.
    /// </summary>
    private static HostApplicationBuilder ReadOnlyBuilder()
    {
        var builder = CliHost.CreateBuilder();
        builder.AddIdentityModule(auditTrailReaderOnly: true);
        return builder;
    }
}
