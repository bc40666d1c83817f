using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Threading.RateLimiting;
using CrmSecurity.Identity.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Identity.Throttling;

/// <summary>
/// Per-IP and per-account throttling of the forms an attacker guesses or floods (sign-in, second factor, forgot
/// password, reset password) and of the token endpoints, with ASP.NET Core rate limiting (RFC 6749 §10.10 / RFC 9700
/// §4.8, OWASP ASVS 4.0.3 V2.2.1: anti-automation). The account of a form is what the attacker cannot vary to get a new
/// budget: the user a typed name or e-mail address belongs to (so <c>Dave</c>, <c> dave </c> and dave's address are one
/// account), the typed value itself when no user has it (so a throttled answer reveals nothing), the user who passed the
/// password step for the second factor, the user a reset link names; at the token endpoints the client_id. The IP is
/// the connection's: X-Forwarded-For counts only when the host's forwarded-headers middleware is enabled.
/// </summary>
internal static class Throttling
{
    private const string AccountItem = "crm-security.throttle-account";
    private static readonly PathString[] TokenPaths = ["/connect/token", "/connect/introspect", "/connect/revoke", "/connect/par", "/connect/device"];

    /// <summary>
    /// RFC 8628 §5.1: user codes are short, so guessing them is limited where they are typed. A GET with a user_code
    /// looks a code up as much as a POST does, so both count.
    /// </summary>
    private static readonly FormRule DeviceVerification =
        new("device-code", "/connect/verify", TimeSpan.FromMinutes(1), s => s.DeviceCodePerIpPerMinute, s => s.DeviceCodePerUserPerMinute);

