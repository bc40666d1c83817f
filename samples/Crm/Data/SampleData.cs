using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Data;

/// <summary>Seeds an empty database with accounts and contacts owned by the service's demo users.</summary>
public static class SampleData
{
    private static readonly string[] First = ["Ada", "Ben", "Chloe", "Dmitri", "Elif", "Femi", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena"];
    private static readonly string[] Last = ["Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka", "Usman", "Varga", "Weber"];

    /// <summary>Owners and their business units, as the service's demo organisation has them.</summary>
    private static readonly (string Owner, string Unit)[] Owners = [("alice", "sales-west"), ("bob", "sales-west"), ("ed", "sales-east")];

    /// <summary>
    /// The service gives its demo users stable ids (SHA-256 of the name laid out as an RFC 9562 version-8 UUID; see
    /// DemoSeeder.DemoUserId), so the sample can own its records by them before either database exists.
    /// </summary>
    public static string DemoUserId(string userName)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("crm-security/demo-user/" + userName));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }

    public static async Task SeedAsync(CrmDbContext db, int contacts, CancellationToken cancellationToken)
    {
        if (await db.Accounts.AnyAsync(cancellationToken))
        {
            return;
        }

        var accounts = Enumerable.Range(0, Math.Max(1, contacts / 10)).Select(i =>
        {
            var (owner, unit) = Owners[i % Owners.Length];
            return new Account { Name = $"{Last[i % Last.Length]} {(i % 3 == 0 ? "GmbH" : i % 3 == 1 ? "Ltd" : "Inc")} {i + 1}", Owner = DemoUserId(owner), OwnerName = owner, BusinessUnit = unit };
        }).ToList();
        db.Accounts.AddRange(accounts);
        for (var i = 0; i < contacts; i++)
        {
            var account = accounts[i % accounts.Count];
            var first = First[i % First.Length];
            var last = Last[(i / First.Length) % Last.Length];
            db.Contacts.Add(new Contact
            {
                AccountId = account.Id,
                FullName = $"{first} {last}",
                Email = $"{first}.{last}{i}@example.com".ToLowerInvariant(),
                Phone = $"+4930{1000000 + (i * 7919 % 9000000)}",
                NationalId = $"{100000000 + (i * 104729 % 900000000)}",
                Owner = account.Owner,
                OwnerName = account.OwnerName,
                BusinessUnit = account.BusinessUnit,
            });
        }

        await db.SaveChangesAsync(cancellationToken);
    }
}
