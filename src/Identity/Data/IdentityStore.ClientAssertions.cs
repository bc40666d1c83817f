using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace CrmSecurity.Identity.Data;

/// <summary>
/// A one-time JWT already used, until it expires: a second use is a replay. Client assertions (<c>private_key_jwt</c>,
/// RFC 7523 §3 item 7, OpenID Connect Core §9) and DPoP proofs (RFC 9449 §11.1) are kept here, each under its own id
/// (see <see cref="IdentityStore.TrySpendOnceAsync"/>). Kept in the database, so a JWT spent on one instance is refused by
/// every other.
/// </summary>
internal sealed class ClientAssertionRecord
{
    /// <summary>Hex SHA-256 of what the JWT's <c>jti</c> is unique within and the <c>jti</c>: fixed length whatever the client sent.</summary>
    public string AssertionId { get; set; } = "";

    public string ClientId { get; set; } = "";

    /// <summary>The assertion's <c>exp</c>: after it the assertion is refused as expired anyway, so the row can go.</summary>
    public DateTimeOffset ExpiresAt { get; set; }
}

internal sealed partial class IdentityStore
{
    /// <summary>Rows past their JWT's expiry are swept at most this often (not on every request: the API hot path spends proofs too).</summary>
    private static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(30);

    private static long s_lastSweep;

    public DbSet<ClientAssertionRecord> UsedClientAssertions => Set<ClientAssertionRecord>();

    /// <summary>
    /// Spends the one-time JWT <paramref name="id"/> (already hashed and namespaced by the caller) until
    /// <paramref name="expiresAt"/>: true the first time, false when it was spent before, here or on another instance. The
    /// primary key makes check and record one atomic insert, so two requests racing with one JWT cannot both win.
    /// </summary>
    public async Task<bool> TrySpendOnceAsync(string id, string clientId, DateTimeOffset expiresAt, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (await UsedClientAssertions.AnyAsync(a => a.AssertionId == id, cancellationToken))
        {
            return false;
        }

        UsedClientAssertions.Add(new ClientAssertionRecord { AssertionId = id, ClientId = clientId.Length > 100 ? clientId[..100] : clientId, ExpiresAt = expiresAt });
        try
        {
            await SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // The same JWT arrived twice at once and the other request recorded it first.
            ChangeTracker.Clear();
            return false;
        }

        // Rows past their JWT's expiry protect nothing (an expired JWT is refused before it gets here).
        var last = Interlocked.Read(ref s_lastSweep);
        if (now.UtcTicks - last > SweepInterval.Ticks && Interlocked.CompareExchange(ref s_lastSweep, now.UtcTicks, last) == last)
        {
            await UsedClientAssertions.Where(a => a.ExpiresAt < now).ExecuteDeleteAsync(cancellationToken);
        }

        return true;
    }

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
