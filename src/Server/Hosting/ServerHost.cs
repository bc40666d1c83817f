using CrmSecurity.Server.Data;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Serilog;

namespace CrmSecurity.Server.Hosting;

internal static partial class ServerHost
{
    /// <summary>Configuration every part of the host shares, validated when the host starts.</summary>
    public static IHostApplicationBuilder AddServerCore(this IHostApplicationBuilder builder)
    {
        builder.AddServerLogging();

        builder.Services.AddOptions<DatabaseOptions>()
            .Bind(builder.Configuration.GetSection(DatabaseOptions.Section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptionsValidator>();

        // Registered first so that every module's tables exist before any other hosted service starts.
        builder.Services.AddHostedService<DatabaseSchemaInitializer>();
        builder.Services.AddProblemDetails();
        builder.Services.AddHealthChecks();
        return builder;
    }

    /// <summary>Starts the web host, prints where it listens, and turns configuration errors into one clear line.</summary>
    public static async Task<int> RunAsync(WebApplication app)
    {
        try
        {
            await app.StartAsync();
        }
        catch (OptionsValidationException e)
        {
            return ConfigurationError(string.Join(Environment.NewLine, e.Failures));
        }
        catch (InvalidOperationException e) when (e.Source is "CrmSecurity.Server" || e.InnerException is OptionsValidationException)
        {
            return ConfigurationError(e.Message);
        }

        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var address in addresses)
        {
            Console.WriteLine($"CRM security service listening on {address}");
        }

        await app.WaitForShutdownAsync();
        await Log.CloseAndFlushAsync();
        return 0;
    }

    private static int ConfigurationError(string message)
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
