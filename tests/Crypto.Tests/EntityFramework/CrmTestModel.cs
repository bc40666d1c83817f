using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.EntityFramework;
using CrmSecurity.Crypto.Fields;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Crypto.Tests.EntityFramework;

public sealed class Contact
{
    public Guid Id { get; set; } = Guid.NewGuid();

    public string Name { get; set; } = "";

    public string? Email { get; set; }

    public string? Phone { get; set; }

    public string? NationalId { get; set; }

    public string? Notes { get; set; }
}

public sealed class Person
{
    public Guid Id { get; set; } = Guid.NewGuid();

    public string? Email { get; set; }

    public string? Notes { get; set; }
}

public sealed class Lead
{
    public int Id { get; set; }

    public string? Email { get; set; }
}

public sealed class CrmContext(DbContextOptions<CrmContext> options) : DbContext(options)
{
    public DbSet<Contact> Contacts => Set<Contact>();

    public DbSet<Person> People => Set<Person>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Contact>(contact =>
        {
            contact.ToTable("contacts");
            contact.Encrypted(c => c.Email).WithBlindIndex("email", Normaliser.Email, bits: 16, expectedRows: 1_000_000);
            contact.Encrypted(c => c.Phone)
                .WithBlindIndex("e164", Normaliser.PhoneE164("44"), bits: 12, expectedRows: 1_000_000)
                .WithBlindIndex("last4", Normaliser.PhoneE164("44"), bits: 4, expectedRows: 1_000_000, IndexTransform.Last(4));
            contact.Encrypted(c => c.NationalId, EncryptionMode.Deterministic);
            contact.Encrypted(c => c.Notes);
        });
        modelBuilder.Entity<Person>(person =>
        {
            person.ToTable("people");
            person.HasDataSubject(p => p.Id);
            person.Encrypted(p => p.Email).WithBlindIndex("email", Normaliser.Email, bits: 16, expectedRows: 1_000_000);
            person.Encrypted(p => p.Notes);
        });
    }
}

public sealed class IdentityKeyContext(DbContextOptions<IdentityKeyContext> options) : DbContext(options)
{
    public DbSet<Lead> Leads => Set<Lead>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) =>
        modelBuilder.Entity<Lead>(lead => lead.Encrypted(l => l.Email));
}
