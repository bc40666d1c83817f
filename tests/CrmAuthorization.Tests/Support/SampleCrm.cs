using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CrmSecurity.CrmAuthorization.Tests.Support;

/// <summary>A contact as a CRM app keeps it (camelCase on the wire); InternalScore is no field of the model.</summary>
public sealed record Contact(string Id, string FirstName, string LastName, string Email, string Phone, string BirthDate, string NationalId, string Owner, string BusinessUnit, int InternalScore);

/// <summary>
/// A tiny CRM API as a customer would write it with the library: one AddCrmAuthorization call, endpoints that
/// require contact:read or invoice:read, masked responses, and a record check in a handler.
/// </summary>
public sealed class SampleCrm : IAsyncDisposable
{
    private readonly WebApplication _app;

    private SampleCrm(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public IServiceProvider Services => _app.Services;

    /// <param name="issuer">The service.</param>
    /// <param name="contacts">The app's records.</param>
    /// <param name="configure">More options for AddCrmAuthorization.</param>
    /// <param name="services">The app's own registrations, made before AddCrmAuthorization.</param>
    public static async Task<SampleCrm> StartAsync(
        string issuer, IReadOnlyList<Contact> contacts, Action<CrmAuthorizationOptions>? configure = null, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        services?.Invoke(builder.Services);
        builder.Services.AddCrmAuthorization(options =>
        {
            options.Issuer = new Uri(issuer);
            options.Audience = "crm-api";
            options.ClientId = "demo-crm";
            options.ClientSecret = "demo-crm-secret";
            options.RequireHttps = false; // loopback test only
            configure?.Invoke(options);
        });
        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();

        app.MapGet("/contacts", () => contacts).RequireCrmPermission("contact", "read").WithCrmFieldMasking("contact");
        app.MapGet("/contacts/{id}", (string id) => contacts.FirstOrDefault(c => c.Id == id) is { } contact ? Results.Ok(contact) : Results.NotFound())
            .RequireCrmPermission("contact", "read").WithCrmFieldMasking("contact");
        app.MapGet("/unguarded/contacts/{id}", (string id) => contacts.First(c => c.Id == id)).WithCrmFieldMasking("contact"); // masking alone, no policy
 // A page that lists contacts and exports them needs both privileges (two policies, combined).
        app.MapGet("/contacts/export", () => contacts).RequireCrmPermission("contact", "read").RequireCrmPermission("contact", "export");
        app.MapGet("/invoices", () => new[] { new { id = "i-1" } }).RequireCrmPermission("invoice", "read");
        app.MapPut("/contacts/{id}", async (string id, HttpContext http) =>
        {
            if (contacts.FirstOrDefault(c => c.Id == id) is not { } contact)
            {
                return Results.NotFound();
            }

            var profile = await http.GetCrmProfileAsync();
            var decision = profile.Check("contact", CrmAction.Update, new CrmRecord { Id = contact.Id, Owner = contact.Owner, BusinessUnit = contact.BusinessUnit });
            return decision.Allowed ? Results.NoContent() : Results.Json(decision, statusCode: StatusCodes.Status403Forbidden);
        }).RequireCrmPermission("contact", "update");

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new SampleCrm(app, new Uri(address + "/"));
    }

    public HttpClient CreateClient(string? accessToken)
    {
        var http = new HttpClient { BaseAddress = BaseAddress };
        if (accessToken is not null)
        {
            http.DefaultRequestHeaders.Authorization = new("Bearer", accessToken);
        }

        return http;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
