using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Detection;

namespace CrmSecurity.AuditAnalyzer.Synthetic;

internal sealed record GeneratorSettings
{
    public int Seed { get; init; } = 1;

    public int Users { get; init; } = 1000;

    public int Days { get; init; } = 150;

    public DateOnly Start { get; init; } = new(2026, 1, 5);

    /// <summary>Days before the evaluation period: baselines are learnt, no insider acts, findings are not scored.</summary>
    public int WarmupDays { get; init; } = 60;

    /// <summary>Share of users who are insiders (one scenario each, scenarios rotated so each occurs).</summary>
    public double InsiderShare { get; init; } = 0.03;

    public bool Gzip { get; init; }

    /// <summary>Add a few malformed lines, unknown actions and duplicates, as real exports have.</summary>
    public bool Noise { get; init; } = true;
}

/// <summary>One labelled insider in the answers file.</summary>
internal sealed record InsiderAnswer(string UserId, string Scenario, DateTimeOffset Start, DateTimeOffset End, IReadOnlyList<string> ExpectedReasons, string Description);

internal sealed record GenerationResult(string UsersPath, string EventsPath, string AnswersPath, long Events, int Users, int Insiders);

/// <summary>
/// Writes a synthetic CRM organisation: users in seven time zones and eight roles with individual habits,
/// normal work, benign look-alikes (marketing campaign exports, night-shift support, month- and
/// quarter-end finance exports, product-incident days for support, travellers, new hires, leavers,
/// recurring admin maintenance, late and weekend work, vacations, legitimate grants, nightly integrations)
/// and labelled insider scenarios, plus an answers file.
/// Every size, time and schedule is drawn per user and per scenario from wide ranges, so detectors
/// cannot succeed by matching a constant.
/// </summary>
internal sealed partial class OrganisationGenerator
{
    public static readonly string[] Scenarios =
    [
        "bulk_export", "low_and_slow", "odd_hours", "privilege_escalation", "self_grant",
        "admin_snooping", "mass_decrypt", "dormant_reactivated", "after_termination", "rare_entity", "departure",
        "snooping", "mass_sharing", "mass_delete", "account_takeover", "integration_abuse",
    ];

    private static readonly Dictionary<string, string[]> Expected = new(StringComparer.Ordinal)
    {
        ["bulk_export"] = [ReasonCodes.OwnHistory, ReasonCodes.PeerHistory, ReasonCodes.SensitiveLimit],
        ["low_and_slow"] = [ReasonCodes.Cumulative7, ReasonCodes.Cumulative30, ReasonCodes.OwnHistory, ReasonCodes.PeerHistory],
        ["odd_hours"] = [ReasonCodes.RareHour],
        ["privilege_escalation"] = [ReasonCodes.Escalation],
        ["self_grant"] = [ReasonCodes.SelfGrant],
        ["admin_snooping"] = [ReasonCodes.AdminDataAccess],
        ["mass_decrypt"] = [ReasonCodes.MassDecrypt],
        ["dormant_reactivated"] = [ReasonCodes.Dormant],
        ["after_termination"] = [ReasonCodes.AfterTermination],
        ["rare_entity"] = [ReasonCodes.FirstSeenRare],
        ["departure"] = [ReasonCodes.ExportsBeforeLeaving, ReasonCodes.Cumulative7, ReasonCodes.Cumulative30, ReasonCodes.OwnHistory, ReasonCodes.PeerHistory],
        ["snooping"] = [ReasonCodes.RecordsOutsideBook, ReasonCodes.DistinctRecords],
        ["mass_sharing"] = [ReasonCodes.MassSharing],
        ["mass_delete"] = [ReasonCodes.MassDelete],
        ["account_takeover"] = [ReasonCodes.NewPlace, ReasonCodes.RoundTrip, ReasonCodes.ImpossibleTravel, ReasonCodes.RareHour],
        ["integration_abuse"] = [ReasonCodes.RareHour, ReasonCodes.FirstSeenRare, ReasonCodes.OwnHistory, ReasonCodes.PeerHistory, ReasonCodes.SensitiveLimit],
    };

    /// <summary>Departments whose people work their own business unit's records; the others (finance, operations, IT) read every unit's.</summary>
    private static bool WorksOwnUnit(User user) => user.Role.Department is "Sales" or "Marketing" or "Support" or "HR";

    /// <summary>Entities whose single-record reads carry a record id, owner and unit.</summary>
    private static readonly HashSet<string> RecordEntities = new(StringComparer.Ordinal) { "account", "contact", "opportunity", "lead", "case", "invoice", "employee" };

    private static readonly string[] MaintenanceEntities = ["configuration", "account", "contact"];

    private readonly GeneratorSettings _settings;
    private readonly Random _random;
    private readonly List<User> _users = [];
    private readonly PriorityQueue<GenEvent, (long, long)> _buffer = new();
    private readonly HashSet<long> _activeUserDays = [];
    private readonly HashSet<int> _incidentDays = [];
    private long _sequence;
    private long _written;

