using System.Security.Cryptography;
using CrmSecurity.AuditAnalyzer.Service;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// The installation's pseudonym key: 32 random bytes made at first use and kept in the database, so every instance
/// shows the same pseudonyms. Call outside a transaction (a lost race re-reads the winner's key). Never logged.
/// </summary>
internal sealed class PseudonymKeys
{
    private const string SettingKey = "pseudonym_key";
    private byte[]? _key;

    public async ValueTask<byte[]> GetAsync(LiveDbContext db, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _key) is { } known)
        {
            return known;
        }

        for (var attempt = 0; ; attempt++)
        {
            var stored = await db.ReviewSettings.AsNoTracking().Where(s => s.Key == SettingKey).Select(s => s.Value).FirstOrDefaultAsync(cancellationToken);
            if (stored is not null)
            {
                var key = Convert.FromBase64String(stored);
                Volatile.Write(ref _key, key);
                return key;
            }

            var row = new ReviewSettingRow { Key = SettingKey, Value = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)) };
            db.ReviewSettings.Add(row);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                // Another instance stored its key first: use that one.
            }
            finally
            {
                db.Entry(row).State = EntityState.Detached;
            }
        }
    }
}
