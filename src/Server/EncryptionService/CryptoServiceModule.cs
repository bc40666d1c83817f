using CrmSecurity.Identity.Contracts;
using CrmSecurity.Server.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>The encryption service of the host: token authentication, the read_unmasked seam, a development key.</summary>
internal static class CryptoServiceModule
{
    /// <summary>
    /// Adds the encryption service when the Crypto module is on. In Development without a configured master key it
    /// generates one in the data directory (and the keyring under it) so the service runs out of the box; every other
    /// environment must configure the key (the module's start-up check stops the host with exit 78 naming the setting).
    /// </summary>
    public static WebApplicationBuilder AddCryptoService(this WebApplicationBuilder builder)
    {
        if (!IsOn(builder.Configuration))
        {
            return builder;
        }

        if (builder.Environment.IsDevelopment())
        {
            DevelopmentMasterKey.UseWhenNoneConfigured(builder.Configuration, generate: true, Console.Out);
        }

        // With Identity in this host, decrypt follows the authorization model's field security; without it, nothing decrypts.
        if (builder.Services.Any(d => d.ServiceType == typeof(IUnmaskedReads)))
        {
            builder.Services.TryAddSingleton<IUnmaskedFieldAccess, IdentityUnmaskedFieldAccess>();
        }

        builder.Services.TryAddSingleton<IUnmaskedFieldAccess, DenyUnmaskedFieldAccess>();

        // The declared columns: deterministic mode and blind indexes only where the security team planned them.
        builder.Services.AddOptions<CryptoColumnsOptions>().Bind(builder.Configuration.GetSection(CryptoColumnsOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<CryptoColumnsOptions>, CryptoColumnsValidator>();
        builder.Services.AddSingleton<CryptoColumns>();
        CryptoServiceAuthentication.Add(builder.Services, builder.Configuration);
        return builder;
    }

    public static WebApplication MapCryptoService(this WebApplication app)
    {
        if (IsOn(app.Configuration))
        {
            app.MapCryptoServiceEndpoints();
        }

        return app;
    }

    /// <summary>Whether the Crypto module is switched on (<c>Modules:Crypto:Enabled</c>, or its older name <c>Crypto:Enabled</c>).</summary>
    public static bool IsOn(IConfiguration configuration) => ModuleSwitches.Read(configuration).Crypto;

    private static IEndpointRouteBuilder MapCryptoServiceEndpoints(this IEndpointRouteBuilder endpoints) =>
        CryptoServiceEndpoints.MapCryptoService(endpoints);
}
