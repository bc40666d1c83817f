using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Configuration;

namespace CrmSecurity.AuditAnalyzer.Service.Orleans;

/// <summary>The in-process silo, bound from <c>AuditAnalyzer:Live:Orleans</c> (used when <c>AuditAnalyzer:Live:Runtime</c> is <c>orleans</c>).</summary>
internal sealed class OrleansSiloOptions
{
    public const string Section = LiveOptions.Section + ":Orleans";

    /// <summary>The cluster's name in the membership table: the same on every instance of one installation.</summary>
    public string ClusterId { get; set; } = "crm-security-analyzer";

    /// <summary>Port for silo-to-silo traffic (TCP), reachable from the other instances.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>The address the other silos reach this one at (written into the membership table).</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";
}

internal sealed class OrleansSiloOptionsValidator : IValidateOptions<OrleansSiloOptions>
{
    public ValidateOptionsResult Validate(string? name, OrleansSiloOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ClusterId) || options.ClusterId.Length > 150)
        {
            errors.Add($"{OrleansSiloOptions.Section}:ClusterId must be 1 to 150 characters (the same on every instance).");
        }

        if (options.SiloPort is < 1 or > 65535)
        {
            errors.Add($"{OrleansSiloOptions.Section}:SiloPort is {options.SiloPort}; use 1 to 65535 (a TCP port the other instances can reach).");
        }

        if (!IPAddress.TryParse(options.AdvertisedAddress, out _))
        {
            errors.Add($"{OrleansSiloOptions.Section}:AdvertisedAddress '{options.AdvertisedAddress}' is not an IP address; use the address other instances reach this one at.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>Hosts the Orleans silo in the service's process and registers the partition grains' poller.</summary>
internal static class OrleansScoring
{
    public static void Add(IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(OrleansSiloOptions.Section);
        builder.Services.AddOptions<OrleansSiloOptions>().Bind(section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<OrleansSiloOptions>, OrleansSiloOptionsValidator>();
        builder.Services.AddSingleton<OrleansScoringWork>();
        builder.UseOrleans(silo =>
        {
            silo.Services.AddOptions<ClusterOptions>().Configure<IOptions<OrleansSiloOptions>>((cluster, settings) =>
            {
                cluster.ClusterId = settings.Value.ClusterId;
                cluster.ServiceId = "crm-security-analyzer";
            });
            silo.Services.AddOptions<EndpointOptions>().Configure<IOptions<OrleansSiloOptions>>((endpoint, settings) =>
            {
                endpoint.AdvertisedIPAddress = IPAddress.TryParse(settings.Value.AdvertisedAddress, out var address) ? address : IPAddress.Loopback;
                endpoint.SiloPort = settings.Value.SiloPort;
                endpoint.GatewayPort = 0; // no Orleans clients: only the silos themselves call the grains
            });

            // Failure detection and the like can be tuned from AuditAnalyzer:Live:Orleans:Membership (ClusterMembershipOptions).
            silo.Services.Configure<ClusterMembershipOptions>(section.GetSection("Membership"));
            silo.Services.AddSingleton<IMembershipTable, DatabaseMembershipTable>();
        });
        builder.Services.AddHostedService<OrleansScoringPoller>();
    }
}
