using System.Security.Cryptography;

namespace CrmSecurity.Server.Hosting;

/// <summary>
/// The one stylesheet of every page (Identity's sign-in, account, consent and admin pages, AuditAnalyzer's review pages),
/// served from one place by the host: <c>/assets/design.&lt;hash&gt;.css</c>, where the hash is of the content, so a browser
/// keeps it for a year and a new build's stylesheet has a new address. The pages' Content-Security-Policy allows it as
/// <c>style-src 'self'</c> (CSP Level 3 §6.1.3), so no page needs an inline style. Modules never reference the host: each
/// request carries the stylesheet's address in <see cref="HttpContext.Items"/> under <see cref="HrefItem"/>, which the
/// layouts read. The stylesheet is answered by the first middleware, before authentication: a response any cache may keep
/// for a year must never carry a renewed sign-in cookie (RFC 9111 §3.5 lets a shared cache store it with its Set-Cookie).
/// </summary>
internal static class DesignSystem
{
    /// <summary>Where a layout finds the stylesheet's address (a string key: the modules' layouts cannot see this type).</summary>
    public const string HrefItem = "CrmSecurity.Stylesheet";

    private const string ResourceName = "CrmSecurity.Server.Design.design.css";

    public static IServiceCollection AddDesignSystem(this IServiceCollection services)
    {
        services.AddSingleton(Stylesheet.Load());
        services.AddTransient<IStartupFilter, StylesheetAddressFilter>();
        return services;
    }

    /// <summary>The stylesheet's bytes and its content-addressed path.</summary>
    internal sealed record Stylesheet(byte[] Content, string Path, string ETag)
    {
        public static Stylesheet Load()
        {
            using var stream = typeof(DesignSystem).Assembly.GetManifestResourceStream(ResourceName)
                ?? throw new InvalidOperationException($"The stylesheet resource {ResourceName} is missing from the build.");
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var hash = Convert.ToHexStringLower(SHA256.HashData(content))[..16];
            return new Stylesheet(content, $"/assets/design.{hash}.css", $"\"{hash}\"");
        }
    }

    private static Task ServeAsync(HttpContext context, Stylesheet stylesheet)
    {
        var response = context.Response;
        response.ContentType = "text/css; charset=utf-8";
        response.Headers.XContentTypeOptions = "nosniff"; // answered before the page security headers' middleware
        // Immutable (RFC 8246): the address changes with the content, so a cached copy is never stale.
        response.Headers.CacheControl = "public, max-age=31536000, immutable";
        response.Headers.ETag = stylesheet.ETag;
        if (context.Request.Headers.IfNoneMatch == stylesheet.ETag)
        {
            response.StatusCode = StatusCodes.Status304NotModified; // RFC 9110 §13.1.2
            return Task.CompletedTask;
        }

        response.ContentLength = stylesheet.Content.Length;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(stylesheet.Content, context.RequestAborted).AsTask();
    }

    private sealed class StylesheetAddressFilter(Stylesheet stylesheet) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                var request = context.Request;
                if ((HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && request.Path == stylesheet.Path)
                {
                    return ServeAsync(context, stylesheet);
                }

                context.Items[HrefItem] = request.PathBase + stylesheet.Path;
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
