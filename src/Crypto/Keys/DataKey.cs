using CrmSecurity.Crypto.Primitives;

namespace CrmSecurity.Crypto.Keys;

/// <summary>One version of a keyset's root key: 32 random bytes from which every purpose key is derived with HKDF.</summary>
internal sealed class DataKey : IDisposable
{
    public const int Size = 32;

    public DataKey(uint version, KeyStatus status, DateTimeOffset createdAt, SecretBytes? material)
    {
        if (status != KeyStatus.Destroyed && (material is null || material.Length != Size))
        {
            throw new ArgumentException($"A data key that is not destroyed needs {Size} bytes of key material.", nameof(material));
        }

        Version = version;
        Status = status;
        CreatedAt = createdAt;
        Material = status == KeyStatus.Destroyed ? null : material;
    }

    public uint Version { get; }

    public KeyStatus Status { get; }

    public DateTimeOffset CreatedAt { get; }

    /// <summary>Null once destroyed.</summary>
    public SecretBytes? Material { get; }

    public void Dispose() => Material?.Dispose();

    public override string ToString() => $"DataKey v{Version} ({Status})";
}
