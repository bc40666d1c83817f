using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.EntityFramework;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Data;

/// <summary>What the authorization model needs of a record: its id, owner and business unit.</summary>
public interface IOwnedRecord
{
    Guid Id { get; }

    string Owner { get; }

    string BusinessUnit { get; }
}

/// <summary>An account (a company the CRM sells to).</summary>
public sealed class Account : IOwnedRecord
{
    public Guid Id { get; set; } = Guid.NewGuid();

    public required string Name { get; set; }

    /// <summary>The owning user's id (<c>sub</c>).</summary>
    public required string Owner { get; set; }

    public required string OwnerName { get; set; }

    /// <summary>The business unit id, as the service's authorization model names it.</summary>
    public required string BusinessUnit { get; set; }
}

/// <summary>A contact: its email, phone and national id are stored encrypted (AES-256-GCM bound to the row).</summary>
public sealed class Contact : IOwnedRecord
{
    public Guid Id { get; set; } = Guid.NewGuid();

    public Guid AccountId { get; set; }

    public required string FullName { get; set; }

    public string? Email { get; set; }

    public string? Phone { get; set; }

    public string? NationalId { get; set; }

    /// <summary>The owning user's id (<c>sub</c>).</summary>
    public required string Owner { get; set; }

    public required string OwnerName { get; set; }

    /// <summary>The business unit id, as the service's authorization model names it.</summary>
    public required string BusinessUnit { get; set; }
}

/// <summary>The sample's database. Encryption runs in the interceptor <c>UseFieldEncryption</c> adds.</summary>
public sealed class CrmDbContext(DbContextOptions<CrmDbContext> options) : DbContext(options)
{
    public DbSet<Account> Accounts => Set<Account>();

    public DbSet<Contact> Contacts => Set<Contact>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Account>(account =>
        {
            account.ToTable("accounts");
            account.HasKey(a => a.Id);
            account.Property(a => a.Id).ValueGeneratedNever();
        });
        modelBuilder.Entity<Contact>(contact =>
        {
            contact.ToTable("contacts");
            contact.HasKey(c => c.Id);
            contact.Property(c => c.Id).ValueGeneratedNever();
            contact.HasIndex(c => c.AccountId);
            // 8 bits for ~10,000 contacts: about 39 rows share each index value, inside CipherSweet's band 2 <= n < sqrt(rows) (the planner checks it).
            contact.Encrypted(c => c.Email).WithBlindIndex("email", Normaliser.Email, bits: 8, expectedRows: 10_000);
            contact.Encrypted(c => c.Phone);
            contact.Encrypted(c => c.NationalId);
        });
    }
}
