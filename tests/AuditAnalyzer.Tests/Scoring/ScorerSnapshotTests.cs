using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;
using CrmSecurity.AuditAnalyzer.Findings;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Scoring;
using CrmSecurity.AuditAnalyzer.Service.Snapshots;
using CrmSecurity.AuditAnalyzer.Synthetic;

namespace CrmSecurity.AuditAnalyzer.Tests.Scoring;

/// <summary>
/// A scorer snapshot (<see cref="ScorerSnapshot"/>) is the scorer: for a generated organisation with every insider
/// scenario, scoring part of the log, snapshotting, restoring into a new scorer and scoring the rest gives the same
/// findings, in the same order, as one scorer that saw everything; and a snapshot that cannot be trusted is refused.
/// </summary>
public sealed class ScorerSnapshotTests : IClassFixture<ScorerSnapshotTests.GeneratedOrganisation>
{
    private readonly GeneratedOrganisation _org;

    public ScorerSnapshotTests(GeneratedOrganisation org) => _org = org;

    /// <summary>One generated organisation for the class: 80 users over 120 days (80 of warm-up, so the departure detector has its 20 days of history), almost a third of them insiders.</summary>
    public sealed class GeneratedOrganisation : IDisposable
    {
        private readonly string _folder = Directory.CreateTempSubdirectory("crm-snapshot-org-").FullName;

        public GeneratedOrganisation()
        {
            var result = new OrganisationGenerator(new GeneratorSettings { Users = 80, Days = 120, WarmupDays = 80, Seed = 17, InsiderShare = 0.3 }).Write(_folder);
            People = DirectoryReader.Read(result.UsersPath, new IngestionReport());
            using var input = new EventInput([result.EventsPath], new IngestionReport(), new StringPool());
            var events = new List<AccessEvent>();
            while (input.TryRead(out var e))
            {
                events.Add(e);
            }

            Events = events;
            Reference = Score(Events, 0, Events.Count, New(), complete: true);
        }

        internal UserDirectory People { get; }

        internal IReadOnlyList<AccessEvent> Events { get; }

        /// <summary>The findings of one scorer that saw every event, as JSON, in the order they closed.</summary>
        internal List<string> Reference { get; }

        internal Scorer New(ScoringPolicy? policy = null) => new ScoringOptions { Policy = policy ?? ScoringPolicy.Default(), Directory = People }.Build();

        public void Dispose() => Directory.Delete(_folder, recursive: true);
    }

    private static readonly SnapshotCoverage Coverage = new(42, [7, 9]);

    internal static List<string> Score(IReadOnlyList<AccessEvent> events, int from, int to, Scorer scorer, bool complete)
    {
        var closed = new List<Finding>();
        for (var i = from; i < to; i++)
        {
            scorer.Score(events[i], closed);
        }

        if (complete)
        {
            scorer.Complete(closed);
        }

        return [.. closed.Select(FindingJson.Serialize)];
    }

    [Fact]
    public void The_generated_organisation_makes_every_detector_raise_findings()
    {
        var detectors = _org.Reference.Select(FindingJson.Parse).SelectMany(f => f.Reasons).Select(r => r.Detector).ToHashSet(StringComparer.Ordinal);

        Assert.True(_org.Events.Count > 50_000, $"only {_org.Events.Count} events");
        Assert.Equal(DetectorCatalog.All.Select(d => d.Name).Order(StringComparer.Ordinal), detectors.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData(0.05)]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(0.61)]
    [InlineData(0.8)]
    [InlineData(0.97)]
    public void Scoring_on_from_a_restored_snapshot_gives_exactly_the_findings_of_one_uninterrupted_scorer(double split)
    {
        var at = (int)(_org.Events.Count * split);
        var before = _org.New();
        var findings = Score(_org.Events, 0, at, before, complete: false);

        var snapshot = ScorerSnapshot.Write(before, Coverage);
        var after = _org.New();
        var coverage = ScorerSnapshot.TryRead(snapshot, after, out var reason);

        Assert.Null(reason);
        Assert.Equal(Coverage.CoveredSeq, coverage!.CoveredSeq);
        Assert.Equal(Coverage.Gaps, coverage.Gaps);
        // The restored scorer holds the same state, byte for byte, as the one it was taken from.
        Assert.Equal(snapshot, ScorerSnapshot.Write(after, Coverage));
        Assert.Equal(before.Risks(_org.Events[at].Timestamp), after.Risks(_org.Events[at].Timestamp));

        findings.AddRange(Score(_org.Events, at, _org.Events.Count, after, complete: true));

        Assert.Equal(_org.Reference.Count, findings.Count);
        Assert.Equal(_org.Reference, findings);
        Assert.Equal(before.EventsScored + (_org.Events.Count - at), after.EventsScored);
    }

