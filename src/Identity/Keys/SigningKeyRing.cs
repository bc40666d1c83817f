using System.Security.Cryptography;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.Tokens;

namespace CrmSecurity.Identity.Keys;

/// <summary>
/// The signing and token-encryption keys, persisted in the database and shared by every host instance.
/// Keys come in generations (one ES256, one RS256 and one A256KW key each). A generation is published in
/// JWKS from the moment it is created, signs from <see cref="SigningKeyRecord.ActivatesAt"/> until the next
/// generation activates, and stays published (and accepted) until every token it can have signed has expired.
/// </summary>
internal sealed partial class SigningKeyRing(
    IServiceScopeFactory scopes,
    IDataProtectionProvider dataProtection,
    IOptions<IdentitySettings> settings,
    TimeProvider time,
    ILogger<SigningKeyRing> logger) : IDisposable
{
    public const string Es256 = "ES256";
    public const string Rs256 = "RS256";
    public const string Encryption = "A256KW";

    private readonly IDataProtector _protector = dataProtection.CreateProtector("CrmSecurity.Identity.SigningKeys.v1");
    private readonly Lock _gate = new();
    private volatile Snapshot? _snapshot;
    private CancellationTokenSource _changed = new();

    /// <summary>The longest a token signed by a generation can live after that generation stopped signing.</summary>
    public TimeSpan Retention
    {
        get
        {
            var tokens = settings.Value.Tokens;
            return new[] { tokens.AccessTokenLifetime, tokens.IdentityTokenLifetime, tokens.RefreshTokenLifetime, tokens.AuthorizationCodeLifetime, tokens.IssuedTokenLifetime }.Max()
                + TimeSpan.FromMinutes(5); // clock skew allowed by validators
        }
    }

    /// <summary>Fires when the set of published keys changes, so OpenIddict's options (JWKS, validation keys) are rebuilt.</summary>
    public IChangeToken ChangeToken
    {
        get
        {
            lock (_gate)
            {
                return new CancellationChangeToken(_changed.Token);
            }
        }
    }

    public IReadOnlyList<KeyGeneration> Generations => (_snapshot ?? throw NotLoaded()).Generations;

    /// <summary>Keys to publish and accept now: every generation not yet past its retention.</summary>
    public IReadOnlyList<KeyGeneration> Published => (_snapshot ?? throw NotLoaded()).Published;

    /// <summary>The generation that signs now: the newest one whose activation time has passed.</summary>
    public KeyGeneration Current
    {
        get
        {
            var now = time.GetUtcNow();
            var generations = Generations;
            for (var index = generations.Count - 1; index >= 0; index--)
            {
                if (generations[index].ActivatesAt <= now)
                {
                    return generations[index];
                }
            }

            return generations[0];
        }
    }

    /// <summary>Reads the key table. Creates the first generation (active at once) on an empty table.</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var records = await LoadAsync(cancellationToken);
        if (records.Count == 0)
        {
            // Nothing was ever published, so nobody can have cached a key set: the first key signs at once.
            await TryCreateGenerationAsync(1, time.GetUtcNow(), cancellationToken);
            records = await LoadAsync(cancellationToken);
        }

        Apply(records);
    }

    /// <summary>
    /// Adds a generation that signs after <see cref="SigningKeySettings.PublishLead"/> (or at once when
    /// <paramref name="immediately"/>, for a suspected key compromise). Returns the new generation's number.
    /// </summary>
    public async Task<int> RotateAsync(bool immediately, CancellationToken cancellationToken)
    {
        var records = await LoadAsync(cancellationToken);
        var next = records.Count == 0 ? 1 : records.Max(r => r.Generation) + 1;
        var activatesAt = immediately ? time.GetUtcNow() : time.GetUtcNow() + settings.Value.SigningKeys.PublishLead;
        if (!await TryCreateGenerationAsync(next, activatesAt, cancellationToken))
        {
            LogRotationRace(logger, next);
        }

        await RefreshAsync(cancellationToken);
        return next;
    }

    /// <summary>
    /// Rotates when the newest generation is older than the rotation interval minus the lead (scheduled rotation).
    /// Decides on the table as it is now, not on this instance's snapshot: instances that run the schedule at
    /// the same time all try the same generation number, and the unique index lets exactly one of them add it.
    /// </summary>
    public async Task<bool> RotateIfDueAsync(CancellationToken cancellationToken)
    {
        var keys = settings.Value.SigningKeys;
        var records = await LoadAsync(cancellationToken);
        if (records.Count > 0 && records.Max(r => r.ActivatesAt) + keys.RotationInterval - keys.PublishLead > time.GetUtcNow())
        {
            return false;
        }

        var next = records.Count == 0 ? 1 : records.Max(r => r.Generation) + 1;
        var created = await TryCreateGenerationAsync(next, time.GetUtcNow() + keys.PublishLead, cancellationToken);
        await RefreshAsync(cancellationToken);
        return created;
    }

    private async Task<List<SigningKeyRecord>> LoadAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        return await store.SigningKeys.AsNoTracking().ToListAsync(cancellationToken);
    }

    private async Task<bool> TryCreateGenerationAsync(int generation, DateTimeOffset activatesAt, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var rsa = RSA.Create(2048);
        var records = new[]
        {
            Record(Es256, ecdsa.ExportPkcs8PrivateKey()),
            Record(Rs256, rsa.ExportPkcs8PrivateKey()),
            Record(Encryption, RandomNumberGenerator.GetBytes(32)),
        };

        await using var scope = scopes.CreateAsyncScope();
        var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
        store.SigningKeys.AddRange(records);
        try
        {
            await store.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            // The unique (generation, algorithm) index: another instance added this generation first. Theirs wins.
            return false;
        }

        LogCreated(logger, generation, activatesAt);
        return true;

        SigningKeyRecord Record(string algorithm, byte[] material)
        {
            try
            {
                return new SigningKeyRecord
                {
                    KeyId = $"{algorithm.ToLowerInvariant()}-g{generation}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}",
                    Generation = generation,
                    Algorithm = algorithm,
                    CreatedAt = now,
                    ActivatesAt = activatesAt,
                    ProtectedKey = Convert.ToBase64String(_protector.Protect(material)),
                };
            }
            finally
            {
                CryptographicOperations.ZeroMemory(material);
            }
        }
    }

    private void Apply(List<SigningKeyRecord> records)
    {
        var now = time.GetUtcNow();
        var previous = _snapshot;
        var generations = records
            .GroupBy(r => r.Generation)
            .OrderBy(g => g.Key)
            .Select(g => previous?.Generations.FirstOrDefault(k => k.Number == g.Key) ?? Materialize(g.Key, [.. g]))
            .ToList();

        // A generation retires when its successor activates, and is dropped once its last token has expired.
        var retention = Retention;
        var published = generations
            .Where((generation, index) => index + 1 >= generations.Count || generations[index + 1].ActivatesAt + retention > now)
            .ToList();

        var snapshot = new Snapshot(generations, published);
        var changed = previous is null
            || !previous.Published.Select(g => g.Number).SequenceEqual(published.Select(g => g.Number));
        _snapshot = snapshot;
        if (changed)
        {
            CancellationTokenSource old;
            lock (_gate)
            {
                old = _changed;
                _changed = new CancellationTokenSource();
            }

            old.Cancel();
            old.Dispose();
            var numbers = string.Join(", ", published.Select(g => g.Number));
            LogPublished(logger, numbers, Current.Number);
        }
    }

    private KeyGeneration Materialize(int number, List<SigningKeyRecord> records)
    {
        byte[] Unprotect(string algorithm) =>
            _protector.Unprotect(Convert.FromBase64String(records.Single(r => r.Algorithm == algorithm).ProtectedKey));

        string KeyId(string algorithm) => records.Single(r => r.Algorithm == algorithm).KeyId;

        var ecdsa = ECDsa.Create();
        var ecMaterial = Unprotect(Es256);
        ecdsa.ImportPkcs8PrivateKey(ecMaterial, out _);
        CryptographicOperations.ZeroMemory(ecMaterial);

        var rsa = RSA.Create();
        var rsaMaterial = Unprotect(Rs256);
        rsa.ImportPkcs8PrivateKey(rsaMaterial, out _);
        CryptographicOperations.ZeroMemory(rsaMaterial);

        var es256 = new SigningCredentials(new ECDsaSecurityKey(ecdsa) { KeyId = KeyId(Es256) }, SecurityAlgorithms.EcdsaSha256);
        var rs256 = new SigningCredentials(new RsaSecurityKey(rsa) { KeyId = KeyId(Rs256) }, SecurityAlgorithms.RsaSha256);
        var encryption = new EncryptingCredentials(
            new SymmetricSecurityKey(Unprotect(Encryption)) { KeyId = KeyId(Encryption) },
            SecurityAlgorithms.Aes256KW,
            SecurityAlgorithms.Aes256CbcHmacSha512);

        return new KeyGeneration(number, records[0].CreatedAt, records[0].ActivatesAt, es256, rs256, encryption);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _changed.Dispose();
        }
    }

    private static InvalidOperationException NotLoaded() =>
        new("The signing-key ring has not been loaded yet; SigningKeyRingService loads it when the host starts.");

    [LoggerMessage(EventId = 4200, Level = LogLevel.Information, Message = "Created signing-key generation {Generation}, signing from {ActivatesAt:O}")]
    private static partial void LogCreated(ILogger logger, int generation, DateTimeOffset activatesAt);

    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "Published signing-key generations {Generations}; generation {Current} signs")]
    private static partial void LogPublished(ILogger logger, string generations, int current);

    [LoggerMessage(EventId = 4202, Level = LogLevel.Information, Message = "Signing-key generation {Generation} was created by another instance first")]
    private static partial void LogRotationRace(ILogger logger, int generation);

    private sealed record Snapshot(IReadOnlyList<KeyGeneration> Generations, IReadOnlyList<KeyGeneration> Published);
}

