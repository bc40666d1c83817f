namespace CrmSecurity.AuditAnalyzer.Synthetic;

/// <summary>Where a user works from: an IANA zone and the country their events carry.</summary>
internal sealed record Region(string Zone, string Country, string BusinessUnit)
{
    public TimeZoneInfo TimeZone { get; } = TimeZoneInfo.FindSystemTimeZoneById(Zone);
}

/// <summary>What people in one role do on a normal day; individual users vary around it.</summary>
internal sealed record RoleProfile(
    string Department,
    string Role,
    double Share,
    (string Action, string Entity, double Weight)[] Work,
    string[] ExportEntities,
    double ExportDayProbability,
    double ExportMedian,
    double DecryptsPerDay,
    string? DecryptEntity,
    double ActionsPerDay);

internal static class Catalogue
{
    public static readonly Region[] Regions =
    [
        new("America/New_York", "US", "NA-East"),
        new("America/Los_Angeles", "US", "NA-West"),
        new("Europe/London", "GB", "UK"),
        new("Europe/Berlin", "DE", "DACH"),
        new("Asia/Kolkata", "IN", "India"),
        new("Asia/Tokyo", "JP", "Japan"),
        new("Australia/Sydney", "AU", "ANZ"),
    ];

    public static readonly RoleProfile[] Roles =
    [
        new("Sales", "Account Executive", 0.28,
            [("read", "account", 3), ("read", "contact", 4), ("read", "opportunity", 3), ("list", "contact", 1.5), ("list", "opportunity", 1),
             ("search", "contact", 1.2), ("update", "opportunity", 1.5), ("update", "contact", 1), ("create", "contact", 0.5), ("create", "task", 0.6),
             ("list", "lead", 0.6), ("report_run", "opportunity", 0.4), ("share", "opportunity", 0.15), ("delete", "task", 0.3), ("assign", "opportunity", 0.1)],
            ["contact", "opportunity", "account"], 0.3, 60, 0, null, 26),
        new("Sales", "Sales Manager", 0.05,
            [("read", "opportunity", 3), ("read", "account", 2), ("report_run", "opportunity", 2), ("list", "opportunity", 1.5), ("update", "opportunity", 1),
             ("read", "contact", 1.5), ("search", "account", 0.6), ("list", "account", 0.5)],
            ["opportunity", "account", "contact"], 0.4, 200, 0, null, 22),
        new("Marketing", "Marketing Specialist", 0.10,
            [("read", "lead", 3), ("list", "lead", 2), ("read", "contact", 2), ("list", "contact", 1), ("update", "lead", 1.5), ("create", "lead", 1),
             ("search", "lead", 0.8), ("report_run", "lead", 0.6), ("delete", "lead", 0.3)],
            ["lead", "contact"], 0.2, 120, 0, null, 24),
        new("Support", "Support Agent", 0.20,
            [("read", "case", 5), ("update", "case", 3), ("create", "case", 1.2), ("read", "contact", 3), ("search", "contact", 1.5), ("list", "case", 1),
             ("read", "account", 0.8), ("delete", "case", 0.1), ("assign", "case", 0.2)],
            ["case"], 0.05, 30, 9, "contact", 34),
        new("Finance", "Financial Analyst", 0.08,
            [("read", "invoice", 3), ("read", "account", 1.5), ("read", "opportunity", 1), ("report_run", "invoice", 1.5), ("list", "invoice", 1),
             ("update", "invoice", 1), ("read", "bank_account", 0.6), ("report_run", "opportunity", 0.5)],
            ["invoice", "opportunity"], 0.6, 150, 2, "bank_account", 22),
        new("HR", "HR Partner", 0.04,
            [("read", "employee", 4), ("list", "employee", 1.5), ("update", "employee", 1.5), ("read", "payroll", 1), ("search", "employee", 1)],
            ["employee"], 0.15, 40, 3, "employee", 18),
        new("IT", "System Administrator", 0.03,
            [("read", "user", 3), ("list", "user", 1.5), ("update", "configuration", 2), ("read", "configuration", 2), ("admin_change", "configuration", 0.8),
             ("read", "account", 0.3), ("read", "contact", 0.3)],
            [], 0, 0, 0, null, 20),
        new("Operations", "Operations Analyst", 0.22,
            [("report_run", "opportunity", 2), ("report_run", "account", 1), ("read", "opportunity", 2), ("read", "account", 2), ("list", "account", 1),
             ("read", "case", 1), ("update", "account", 1), ("search", "account", 0.7), ("report_run", "case", 0.6), ("assign", "account", 0.1)],
            ["opportunity", "account"], 0.35, 100, 0, null, 22),
    ];

    /// <summary>Service accounts of integrations (never drawn for people): nightly API syncs of accounts and opportunities.</summary>
    public static readonly RoleProfile Integration = new("Integration", "Integration Service", 0,
        [("api_query", "account", 1), ("api_query", "opportunity", 0.6), ("update", "account", 0.05)], [], 0, 0, 0, null, 12);

    public static readonly string[] FirstNames = ["ana", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivo", "jin", "kai", "lea", "max", "nia", "omar", "pia", "raj", "sia", "tom", "uma", "vic", "wen", "yui", "zoe"];
}
