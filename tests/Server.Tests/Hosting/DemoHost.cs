namespace CrmSecurity.Server.Tests.Hosting;

/// <summary>The real host in demo mode on an empty database: demo users, clients and (analyzer on) demo history.</summary>
public sealed class DemoHost : InProcessHost
{
    public const string AuditClient = "demo-audit";
    public const string AuditSecret = "demo-audit-secret";
    public const string SecOpsClient = "demo-secops";
    public const string SecOpsSecret = "demo-secops-secret";

    protected override bool DemoMode => true;
}
