using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Net.Pkcs11Interop.Common;
using Net.Pkcs11Interop.HighLevelAPI;

namespace CrmSecurity.Crypto.Providers;

/// <summary>
/// A KEK that lives on a PKCS#11 token (an HSM; SoftHSM2 in tests) and never leaves it: data keys are wrapped
/// and unwrapped on the token with CKM_AES_KEY_WRAP_PAD (RFC 5649), whose output equals
/// <see cref="Aes.EncryptKeyWrapPadded(ReadOnlySpan{byte})"/> byte for byte. The token is found by its label
/// (slot ids are not stable), the key by its CKA_LABEL. Thread-safe (one session, calls serialised).
/// </summary>
internal sealed class Pkcs11KeyEncryptionKey : IKeyEncryptionKey
{
    /// <summary>CKM_AES_KEY_WRAP_PAD from PKCS#11 v2.40 (RFC 5649 padded key wrap).</summary>
    public const ulong AesKeyWrapPad = 0x210A;

    private static readonly Pkcs11InteropFactories Factories = new();
    private static readonly ConcurrentDictionary<string, IPkcs11Library> Libraries = new(StringComparer.Ordinal);
    private static int _resolverRegistered;
    private readonly ISession _session;
    private readonly IObjectHandle _kek;
    private readonly Lock _gate = new();
    private bool _disposed;

    private Pkcs11KeyEncryptionKey(ISession session, IObjectHandle kek, string tokenLabel, string keyLabel)
    {
        _session = session;
        _kek = kek;
        KeyId = $"pkcs11:{tokenLabel}/{keyLabel}";
    }

    /// <inheritdoc />
    public string KeyId { get; }

    /// <summary>Opens the token with label <paramref name="tokenLabel"/>, logs in and finds the AES key <paramref name="keyLabel"/>.</summary>
    /// <param name="modulePath">Path of the PKCS#11 module (for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so).</param>
    /// <param name="tokenLabel">The token's label.</param>
    /// <param name="pin">The user PIN.</param>
    /// <param name="keyLabel">CKA_LABEL of the AES key.</param>
    /// <param name="createIfMissing">Generate a non-extractable AES-256 key with that label when there is none (for <c>keys init</c>).</param>
    /// <exception cref="KeyManagementException">The module, token or key cannot be found or used; the message says which.</exception>
    public static Pkcs11KeyEncryptionKey Open(string modulePath, string tokenLabel, string pin, string keyLabel, bool createIfMissing = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modulePath);
        ArgumentException.ThrowIfNullOrWhiteSpace(tokenLabel);
        ArgumentException.ThrowIfNullOrWhiteSpace(keyLabel);
        ArgumentNullException.ThrowIfNull(pin);
        var library = Load(modulePath);
        ISlot? slot;
        try
        {
            slot = library.GetSlotList(SlotsType.WithTokenPresent)
                .FirstOrDefault(s => string.Equals(s.GetTokenInfo().Label.Trim(), tokenLabel, StringComparison.Ordinal));
        }
        catch (Pkcs11Exception e)
        {
            throw new KeyManagementException($"The PKCS#11 module '{modulePath}' could not list its tokens ({e.RV}).", e);
        }

        if (slot is null)
        {
            throw new KeyManagementException($"No PKCS#11 token is labelled '{tokenLabel}' in module '{modulePath}'. Check the token label, or initialise the token.");
        }

