using CrmSecurity.Server.Data;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Serilog;

namespace CrmSecurity.Server.Hosting;

internal static partial class ServerHost
{
    /// <summary>
    /// Configuration files are found next to the executable, whatever the working directory, so that
    /// relative paths given to verbs (and in settings) are relative to where the user ran the command.
    /// An explicit <c>--contentRoot</c> (or ASPNETCORE_CONTENTROOT) still wins.
    /// </summary>
    public static WebApplicationOptions Options(string[] args) => new()
    {
        Args = args,
        ContentRootPath = HasExplicitContentRoot(args) ? null : AppContext.BaseDirectory,
    };

    private static bool HasExplicitContentRoot(string[] args) =>
        args.Any(arg => arg.StartsWith("--contentRoot", StringComparison.OrdinalIgnoreCase))
        || Environment.GetEnvironmentVariable("ASPNETCORE_CONTENTROOT") is { Length: > 0 }
        || Environment.GetEnvironmentVariable("DOTNET_CONTENTROOT") is { Length: > 0 };

    /// <summary>Configuration every part of the host shares, validated when the host starts.</summary>
    public static IHostApplicationBuilder AddServerCore(this IHostApplicationBuilder builder, bool logToStandardError = false)
    {
        builder.AddServerLogging(logToStandardError);

        builder.Services.AddOptions<DatabaseOptions>()
            .Bind(builder.Configuration.GetSection(DatabaseOptions.Section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptionsValidator>();

        // Registered first so that every module's tables exist before any other hosted service starts.
        builder.Services.AddHostedService<DatabaseSchemaInitializer>();
        builder.Services.AddProblemDetails();

        // OWASP ASVS 4.0.3 V14.3.3: responses name no server software. RFC 6797: browsers keep to HTTPS for a year once they
        // have seen this host over HTTPS (the header is only sent on HTTPS responses, never for localhost).
        builder.Services.Configure<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>(kestrel => kestrel.AddServerHeader = false);
        builder.Services.AddHsts(hsts =>
        {
            hsts.MaxAge = TimeSpan.FromDays(365);
            hsts.IncludeSubDomains = false; // the service does not own its parent domain's other hosts
        });
        builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database", tags: [HealthEndpoints.ReadyTag]);
        return builder;
    }

    /// <summary>Starts the web host, prints where it listens, and turns configuration errors into one clear line.</summary>
    public static async Task<int> RunAsync(WebApplication app)
    {
        try
        {
            await app.StartAsync();
        }
        catch (Exception e) when (ConfigurationErrors.Describe(e) is { } message)
        {
            return ConfigurationError(message);
        }

        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var address in addresses)
        {
            Console.WriteLine($"CRM security service listening on {address}");
        }

        PrintPlaces(app, addresses.FirstOrDefault());

        await app.WaitForShutdownAsync();
        await Log.CloseAndFlushAsync();
        return 0;
    }

    /// <summary>Where to go first. Only pages and endpoints this host maps are listed (a module may be switched off).</summary>
    private static readonly (string Label, string Path)[] Places =
    [
        ("sign-in page", "/account/login"),
        ("admin pages", "/admin"),
        ("reviewer queue", "/review"),
        ("findings API", "/analyzer/findings"),
        ("health", "/health/ready"),
        ("liveness", "/health/live"),
    ];

    private static void PrintPlaces(WebApplication app, string? address)
    {
        if (address is null)
        {
            return;
        }

        var routes = ((IEndpointRouteBuilder)app).DataSources.SelectMany(source => source.Endpoints).OfType<RouteEndpoint>()
            .Select(endpoint => "/" + (endpoint.RoutePattern.RawText ?? "").Trim('/'))
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        var root = address.Replace("://[::]", "://localhost", StringComparison.Ordinal).Replace("://0.0.0.0", "://localhost", StringComparison.Ordinal).TrimEnd('/');
        foreach (var (label, path) in Places.Where(place => routes.Contains(place.Path)))
        {
            Console.WriteLine($"  {label + ":",-16} {root}{path}");
        }
    }

    internal static int ConfigurationError(string message)
    {
        Console.Error.WriteLine($"Start-up stopped: configuration error.{Environment.NewLine}{message}");
        return ExitCodes.Configuration;
    }
}

internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Usage = 64;

    /// <summary>EX_CONFIG from sysexits.h: the service is misconfigured.</summary>
    public const int Configuration = 78;
}
