using System.Security.Cryptography;
using System.Xml.Linq;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.Keys;

/// <summary>
/// Wraps every secret of the ASP.NET Core Data Protection key ring with the installation's key-encryption key. The key
/// ring protects the token signing keys and the sign-in cookies; kept in clear in the same database (as Data Protection
/// does without an encryptor on Linux), a copy of the database alone let a second instance sign tokens the real one
/// accepted. Each secret gets a fresh 256-bit data key, wrapped by the KEK (AES-KWP, RFC 5649); the secret's XML is
/// sealed under it with AES-256-GCM (<see cref="SecretBox"/>).
/// </summary>
internal sealed class KekXmlEncryptor(Func<IKeyEncryptionKey> kekSource) : IXmlEncryptor
{
    internal static readonly XNamespace Namespace = "https://crm-security/data-protection/kek/v1";
    internal static readonly XName Root = Namespace + "kekWrappedSecret";
    internal const string AssociatedData = "crm-security/data-protection-key-ring/v1";

    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        ArgumentNullException.ThrowIfNull(plaintextElement);
        var wrapped = WrappedSecret.Create(kekSource(), 32, out var dataKey);
        try
        {
            using var box = new SecretBox(dataKey);
            var element = new XElement(Root,
                new XComment(" Wrapped by the installation's key-encryption key (Crypto:MasterKey); unreadable without it. "),
                new XElement(Namespace + "dataKey", wrapped),
                new XElement(Namespace + "value", box.Seal(plaintextElement.ToString(SaveOptions.DisableFormatting), AssociatedData)));
            return new EncryptedXmlInfo(element, typeof(KekXmlDecryptor));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }
}

/// <summary>Opens what <see cref="KekXmlEncryptor"/> wrote; Data Protection creates it by type name with the host's services.</summary>
internal sealed class KekXmlDecryptor(IServiceProvider services) : IXmlDecryptor
{
    public XElement Decrypt(XElement encryptedElement)
    {
        ArgumentNullException.ThrowIfNull(encryptedElement);
        var kek = services.GetRequiredService<IKeyEncryptionKey>();
        var wrapped = encryptedElement.Element(KekXmlEncryptor.Namespace + "dataKey")?.Value
            ?? throw new CryptographicException("A key of the Data Protection key ring has no wrapped data key.");
        var value = encryptedElement.Element(KekXmlEncryptor.Namespace + "value")?.Value
            ?? throw new CryptographicException("A key of the Data Protection key ring has no sealed value.");
        var dataKey = WrappedSecret.Unwrap(kek, wrapped);
        try
        {
            using var box = new SecretBox(dataKey);
            return XElement.Parse(box.Open(value, KekXmlEncryptor.AssociatedData));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }
}

/// <summary>
/// Before anything reads the key ring: every key stored in the database must be wrapped by this host's KEK. A key
/// wrapped under another KEK means this host was started on a copy of another installation's database (or with the
/// wrong Crypto:MasterKey): start-up stops naming both KEK ids instead of quietly making keys of its own. A key still in
/// clear (a database made by a build before the key ring was wrapped) is wrapped in place, keeping its id and value, so
/// signing keys and cookies made before the upgrade stay valid.
/// </summary>
internal sealed partial class KeyRingProtectionStartup(IServiceScopeFactory scopes, IServiceProvider services, ILogger<KeyRingProtectionStartup> logger) : IHostedService
{
    private static readonly XNamespace DataProtection = "http://schemas.asp.net/2015/03/dataProtection";
    private static readonly XName RequiresEncryption = DataProtection + "requiresEncryption";
    private static readonly XName EncryptedSecret = DataProtection + "encryptedSecret";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var kek = services.GetRequiredService<Crypto.Providers.IKeyEncryptionKey>();
        var encryptor = new KekXmlEncryptor(() => kek);
        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        var rows = await store.DataProtectionKeys.ToListAsync(cancellationToken);
        var wrapped = 0;
        foreach (var row in rows)
        {
            if (row.Xml is null)
            {
                continue;
            }

            var element = XElement.Parse(row.Xml);
            foreach (var stored in element.Descendants(KekXmlEncryptor.Namespace + "dataKey"))
            {
                if (WrappedSecret.KekIdOf(stored.Value) is { } kekId && kekId != kek.KeyId)
                {
                    throw new KeyManagementException(
                        $"Crypto:MasterKey: the Data Protection key ring in this database (which protects the token signing keys) is wrapped under the key-encryption key {kekId}, " +
                        $"but this host's key is {kek.KeyId}. Start the service with the installation's key; a copy of the database alone cannot be used.");
                }
            }

            var clear = element.Descendants().Where(e => (bool?)e.Attribute(RequiresEncryption) == true && e.Ancestors(EncryptedSecret).FirstOrDefault() is null).ToList();
            if (clear.Count == 0)
            {
                continue;
            }

            foreach (var secret in clear)
            {
                // The shape Data Protection itself writes when an encryptor is configured (XmlEncryptionExtensions).
                var info = encryptor.Encrypt(new XElement(secret));
                secret.ReplaceWith(new XElement(EncryptedSecret, new XAttribute("decryptorType", info.DecryptorType.AssemblyQualifiedName!), info.EncryptedElement));
            }

            row.Xml = element.ToString(SaveOptions.DisableFormatting);
            wrapped++;
        }

        if (wrapped > 0)
        {
            await store.SaveChangesAsync(cancellationToken);
            LogWrapped(logger, wrapped, kek.KeyId);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 4205, Level = LogLevel.Warning, Message = "Wrapped {Keys} Data Protection keys that an earlier build had stored in clear, under the key-encryption key {KekId}")]
    private static partial void LogWrapped(ILogger logger, int keys, string kekId);
}