        var session = slot.OpenSession(SessionType.ReadWrite);
        try
        {
            try
            {
                session.Login(CKU.CKU_USER, pin);
            }
            catch (Pkcs11Exception e) when (e.RV == CKR.CKR_USER_ALREADY_LOGGED_IN)
            {
                // Another session of this process already logged in to the token: the login is per token, not per session.
            }
            catch (Pkcs11Exception e)
            {
                throw new KeyManagementException($"Login to PKCS#11 token '{tokenLabel}' failed ({e.RV}). Check the PIN.", e);
            }

            var found = session.FindAllObjects(
            [
                Factories.ObjectAttributeFactory.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
                Factories.ObjectAttributeFactory.Create(CKA.CKA_LABEL, keyLabel),
            ]);
            IObjectHandle kek;
            if (found.Count == 1)
            {
                kek = found[0];
            }
            else if (found.Count == 0 && createIfMissing)
            {
                kek = session.GenerateKey(
                    Factories.MechanismFactory.Create(CKM.CKM_AES_KEY_GEN),
                    [
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_KEY_TYPE, CKK.CKK_AES),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_VALUE_LEN, 32),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_TOKEN, true),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_PRIVATE, true),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_LABEL, keyLabel),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_WRAP, true),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_UNWRAP, true),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_SENSITIVE, true),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_EXTRACTABLE, false),
                    ]);
            }
            else
            {
                throw new KeyManagementException(found.Count == 0
                    ? $"PKCS#11 token '{tokenLabel}' has no secret key labelled '{keyLabel}'. Run `keys init` with this configuration to generate it, or check the key label."
                    : $"PKCS#11 token '{tokenLabel}' has {found.Count} secret keys labelled '{keyLabel}'; labels must be unique.");
            }

            return new Pkcs11KeyEncryptionKey(session, kek, tokenLabel, keyLabel);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public byte[] WrapKey(ReadOnlySpan<byte> key)
    {
        var value = key.ToArray();
        try
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);

                // The bytes go to the token as a short-lived session object, are wrapped there, and the object is destroyed.
                var secret = _session.CreateObject(
                [
                    Factories.ObjectAttributeFactory.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
                    Factories.ObjectAttributeFactory.Create(CKA.CKA_KEY_TYPE, CKK.CKK_GENERIC_SECRET),
                    Factories.ObjectAttributeFactory.Create(CKA.CKA_TOKEN, false),
                    Factories.ObjectAttributeFactory.Create(CKA.CKA_VALUE, value),
                    Factories.ObjectAttributeFactory.Create(CKA.CKA_EXTRACTABLE, true),
                    Factories.ObjectAttributeFactory.Create(CKA.CKA_SENSITIVE, false),
                ]);
                try
                {
                    return _session.WrapKey(Factories.MechanismFactory.Create(AesKeyWrapPad), _kek, secret);
                }
                finally
                {
                    _session.DestroyObject(secret);
                }
            }
        }
        catch (Pkcs11Exception e)
        {
            throw new KeyManagementException($"Wrapping a key with the PKCS#11 key {KeyId} failed ({e.RV}).", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(value);
        }
    }

    /// <inheritdoc />
    public byte[] UnwrapKey(ReadOnlySpan<byte> wrapped)
    {
        try
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                var secret = _session.UnwrapKey(
                    Factories.MechanismFactory.Create(AesKeyWrapPad),
                    _kek,
                    wrapped.ToArray(),
                    [
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_CLASS, CKO.CKO_SECRET_KEY),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_KEY_TYPE, CKK.CKK_GENERIC_SECRET),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_TOKEN, false),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_EXTRACTABLE, true),
                        Factories.ObjectAttributeFactory.Create(CKA.CKA_SENSITIVE, false),
                    ]);
                try
                {
                    return _session.GetAttributeValue(secret, [CKA.CKA_VALUE])[0].GetValueAsByteArray();
                }
                finally
                {
                    _session.DestroyObject(secret);
                }
            }
        }
        catch (Pkcs11Exception e)
        {
            // RFC 5649 §3 integrity check done by the token: wrong KEK or altered bytes.
            throw new KeyManagementException($"A wrapped key does not unwrap under the PKCS#11 key {KeyId} ({e.RV}): wrong key or altered data.", e);
        }
    }

    /// <summary>Closes the session.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _disposed = true;
                _session.Dispose();
            }
        }
    }

    /// <summary>The key id only.</summary>
    public override string ToString() => $"Pkcs11KeyEncryptionKey {KeyId}";

    private static IPkcs11Library Load(string modulePath)
    {
        RegisterLibdlResolver();
        try
        {
            // A module is initialised once per process (C_Initialize) and kept: loading it twice fails with CKR_CRYPTOKI_ALREADY_INITIALIZED.
            return Libraries.GetOrAdd(modulePath, path => Factories.Pkcs11LibraryFactory.LoadPkcs11Library(Factories, path, AppType.MultiThreaded));
        }
        catch (Exception e) when (e is Pkcs11Exception or DllNotFoundException or UnmanagedException or BadImageFormatException or EntryPointNotFoundException)
        {
            throw new KeyManagementException($"The PKCS#11 module '{modulePath}' cannot be loaded: {e.Message}", e);
        }
    }

    // Pkcs11Interop 5.3 asks for "libdl", which Debian 12 only ships as libdl.so.2.
    private static void RegisterLibdlResolver()
    {
        if (Interlocked.Exchange(ref _resolverRegistered, 1) == 1)
        {
            return;
        }

        NativeLibrary.SetDllImportResolver(typeof(Pkcs11InteropFactories).Assembly, static (name, assembly, searchPath) =>
            name == "libdl" && OperatingSystem.IsLinux() && NativeLibrary.TryLoad("libdl.so.2", out var handle) ? handle : IntPtr.Zero);
    }
}
