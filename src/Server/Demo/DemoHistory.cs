using System.Globalization;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.Identity.Contracts;
using Microsoft.Extensions.Options;

namespace CrmSecurity.Server.Demo;

/// <summary>
/// Demo mode, right after Identity seeded an empty database: four weeks of synthetic CRM access history of the demo
/// users (working-day reads, lists, searches, updates and small exports in each user's own time zone) with three
/// planted anomalies, stored in the analyzer's live event table so the background scorer fills the reviewer queue
/// within seconds of the first start. Deterministic: a fixed seed, event ids derived from it; only the dates follow
/// the clock, so the history always ends yesterday.
/// </summary>
internal sealed partial class DemoHistory(
    IServiceProvider services, ILiveEventWriter writer, IOptions<DemoHistoryOptions> options, TimeProvider time, ILogger<DemoHistory> logger) : IHostedService
{
    /// <summary>The sending client the history is stored under (<c>demo-history:{event_id}</c>).</summary>
    public const string ClientId = "demo-history";

    public const int Days = 28;
    private const int Seed = 20_261_124;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled || services.GetService<IDemoSeeding>() is not { SeededThisStart: true })
        {
            return;
        }

        var started = time.GetTimestamp();
        var lines = Generate(time.GetUtcNow());
        var result = await writer.WriteAsync(ClientId, lines, cancellationToken);
        var elapsed = time.GetElapsedTime(started).TotalMilliseconds;
        LogSeeded(logger, result.Stored, Days, elapsed);
        Console.WriteLine($"Demo mode: seeded {result.Stored} access events ({Days} days of history; planted: a night-time bulk export by alice, " +
            "a self-granted role used for a bank-account export by wade, a mass decrypt by frank). Findings appear in the reviewer queue within seconds.");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The history as JSON Lines in the access-event contract, in time order, ending the day before <paramref name="now"/>.</summary>
    internal static byte[] Generate(DateTimeOffset now)
    {
        var random = new Random(Seed);
        var events = new List<(DateTimeOffset At, Action<Utf8JsonWriter> Write)>();
        var userIndex = 0;
        foreach (var demo in IdentityDemo.People)
        {
            userIndex++;
            var user = new HistoryUser(demo.UserId, demo.UserName, TimeZoneInfo.FindSystemTimeZoneById(demo.TimeZone),
                $"10.20.{userIndex}.{10 + userIndex}", Country(demo.TimeZone), WorkOf(demo.Roles[0]));
            var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, user.Zone).DateTime);
            var sequence = 0;
            for (var day = today.AddDays(-Days); day < today; day = day.AddDays(1))
            {
                if (day.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
                {
                    continue;
                }

                var start = 8 + (random.NextDouble() * 1.5);
                var end = start + 7.5 + random.NextDouble();
                events.Add(Event(user, day, start, ref sequence, "login", null, 1));
                var actions = 20 + random.Next(15);
                for (var i = 0; i < actions; i++)
                {
                    var (action, entity, rows) = Pick(user.Work, random);
                    var hour = start + (0.1 + ((end - start - 0.2) * i / actions));
                    var count = rows(random);
                    events.Add(Event(user, day, hour, ref sequence, action, entity, count));
                    if (entity == "contact" && action is "read" or "list" or "search")
                    {
                        // The sample CRM decrypts the email and phone of every contact row it shows and reports each
                        // decrypt: without them in the history, a visitor's first contact list is a mass decrypt.
                        events.Add(Event(user, day, hour + 0.001, ref sequence, "decrypt", "contact", count, fields: ["email", "phone"]));
                    }
                }

                events.Add(Event(user, day, end, ref sequence, "logout", null, 1));
            }

            // The planted anomalies, on the last working day before today (local), so they are always in the past.
            var last = today.AddDays(-1);
            while (last.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday)
            {
                last = last.AddDays(-1);
            }

            switch (demo.UserName)
            {
                case "alice": // bulk export at night, far over the contact limit and her history
                    events.Add(Event(user, last, 2.2, ref sequence, "login", null, 1));
                    events.Add(Event(user, last, 2.3, ref sequence, "search", "contact", 300));
                    events.Add(Event(user, last, 2.4, ref sequence, "export", "contact", 12_000));
                    events.Add(Event(user, last, 2.5, ref sequence, "export", "account", 8_000));
                    events.Add(Event(user, last, 2.6, ref sequence, "logout", null, 1));
                    break;
                case "wade": // privilege misuse: grants himself Finance, then exports bank accounts
                    events.Add(Event(user, last, 18.0, ref sequence, "admin_change", "system_user", 1, privilege: "user.roles", targetUser: user.Id, details: "roles +finance"));
                    events.Add(Event(user, last, 18.2, ref sequence, "read", "bank_account", 350));
                    events.Add(Event(user, last, 18.3, ref sequence, "export", "bank_account", 400));
                    break;
                case "frank": // mass decrypt of bank details
                    events.Add(Event(user, last, 16.0, ref sequence, "decrypt", "bank_account", 900, fields: ["iban"]));
                    break;
            }
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            foreach (var (_, write) in events.OrderBy(e => e.At))
            {
                write(json);
                json.Flush();
                json.Reset();
                buffer.WriteByte((byte)'\n');
            }
        }

        return buffer.ToArray();
    }

    private static (DateTimeOffset, Action<Utf8JsonWriter>) Event(
        HistoryUser user, DateOnly day, double hour, ref int sequence, string action, string? entity, long rows,
        string? privilege = null, string? targetUser = null, string? details = null, string[]? fields = null)
    {
        var local = day.ToDateTime(TimeOnly.MinValue).AddHours(hour);
        var at = new DateTimeOffset(local, user.Zone.GetUtcOffset(local));
        var id = string.Create(CultureInfo.InvariantCulture, $"{user.Name}-{sequence++:D5}");
        return (at, json =>
        {
            json.WriteStartObject();
            json.WriteString("event_id", id);
            json.WriteString("timestamp", at.ToString("yyyy-MM-ddTHH:mm:sszzz", CultureInfo.InvariantCulture));
            json.WriteString("user_id", user.Id);
            json.WriteString("user_name", user.Name);
            json.WriteString("action", action);
            json.WriteString("tenant", "demo");
            json.WriteString("client_id", "demo-crm");
            json.WriteString("source_ip", user.SourceIp);
            json.WriteString("country", user.Country);
            if (entity is not null)
            {
                json.WriteString("entity", entity);
                json.WriteNumber("record_count", rows);
            }

            if (fields is not null)
            {
                json.WriteStartArray("fields");
                foreach (var field in fields)
                {
                    json.WriteStringValue(field);
                }

                json.WriteEndArray();
            }

            json.WriteString("outcome", "success");
            if (privilege is not null)
            {
                json.WriteString("privilege", privilege);
            }

            if (targetUser is not null)
            {
                json.WriteString("target_user", targetUser);
            }

            if (details is not null)
            {
                json.WriteString("details", details);
            }

            json.WriteEndObject();
        });
    }

    private static (string Action, string Entity, Func<Random, long> Rows) Pick(Work[] work, Random random)
    {
        var total = work.Sum(w => w.Weight);
        var roll = random.NextDouble() * total;
        foreach (var w in work)
        {
            roll -= w.Weight;
            if (roll <= 0)
            {
                return (w.Action, w.Entity, w.Rows);
            }
        }

        return (work[^1].Action, work[^1].Entity, work[^1].Rows);
    }

    /// <summary>What a role does on a normal day: weighted (action, entity, rows) choices.</summary>
    private static Work[] WorkOf(string role)
    {
        static long One(Random _) => 1;
        static Func<Random, long> Between(int low, int high) => random => random.Next(low, high);
        return role switch
        {
            "sales_rep" or "sales_manager" or IdentityDemo.WestAdminRole =>
            [
                new("read", "contact", 4, One), new("read", "account", 3), new("read", "opportunity", 3), new("list", "contact", 1.5, Between(10, 60)),
                new("search", "contact", 1.2, Between(1, 25)), new("update", "opportunity", 1.5), new("export", "opportunity", 0.15, Between(20, 80)),
            ],
            "support_agent" =>
            [
                new("read", "case", 5), new("update", "case", 3), new("read", "contact", 3), new("search", "contact", 1.5, Between(1, 20)),
                new("list", "case", 1, Between(10, 50)),
            ],
            "finance" =>
            [
                new("read", "invoice", 3), new("report_run", "invoice", 1.5, Between(50, 300)), new("read", "account", 1.5),
                new("list", "invoice", 1, Between(20, 100)), new("decrypt", "bank_account", 0.3), new("export", "invoice", 0.1, Between(50, 150)),
            ],
            "marketing" =>
            [
                new("read", "lead", 3), new("list", "lead", 2, Between(20, 100)), new("read", "contact", 2), new("update", "lead", 1.5),
                new("search", "lead", 0.8, Between(1, 30)), new("export", "lead", 0.1, Between(100, 300)),
            ],
            _ =>
            [
                new("read", "account", 2), new("report_run", "case", 1, Between(20, 200)), new("list", "account", 1, Between(10, 50)),
                new("read", "case", 1.5), new("search", "account", 0.6, Between(1, 20)),
            ],
        };
    }

    private static string Country(string zone) => zone.Split('/')[1] switch
    {
        "London" => "GB",
        "Berlin" => "DE",
        "Dublin" => "IE",
        "Paris" => "FR",
        _ => "US",
    };

    private sealed record Work(string Action, string Entity, double Weight, Func<Random, long>? RowsOf = null)
    {
        public Func<Random, long> Rows => RowsOf ?? (static _ => 1);
    }

    private sealed record HistoryUser(string Id, string Name, TimeZoneInfo Zone, string SourceIp, string Country, Work[] Work);

    [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Demo mode: seeded {Events} access events of {Days} days of history in {Milliseconds:0} ms")]
    private static partial void LogSeeded(ILogger logger, int events, int days, double milliseconds);
}

/// <summary><c>AuditAnalyzer:DemoHistory</c>: whether demo mode also seeds access history (tests that count events turn it off).</summary>
internal sealed class DemoHistoryOptions
{
    public const string Section = "AuditAnalyzer:DemoHistory";

    public bool Enabled { get; set; } = true;
}
