using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Policies;
using CrmSecurity.Identity.Data;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Authorization.Store;

/// <summary>
/// Holds the current <see cref="AuthorizationSnapshot"/>. A change builds a whole new snapshot and swaps it in with
/// one reference write, so every decision sees one version of the model, never half of a change. Other instances
/// sharing the database notice a new model version within <c>Identity:Authorization:RefreshInterval</c>, and at once
/// when a token's <c>perm_ver</c> is newer than what they hold (<see cref="ForTokenAsync"/>).
/// </summary>
internal sealed partial class AuthorizationModel(IServiceScopeFactory scopes, PolicySet policies, TimeProvider time, ILogger<AuthorizationModel> logger) : IDisposable
{
    // A token whose perm_ver is ahead of this instance triggers a version check at most this often.
    private static readonly TimeSpan TokenCheckInterval = TimeSpan.FromMilliseconds(50);

    private readonly SemaphoreSlim _reload = new(1, 1);
    private AuthorizationSnapshot? _current;
    private long _lastVersionCheck;

    public PolicySet Policies => policies;

    public bool IsLoaded => Volatile.Read(ref _current) is not null;

    public AuthorizationSnapshot Current => Volatile.Read(ref _current)
        ?? throw new InvalidOperationException("The authorization model is not loaded yet (it loads when the host starts).");

    /// <summary>Swaps in <paramref name="snapshot"/> unless a newer version is already in place.</summary>
    public void Publish(AuthorizationSnapshot snapshot)
    {
        while (true)
        {
            var current = Volatile.Read(ref _current);
            if (current is not null && current.Version > snapshot.Version)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _current, snapshot, current) == current)
            {
                if (current is null || current.Version != snapshot.Version)
                {
                    LogPublished(logger, snapshot.Version, snapshot.Users.Length, snapshot.Classes.Length);
                }

                return;
            }
        }
    }

    /// <summary>Reads the model from the database if it is newer than the snapshot held (one reload at a time).</summary>
    public async Task<AuthorizationSnapshot> ReloadAsync(CancellationToken cancellationToken)
    {
        await _reload.WaitAsync(cancellationToken);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var store = scope.ServiceProvider.GetRequiredService<IdentityStore>();
            var version = await ModelLoader.VersionAsync(store, cancellationToken);
            Interlocked.Exchange(ref _lastVersionCheck, time.GetTimestamp());
            if (Volatile.Read(ref _current) is { } current && current.Version >= version)
            {
                return current;
            }

            var builder = await ModelLoader.LoadAsync(store, policies, cancellationToken);
            Publish(builder.Build(version));
            return Current;
        }
        finally
        {
            _reload.Release();
        }
    }

    /// <summary>
    /// The snapshot to decide on for a request that carries the user's token version. A token newer than this
    /// instance's snapshot (another instance made the change) makes it reload first, so a decision is never older
    /// than what the token already knows. An older token changes nothing: decisions always use the current model.
    /// </summary>
    public ValueTask<AuthorizationSnapshot> ForTokenAsync(string userId, long? tokenPermVer, CancellationToken cancellationToken)
    {
        var current = Current;
        if (tokenPermVer is not { } version || (current.User(userId) is { } user && user.PermVer >= version))
        {
            return ValueTask.FromResult(current);
        }

        // Ahead of us, or a user we have not seen yet: check the database, but not more often than the interval.
        if (time.GetElapsedTime(Interlocked.Read(ref _lastVersionCheck)) < TokenCheckInterval)
        {
            return ValueTask.FromResult(current);
        }

        return new ValueTask<AuthorizationSnapshot>(ReloadAsync(cancellationToken));
    }

    /// <summary>The role ids a user holds (the <c>role</c> claim), from a snapshot at least as new as the user's stored version.</summary>
    public async ValueTask<IReadOnlyList<string>> RolesOfAsync(string userId, long permVer, CancellationToken cancellationToken)
    {
        var snapshot = await ForTokenAsync(userId, permVer, cancellationToken);
        return snapshot.User(userId) is { } user ? snapshot.RolesOf(user.Index) : [];
    }

    public void Dispose() => _reload.Dispose();

    [LoggerMessage(EventId = 4400, Level = LogLevel.Information, Message = "Authorization model version {Version} in use: {Users} users in {Classes} access classes")]
    private static partial void LogPublished(ILogger logger, long version, int users, int classes);
}

/// <summary>Polls the model version so changes made on another instance arrive within the refresh interval.</summary>
internal sealed partial class AuthorizationRefresher(AuthorizationModel model, IOptions<IdentitySettings> settings, TimeProvider time, ILogger<AuthorizationRefresher> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(settings.Value.Authorization.RefreshInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    if (model.IsLoaded)
                    {
                        await model.ReloadAsync(stoppingToken);
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogRefreshFailed(logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    [LoggerMessage(EventId = 4401, Level = LogLevel.Warning, Message = "Could not refresh the authorization model; decisions continue on the last version")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
