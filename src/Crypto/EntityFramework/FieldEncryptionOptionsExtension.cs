using CrmSecurity.Crypto.Fields;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Crypto.EntityFramework;

/// <summary>
/// A context's field-encryption settings (the keys, the tenant, the reader), carried in its options so that one shared
/// interceptor serves every context. It adds no services, so contexts that differ only in these settings share EF Core's
/// internal service provider.
/// </summary>
internal sealed class FieldEncryptionOptionsExtension(FieldEncryption encryption, Func<string> tenant, IFieldDecryptAuthorizer? authorizer) : IDbContextOptionsExtension
{
    private DbContextOptionsExtensionInfo? _info;

    public FieldEncryption Encryption { get; } = encryption;

    public Func<string> Tenant { get; } = tenant;

    /// <summary>The reader's authorizer given with the options; null: nothing is decrypted unless a context sets one.</summary>
    public IFieldDecryptAuthorizer? Authorizer { get; } = authorizer;

    public DbContextOptionsExtensionInfo Info => _info ??= new ExtensionInfo(this);

    public void ApplyServices(IServiceCollection services)
    {
    }

    public void Validate(IDbContextOptions options)
    {
    }

    private sealed class ExtensionInfo(IDbContextOptionsExtension extension) : DbContextOptionsExtensionInfo(extension)
    {
        public override bool IsDatabaseProvider => false;

        public override string LogFragment => "FieldEncryption ";

        public override int GetServiceProviderHashCode() => 0;

        public override bool ShouldUseSameServiceProvider(DbContextOptionsExtensionInfo other) => other is ExtensionInfo;

        public override void PopulateDebugInfo(IDictionary<string, string> debugInfo) => debugInfo["CrmSecurity:FieldEncryption"] = "1";
    }
}
