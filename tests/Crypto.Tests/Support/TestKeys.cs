using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Tests.Support;

public static class TestKeys
{
    /// <summary>A keyset with fixed id 0x01020304 and version 1 = bytes 00..1f, for known-answer tests.</summary>
    public static Keyset Fixed(string name = "fields")
    {
        var builder = KeysetBuilder.Restore(name, 0x01020304);
        builder.AddExisting(1, KeyStatus.Active, DateTimeOffset.UnixEpoch, SecretBytes.CopyOf(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray()), primary: true);
        return builder.Build();
    }

    public static Keyset WithSameIdAndOtherMaterial(Keyset keyset)
    {
        var builder = KeysetBuilder.Restore(keyset.Name, keyset.Id);
        builder.AddExisting(1, KeyStatus.Active, DateTimeOffset.UnixEpoch, SecretBytes.Random(32), primary: true);
        return builder.Build();
    }

    public static Keyset Rotated(Keyset keyset)
    {
        var builder = KeysetBuilder.From(keyset);
        builder.AddVersion();
        return builder.Build();
    }
}