    [Fact]
    public void Open_findings_of_a_restored_scorer_are_the_ones_it_was_taken_with()
    {
        var at = (int)(_org.Events.Count * 0.7);
        var before = _org.New();
        Score(_org.Events, 0, at, before, complete: false);
        var after = _org.New();
        ScorerSnapshot.TryRead(ScorerSnapshot.Write(before, Coverage), after, out _);

        var open = new List<Finding>();
        before.OpenFindings(open);
        var restored = new List<Finding>();
        after.OpenFindings(restored);

        Assert.NotEmpty(open);
        Assert.Equal(open.Select(FindingJson.Serialize), restored.Select(FindingJson.Serialize));
    }

    [Fact]
    public void A_snapshot_of_another_format_version_is_ignored()
    {
        var snapshot = Snapshot();
        snapshot[0] = ScorerSnapshot.FormatVersion + 1;

        Assert.Null(ScorerSnapshot.TryRead(snapshot, _org.New(), out var reason));
        Assert.Contains("format version", reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(40)]
    [InlineData(-1)]
    public void A_damaged_snapshot_is_ignored(int position)
    {
        var snapshot = Snapshot();
        var index = position < 0 ? snapshot.Length + position : position;
        snapshot[index] ^= 0x5A;

        Assert.Null(ScorerSnapshot.TryRead(snapshot, _org.New(), out var reason));
        Assert.Contains("damaged", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_snapshot_is_ignored()
    {
        var snapshot = Snapshot();

        Assert.Null(ScorerSnapshot.TryRead(snapshot[..(snapshot.Length / 2)], _org.New(), out _));
        Assert.Null(ScorerSnapshot.TryRead([], _org.New(), out _));
    }

    [Fact]
    public void A_snapshot_whose_checksum_matches_but_whose_body_is_not_a_snapshot_is_ignored()
    {
        var body = new byte[300];
        new Random(3).NextBytes(body);
        var snapshot = new byte[9 + body.Length];
        snapshot[0] = ScorerSnapshot.FormatVersion;
        System.IO.Hashing.XxHash3.Hash(body, snapshot.AsSpan(1, 8));
        body.CopyTo(snapshot, 9);

        Assert.Null(ScorerSnapshot.TryRead(snapshot, _org.New(), out var reason));
        Assert.Contains("unreadable", reason, StringComparison.Ordinal);
    }

    /// <summary>
    /// The organisation's directory a while later: one person moved to another time zone, one to another department (so
    /// another peer group), one was given an administrator role, and one left on the day of the log's midpoint.
    /// </summary>
    private (UserDirectory Directory, DirectoryUser Moved, DirectoryUser Transferred, DirectoryUser Promoted, DirectoryUser Leaver) Changed()
    {
        var people = _org.People.Users.OrderBy(u => u.UserId, StringComparer.Ordinal).ToList();
        var leaverId = _org.Events[(int)(_org.Events.Count * 0.95)].UserId;
        var leaver = people.Single(u => u.UserId == leaverId);
        var others = people.Where(u => u != leaver).ToList();
        var moved = others[0];
        var transferred = others.Skip(1).First(u => others.Any(o => o.Department != u.Department));
        var promoted = others.Skip(2).First(u => u != transferred && !u.Roles.Any(ScoringPolicy.Default().AdminRoles.Contains));
        var department = others.First(o => o.Department != transferred.Department).Department;
        var admin = ScoringPolicy.Default().AdminRoles.First();
        var midpoint = DateOnly.FromDateTime(_org.Events[_org.Events.Count / 2].Timestamp.UtcDateTime);
        var directory = new UserDirectory(people.Select(u =>
            u == moved ? u with { TimeZone = TimeZoneInfo.FindSystemTimeZoneById(u.TimeZone.Id == "Asia/Tokyo" ? "America/Chicago" : "Asia/Tokyo") }
            : u == transferred ? u with { Department = department }
            : u == promoted ? u with { Roles = [.. u.Roles, admin] }
            : u == leaver ? u with { Terminated = midpoint }
            : u));
        return (directory, moved, transferred, promoted, leaver);
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.61)]
    [InlineData(0.8)]
    public void A_snapshot_made_under_an_older_directory_continues_exactly_as_a_scorer_that_took_the_change_live(double split)
    {
        var (changed, moved, transferred, promoted, leaver) = Changed();
        var at = (int)(_org.Events.Count * split);

        // Live: one scorer is told of the new directory between two events, and nothing is replayed.
        var live = _org.New();
        var findings = Score(_org.Events, 0, at, live, complete: false);
        var snapshot = ScorerSnapshot.Write(live, Coverage);
        var oldGroup = live.Baselines.Users[transferred.UserId].PeerGroup;
        Assert.Equal(4, live.Rebind(changed));

        // A takeover: a new scorer, built with the new directory, restores the snapshot made under the old one.
        var restored = new ScoringOptions { Directory = changed }.Build();
        Assert.NotNull(ScorerSnapshot.TryRead(snapshot, restored, out var reason));
        Assert.Null(reason);
        Assert.Equal(ScorerSnapshot.Write(live, Coverage), ScorerSnapshot.Write(restored, Coverage)); // the same state, byte for byte

        // The transferred person counts in their new group, no longer in the old one.
        var newGroup = changed.Find(transferred.UserId)!.PeerGroup;
        Assert.Equal(newGroup, live.Baselines.Users[transferred.UserId].PeerGroup);
        Assert.Contains(transferred.UserId, live.Baselines.Peers[newGroup].Members);
        Assert.DoesNotContain(transferred.UserId, live.Baselines.Peers[oldGroup].Members);

        var liveRest = Score(_org.Events, at, _org.Events.Count, live, complete: true);
        var restoredRest = Score(_org.Events, at, _org.Events.Count, restored, complete: true);
        Assert.Equal(liveRest, restoredRest);

        // And the change took effect: the leaver's activity after their last day is a finding now, and was not before.
        findings.AddRange(liveRest);
        static bool AfterTermination(string json, string userId) =>
            FindingJson.Parse(json) is var f && f.UserId == userId && f.Reasons.Any(r => r.Code == ReasonCodes.AfterTermination);
        Assert.Contains(findings, f => AfterTermination(f, leaver.UserId));
        Assert.DoesNotContain(_org.Reference, f => AfterTermination(f, leaver.UserId));
        Assert.NotEqual(moved.UserId, promoted.UserId);
    }

    [Fact]
    public void A_directory_with_the_same_data_in_a_new_object_changes_no_one_and_no_finding()
    {
        var at = _org.Events.Count / 3;
        var scorer = _org.New();
        var findings = Score(_org.Events, 0, at, scorer, complete: false);

        Assert.Equal(0, scorer.Rebind(new UserDirectory(_org.People.Users)));
        findings.AddRange(Score(_org.Events, at, _org.Events.Count, scorer, complete: true));

        Assert.Equal(_org.Reference, findings);
    }

    [Fact]
    public void A_snapshot_made_under_another_policy_is_ignored()
    {
        var stricter = ScoringPolicy.Default() with { MinFindingScore = 30 };
        var scorer = new ScoringOptions { Policy = stricter, Directory = _org.People }.Build();

        Assert.Null(ScorerSnapshot.TryRead(Snapshot(), scorer, out var reason));
        Assert.Contains("policy", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_snapshot_is_used_by_a_host_that_loaded_the_same_policy_from_another_path()
    {
        var elsewhere = ScoringPolicy.Default() with { Source = "/etc/crm-security/audit-analyzer.json" };
        var scorer = new ScoringOptions { Policy = elsewhere, Directory = _org.People }.Build();

        Assert.NotNull(ScorerSnapshot.TryRead(Snapshot(), scorer, out var reason));
        Assert.Null(reason);
    }

    private byte[] Snapshot()
    {
        var scorer = _org.New();
        Score(_org.Events, 0, _org.Events.Count / 4, scorer, complete: false);
        return ScorerSnapshot.Write(scorer, Coverage);
    }
}
