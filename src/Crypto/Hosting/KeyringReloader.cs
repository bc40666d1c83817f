using System.Globalization;
using System.Security.Cryptography;
using CrmSecurity.Crypto.Fields;
using CrmSecurity.Crypto.Keys;
using CrmSecurity.Crypto.Providers;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Crypto.Hosting;

/// <summary>
/// Picks up a changed keyring file in a running service, without a restart: every
/// <see cref="CryptoOptions.KeyringReloadSeconds"/> it reads the file once, and when its content changed it verifies the
/// whole keyring (format, KEK, every wrapped key and its binding) from those very bytes and only then swaps it in
/// atomically (<see cref="FieldEncryption.Replace"/>). A torn or partial write, a keyring under another KEK, or one
/// that is not a successor of the running one (another keyset id, versions missing, a destroyed key back) is never
/// loaded: the service keeps its keyring and logs an error naming the file, once per content seen.
/// </summary>
internal sealed partial class KeyringReloader(
    FieldEncryption encryption, KeyringStore store, IOptions<CryptoOptions> options, TimeProvider time, ILogger<KeyringReloader> logger) : BackgroundService
{
    private byte[]? _seen;
    private string? _lastError;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var seconds = options.Value.KeyringReloadSeconds;
        if (seconds <= 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            Check();
        }
    }

    /// <summary>Looks at the file once; true when a new keyring was put in place.</summary>
    internal bool Check()
    {
        byte[] content;
        try
        {
            content = File.ReadAllBytes(store.Path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Refuse(e.Message);
            return false;
        }

        var hash = SHA256.HashData(content);
        if (_seen is not null && CryptographicOperations.FixedTimeEquals(hash, _seen))
        {
            return false;
        }

        _seen = hash;
        Keyring loaded;
        try
        {
            loaded = Keyring.Load(content, store.Path, store.Kek);
        }
        catch (Exception e) when (e is KeyManagementException or CryptographicException or FormatException or ArgumentException or InvalidOperationException)
        {
            Refuse(e.Message);
            return false;
        }

        var current = encryption.Keyring;
        if (NotASuccessor(current, loaded) is { } problem)
        {
            loaded.Dispose();
            Refuse(problem);
            return false;
        }

        _lastError = null;
        var keysets = Describe(loaded);
        if (Describe(current) == keysets)
        {
            loaded.Dispose(); // the same keys (rewrapped under another KEK, say): nothing to swap
            return false;
        }

        encryption.Replace(loaded);
        LogReloaded(logger, store.Path, keysets);
        return true;
    }

    private void Refuse(string reason)
    {
        if (reason != _lastError)
        {
            _lastError = reason;
            LogRefused(logger, store.Path, reason);
        }
    }

    /// <summary>
    /// Why <paramref name="next"/> cannot replace <paramref name="current"/>, or null. A keyring only grows: the same
    /// keysets with the same ids, no version fewer, and a destroyed key never back (a stale backup put in place by hand
    /// would otherwise resurrect it; <c>keys restore</c> destroys such versions again).
    /// </summary>
    private static string? NotASuccessor(Keyring current, Keyring next)
    {
        foreach (var keyset in current.Keysets)
        {
            if (next.Keysets.FirstOrDefault(k => k.Name == keyset.Name) is not { } successor)
            {
                return $"it has no keyset '{keyset.Name}'";
            }

            if (successor.Id != keyset.Id)
            {
                return string.Create(CultureInfo.InvariantCulture, $"its keyset '{keyset.Name}' has id {successor.Id:x8}, not {keyset.Id:x8}: it is another installation's keyring");
            }

            if (successor.Versions.Count < keyset.Versions.Count)
            {
                return string.Create(CultureInfo.InvariantCulture, $"its keyset '{keyset.Name}' has {successor.Versions.Count} version(s), fewer than the {keyset.Versions.Count} in use: it is an older keyring");
            }

            foreach (var destroyed in keyset.Versions.Where(v => v.Status == KeyStatus.Destroyed))
            {
                if (successor.Versions[(int)destroyed.Version - 1].Status != KeyStatus.Destroyed)
                {
                    return string.Create(CultureInfo.InvariantCulture, $"version {destroyed.Version} of keyset '{keyset.Name}' was destroyed and is back in it: it is an older keyring");
                }
            }
        }

        return null;
    }

    private static string Describe(Keyring keyring) => string.Join(", ", keyring.Keysets.OrderBy(k => k.Name, StringComparer.Ordinal).Select(k =>
        string.Create(CultureInfo.InvariantCulture, $"{k.Name} primary v{k.PrimaryVersion} [{string.Join(' ', k.Versions.Select(v => $"v{v.Version}:{v.Status}"))}]")));

    [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "Reloaded the keyring {Path}: {Keysets}")]
    private static partial void LogReloaded(ILogger logger, string path, string keysets);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Error, Message = "The keyring file {Path} changed but was not loaded ({Reason}); the service keeps the keyring it has")]
    private static partial void LogRefused(ILogger logger, string path, string reason);
}
