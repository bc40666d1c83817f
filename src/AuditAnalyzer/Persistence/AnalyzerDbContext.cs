using System.Globalization;
using CrmSecurity.AuditAnalyzer.Baselines;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Persistence;

internal sealed class UserBaselineRow
{
    public required string UserId { get; set; }

    public required string PeerGroup { get; set; }

    public int ActiveDays { get; set; }

    public required byte[] Data { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}

internal sealed class PeerBaselineRow
{
    public required string PeerGroup { get; set; }

    public int Members { get; set; }

    public required byte[] Data { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }
}

internal sealed class AnalyzerStateRow
{
    public required string Key { get; set; }

    public required string Value { get; set; }
}

/// <summary>The analyzer's tables: baselines per user and per peer group, and the run watermark.</summary>
public sealed class AnalyzerDbContext(DbContextOptions<AnalyzerDbContext> options) : DbContext(options)
{
    /// <summary>Schema version of the module's tables, checked by the host at start.</summary>
    public const int SchemaVersion = 1;

    internal DbSet<UserBaselineRow> UserBaselines => Set<UserBaselineRow>();

    internal DbSet<PeerBaselineRow> PeerBaselines => Set<PeerBaselineRow>();

    internal DbSet<AnalyzerStateRow> State => Set<AnalyzerStateRow>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<UserBaselineRow>(e =>
        {
            e.ToTable("analyzer_user_baselines");
            e.HasKey(x => x.UserId);
            e.Property(x => x.UserId).HasColumnName("user_id").HasMaxLength(200);
            e.Property(x => x.PeerGroup).HasColumnName("peer_group").HasMaxLength(400);
            e.Property(x => x.ActiveDays).HasColumnName("active_days");
            e.Property(x => x.Data).HasColumnName("data");
            e.Property(x => x.UpdatedAt).HasColumnName("updated_at");
        });
        modelBuilder.Entity<PeerBaselineRow>(e =>
        {
            e.ToTable("analyzer_peer_baselines");
            e.HasKey(x => x.PeerGroup);
            e.Property(x => x.PeerGroup).HasColumnName("peer_group").HasMaxLength(400);
            e.Property(x => x.Members).HasColumnName("members");
            e.Property(x => x.Data).HasColumnName("data");
            e.Property(x => x.UpdatedAt).HasColumnName("updated_at");
        });
        modelBuilder.Entity<AnalyzerStateRow>(e =>
        {
            e.ToTable("analyzer_state");
            e.HasKey(x => x.Key);
            e.Property(x => x.Key).HasColumnName("key").HasMaxLength(100);
            e.Property(x => x.Value).HasColumnName("value").HasMaxLength(400);
        });
    }
}

/// <summary>Loads and saves a <see cref="BaselineSet"/> through EF Core, on whichever provider the host configured.</summary>
internal static class BaselineStore
{
    private const string WatermarkKey = "watermark";

    /// <summary>The organisation's first day (yyyy-MM-dd, UTC); absent in databases of earlier builds (then the earliest user's first day).</summary>
    private const string FirstDayKey = "organisation_first_day";

    public static async Task<BaselineSet> LoadAsync(AnalyzerDbContext db, int historyDays, CancellationToken cancellationToken)
    {
        var set = new BaselineSet(historyDays);
        await foreach (var row in db.UserBaselines.AsNoTracking().AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            set.Users[row.UserId] = BaselineSerializer.ReadUser(row.UserId, row.Data, historyDays);
        }

        await foreach (var row in db.PeerBaselines.AsNoTracking().AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            set.Peers[row.PeerGroup] = BaselineSerializer.ReadPeer(row.PeerGroup, row.Data);
        }

        var watermark = await db.State.AsNoTracking().Where(s => s.Key == WatermarkKey).Select(s => s.Value).FirstOrDefaultAsync(cancellationToken);
        if (watermark is not null)
        {
            set.Watermark = DateTimeOffset.Parse(watermark, CultureInfo.InvariantCulture);
        }

        var firstDay = await db.State.AsNoTracking().Where(s => s.Key == FirstDayKey).Select(s => s.Value).FirstOrDefaultAsync(cancellationToken);
        if (firstDay is not null)
        {
            set.OrganisationFirstDay = DateOnly.ParseExact(firstDay, "yyyy-MM-dd", CultureInfo.InvariantCulture).DayNumber;
        }
        else if (set.Users.Count > 0)
        {
            // Saved by a build before the organisation's first day was kept: its users' history says how far back it goes,
            // so an installation that has run for months does not fall silent for a learning period after the upgrade.
            set.OrganisationFirstDay = set.Users.Values.Min(u => u.FirstDay);
        }

        return set;
    }

    /// <summary>Replaces the stored baselines with <paramref name="set"/> in one transaction (all or nothing).</summary>
    public static async Task SaveAsync(AnalyzerDbContext db, BaselineSet set, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            await db.UserBaselines.ExecuteDeleteAsync(cancellationToken);
            await db.PeerBaselines.ExecuteDeleteAsync(cancellationToken);
            await db.State.Where(s => s.Key == WatermarkKey || s.Key == FirstDayKey).ExecuteDeleteAsync(cancellationToken);
            db.ChangeTracker.AutoDetectChangesEnabled = false;
            var pending = 0;
            foreach (var user in set.Users.Values)
            {
                db.UserBaselines.Add(new UserBaselineRow
                {
                    UserId = user.UserId,
                    PeerGroup = user.PeerGroup,
                    ActiveDays = user.ActiveDays,
                    Data = BaselineSerializer.Write(user),
                    UpdatedAt = now,
                });
                if (++pending == 1000)
                {
                    await db.SaveChangesAsync(cancellationToken);
                    db.ChangeTracker.Clear();
                    pending = 0;
                }
            }

            foreach (var peers in set.Peers.Values)
            {
                db.PeerBaselines.Add(new PeerBaselineRow { PeerGroup = peers.Group, Members = peers.Members.Count, Data = BaselineSerializer.Write(peers), UpdatedAt = now });
            }

            if (set.Watermark is { } watermark)
            {
                db.State.Add(new AnalyzerStateRow { Key = WatermarkKey, Value = watermark.ToString("O", CultureInfo.InvariantCulture) });
            }

            if (set.OrganisationFirstDay is { } first)
            {
                db.State.Add(new AnalyzerStateRow { Key = FirstDayKey, Value = DateOnly.FromDayNumber(first).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) });
            }

            await db.SaveChangesAsync(cancellationToken);
            db.ChangeTracker.Clear();
            await transaction.CommitAsync(cancellationToken);
        });
    }
}
