using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.Tests.Support;

/// <summary>
/// The real host (src/Server's Program) started in-process in the Testing environment on a free loopback port, served by
/// Kestrel over real HTTP (not the in-memory test server), with the given settings on top of appsettings.json.
/// Every in-process test host starts through here; <c>configure</c> adds what one host needs (services, a clock).
/// </summary>
public static class LoopbackHost
{
    public static (WebApplicationFactory<Program> Factory, Uri BaseAddress) Start(
        IEnumerable<KeyValuePair<string, string?>> settings, Action<IWebHostBuilder>? configure = null)
    {
        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseEnvironment("Testing");
            builder.UseUrls("http://127.0.0.1:0"); // a free port per host, so test classes run in parallel
            foreach (var (key, value) in settings)
            {
                builder.UseSetting(key, value);
            }

            configure?.Invoke(builder);
        });
        factory.UseKestrel(0);
        factory.StartServer();
        var address = factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (factory, new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal).Replace("localhost", "127.0.0.1", StringComparison.Ordinal) + "/"));
    }
}
