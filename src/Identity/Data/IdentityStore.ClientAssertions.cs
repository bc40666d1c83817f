using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>
/// A client assertion (<c>private_key_jwt</c>) already used, until it expires: a second use is a replay (RFC 7523 §3 item 7,
/// OpenID Connect Core §9). Kept in the database, so an assertion spent on one instance is refused by every other.
/// </summary>
internal sealed class ClientAssertionRecord
{
    /// <summary>Hex SHA-256 of the client id and the assertion's <c>jti</c>: fixed length whatever the client sent, and unique per client.</summary>
    public string AssertionId { get; set; } = "";

    public string ClientId { get; set; } = "";

    /// <summary>The assertion's <c>exp</c>: after it the assertion is refused as expired anyway, so the row can go.</summary>
    public DateTimeOffset ExpiresAt { get; set; }
}

internal sealed partial class IdentityStore
{
    public DbSet<ClientAssertionRecord> UsedClientAssertions => Set<ClientAssertionRecord>();

    private static void ConfigureClientAssertions(ModelBuilder builder) =>
        builder.Entity<ClientAssertionRecord>(assertion =>
        {
            assertion.ToTable("identity_client_assertions");
            assertion.HasKey(a => a.AssertionId);
            assertion.Property(a => a.AssertionId).HasMaxLength(64);
            assertion.Property(a => a.ClientId).HasMaxLength(100);
            assertion.Property(a => a.ExpiresAt).HasConversion<DateTimeOffsetToBinaryConverter>();
            assertion.HasIndex(a => a.ExpiresAt);
        });
}