/// <summary>One generation of keys, ready to use.</summary>
internal sealed record KeyGeneration(
    int Number,
    DateTimeOffset CreatedAt,
    DateTimeOffset ActivatesAt,
    SigningCredentials Es256,
    SigningCredentials Rs256,
    EncryptingCredentials Encryption);

/// <summary>Loads the ring before the host serves, re-reads it on an interval, and rotates on schedule.</summary>
internal sealed partial class SigningKeyRingService(
    SigningKeyRing ring,
    IOptions<IdentitySettings> settings,
    TimeProvider time,
    ILogger<SigningKeyRingService> logger) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private Task? _loop;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await ring.RefreshAsync(cancellationToken);
        _loop = RunAsync(_stopping.Token);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_loop is not null)
        {
            await Task.WhenAny(_loop, Task.Delay(Timeout.Infinite, cancellationToken));
        }
    }

    public void Dispose() => _stopping.Dispose();

    private async Task RunAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(settings.Value.SigningKeys.RefreshInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await ring.RefreshAsync(stoppingToken);
                    await ring.RotateIfDueAsync(stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Keep signing with the keys already loaded; the next tick tries again.
                    LogRefreshFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 4203, Level = LogLevel.Warning, Message = "Could not refresh the signing-key ring; the keys already loaded stay in use")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
