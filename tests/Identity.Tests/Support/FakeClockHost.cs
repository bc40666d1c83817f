namespace CrmSecurity.Identity.Tests.Support;

/// <summary>A host whose clock (TimeProvider) the test moves: token expiry and key rotation without waiting.</summary>
public sealed class FakeClockHost : IdentityHost
{
    protected override bool UseFakeClock => true;

    // Moving the clock by days fires every periodic timer on the host's TimeProvider once per interval. With the analyzer's
    // one-second poll and risk refresh and the keyring's ten-second reload, a 30-day step was millions of callbacks, many of
    // them database queries: 36 and 21 minutes for the two rotation tests in CI. Keep each to a few ticks. (The
    // authorization model's one-second version check stays: the host waits for it to publish the demo seed.)
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:SigningKeys:RefreshInterval"] = "12:00:00",
        ["AuditAnalyzer:Live:PollInterval"] = "12:00:00",
        ["AuditAnalyzer:Live:LeaseDuration"] = "1.12:00:00", // at least three polls
        ["Crypto:KeyringReloadSeconds"] = "0",
    };
}
