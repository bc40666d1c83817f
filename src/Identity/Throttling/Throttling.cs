using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Throttling;

/// <summary>
/// Per-IP and per-account throttling of the sign-in form and the token endpoints with ASP.NET Core rate
/// limiting (RFC 6749 §10.10 / RFC 9700 §4.8: limit online guessing). The account is the user name typed on the
/// sign-in form (known or not, so a throttled answer reveals nothing) or the client_id at the token endpoints.
/// </summary>
internal static class Throttling
{
    private static readonly PathString LoginPath = "/account/login";
    private static readonly PathString[] TokenPaths = ["/connect/token", "/connect/introspect", "/connect/revoke", "/connect/par"];

    public static IServiceCollection AddIdentityThrottling(this IServiceCollection services)
    {
        services.AddRateLimiter(_ => { });
        services.AddOptions<RateLimiterOptions>().Configure<IOptions<IdentitySettings>>((options, settings) =>
        {
            var limits = settings.Value.Throttling;
            options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            options.GlobalLimiter = PartitionedRateLimiter.CreateChained(
                PartitionedRateLimiter.Create<HttpContext, string>(context => ByIp(context, limits)),
                PartitionedRateLimiter.Create<HttpContext, string>(context => ByAccount(context, limits)));
            options.OnRejected = (context, _) =>
            {
                // RFC 6585 §4: say when to come back. Sliding windows give no exact time; a window's length is the bound.
                var seconds = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter)
                    ? (int)Math.Ceiling(retryAfter.TotalSeconds)
                    : IsLoginPost(context.HttpContext) ? 60 : 1;
                context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);

                return ValueTask.CompletedTask;
            };
        });
        services.AddTransient<IStartupFilter, ThrottlingStartupFilter>();
        return services;
    }

    private static RateLimitPartition<string> ByIp(HttpContext context, ThrottlingSettings limits)
    {
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (IsLoginPost(context))
        {
            return PerMinute("login-ip:" + ip, limits.LoginPerIpPerMinute);
        }

        return IsTokenPath(context) ? PerSecond("token-ip:" + ip, limits.TokenPerIpPerSecond) : RateLimitPartition.GetNoLimiter("none");
    }

    private static RateLimitPartition<string> ByAccount(HttpContext context, ThrottlingSettings limits)
    {
        if (IsLoginPost(context) && context.Request.HasFormContentType
            && context.Request.Form["Username"].ToString() is { Length: > 0 } userName)
        {
            return PerMinute("login-user:" + userName.Trim().ToUpperInvariant(), limits.LoginPerAccountPerMinute);
        }

        if (IsTokenPath(context) && ClientId(context) is { Length: > 0 } clientId)
        {
            return PerSecond("token-client:" + clientId, limits.TokenPerClientPerSecond);
        }

        return RateLimitPartition.GetNoLimiter("none");
    }

    private static RateLimitPartition<string> PerMinute(string key, int permits) =>
        RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
        {
            PermitLimit = permits,
            Window = TimeSpan.FromMinutes(1),
            SegmentsPerWindow = 6,
            QueueLimit = 0,
        });

    private static RateLimitPartition<string> PerSecond(string key, int permits) =>
        RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = permits,
            TokensPerPeriod = permits,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
        });

    private static bool IsLoginPost(HttpContext context) => HttpMethods.IsPost(context.Request.Method) && context.Request.Path.Equals(LoginPath, StringComparison.OrdinalIgnoreCase);

    private static bool IsTokenPath(HttpContext context) => TokenPaths.Any(path => context.Request.Path.Equals(path, StringComparison.OrdinalIgnoreCase));

    private static string? ClientId(HttpContext context)
    {
        // RFC 6749 §2.3.1: client_secret_basic carries the form-urlencoded client id in the Basic credentials.
        if (AuthenticationHeaderValue.TryParse(context.Request.Headers.Authorization, out var header)
            && string.Equals(header.Scheme, "Basic", StringComparison.OrdinalIgnoreCase) && header.Parameter is { } parameter)
        {
            try
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(parameter));
                var colon = decoded.IndexOf(':', StringComparison.Ordinal);
                return colon > 0 ? Uri.UnescapeDataString(decoded[..colon].Replace('+', ' ')) : null;
            }
            catch (FormatException)
            {
                return null;
            }
        }

        return context.Request.HasFormContentType ? context.Request.Form["client_id"].ToString() : null;
    }

    /// <summary>Reads the form of throttled POSTs before the limiter runs, so partitions can use it without blocking I/O.</summary>
    private sealed class ThrottlingStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (HttpMethods.IsPost(context.Request.Method) && context.Request.HasFormContentType && (IsLoginPost(context) || IsTokenPath(context)))
                {
                    await context.Request.ReadFormAsync(context.RequestAborted);
                }

                await nextMiddleware(context);
            });
            app.UseRateLimiter();
            next(app);
        };
    }
}
