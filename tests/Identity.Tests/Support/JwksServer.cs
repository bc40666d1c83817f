using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmSecurity.Identity.Tests.Support;

/// <summary>
/// A client's key server: an in-process Kestrel on loopback that publishes JWKS documents at paths the test sets, with the
/// Cache-Control header it sets, and counts the requests per path (to see the service's caching and rate limit).
/// It also stands in for a client's back-channel logout endpoint: POSTed forms are kept per path, answered 200, or 503 for
/// as many of them as the test asked to fail.
/// </summary>
public sealed class JwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, (string Body, string? CacheControl)> _documents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _hits = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentQueue<Dictionary<string, string>>> _posts = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _failures = new(StringComparer.Ordinal);

    public JwksServer()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.Run(async context =>
        {
            var path = context.Request.Path.Value ?? "";
            _hits.AddOrUpdate(path, 1, (_, n) => n + 1);
            if (HttpMethods.IsPost(context.Request.Method))
            {
                if (_failures.TryGetValue(path, out var failing) && failing > 0 && _failures.TryUpdate(path, failing - 1, failing))
                {
                    context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                    return;
                }

                var form = await context.Request.ReadFormAsync(context.RequestAborted);
                _posts.GetOrAdd(path, _ => new()).Enqueue(form.ToDictionary(f => f.Key, f => f.Value.ToString(), StringComparer.Ordinal));
                context.Response.StatusCode = StatusCodes.Status200OK;
                return;
            }

            if (!_documents.TryGetValue(path, out var document))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            context.Response.ContentType = "application/jwk-set+json";
            if (document.CacheControl is { } cacheControl)
            {
                context.Response.Headers.CacheControl = cacheControl;
            }

            await context.Response.WriteAsync(document.Body, context.RequestAborted);
        });
        _app.StartAsync().GetAwaiter().GetResult();
        BaseAddress = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }

    public Uri BaseAddress { get; }

    /// <summary>The absolute URL of <paramref name="path"/> on this server.</summary>
    public string Url(string path) => new Uri(BaseAddress, path).AbsoluteUri;

    /// <summary>Publishes <paramref name="body"/> at <paramref name="path"/> (replacing what was there).</summary>
    public void Publish(string path, string body, string? cacheControl = "max-age=3600") => _documents[path] = (body, cacheControl);

    /// <summary>How many requests reached <paramref name="path"/>.</summary>
    public int Hits(string path) => _hits.TryGetValue(path, out var hits) ? hits : 0;

    /// <summary>The forms POSTed to <paramref name="path"/> and answered 200, oldest first.</summary>
    public IReadOnlyList<Dictionary<string, string>> Posts(string path) => _posts.TryGetValue(path, out var posts) ? [.. posts] : [];

    /// <summary>Answers the next <paramref name="count"/> POSTs to <paramref name="path"/> with 503.</summary>
    public void FailPosts(string path, int count) => _failures[path] = count;

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
