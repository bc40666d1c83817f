using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// A security admin's change to a person (a termination date, a time zone) through the real host's admin API reaches live
/// scoring without replaying anyone's history: the partitions keep their scorers (no rebuild, nothing replayed, no
/// snapshot thrown away), the changed people are judged by their new data from the next event, and a host restarted
/// after the change continues from the snapshots it wrote before it.
/// </summary>
public sealed class DirectoryChangeTests : IAsyncDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("crm-directory-change-").FullName;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private LiveHost Start() => LiveHost.Start(_folder, null, new Dictionary<string, string?>
    {
        ["AuditAnalyzer:Live:Scoring"] = "false", // the test polls itself
        ["AuditAnalyzer:Live:SnapshotEveryEvents"] = "1",
        ["AuditAnalyzer:Live:SnapshotInterval"] = "1.00:00:00",
    });

    private static DateTimeOffset Today => new(DateTime.UtcNow.Date, TimeSpan.Zero);

    private static string Line(string id, string user, string action, DateTimeOffset time) =>
        $"{{\"event_id\":\"{id}\",\"timestamp\":\"{time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}\",\"user_id\":\"{user}\",\"action\":\"{action}\",\"entity\":\"contact\",\"record_count\":3}}";

    /// <summary>Twenty working days of reads by every demo person, at 10:00 and 15:00 UTC, ending a week ago.</summary>
    private static IEnumerable<string> History(IEnumerable<DirectoryEntry> people)
    {
        foreach (var person in people)
        {
            for (var day = 27; day >= 8; day--)
            {
                var date = Today.AddDays(-day);
                yield return Line($"h-{person.UserId}-{day}-a", person.UserId, "read", date.AddHours(10));
                yield return Line($"h-{person.UserId}-{day}-b", person.UserId, "read", date.AddHours(15));
            }
        }
    }

    private static IReadOnlyList<DirectoryEntry> People(LiveHost host) => [.. host.Services.GetRequiredService<IDirectorySource>().Current.Users];



    /// <summary>What a security admin does in the console: sets the person's last day (the admin API the console calls).</summary>
    private static async Task TerminateAsync(LiveHost host, string userId, DateOnly lastDay)
    {
        using var http = host.CreateClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await host.TokenAsync("demo-secops", "demo-secops-secret", "identity.admin"));
        using var response = await http.PutAsJsonAsync($"admin/api/users/{userId}/employment",
            new { terminated = lastDay.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) }, Cancel);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
    }

    private static async Task MoveAsync(LiveHost host, string userId, string zone)
    {
        using var http = host.CreateClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await host.TokenAsync("demo-secops", "demo-secops-secret", "identity.admin"));
        using var response = await http.PutAsJsonAsync($"admin/api/users/{userId}/zoneinfo", new { zoneinfo = zone }, Cancel);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
    }

    private static async Task<List<string>> ReasonsAboutAsync(LiveHost host, string userId)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var rows = await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Findings.AsNoTracking()
            .Where(f => f.UserId == userId).Select(f => f.Json).ToListAsync(Cancel);
        return [.. rows.SelectMany(json => CrmSecurity.AuditAnalyzer.Findings.FindingJson.Parse(json).Reasons).Select(r => r.Code)];
    }

    [Fact]
    public async Task A_termination_set_by_an_admin_is_judged_from_the_next_event_without_replaying_any_partition()
    {
        await using var host = Start();
        var people = People(host);
        var frank = people.Single(p => p.UserName == "frank");
        var grace = people.Single(p => p.UserName == "grace");
        await host.PostAllAsync(History(people), 1000);
        await host.ScoreAllAsync();
        var snapshots = host.Services.GetRequiredService<PartitionScoring>().Snapshots;
        var replayedBefore = snapshots.Replayed;

        await TerminateAsync(host, frank.UserId, DateOnly.FromDateTime(Today.AddDays(-4).UtcDateTime));
        await MoveAsync(host, grace.UserId, "Pacific/Auckland");
        await host.PostAllAsync([Line("after-1", frank.UserId, "export", Today.AddDays(-2).AddHours(11)), Line("after-2", grace.UserId, "read", Today.AddDays(-2).AddHours(11))]);
        await host.ScoreAllAsync();

        Assert.Contains(ReasonCodes.AfterTermination, await ReasonsAboutAsync(host, frank.UserId));
        // No partition was rebuilt for the change: nothing replayed, no snapshot set aside, the two people taken on as changed.
        Assert.Equal((replayedBefore, 0L, 0L), (snapshots.Replayed, snapshots.Ignored, snapshots.Restored));
        Assert.Equal(2, host.Services.GetRequiredService<PartitionScoring>().PeopleRebound);
    }

    [Fact]
    public async Task A_host_restarted_after_a_directory_change_continues_from_the_snapshots_made_before_it()
    {
        string frankId;
        int partitions;
        await using (var before = Start())
        {
            var people = People(before);
            frankId = people.Single(p => p.UserName == "frank").UserId;
            await before.PostAllAsync(History(people), 1000);
            await before.ScoreAllAsync();
            await using var scope = before.Services.CreateAsyncScope();
            partitions = await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Set<CrmSecurity.AuditAnalyzer.Service.Snapshots.PartitionSnapshotRow>().CountAsync(Cancel);

            // The admin's change lands after the last snapshot: the snapshots were made under the old directory.
            await TerminateAsync(before, frankId, DateOnly.FromDateTime(Today.AddDays(-4).UtcDateTime));
        }

        await using var after = Start();
        await after.PostAllAsync([Line("after-1", frankId, "export", Today.AddDays(-2).AddHours(11))]);
        await after.ScoreAllAsync();

        var snapshots = after.Services.GetRequiredService<PartitionScoring>().Snapshots;
        // Each partition the new host took (frank's among them: it scored his export) continued from its snapshot.
        Assert.InRange(snapshots.Restored, 1, partitions);
        Assert.Equal((0L, 0L), (snapshots.Ignored, snapshots.Replayed));
        Assert.Contains(ReasonCodes.AfterTermination, await ReasonsAboutAsync(after, frankId));
    }

    public ValueTask DisposeAsync()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A last write of a host's dispose; the temporary folder is left behind.
        }

        return ValueTask.CompletedTask;
    }
}
