namespace CrmSecurity.Tests.Support;

/// <summary>The demo people's passwords, as demo mode seeds and prints them.</summary>
public static class DemoPasswords
{
    public static readonly IReadOnlyDictionary<string, string> ByUser = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["alice"] = "Alice-Sells-Widgets-42",
        ["bob"] = "Bob-Manages-The-Team-42",
        ["ed"] = "Ed-Sells-In-The-East-42",
        ["carol"] = "Carol-Reads-The-Logs-42",
        ["dave"] = "Dave-Guards-The-Keys-42",
        ["erin"] = "Erin-Solves-Cases-42",
        ["frank"] = "Frank-Counts-Money-42",
        ["grace"] = "Grace-Runs-Campaigns-42",
        ["wade"] = "Wade-Admins-The-West-42",
    };
}