    public OrganisationGenerator(GeneratorSettings settings)
    {
        _settings = settings;
        _random = new Random(settings.Seed);
    }

    private DateOnly EvaluationStart => _settings.Start.AddDays(_settings.WarmupDays);

    public GenerationResult Write(string directory, Action<int, int>? progress = null)
    {
        Directory.CreateDirectory(directory);
        CreateUsers();
        PlanScenarios();
        PlanIncidents();

        var usersPath = Path.Combine(directory, "users.csv");
        WriteDirectory(usersPath);

        var eventsPath = Path.Combine(directory, _settings.Gzip ? "events.jsonl.gz" : "events.jsonl");
        using (var file = new FileStream(eventsPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        using (var stream = _settings.Gzip ? new GZipStream(file, CompressionLevel.Fastest) : (Stream)file)
        using (var output = new BufferedStream(stream, 1 << 20))
        {
            var json = new Utf8JsonWriter(output, new JsonWriterOptions { SkipValidation = true });
            for (var day = 0; day < _settings.Days; day++)
            {
                var date = _settings.Start.AddDays(day);
                foreach (var user in _users)
                {
                    UserDay(user, date, day);
                }

                // Nothing generated for later local days can be earlier than the next local midnight in the
                // easternmost zone, so everything before it can be written in order.
                var flushBefore = Catalogue.Regions.Min(r => LocalTicks(r.TimeZone, date.AddDays(1), 0));
                Flush(json, output, flushBefore);
                progress?.Invoke(day + 1, _settings.Days);
            }

            Flush(json, output, long.MaxValue);
        }

        var answersPath = Path.Combine(directory, "answers.json");
        WriteAnswers(answersPath);
        return new GenerationResult(usersPath, eventsPath, answersPath, _written, _users.Count, _users.Count(u => u.Scenario is not null));
    }

    private double Uniform(double low, double high) => low + (_random.NextDouble() * (high - low));

    private double LogNormal(double median, double sigma)
    {
        // Box-Muller.
        var u1 = 1.0 - _random.NextDouble();
        var u2 = _random.NextDouble();
        var normal = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Sin(2.0 * Math.PI * u2);
        return median * Math.Exp(sigma * normal);
    }

    private bool Chance(double probability) => _random.NextDouble() < probability;

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

    private static long LocalTicks(TimeZoneInfo zone, DateOnly date, double hour)
    {
        var local = date.ToDateTime(TimeOnly.MinValue).AddHours(hour);
        var offset = zone.GetUtcOffset(local);
        return local.Ticks - offset.Ticks;
    }

    private void CreateUsers()
    {
        var cumulative = Catalogue.Roles.Select(r => r.Share).ToArray();
        for (var i = 1; i < cumulative.Length; i++)
        {
            cumulative[i] += cumulative[i - 1];
        }

        for (var i = 0; i < _settings.Users; i++)
        {
            var x = _random.NextDouble() * cumulative[^1];
            var role = Catalogue.Roles[Math.Max(0, Array.FindIndex(cumulative, c => x < c))];
            var region = Catalogue.Regions[_random.Next(Catalogue.Regions.Length)];
            var user = new User
            {
                Index = i,
                Id = $"u{i + 1:00000}",
                Name = $"{Pick(Catalogue.FirstNames)}.{(char)('a' + _random.Next(26))}{i + 1}@example.test",
                Role = role,
                Region = region,
                StartHour = Uniform(7, 10),
                WorkHours = Uniform(7.5, 9.5),
                Activity = role.ActionsPerDay * Uniform(0.6, 1.5),
                ExportDayProbability = Math.Min(0.95, role.ExportDayProbability * Uniform(0.5, 1.5)),
                ExportMedian = role.ExportMedian * Math.Exp(Uniform(-0.6, 0.6)),
                DecryptsPerDay = role.DecryptsPerDay * Uniform(0.5, 1.5),
                LateProbability = Uniform(0, 0.07),
                WeekendProbability = Uniform(0, 0.08),
                NightShift = role.Role == "Support Agent" && Chance(0.3),
                CampaignEvery = Uniform(5, 15),
                NextCampaign = _random.Next(0, 10),
                CampaignMedian = Math.Exp(Uniform(Math.Log(3000), Math.Log(25000))),
            };
            if (user.NightShift)
            {
                user.Behaviours.Add("night_shift");
                user.StartHour = Uniform(21, 23);
            }

            if (role.Department == "Marketing")
            {
                user.Behaviours.Add("campaign_exports");
            }

            if (role.Department == "Finance")
            {
                user.Behaviours.Add("period_close_exports");
            }

            if (role.Role == "System Administrator")
            {
                user.Behaviours.Add("admin_maintenance");
                user.NextMaintenance = _random.Next(3, 30);
            }

            // Vacations: one or two blocks of 4-10 days.
            for (var v = _random.Next(1, 3); v > 0; v--)
            {
                var from = _random.Next(0, _settings.Days);
                user.Vacations.Add((from, from + _random.Next(4, 11)));
            }

            // Travellers: 6% take one or two trips of 3-8 days to another region and work local hours there (a day of travel
            // each way).
            if (Chance(0.06))
            {
                user.Behaviours.Add("traveller");
                for (var t = _random.Next(1, 3); t > 0; t--)
                {
                    var from = _random.Next(5, _settings.Days - 8);
                    var destination = Pick(Catalogue.Regions.Where(r => r.Country != region.Country).ToList());
                    user.Trips.Add((from, from + _random.Next(3, 9), destination));
                }
            }

            // New hires: 4% join during the evaluation period (learning mode, granted their role on day one).
            if (Chance(0.04))
            {
                user.Behaviours.Add("new_hire");
                user.Hired = EvaluationStart.AddDays(_random.Next(0, Math.Max(1, _settings.Days - _settings.WarmupDays - 5)));
            }
            else
            {
                user.Hired = _settings.Start.AddDays(-_random.Next(90, 2000));
            }

            // Leavers: 2% leave during the period and stop working on their last day (no activity after it).
            if (!user.Behaviours.Contains("new_hire") && Chance(0.02))
            {
                user.Behaviours.Add("leaver");
                user.Terminated = _settings.Start.AddDays(_random.Next(20, _settings.Days - 1));
            }

            // Covering: 3% of the people who work their own unit's records stand in for an absent colleague of another
            // unit for 3-7 working days, reading that one person's records: the look-alike of snooping.
            if (WorksOwnUnit(user) && Chance(0.03))
            {
                user.Behaviours.Add("covering");
                user.CoverFrom = _random.Next(_settings.WarmupDays / 2, _settings.Days - 8);
                user.CoverTo = user.CoverFrom + _random.Next(3, 8);
            }

            _users.Add(user);
        }

        // Integrations: one service account per 200 people (at least two), each a nightly sync of accounts and opportunities
        // at its own fixed hour, every day of the week, tens of thousands of records. Not people: no vacations, trips or
        // habits; their peers are the other integrations.
        for (var n = Math.Max(2, _settings.Users / 200); n > 0; n--)
        {
            var index = _users.Count;
            var service = new User
            {
                Index = index,
                Id = $"u{index + 1:00000}",
                Name = $"svc-sync{index + 1}@example.test",
                Role = Catalogue.Integration,
                Region = Catalogue.Regions[_random.Next(Catalogue.Regions.Length)],
                StartHour = Uniform(0.5, 4.5),
                WorkHours = Uniform(0.3, 1.0),
                Activity = Catalogue.Integration.ActionsPerDay * Uniform(0.8, 1.2),
                SyncMedian = Math.Exp(Uniform(Math.Log(2000), Math.Log(30000))),
                Hired = _settings.Start.AddDays(-_random.Next(200, 1500)),
            };
            service.Behaviours.Add("integration");
            _users.Add(service);
        }
    }

    /// <summary>An integration's nightly run: pages of API queries and a few updates, at its own hour.</summary>
    private void IntegrationDay(User user, DateOnly date, Region region)
    {
        var session = "n" + _random.Next().ToString("x", CultureInfo.InvariantCulture);
        var start = user.StartHour + Uniform(-0.1, 0.1);
        Emit(user, region, date, start, "login", null, 1, region.Country, session);
        foreach (var (action, entity, weight) in user.Role.Work)
        {
            var total = LogNormal(user.SyncMedian * weight, 0.35);
            var pages = _random.Next(3, 11);
            for (var p = 0; p < pages; p++)
            {
                Emit(user, region, date, start + (user.WorkHours * (p + 1) / (pages + 1)), action, entity, (int)Math.Max(1, total / pages), region.Country, session);
            }
        }
    }

    /// <summary>
    /// Product-incident days: two or three working days in the evaluation period on which every support team handles a flood
    /// of cases, reading about three times its usual records and, for half of its people, working into the evening. A spike
    /// shared by a whole peer group on one day is the look-alike of an individual's anomaly.
    /// </summary>
    private void PlanIncidents()
    {
        var evaluationDays = _settings.Days - _settings.WarmupDays;
        for (var n = _random.Next(2, 4); n > 0 && evaluationDays > 5; n--)
        {
            var day = _settings.WarmupDays + _random.Next(0, evaluationDays);
            if (_settings.Start.AddDays(day).DayOfWeek is not (DayOfWeek.Saturday or DayOfWeek.Sunday))
            {
                _incidentDays.Add(day);
            }
        }
    }

    private void PlanScenarios()
    {
        var count = (int)Math.Round(_settings.Users * _settings.InsiderShare);
        var evaluationDays = _settings.Days - _settings.WarmupDays;
        if (evaluationDays < 20)
        {
            return;
        }

        var candidates = _users.Where(u => !u.Behaviours.Contains("new_hire") && !u.Behaviours.Contains("leaver")).OrderBy(_ => _random.Next()).ToList();
        var admins = _users.Where(u => u.Role.Role == "System Administrator").ToList();
        var used = new HashSet<User>();
        for (var i = 0; i < count; i++)
        {
            var scenario = Scenarios[i % Scenarios.Length];
            Func<User, bool> fits = scenario switch
            {
                "admin_snooping" or "self_grant" => u => u.Role.Role == "System Administrator",
                "mass_decrypt" => u => u.Role.DecryptEntity is not null && !u.NightShift,
                "odd_hours" => u => !u.NightShift && u.Role.Role != "System Administrator",
                "bulk_export" or "low_and_slow" or "departure" => u => u.Role.ExportEntities.Length > 0 && u.Role.Department is not ("Marketing" or "Finance"),
                "rare_entity" or "privilege_escalation" => u => u.Role.Department is "Sales" or "Support" or "Operations",
                "snooping" => u => WorksOwnUnit(u) && !u.Behaviours.Contains("covering"),
                "mass_sharing" => u => u.Role.Work.Any(w => w.Action == "share"),
                "mass_delete" => u => u.Role.Work.Any(w => w.Action == "delete"),
                "account_takeover" => u => !u.NightShift && !u.Behaviours.Contains("traveller") && u.Role.Role != "System Administrator",
                _ => u => u.Role.Role != "System Administrator",
            };
            var user = candidates.FirstOrDefault(u => !used.Contains(u) && fits(u) && (scenario == "integration_abuse") == u.Behaviours.Contains("integration")
                && (scenario != "privilege_escalation" || admins.Any(a => a != u)));
            if (user is null)
            {
                continue;
            }

            used.Add(user);
            user.Scenario = scenario;
            user.ScenarioDay = _settings.WarmupDays + _random.Next(5, evaluationDays - 12);
            user.ScenarioLength = scenario switch
            {
                "low_and_slow" => _random.Next(10, 26),
                "departure" => _random.Next(10, 21),
                "snooping" => _random.Next(1, 4),
                "odd_hours" => _random.Next(4, 8),
                "bulk_export" or "mass_decrypt" => _random.Next(1, 3),
                _ => 1,
            };
            if (scenario == "privilege_escalation")
            {
                user.Accomplice = Pick(admins.Where(a => a != user).ToList());
            }

            if (scenario == "dormant_reactivated")
            {
                // Active early on, silent for 50-80 days, then back.
                var gap = _random.Next(50, 81);
                user.ScenarioDay = Math.Max(user.ScenarioDay, gap + 10);
                user.DormantFrom = user.ScenarioDay - gap;
            }

            if (scenario == "departure")
            {
                // The last weeks before a termination date HR entered in advance (notice period).
                user.Terminated = _settings.Start.AddDays(user.ScenarioDay + user.ScenarioLength + _random.Next(0, 5));
            }

            if (scenario == "after_termination")
            {
                var after = _random.Next(1, 11);
                user.Terminated = _settings.Start.AddDays(user.ScenarioDay - after);
            }
        }
    }

    private void UserDay(User user, DateOnly date, int day)
    {
        var inScenario = user.Scenario is not null && day >= user.ScenarioDay && day < user.ScenarioDay + user.ScenarioLength;
        var employed = date >= user.Hired && (user.Terminated is null || date <= user.Terminated);
        var dormant = user.DormantFrom is { } from && day >= from && day < user.ScenarioDay;
        var trip = user.Trips.FirstOrDefault(t => day >= t.From && day < t.To);
        var region = trip.Destination ?? user.Region;
        // A trip to another region starts and ends with a day in the air: nobody works in Frankfurt until 17:00 and in Tokyo
        // from 09:00 the next morning (8 hours for 9,000 km), which is exactly what impossible travel looks for.
        var travelDay = user.Trips.Any(t => day == t.From || day == t.To);

        if (user.Behaviours.Contains("integration"))
        {
            IntegrationDay(user, date, region);
            if (inScenario)
            {
                Inject(user, date, day);
            }

            return;
        }

        if (employed && !dormant)
        {
            if (date == user.Hired && user.Behaviours.Contains("new_hire"))
            {
                GrantOnHire(user, date);
            }

            var weekend = date.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
            var onVacation = user.Vacations.Any(v => day >= v.From && day < v.To);
            if (user.Behaviours.Contains("admin_maintenance") && day == user.NextMaintenance)
            {
                Maintenance(user, date);
                user.NextMaintenance = day + _random.Next(21, 36);
            }

            var works = !onVacation && (weekend ? Chance(user.WeekendProbability) : Chance(0.95));
            // A stolen account is used the night after its owner worked (the scenario's premise; a night after days away is
            // judged by the new place and the hour alone).
            works |= inScenario && user.Scenario == "account_takeover";
            if (works && !travelDay)
            {
                NormalDay(user, date, day, region, trip.Destination is not null, weekend);
            }
        }

        if (inScenario)
        {
            Inject(user, date, day);
        }
    }

    private void NormalDay(User user, DateOnly date, int day, Region region, bool travelling, bool weekend)
    {
        var start = user.StartHour + Uniform(-0.5, 0.5);
        var length = weekend ? Uniform(1, 4) : user.WorkHours + Uniform(-0.7, 0.7);
        if (!user.NightShift && !weekend && Chance(user.LateProbability))
        {
            length = Uniform(19, 21.5) - start; // a long day
        }

        if (!user.NightShift && Chance(0.03))
        {
            start = Uniform(6, 7); // an early start
        }

        var incident = !weekend && user.Role.Department == "Support" && _incidentDays.Contains(day);
        if (incident && !user.NightShift && Chance(0.5))
        {
            length = Math.Max(length, Uniform(19.5, 22.5) - start); // into the evening with the rest of the team
        }

        var country = region.Country;
        var session = "s" + _random.Next().ToString("x", CultureInfo.InvariantCulture);
        Emit(user, region, date, start, "login", null, 1, country, session);
        var actions = (int)Math.Max(3, user.Activity * Uniform(0.7, 1.3) * (weekend ? 0.3 : 1) * (incident ? Uniform(2.5, 3.5) : 1));
        var totalWeight = user.Role.Work.Sum(w => w.Weight);
        for (var a = 0; a < actions; a++)
        {
            var hour = start + (_random.NextDouble() * length);
            var pick = _random.NextDouble() * totalWeight;
            var work = user.Role.Work[0];
            foreach (var w in user.Role.Work)
            {
                pick -= w.Weight;
                if (pick <= 0)
                {
                    work = w;
                    break;
                }
            }

            var count = work.Action switch
            {
                "list" => _random.Next(10, 60),
                "search" => _random.Next(3, 25),
                "report_run" => _random.Next(20, 250),
                _ => 1,
            };
            if (work.Action == "admin_change")
            {
                Emit(user, region, date, hour, "admin_change", "configuration", 1, country, session, privilege: null, details: "setting changed");
                continue;
            }

            if (work.Action == "read" && RecordEntities.Contains(work.Entity))
            {
                // Their own unit's records (a few from elsewhere: a shared account, a referral); finance, operations
                // and IT read every unit's.
                var unit = WorksOwnUnit(user) && !Chance(0.02) ? user.Region.BusinessUnit : Pick(Catalogue.Regions).BusinessUnit;
                var (id, owner) = RecordOf(work.Entity, unit, user);
                Emit(user, region, date, hour, "read", work.Entity, 1, country, session, record: (id, owner, unit));
                continue;
            }

            if (work.Action is "share" or "assign")
            {
                // Records shared with or handed to a colleague of their own unit (now and then another unit's).
                var colleagues = UnitMembers(Chance(0.05) ? Pick(Catalogue.Regions).BusinessUnit : user.Region.BusinessUnit);
                Emit(user, region, date, hour, work.Action, work.Entity, _random.Next(1, 4), country, session, target: colleagues[_random.Next(colleagues.Count)].Id);
                continue;
            }

            Emit(user, region, date, hour, work.Action, work.Entity, count, country, session);
        }

        // Leavers hand their records to a colleague of their own unit in their last week: a reassignment inside the
        // unit, the look-alike of mass sharing.
        if (user.Behaviours.Contains("leaver") && user.Terminated is { } last && date >= last.AddDays(-7) && !weekend && Chance(0.5))
        {
            var colleagues = UnitMembers(user.Region.BusinessUnit).Where(u => u != user).ToList();
            if (colleagues.Count > 0)
            {
                var handed = user.Role.Work.Where(w => w.Action is "assign" or "share").Select(w => w.Entity).DefaultIfEmpty(Pick(user.Role.Work).Entity).First();
                Emit(user, region, date, start + (_random.NextDouble() * length), "assign", handed, _random.Next(40, 201), country, session,
                    target: Pick(colleagues).Id, details: "handover");
            }
        }

        if (user.Behaviours.Contains("covering") && day >= user.CoverFrom && day < user.CoverTo && !weekend)
        {
            user.Covered ??= Pick(_users.Where(u => u.Region.BusinessUnit != user.Region.BusinessUnit && u.Role.Department == user.Role.Department).ToList());
            var entity = Pick(user.Role.Work.Where(w => w.Action == "read" && RecordEntities.Contains(w.Entity)).ToList()).Entity;
            for (var r = _random.Next(15, 61); r > 0; r--)
            {
                var id = string.Create(CultureInfo.InvariantCulture, $"{entity}-{user.Covered.Region.BusinessUnit}-{user.Covered.Index}-{_random.Next(0, 80)}");
                Emit(user, region, date, start + (_random.NextDouble() * length), "read", entity, 1, country, session, record: (id, user.Covered.Id, user.Covered.Region.BusinessUnit));
            }
        }

        // Exports: an individual habit, plus the role's calendar (campaigns, period close).
        double exportTotal = 0;
        if (user.Role.ExportEntities.Length > 0 && Chance(user.ExportDayProbability))
        {
            exportTotal = LogNormal(user.ExportMedian, 0.8);
        }

        if (user.Role.Department == "Marketing" && day >= user.NextCampaign)
        {
            exportTotal += LogNormal(user.CampaignMedian, 0.35);
            user.NextCampaign = day + (int)Math.Round(user.CampaignEvery * Uniform(0.7, 1.3));
        }

        if (user.Role.Department == "Finance" && IsPeriodClose(date, out var quarter))
        {
            exportTotal += user.ExportMedian * (quarter ? Uniform(12, 35) : Uniform(4, 10));
        }

        // Leavers hand their accounts over in their last two weeks: somewhat more exports than usual (1.3-1.8x their
        // normal), the benign look-alike of the departure scenario.
        if (user.Behaviours.Contains("leaver") && user.Terminated is { } leaving && date >= leaving.AddDays(-14) && user.Role.ExportEntities.Length > 0)
        {
            exportTotal += user.ExportDayProbability * user.ExportMedian * 1.38 * Uniform(0.3, 0.8);
        }

        if (exportTotal >= 1)
        {
            var parts = _random.Next(1, 4);
            for (var p = 0; p < parts; p++)
            {
                Emit(user, region, date, start + (_random.NextDouble() * length), "export", Pick(user.Role.ExportEntities), (int)Math.Max(1, exportTotal / parts), country, session);
            }
        }

        if (user.Role.DecryptEntity is { } decryptEntity)
        {
            var decrypts = (int)Math.Round(user.DecryptsPerDay * Uniform(0.3, 1.7));
            for (var d = 0; d < decrypts; d++)
            {
                Emit(user, region, date, start + (_random.NextDouble() * length), "decrypt", decryptEntity, 1, country, session, fields: _random.Next(1, 3));
            }
        }

        // Administrators grant roles and privileges to colleagues as part of their job.
        if (user.Role.Role == "System Administrator" && Chance(0.15))
        {
            var grantee = Pick(_users);
            Emit(user, region, date, start + Uniform(0.5, 3), "admin_change", "user", 1, country, session, target: grantee.Id, privilege: $"role:{grantee.Role.Role}", details: "grant (access review)");
        }

        Emit(user, region, date, start + length, "logout", null, 1, country, session);
        _ = travelling;
    }

    private static bool IsPeriodClose(DateOnly date, out bool quarter)
    {
        var last = new DateOnly(date.Year, date.Month, DateTime.DaysInMonth(date.Year, date.Month));
        while (last.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
        {
            last = last.AddDays(-1);
        }

        var close = date == last || date == last.AddDays(-1) || (date == last.AddDays(-3) && last.DayOfWeek == DayOfWeek.Monday);
        quarter = close && date.Month % 3 == 0;
        return close;
    }

    private void GrantOnHire(User user, DateOnly date)
    {
        var admin = _users.FirstOrDefault(u => u.Role.Role == "System Administrator" && u.Region == user.Region)
            ?? _users.FirstOrDefault(u => u.Role.Role == "System Administrator");
        if (admin is not null)
        {
            Emit(admin, admin.Region, date, Uniform(8, 9), "admin_change", "user", 1, admin.Region.Country, "onboarding", target: user.Id, privilege: $"role:{user.Role.Role}", details: "grant (new hire)");
        }
    }

    private void Maintenance(User admin, DateOnly date)
    {
        // Recurring approved maintenance on a weekend evening: bulk updates and listings of business records.
        var start = Uniform(18, 21);
        var session = "maint" + _random.Next().ToString("x", CultureInfo.InvariantCulture);
        var region = admin.Region;
        Emit(admin, region, date, start, "login", null, 1, region.Country, session);
        for (var i = _random.Next(5, 15); i > 0; i--)
        {
            var hour = start + Uniform(0, 2.5);
            Emit(admin, region, date, hour, "update", Pick(MaintenanceEntities), _random.Next(50, 400), region.Country, session);
            Emit(admin, region, date, hour, "list", "configuration", _random.Next(10, 100), region.Country, session);
        }

        Emit(admin, region, date, start, "admin_change", "configuration", 1, region.Country, session, details: "approved maintenance window");
    }

    private void Emit(User user, Region region, DateOnly date, double hour, string action, string? entity, int count, string? country, string? session,
        string? target = null, string? privilege = null, string? details = null, int fields = 0, bool malicious = false,
        (string Id, string Owner, string Unit)? record = null)
    {
        var ticks = LocalTicks(region.TimeZone, date, hour) + _random.Next(0, 600_000_000);
        ticks -= ticks % TimeSpan.TicksPerMillisecond; // the events file carries milliseconds
        var offset = region.TimeZone.GetUtcOffset(new DateTime(ticks, DateTimeKind.Utc));
        var e = new GenEvent
        {
            Ticks = ticks,
            OffsetMinutes = (short)offset.TotalMinutes,
            User = user,
            Action = action,
            Entity = entity,
            Count = count,
            Country = country,
            Session = session,
            Target = target,
            Privilege = privilege,
            Details = details,
            Fields = fields,
            Record = record,
            Id = ++_sequence,
        };
        _buffer.Enqueue(e, (ticks, e.Id));
        _activeUserDays.Add(((long)user.Index << 20) | (uint)(ticks / TimeSpan.TicksPerDay));
        if (malicious)
        {
            user.FirstMalicious = Math.Min(user.FirstMalicious, ticks);
            user.LastMalicious = Math.Max(user.LastMalicious, ticks);
        }
    }

    private void Flush(Utf8JsonWriter json, Stream output, long before)
    {
        while (_buffer.TryPeek(out var e, out var key) && key.Item1 < before)
        {
            _buffer.Dequeue();
            WriteEvent(json, output, e);
            if (_settings.Noise && e.Id % 50_000 == 7)
            {
                WriteNoise(json, output, e);
            }
        }
    }

    private void WriteEvent(Utf8JsonWriter json, Stream output, GenEvent e)
    {
        var offset = TimeSpan.FromMinutes(e.OffsetMinutes);
        var local = new DateTimeOffset(e.Ticks + offset.Ticks, offset);
        json.Reset(output);
        json.WriteStartObject();
        json.WriteString("timestamp", local.ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture));
        json.WriteString("event_id", string.Create(CultureInfo.InvariantCulture, $"e{_settings.Seed}-{e.Id}"));
        json.WriteString("user_id", e.User.Id);
        json.WriteString("action", e.Action);
        if (e.Entity is not null)
        {
            json.WriteString("entity", e.Entity);
        }

        if (e.Count != 1)
        {
            json.WriteNumber("record_count", e.Count);
        }

        if (e.Record is { } record)
        {
            json.WriteString("record_id", record.Id);
            json.WriteString("record_owner", record.Owner);
            json.WriteString("record_business_unit", record.Unit);
        }

        if (e.Fields > 0)
        {
            json.WriteStartArray("fields");
            string[] names = ["phone", "email", "national_id", "iban", "salary"];
            for (var i = 0; i < e.Fields; i++)
            {
                json.WriteStringValue(names[i % names.Length]);
            }

            json.WriteEndArray();
        }

        if (e.Country is not null)
        {
            json.WriteString("country", e.Country);
        }

        if (e.Session is not null)
        {
            json.WriteString("session_id", e.Session);
        }

        if (e.Target is not null)
        {
            json.WriteString("target_user", e.Target);
        }

        if (e.Privilege is not null)
        {
            json.WriteString("privilege", e.Privilege);
        }

        if (e.Details is not null)
        {
            json.WriteString("details", e.Details);
        }

        json.WriteEndObject();
        json.Flush();
        output.WriteByte((byte)'\n');
        _written++;
    }

    private void WriteNoise(Utf8JsonWriter json, Stream output, GenEvent e)
    {
        switch (_random.Next(4))
        {
            case 0:
                output.Write("{\"timestamp\": \"2026-02-30T25:00:00Z\", \"user_id\": \"u00001\", \"action\": \"read\"}\n"u8);
                break;
            case 1:
                output.Write(Encoding.UTF8.GetBytes($"{{\"timestamp\": \"{new DateTimeOffset(e.Ticks, TimeSpan.Zero):O}\", \"user_id\": \"{e.User.Id}\", \"action\": \"print_screen\"}}\n"));
                break;
            case 2:
                output.Write("{\"timestamp\": \"2026-01-05T10:00:00Z\", \"user_id\": \"u00001\", \"act\n"u8);
                break;
            default:
                WriteEvent(json, output, e); // a duplicate (same event_id)
                _written--;
                break;
        }
    }

    private void WriteDirectory(string path)
    {
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false));
        writer.WriteLine("user_id,user_name,department,title,roles,business_unit,manager,timezone,hired,terminated");
        foreach (var u in _users)
        {
            var manager = _users.FirstOrDefault(m => m.Role.Role == "Sales Manager" && m.Region == u.Region && m != u)?.Id ?? "";
            writer.WriteLine(string.Join(',',
                u.Id, u.Name, u.Role.Department, u.Role.Role, u.Role.Role, u.Region.BusinessUnit, manager, u.Region.Zone,
                u.Hired.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                u.Terminated?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? ""));
        }
    }

