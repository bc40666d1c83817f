using Microsoft.Extensions.DependencyInjection.Extensions;

namespace CrmSecurity.Server.EncryptionService;

/// <summary>The encryption service of the host (issue 7): token authentication, the read_unmasked seam.</summary>
internal static class CryptoServiceModule
{
    /// <summary>
    /// Adds the encryption service when the Crypto module is on. The decrypt seam defaults to deny.
    /// </summary>
    public static WebApplicationBuilder AddCryptoService(this WebApplicationBuilder builder)
    {
        if (!builder.Configuration.GetValue<bool>("Crypto:Enabled"))
        {
            return builder;
        }

        builder.Services.TryAddSingleton<IUnmaskedFieldAccess, DenyUnmaskedFieldAccess>();
        CryptoServiceAuthentication.Add(builder.Services);
        return builder;
    }

    public static WebApplication MapCryptoService(this WebApplication app)
    {
        if (app.Configuration.GetValue<bool>("Crypto:Enabled"))
        {
            app.MapCryptoServiceEndpoints();
        }

        return app;
    }

    private static IEndpointRouteBuilder MapCryptoServiceEndpoints(this IEndpointRouteBuilder endpoints) =>
        CryptoServiceEndpoints.MapCryptoService(endpoints);
}
