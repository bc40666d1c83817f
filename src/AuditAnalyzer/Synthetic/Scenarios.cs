using System.Globalization;

namespace CrmSecurity.AuditAnalyzer.Synthetic;

/// <summary>The insider scenarios: what each labelled insider does on their scenario days.</summary>
internal sealed partial class OrganisationGenerator
{
    private static readonly string[] Choice1 = ["contact", "account", "opportunity", "contact"];

    private static readonly (string, string, string)[] Choice3 = [("payroll:export", "payroll", "export"), ("employee:export", "employee", "export"),
                    ("role:HR Partner", "employee", "list"), ("bank_account:read", "bank_account", "list"),];

    private static readonly (string, string)[] Choice4 = [("role:Finance Approver", "bank_account"), ("payroll:read", "payroll"), ("employee:read_unmasked", "employee")];

    private static readonly string[] Choice5 = ["list", "report_run", "search"];

    private static readonly string[] Choice6 = ["contact", "account", "opportunity"];

    private static readonly string[] Choice7 = ["employee", "payroll", "bank_account"];

    private static readonly string[] Choice8 = ["list", "read", "search"];

    /// <summary>Where stolen credentials are used from: countries none of the organisation's regions works from.</summary>
    private static readonly string[] AttackerCountries = ["NG", "RU", "BR", "VN", "ID", "UA", "RO", "PH", "TR", "CN", "ZA", "AR"];

