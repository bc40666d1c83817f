using CrmSecurity.AuditAnalyzer;
using CrmSecurity.Identity;
using CrmSecurity.Crypto.Hosting;
using CrmSecurity.Server.Hosting;

// Anything that is not a known verb (no arguments, "serve", or host switches such as --urls) runs the web service.
if (CommandLine.IsVerb(args))
{
    return await CommandLine.InvokeAsync(args);
}

var builder = WebApplication.CreateBuilder(ServerHost.Options(CommandLine.HostArguments(args)));
var modules = builder.AddModuleSwitches();
builder.AddServerCore();
builder.AddInstallationKey(service: true, Console.Out);
builder.AddServerTelemetry();
builder.Services.AddDesignSystem();
if (modules.Identity)
{
    builder.AddIdentityModule();
}

builder.AddCryptoModule(service: true);
if (modules.AuditAnalyzer)
{
    builder.AddAuditAnalyzerModule(service: true);
}

if (modules is { Identity: true, AuditAnalyzer: true })
{
    builder.AddIdentityEventsToAnalyzer();
    builder.AddIdentityDirectoryToAnalyzer();
    builder.AddReviewThroughIdentity();
    builder.AddAnalyzerRiskToDecisions();
    builder.AddDemoHistory();
}

// Last of the start-up work: a Production host refuses what demo mode left behind.
builder.Services.AddHostedService<DemoDataCheck>();
var app = builder.Build();
if (!app.Environment.IsDevelopment())
{
    app.UseHsts();
}

app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseAuthentication();
app.UseAuthorization();
app.MapHealth();
if (modules.Identity)
{
    app.MapIdentity();
}

if (modules.AuditAnalyzer)
{
    app.MapAuditAnalyzer();
}

app.MapCrypto();

return await ServerHost.RunAsync(app);

/// <summary>Entry point; public so that tests can start the real host with WebApplicationFactory.</summary>
public partial class Program;
