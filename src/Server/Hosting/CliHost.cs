namespace CrmSecurity.Server.Hosting;

/// <summary>
/// What a verb runs in: the service's configuration, validation, logging and database, without the web
/// server. A verb adds the module it needs to <see cref="CreateBuilder"/> and runs through <see cref="RunAsync"/>.
/// </summary>
internal static class CliHost
{
    public static HostApplicationBuilder CreateBuilder()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = [],
            ContentRootPath = AppContext.BaseDirectory,

            // The same environment as the web service: WebApplication reads ASPNETCORE_ENVIRONMENT before DOTNET_ENVIRONMENT,
            // a generic host only the latter, and `dotnet run` (launchSettings.json) sets only the former. Without this a
            // verb in a development checkout ran in Production: no development key, other settings than the service's.
            EnvironmentName = Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT") is { Length: > 0 } environment ? environment : null,
        });

        // A verb builds a module whole, web parts included (Razor Pages, routing), but it is no web host: those need services
        // only a web host has (IWebHostEnvironment, DiagnosticListener) and a verb never resolves them. Development's check
        // of every registration at build time would refuse them; scopes are still checked there.
        builder.ConfigureContainer(new DefaultServiceProviderFactory(new ServiceProviderOptions
        {
            ValidateScopes = builder.Environment.IsDevelopment(),
            ValidateOnBuild = false,
        }));

        // Verbs talk to a person (or a pipe) on stdout: logs go to stderr, and only warnings unless the
        // environment asks for more (Serilog__MinimumLevel__Default=Information).
        if (Environment.GetEnvironmentVariable("Serilog__MinimumLevel__Default") is null)
        {
            builder.Configuration["Serilog:MinimumLevel:Default"] = "Warning";
        }

        builder.AddServerCore(logToStandardError: true);
        builder.AddInstallationKey(service: false, Console.Error);
        return builder;
    }

    /// <summary>Starts the host (validating settings, creating tables), runs the verb, and stops it.</summary>
    /// <returns>The verb's exit code, or 78 with one line naming the setting when the configuration is invalid.</returns>
    public static async Task<int> RunAsync(
        HostApplicationBuilder builder,
        Func<IServiceProvider, CancellationToken, Task<int>> verb,
        CancellationToken cancellationToken)
    {
        using var host = builder.Build();
        try
        {
            await host.StartAsync(cancellationToken);
        }
        catch (Exception e) when (ConfigurationErrors.Describe(e) is { } message)
        {
            return ServerHost.ConfigurationError(message);
        }

        try
        {
            await using var scope = host.Services.CreateAsyncScope();
            return await verb(scope.ServiceProvider, cancellationToken);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }
}