    private static readonly FormRule[] Forms =
    [
        new("login", "/account/login", TimeSpan.FromMinutes(1), s => s.LoginPerIpPerMinute, s => s.LoginPerAccountPerMinute),
        new("second-factor", "/account/login-2fa", TimeSpan.FromMinutes(1), s => s.TwoFactorPerIpPerMinute, s => s.TwoFactorPerUserPerMinute),
        new("forgot-password", "/account/forgot-password", TimeSpan.FromHours(1), s => s.ForgotPasswordPerIpPerHour, s => s.ForgotPasswordPerAddressPerHour),
        new("reset-password", "/account/reset-password", TimeSpan.FromMinutes(1), s => s.ResetPasswordPerIpPerMinute, s => s.ResetPasswordPerUserPerMinute),
        DeviceVerification,
    ];

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
                // RFC 6585 §4: say when to come back. A sliding window gives no exact time; the window's length is the bound.
                var seconds = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter)
                    ? (int)Math.Ceiling(retryAfter.TotalSeconds)
                    : FormOf(context.HttpContext) is { } form ? (int)form.Window.TotalSeconds : 1;
                context.HttpContext.Response.Headers.RetryAfter = Math.Max(1, seconds).ToString(CultureInfo.InvariantCulture);
                return ValueTask.CompletedTask;
            };
        });
        services.AddTransient<IStartupFilter, ThrottlingStartupFilter>();
        return services;
    }

    private static RateLimitPartition<string> ByIp(HttpContext context, ThrottlingSettings limits)
    {
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (FormOf(context) is { } form)
        {
            return Sliding($"{form.Name}-ip:{ip}", form.PerIp(limits), form.Window);
        }

        return IsTokenPath(context) ? PerSecond("token-ip:" + ip, limits.TokenPerIpPerSecond) : RateLimitPartition.GetNoLimiter("none");
    }

    private static RateLimitPartition<string> ByAccount(HttpContext context, ThrottlingSettings limits)
    {
        if (FormOf(context) is { } form && context.Items[AccountItem] is string account)
        {
            return Sliding($"{form.Name}-account:{account}", form.PerAccount(limits), form.Window);
        }

        if (IsTokenPath(context) && ClientId(context) is { Length: > 0 } clientId)
        {
            return PerSecond("token-client:" + clientId, limits.TokenPerClientPerSecond);
        }

        return RateLimitPartition.GetNoLimiter("none");
    }

    private static RateLimitPartition<string> Sliding(string key, int permits, TimeSpan window) =>
        RateLimitPartition.GetSlidingWindowLimiter(key, _ => new SlidingWindowRateLimiterOptions
        {
            PermitLimit = permits,
            Window = window,
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

    /// <summary>
    /// The throttled form a POST goes to. Routing (and OpenIddict's endpoint matching) ignore case and trailing slashes,
    /// so the comparison does too: <c>/Account/Login/</c> reaches the same page and must not get a budget of its own.
    /// </summary>
    private static FormRule? FormOf(HttpContext context)
    {
        var path = Normalized(context.Request.Path);
        if (HttpMethods.IsGet(context.Request.Method) && context.Request.Query.ContainsKey("user_code")
            && string.Equals(DeviceVerification.Path, path, StringComparison.OrdinalIgnoreCase))
        {
            return DeviceVerification;
        }

        if (!HttpMethods.IsPost(context.Request.Method))
        {
            return null;
        }

        return Array.Find(Forms, form => string.Equals(form.Path, path, StringComparison.OrdinalIgnoreCase));
    }

    private static bool IsTokenPath(HttpContext context)
    {
        var path = Normalized(context.Request.Path);
        return TokenPaths.Any(token => string.Equals(token, path, StringComparison.OrdinalIgnoreCase));
    }

    private static string Normalized(PathString path) => (path.Value ?? "").TrimEnd('/');

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

    /// <summary>The account a throttled form post counts against (see the class summary), or null for none.</summary>
    private static async Task<string?> AccountOfAsync(HttpContext context, FormRule form)
    {
        var services = context.RequestServices;
        var normalizer = services.GetRequiredService<ILookupNormalizer>();
        string Field(string name) => context.Request.HasFormContentType ? context.Request.Form[name].ToString().Trim() : "";
        switch (form.Name)
        {
            case "login":
                var typed = Field("Username");
                if (typed.Length == 0)
                {
                    return null;
                }

                var users = services.GetRequiredService<UserManager<CrmUser>>();
                var user = await users.FindByNameAsync(typed) ?? (typed.Contains('@', StringComparison.Ordinal) ? await users.FindByEmailAsync(typed) : null);
                return user is not null ? "user:" + user.Id : "name:" + normalizer.NormalizeName(typed);
            case "second-factor":
                // The user who passed the password step, from the two-factor cookie: a new cookie gives no new budget.
                var pending = await context.AuthenticateAsync(IdentityConstants.TwoFactorUserIdScheme);
                return pending.Principal?.FindFirstValue(ClaimTypes.Name) is { Length: > 0 } userId ? "user:" + userId : null;
            case "forgot-password":
                var address = Field("Email");
                return address.Length > 0 ? "email:" + normalizer.NormalizeEmail(address) : null;
            case "device-code":
                // The signed-in user typing codes: a new IP gives them no new budget.
                var session = await context.AuthenticateAsync(IdentityConstants.ApplicationScheme);
                return session.Principal?.FindFirstValue(OpenIddict.Abstractions.OpenIddictConstants.Claims.Subject) is { Length: > 0 } subject ? "user:" + subject : null;
            case "reset-password":
                var named = Field("User");
                return named.Length > 0 ? "user:" + named.ToUpperInvariant() : null;
            default:
                return null;
        }
    }

    private sealed record FormRule(string Name, string Path, TimeSpan Window, Func<ThrottlingSettings, int> PerIp, Func<ThrottlingSettings, int> PerAccount);

    /// <summary>Reads the form of throttled POSTs and resolves their account before the limiter runs, so partitions need no I/O.</summary>
    private sealed class ThrottlingStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                var form = FormOf(context);
                if (HttpMethods.IsPost(context.Request.Method) && context.Request.HasFormContentType && (form is not null || IsTokenPath(context)))
                {
                    await context.Request.ReadFormAsync(context.RequestAborted);
                }

                if (form is not null && await AccountOfAsync(context, form) is { } account)
                {
                    context.Items[AccountItem] = account;
                }

                await nextMiddleware(context);
            });
            app.UseRateLimiter();
            next(app);
        };
    }
}
