using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>How this instance holds a partition after <see cref="PartitionLeases.TryAcquireAsync"/>.</summary>
internal enum LeaseOutcome
{
    /// <summary>Another instance holds an unexpired lease.</summary>
    Refused,

    /// <summary>This instance already held it and renewed it: its in-memory state is still valid.</summary>
    Renewed,

    /// <summary>New to this instance (free or taken over after expiry): state must be rebuilt from the database.</summary>
    Acquired,
}

/// <summary>
/// Partition leases in the database. Every change is one conditional UPDATE (or an INSERT guarded by the primary
/// key), so two instances can never both hold a partition: on PostgreSQL the row lock makes the second UPDATE
/// re-check its condition against the first one's result; SQLite serialises writers.
/// </summary>
internal static class PartitionLeases
{
    public static async Task<LeaseOutcome> TryAcquireAsync(LiveDbContext db, int partition, string owner, DateTimeOffset now, TimeSpan duration, CancellationToken cancellationToken)
    {
        var until = (now + duration).UtcTicks;
        if (await RenewAsync(db, partition, owner, now, duration, cancellationToken))
        {
            return LeaseOutcome.Renewed;
        }

        // Expired (its holder died or stalled): take it over. The condition is re-checked under the row lock.
        var taken = await db.Leases
            .Where(l => l.Partition == partition && l.ExpiresTicks < now.UtcTicks)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, owner).SetProperty(l => l.ExpiresTicks, until), cancellationToken);
        if (taken == 1)
        {
            return LeaseOutcome.Acquired;
        }

        if (await db.Leases.AsNoTracking().AnyAsync(l => l.Partition == partition, cancellationToken))
        {
            return LeaseOutcome.Refused;
        }

        try
        {
            db.Leases.Add(new PartitionLeaseRow { Partition = partition, Owner = owner, ExpiresTicks = until });
            await db.SaveChangesAsync(cancellationToken);
            return LeaseOutcome.Acquired;
        }
        catch (DbUpdateException)
        {
            // Another instance inserted the row first (primary key): theirs.
            return LeaseOutcome.Refused;
        }
        finally
        {
            db.ChangeTracker.Clear();
        }
    }

    /// <summary>Extends a lease this instance holds and that has not expired; false when it was lost.</summary>
    public static async Task<bool> RenewAsync(LiveDbContext db, int partition, string owner, DateTimeOffset now, TimeSpan duration, CancellationToken cancellationToken)
    {
        var until = (now + duration).UtcTicks;
        return await db.Leases
            .Where(l => l.Partition == partition && l.Owner == owner && l.ExpiresTicks >= now.UtcTicks)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.ExpiresTicks, until), cancellationToken) == 1;
    }

    /// <summary>Gives a partition up at once (on shutdown), so another instance need not wait for the expiry.</summary>
    public static Task<int> ReleaseAsync(LiveDbContext db, int partition, string owner, CancellationToken cancellationToken) =>
        db.Leases.Where(l => l.Partition == partition && l.Owner == owner).ExecuteDeleteAsync(cancellationToken);
}