    private void WriteAnswers(string path)
    {
        var evaluationStartDay = (int)(EvaluationStart.ToDateTime(TimeOnly.MinValue).Ticks / TimeSpan.TicksPerDay);
        var endDay = (int)(_settings.Start.AddDays(_settings.Days).ToDateTime(TimeOnly.MinValue).Ticks / TimeSpan.TicksPerDay);
        long clean = 0, active = 0;
        var insiderDays = new Dictionary<int, (int From, int To)>();
        foreach (var u in _users.Where(u => u.Scenario is not null && u.FirstMalicious != long.MaxValue))
        {
            insiderDays[u.Index] = ((int)(u.FirstMalicious / TimeSpan.TicksPerDay), (int)(u.LastMalicious / TimeSpan.TicksPerDay) + 1);
        }

        foreach (var key in _activeUserDays)
        {
            var day = (int)(key & 0xFFFFF);
            var index = (int)(key >> 20);
            if (day < evaluationStartDay || day >= endDay)
            {
                continue;
            }

            active++;
            if (!insiderDays.TryGetValue(index, out var window) || day < window.From || day > window.To)
            {
                clean++;
            }
        }

        using var file = File.Create(path);
        using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteNumber("seed", _settings.Seed);
        json.WriteNumber("users", _users.Count);
        json.WriteString("start", _settings.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        json.WriteNumber("days", _settings.Days);
        json.WriteString("evaluation_start", EvaluationStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        json.WriteString("evaluation_end", _settings.Start.AddDays(_settings.Days).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        json.WriteNumber("active_user_days", active);
        json.WriteNumber("clean_user_days", clean);
        json.WriteStartArray("insiders");
        foreach (var u in _users.Where(u => u.Scenario is not null && u.FirstMalicious != long.MaxValue))
        {
            json.WriteStartObject();
            json.WriteString("user_id", u.Id);
            json.WriteString("scenario", u.Scenario);
            json.WriteString("start", new DateTimeOffset(u.FirstMalicious, TimeSpan.Zero));
            json.WriteString("end", new DateTimeOffset(u.LastMalicious, TimeSpan.Zero));
            json.WriteStartArray("expected_reasons");
            foreach (var code in Expected[u.Scenario!])
            {
                json.WriteStringValue(code);
            }

            json.WriteEndArray();
            json.WriteString("description", u.ScenarioDescription);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartObject("benign");
        foreach (var behaviour in _users.SelectMany(u => u.Behaviours).Distinct().Order(StringComparer.Ordinal))
        {
            json.WriteStartArray(behaviour);
            foreach (var u in _users.Where(u => u.Behaviours.Contains(behaviour)))
            {
                json.WriteStringValue(u.Id);
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private sealed class User
    {
        public required int Index { get; init; }

        public required string Id { get; init; }

        public required string Name { get; init; }

        public required RoleProfile Role { get; init; }

        public required Region Region { get; init; }

        public double StartHour { get; set; }

        public double WorkHours { get; init; }

        public double Activity { get; init; }

        public double ExportDayProbability { get; init; }

        public double ExportMedian { get; init; }

        /// <summary>An integration's typical records per nightly run.</summary>
        public double SyncMedian { get; init; }

        public double DecryptsPerDay { get; init; }

        public double LateProbability { get; init; }

        public double WeekendProbability { get; init; }

        public bool NightShift { get; init; }

        public double CampaignEvery { get; init; }

        public int NextCampaign { get; set; }

        public double CampaignMedian { get; init; }

        public int NextMaintenance { get; set; } = -1;

        public DateOnly Hired { get; set; }

        public DateOnly? Terminated { get; set; }

        public List<(int From, int To)> Vacations { get; } = [];

        public List<(int From, int To, Region Destination)> Trips { get; } = [];

        public HashSet<string> Behaviours { get; } = new(StringComparer.Ordinal);

        public string? Scenario { get; set; }

        public int ScenarioDay { get; set; } = int.MaxValue;

        public int ScenarioLength { get; set; }

        public int? DormantFrom { get; set; }

        public User? Accomplice { get; set; }

        public string ScenarioDescription { get; set; } = "";

        public long FirstMalicious { get; set; } = long.MaxValue;

        public long LastMalicious { get; set; } = long.MinValue;

        public int CoverFrom { get; set; }

        public int CoverTo { get; set; }

        /// <summary>The colleague of another unit a covering user stands in for.</summary>
        public User? Covered { get; set; }
    }

    /// <summary>
    /// A record of <paramref name="unit"/>: owned by the reader (a third of their own unit's reads) or by someone of
    /// that unit, each owner's book a few hundred records.
    /// </summary>
    private (string Id, string Owner) RecordOf(string entity, string unit, User reader)
    {
        var members = UnitMembers(unit);
        var owner = reader.Region.BusinessUnit == unit && Chance(0.33) ? reader : members[_random.Next(members.Count)];
        return (string.Create(CultureInfo.InvariantCulture, $"{entity}-{unit}-{owner.Index}-{_random.Next(0, 300)}"), owner.Id);
    }

    private readonly Dictionary<string, List<User>> _unitMembers = new(StringComparer.Ordinal);

    private List<User> UnitMembers(string unit)
    {
        if (!_unitMembers.TryGetValue(unit, out var members))
        {
            members = _users.Where(u => u.Region.BusinessUnit == unit && !u.Behaviours.Contains("integration")).ToList();
            _unitMembers[unit] = members;
        }

        return members;
    }

    private sealed class GenEvent
    {
        public long Ticks { get; init; }

        public short OffsetMinutes { get; init; }

        public required User User { get; init; }

        public required string Action { get; init; }

        public string? Entity { get; init; }

        public int Count { get; init; }

        public string? Country { get; init; }

        public string? Session { get; init; }

        public string? Target { get; init; }

        public string? Privilege { get; init; }

        public string? Details { get; init; }

        public int Fields { get; init; }

        public (string Id, string Owner, string Unit)? Record { get; init; }

        public long Id { get; init; }
    }
}
