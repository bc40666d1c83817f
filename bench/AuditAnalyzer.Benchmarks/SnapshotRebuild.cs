using System.Diagnostics;
using System.Globalization;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Scoring;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Service.Snapshots;
using CrmSecurity.AuditAnalyzer.Synthetic;

namespace CrmSecurity.AuditAnalyzer.Benchmarks;

/// <summary>
/// <c>snapshot-rebuild USERS DAYS [ROUNDS]</c>: how long rebuilding one partition's scorer takes by replaying its history
/// (what <c>PartitionScoring.RebuildAsync</c> did on every takeover, restart and directory change) against restoring it
/// from a snapshot (<see cref="ScorerSnapshot"/>), in the same process over the same generated organisation (all its users
/// in one partition). The replay is measured as the live path runs it: stored JSON lines parsed into events
/// (<c>EventBatches.ToEvent</c>) and scored in pages of 2,000; reading the rows from the database is left out of both,
/// which flatters the replay (it reads every row, the restore one).
/// </summary>
internal static class SnapshotRebuild
{
    public static int Run(int users, int days, int rounds)
    {
        var folder = Directory.CreateTempSubdirectory("crm-snapshot-bench-").FullName;
        try
        {
            var generated = new OrganisationGenerator(new GeneratorSettings { Users = users, Days = days, WarmupDays = Math.Min(60, days - 20), Seed = 1, Noise = false }).Write(folder);
            var directory = DirectoryReader.Read(generated.UsersPath, new IngestionReport());
            var policy = ScoringPolicy.Default();
            long seq = 0;
            var rows = File.ReadLines(generated.EventsPath).Select(line => new StoredEventRow
            {
                Seq = ++seq,
                EventKey = "bench:" + seq.ToString(CultureInfo.InvariantCulture),
                ClientId = "bench",
                UserId = "",
                Line = line,
                Scored = true,
            }).ToList();
            Console.WriteLine($"{rows.Count:N0} stored events, {users:N0} users, {days} days; {rounds} rounds");

            var replays = new List<double>();
            var restores = new List<double>();
            var writes = new List<double>();
            var bytes = 0;
            long rawBytes = 0;
            for (var round = 1; round <= rounds; round++)
            {
                var clock = Stopwatch.StartNew();
                var scorer = Replay(rows, policy, directory);
                var replay = clock.Elapsed.TotalMilliseconds;

                clock.Restart();
                using (var raw = new MemoryStream())
                using (var w = new BinaryWriter(raw))
                {
                    scorer.WriteState(w);
                    w.Flush();
                    rawBytes = raw.Length;
                }

                var state = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                var snapshot = ScorerSnapshot.Write(scorer, new SnapshotCoverage(seq, []));
                var write = clock.Elapsed.TotalMilliseconds;

                clock.Restart();
                var restored = new ScoringOptions { Policy = policy, Directory = directory }.Build();
                if (ScorerSnapshot.TryRead(snapshot, restored, out var reason) is null)
                {
                    Console.Error.WriteLine($"the snapshot was not read back: {reason}");
                    return 1;
                }

                var restore = clock.Elapsed.TotalMilliseconds;
                bytes = snapshot.Length;
                replays.Add(replay);
                writes.Add(write);
                restores.Add(restore);
                Console.WriteLine($"round {round}: replay {replay:N0} ms, snapshot write {write:N0} ms ({bytes:N0} bytes; the state alone {state:N0} ms, {rawBytes:N0} bytes before compression), restore {restore:N0} ms, replay/restore {replay / restore:N1}x");
            }

            var (medianReplay, medianRestore) = (Median(replays), Median(restores));
            Console.WriteLine($"median: replay {medianReplay:N0} ms, restore {medianRestore:N0} ms, write {Median(writes):N0} ms, snapshot {bytes:N0} bytes ({bytes / (double)users:N0} per user): restore is {medianReplay / medianRestore:N1}x faster");
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static Scorer Replay(List<StoredEventRow> rows, ScoringPolicy policy, UserDirectory directory)
    {
        var parser = new JsonLinesEventParser(new EventFields("stored", new IngestionReport(), new StringPool()));
        var scorer = new ScoringOptions { Policy = policy, Directory = directory }.Build();
        var discarded = new List<Finding>();
        var events = new List<AccessEvent>(2000);
        foreach (var page in rows.Chunk(2000))
        {
            events.Clear();
            foreach (var row in page)
            {
                if (EventBatches.ToEvent(row, parser) is { } e)
                {
                    events.Add(e);
                }
            }

            foreach (var e in events.OrderBy(e => e.UtcTicks))
            {
                scorer.Score(e, discarded);
            }

            discarded.Clear();
        }

        return scorer;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