    private void Inject(User user, DateOnly date, int day)
    {
        var region = user.Region;
        var country = region.Country;
        var weekend = date.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
        var work = user.StartHour + Uniform(0.5, Math.Max(1, user.WorkHours - 2));
        var session = "x" + _random.Next().ToString("x", CultureInfo.InvariantCulture);
        var first = day == user.ScenarioDay;
        string Describe(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

        switch (user.Scenario)
        {
            case "bulk_export":
            {
                // A departing employee takes the customer base: tens to hundreds of times their usual exports.
                var total = Math.Max(3000, user.ExportMedian * Uniform(20, 300));
                var entity = Pick(Choice1);
                var parts = _random.Next(1, 5);
                for (var p = 0; p < parts; p++)
                {
                    Emit(user, region, date, work + Uniform(0, 2), "export", entity, (int)(total / parts), country, session, malicious: true);
                }

                user.ScenarioDescription += Describe($"exported {total:N0} {entity} records on {date:yyyy-MM-dd}; ");
                break;
            }

            case "low_and_slow":
                if (!weekend)
                {
                    // A little more every working day: each day alone stays under bulk thresholds.
                    var extra = Uniform(250, 900);
                    var parts = _random.Next(1, 4);
                    for (var p = 0; p < parts; p++)
                    {
                        Emit(user, region, date, work + Uniform(0, 4), "export", Pick(user.Role.ExportEntities), (int)(extra / parts), country, session, malicious: true);
                    }

                    if (first || user.ScenarioDescription.Length == 0)
                    {
                        user.ScenarioDescription = Describe($"exported 250-900 extra records every working day for {user.ScenarioLength} days from {date:yyyy-MM-dd}");
                    }
                }

                break;

            case "odd_hours":
                if (Chance(0.6) || first)
                {
                    // Night sessions reading and exporting data, far from the user's working hours.
                    var hour = Uniform(0.3, 4.5);
                    var typical = user.Activity * 8;
                    var records = typical * Uniform(0.5, 3);
                    Emit(user, region, date, hour, "login", null, 1, country, session, malicious: true);
                    var steps = _random.Next(4, 12);
                    // Only things the user does by day: the signal is the hour, not what is touched.
                    var usual = user.Role.Work.Where(w => w.Action is "read" or "list" or "search" or "report_run").Select(w => (w.Action, w.Entity)).ToList();
                    for (var s = 0; s < steps; s++)
                    {
                        var (readAction, readEntity) = Pick(usual);
                        Emit(user, region, date, hour + Uniform(0, 0.8), readAction, readEntity, (int)Math.Max(1, records / steps), country, session, malicious: true);
                    }

                    user.ScenarioDescription += Describe($"night session at {hour:00.0}h local on {date:yyyy-MM-dd} touching {records:N0} records; ");
                }

                break;

            case "privilege_escalation":
            {
                // An administrator grants a privilege the user's peers do not have; the user uses it within hours.
                var admin = user.Accomplice!;
                var (privilege, entity, action) = Pick(Choice3);
                // The grant's time is taken in the grantee's time zone, so it precedes the use wherever the admin sits.
                Emit(admin, region, date, work - 1, "admin_change", "user", 1, admin.Region.Country, "adm" + session, target: user.Id, privilege: privilege, details: "grant", malicious: false);
                var later = work - 1 + Uniform(0.5, 6);
                var records = _random.Next(30, 400);
                Emit(user, region, date, later, action, entity, records, country, session, malicious: true);
                Emit(user, region, date, later + Uniform(0.05, 0.5), action == "export" ? "list" : "export", entity, _random.Next(10, 200), country, session, malicious: true);
                user.ScenarioDescription = Describe($"granted '{privilege}' by {admin.Id} and used it {later - work + 1:0.0}h later on {records:N0} {entity} records");
                break;
            }

            case "self_grant":
            {
                var (privilege, entity) = Pick(Choice4);
                Emit(user, region, date, work, "admin_change", "user", 1, country, session, target: user.Id, privilege: privilege, details: "grant", malicious: true);
                Emit(user, region, date, work + Uniform(0.1, 2), "list", entity, _random.Next(10, 150), country, session, malicious: true);
                user.ScenarioDescription = Describe($"granted themselves '{privilege}' and read {entity}");
                break;
            }

            case "admin_snooping":
            {
                // An administrator browsing customer data in bulk, far beyond their usual few records.
                var total = Uniform(3000, 30000);
                var steps = _random.Next(5, 20);
                for (var s = 0; s < steps; s++)
                {
                    Emit(user, region, date, work + Uniform(0, 3), Pick(Choice5), Pick(Choice6), (int)(total / steps), country, session, malicious: true);
                }

                user.ScenarioDescription = Describe($"administrator read {total:N0} business records on {date:yyyy-MM-dd}");
                break;
            }

            case "mass_decrypt":
            {
                var events = _random.Next(150, 1200);
                var fields = _random.Next(2, 5);
                for (var i = 0; i < events; i++)
                {
                    Emit(user, region, date, work + Uniform(0, 4), "decrypt", user.Role.DecryptEntity!, 1, country, session, fields: fields, malicious: true);
                }

                user.ScenarioDescription += Describe($"decrypted {events * fields:N0} sensitive values on {date:yyyy-MM-dd}; ");
                break;
            }

            case "dormant_reactivated":
            {
                Emit(user, region, date, work, "login", null, 1, country, session, malicious: true);
                var records = _random.Next(100, 2000);
                var (_, entity, _) = Pick(user.Role.Work);
                Emit(user, region, date, work + 0.2, "list", entity, records, country, session, malicious: true);
                if (user.Role.ExportEntities.Length > 0 && Chance(0.5))
                {
                    Emit(user, region, date, work + 0.5, "export", Pick(user.Role.ExportEntities), records, country, session, malicious: true);
                }

                user.ScenarioDescription = Describe($"account silent for {user.ScenarioDay - user.DormantFrom!.Value} days, then listed {records:N0} {entity} records");
                break;
            }

            case "after_termination":
            {
                Emit(user, region, date, work, "login", null, 1, country, session, malicious: true);
                var (action, entity, _) = Pick(user.Role.Work.Where(w => w.Action != "admin_change").ToList());
                Emit(user, region, date, work + Uniform(0.1, 1), action, entity, _random.Next(1, 300), country, session, malicious: true);
                user.ScenarioDescription = Describe($"terminated {user.Terminated:yyyy-MM-dd}, active again on {date:yyyy-MM-dd}");
                break;
            }

            case "departure":
                if (!weekend)
                {
                    // A leaver takes their customers a little at a time: each working day 2-4 times a normal day's exports
                    // on top of their own (a normal day: their export-day share times their typical export day).
                    var normal = user.ExportDayProbability * user.ExportMedian * 1.38;
                    var extra = Math.Max(20, normal * Uniform(2, 4));
                    Emit(user, region, date, work + Uniform(0, 4), "export", Pick(user.Role.ExportEntities), (int)extra, country, session, malicious: true);
                    if (first || user.ScenarioDescription.Length == 0)
                    {
                        user.ScenarioDescription = Describe($"exported 2-4 times a normal day's records every working day for {user.ScenarioLength} days from {date:yyyy-MM-dd}, before leaving on {user.Terminated:yyyy-MM-dd}");
                    }
                }

                break;

            case "snooping":
                if (!weekend || first)
                {
                    // Browsing other units' customers: many distinct records of many owners in one to three foreign
                    // units, one at a time, exporting nothing.
                    var units = Catalogue.Regions.Select(r => r.BusinessUnit).Where(u => u != user.Region.BusinessUnit).OrderBy(_ => _random.Next()).Take(_random.Next(1, 4)).ToList();
                    var reads = _random.Next(40, 251);
                    var entity = Pick(user.Role.Work.Where(w => w.Action == "read" && RecordEntities.Contains(w.Entity)).ToList()).Entity;
                    for (var r = 0; r < reads; r++)
                    {
                        var unit = Pick(units);
                        var (id, owner) = RecordOf(entity, unit, user);
                        Emit(user, region, date, work + Uniform(0, 3), "read", entity, 1, country, session, malicious: true, record: (id, owner, unit));
                    }

                    user.ScenarioDescription += Describe($"read {reads:N0} {entity} records of {string.Join("/", units)} on {date:yyyy-MM-dd}; ");
                }

                break;

            case "mass_sharing":
            {
                // Records given away through the CRM's own sharing: to another unit's account or to an account created
                // for it (not in the directory).
                var outsiders = UnitMembers(Pick(Catalogue.Regions.Where(r => r.BusinessUnit != user.Region.BusinessUnit).ToList()).BusinessUnit);
                var to = Chance(0.5) ? outsiders[_random.Next(outsiders.Count)].Id : string.Create(CultureInfo.InvariantCulture, $"ext-{_random.Next(1000, 9999)}");
                var total = _random.Next(25, 201);
                var parts = _random.Next(3, 11);
                var entity = Pick(Choice6);
                for (var p = 0; p < parts; p++)
                {
                    Emit(user, region, date, work + Uniform(0, 3), Chance(0.7) ? "share" : "assign", entity, Math.Max(1, total / parts), country, session, target: to, malicious: true);
                }

                user.ScenarioDescription = Describe($"shared or reassigned {total:N0} {entity} records to {to} on {date:yyyy-MM-dd}");
                break;
            }

            case "mass_delete":
            {
                // Deleting a few times anything they deleted before (covering tracks, sabotage), far below thousands.
                var total = _random.Next(35, 301);
                var parts = _random.Next(2, 9);
                var entity = Pick(user.Role.Work.Where(w => w.Action == "delete").ToList()).Entity;
                for (var p = 0; p < parts; p++)
                {
                    Emit(user, region, date, work + Uniform(0, 3), "delete", entity, Math.Max(1, total / parts), country, session, malicious: true);
                }

                user.ScenarioDescription = Describe($"deleted {total:N0} {entity} records on {date:yyyy-MM-dd}");
                break;
            }

            case "account_takeover":
            {
                // A stolen password or session used the night after a working day, from a country the account never used,
                // while its owner sleeps: searches, lists and an export or two. The owner is back at work in the morning.
                var place = Pick(AttackerCountries.Where(c => Detection.CountryPlaces.DistanceKm(country, c) >= 2000).ToList());
                var night = date.AddDays(1);
                var hour = Uniform(0.5, 3.5);
                var stolen = "t" + _random.Next().ToString("x", CultureInfo.InvariantCulture);
                Emit(user, region, night, hour, "login", null, 1, place, stolen, malicious: true);
                var usual = user.Role.Work.Where(w => w.Action is "read" or "list" or "search" or "report_run").Select(w => w.Entity).Distinct().ToList();
                var searched = 0;
                for (var s = _random.Next(3, 9); s > 0; s--)
                {
                    var found = _random.Next(5, 41);
                    searched += found;
                    Emit(user, region, night, hour + Uniform(0.02, 0.4), Chance(0.6) ? "search" : "list", Pick(usual), found, place, stolen, malicious: true);
                }

                var taken = 0;
                var entities = user.Role.ExportEntities.Length > 0 ? user.Role.ExportEntities : [.. usual];
                for (var x = _random.Next(1, 3); x > 0; x--)
                {
                    var records = _random.Next(200, 3001);
                    taken += records;
                    Emit(user, region, night, hour + Uniform(0.4, 0.8), "export", Pick(entities), records, place, stolen, malicious: true);
                }

                user.ScenarioDescription = Describe($"signed in from {place} at {hour:00.0}h local on {night:yyyy-MM-dd}, searched {searched:N0} and exported {taken:N0} records");
                break;
            }

            case "integration_abuse":
            {
                // An integration's client secret used by someone else: in the working day instead of the nightly run,
                // pulling contacts the sync never touches, and exporting them.
                var hour = Uniform(10, 16);
                var stolen = "i" + _random.Next().ToString("x", CultureInfo.InvariantCulture);
                Emit(user, region, date, hour, "login", null, 1, country, stolen, malicious: true);
                var pulled = _random.Next(500, 5001);
                Emit(user, region, date, hour + Uniform(0.05, 0.3), "api_query", "contact", pulled, country, stolen, malicious: true);
                var taken = 0;
                for (var x = _random.Next(1, 4); x > 0; x--)
                {
                    var records = _random.Next(2000, 8001);
                    taken += records;
                    Emit(user, region, date, hour + Uniform(0.3, 1), "export", "contact", records, country, stolen, malicious: true);
                }

                user.ScenarioDescription = Describe($"integration credentials used at {hour:00.0}h local on {date:yyyy-MM-dd} to query {pulled:N0} and export {taken:N0} contacts");
                break;
            }

            case "rare_entity":
            {
                var entity = Pick(Choice7);
                var records = _random.Next(10, 200);
                Emit(user, region, date, work, Pick(Choice8), entity, records, country, session, malicious: true);
                user.ScenarioDescription = Describe($"accessed {records:N0} {entity} records, which their peers never touch");
                break;
            }

            default:
                break;
        }
    }
}
