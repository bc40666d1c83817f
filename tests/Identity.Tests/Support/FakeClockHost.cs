namespace CrmSecurity.Identity.Tests.Support;

/// <summary>A host whose clock (TimeProvider) the test moves: token expiry and key rotation without waiting.</summary>
public sealed class FakeClockHost : IdentityHost
{
    protected override bool UseFakeClock => true;

    // Moving the clock by days fires the key ring's refresh timer once per interval; keep that to a few ticks.
    protected override IDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Identity:SigningKeys:RefreshInterval"] = "12:00:00",
    };
}
