using System.Security.Cryptography;
using System.Text;

namespace CrmSecurity.Security.Tests.Authorization;

/// <summary>
/// The demo users' ids: name-based and stable (see docs/sample-crm.md; SHA-256 of <c>crm-security/demo-user/NAME</c> laid out as an
/// RFC 9562 version-8 UUID), so the sample CRM names record owners before the service's database exists, and so do these
/// tests, without a sign-in per user.
/// </summary>
public static class DemoIds
{
    public static string Of(string userName)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("crm-security/demo-user/" + userName));
        hash[6] = (byte)((hash[6] & 0x0F) | 0x80);
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80);
        return new Guid(hash.AsSpan(0, 16), bigEndian: true).ToString();
    }
}
