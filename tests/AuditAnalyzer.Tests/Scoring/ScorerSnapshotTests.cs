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

        var snapshot = ScorerSnapshot.Write(before, _org.People, Coverage);
        var after = _org.New();
        var coverage = ScorerSnapshot.TryRead(snapshot, after, _org.People, out var reason);

        Assert.Null(reason);
        Assert.Equal(Coverage.CoveredSeq, coverage!.CoveredSeq);
        Assert.Equal(Coverage.Gaps, coverage.Gaps);
        // The restored scorer holds the same state, byte for byte, as the one it was taken from.
        Assert.Equal(snapshot, ScorerSnapshot.Write(after, _org.People, Coverage));
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
        ScorerSnapshot.TryRead(ScorerSnapshot.Write(before, _org.People, Coverage), after, _org.People, out _);

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

        Assert.Null(ScorerSnapshot.TryRead(snapshot, _org.New(), _org.People, out var reason));
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

        Assert.Null(ScorerSnapshot.TryRead(snapshot, _org.New(), _org.People, out var reason));
        Assert.Contains("damaged", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_snapshot_is_ignored()
    {
        var snapshot = Snapshot();

        Assert.Null(ScorerSnapshot.TryRead(snapshot[..(snapshot.Length / 2)], _org.New(), _org.People, out _));
        Assert.Null(ScorerSnapshot.TryRead([], _org.New(), _org.People, out _));
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

        Assert.Null(ScorerSnapshot.TryRead(snapshot, _org.New(), _org.People, out var reason));
        Assert.Contains("unreadable", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_snapshot_made_under_another_directory_is_ignored()
    {
        // One person moved to another time zone: their local hours, and so their baselines, are judged differently now.
        var moved = _org.People.Users.First();
        var changed = new UserDirectory(_org.People.Users.Select(u => u == moved
            ? u with { TimeZone = TimeZoneInfo.FindSystemTimeZoneById(u.TimeZone.Id == "Asia/Tokyo" ? "Europe/Paris" : "Asia/Tokyo") }
            : u));
        var same = new UserDirectory(_org.People.Users);

        Assert.Null(ScorerSnapshot.TryRead(Snapshot(), _org.New(), changed, out var reason));
        Assert.Contains("directory", reason, StringComparison.Ordinal);
        Assert.NotNull(ScorerSnapshot.TryRead(Snapshot(), _org.New(), same, out _)); // equal content in another object is the same directory
    }

    [Fact]
    public void A_snapshot_made_under_another_policy_is_ignored()
    {
        var stricter = ScoringPolicy.Default() with { MinFindingScore = 30 };
        var scorer = new ScoringOptions { Policy = stricter, Directory = _org.People }.Build();

        Assert.Null(ScorerSnapshot.TryRead(Snapshot(), scorer, _org.People, out var reason));
        Assert.Contains("policy", reason, StringComparison.Ordinal);
    }

    private byte[] Snapshot()
    {
        var scorer = _org.New();
        Score(_org.Events, 0, _org.Events.Count / 4, scorer, complete: false);
        return ScorerSnapshot.Write(scorer, _org.People, Coverage);
    }
}
