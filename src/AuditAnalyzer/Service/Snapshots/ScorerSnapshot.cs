using System.IO.Compression;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmSecurity.AuditAnalyzer.Baselines;
using CrmSecurity.AuditAnalyzer.Policy;
using CrmSecurity.AuditAnalyzer.Scoring;

namespace CrmSecurity.AuditAnalyzer.Service.Snapshots;

/// <summary>What a snapshot covers besides the scorer's state: the events it has seen, as the highest sequence number and the gaps below it.</summary>
internal sealed record SnapshotCoverage(long CoveredSeq, IReadOnlyList<long> Gaps);

/// <summary>
/// The binary form of a partition's scorer state. Layout (format <see cref="FormatVersion"/>):
/// <list type="number">
/// <item>one byte: the format version. A snapshot of another version is ignored (the partition is replayed), never an error;</item>
/// <item>eight bytes: XxHash3 of the rest, so a torn or altered row is ignored too;</item>
/// <item>the rest, Brotli-compressed: the policy's fingerprint, the day counters and history length
/// the baselines were laid out with, the coverage (highest sequence number and the unscored gaps below it), then the
/// scorer's own state (<see cref="Scorer.WriteState"/>, each baseline and detector state writing its own part beside its class,
/// and a digest of each person's directory data, so a snapshot read under a newer directory moves whom it changed).</item>
/// </list>
/// Format 1 held the whole directory's fingerprint and was ignored under any other directory; a format 1 snapshot is now
/// ignored once (the partition is replayed, then written in format 2).
/// </summary>
internal static class ScorerSnapshot
{
    public const byte FormatVersion = 2;

    private const int EndMarker = 0x534E4150; // "SNAP": the reader got to the end it was written with

    private static readonly ConditionalWeakTable<ScoringPolicy, string> PolicyFingerprints = [];

    // Thresholds may be infinite (a limit that is off); the fingerprint only needs a stable text of every value.
    private static readonly JsonSerializerOptions PolicyText = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static byte[] Write(Scorer scorer, SnapshotCoverage coverage)
    {
        // Written whole, then compressed in one call: a BinaryWriter straight over the compressor pays per small write.
        using var raw = new MemoryStream();
        using (var w = new BinaryWriter(raw, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(PolicyFingerprint(scorer.Policy));
            w.Write(DayCounters.Count);
            w.Write(scorer.Baselines.HistoryDays);
            w.Write(coverage.CoveredSeq);
            w.Write(coverage.Gaps.Count);
            foreach (var gap in coverage.Gaps)
            {
                w.Write(gap);
            }

            scorer.WriteState(w);
            w.Write(EndMarker);
        }

        using var payload = new MemoryStream(Math.Max(1024, (int)raw.Length / 4));
        using (var brotli = new BrotliStream(payload, CompressionLevel.Fastest, leaveOpen: true))
        {
            brotli.Write(raw.GetBuffer(), 0, (int)raw.Length);
        }

        var body = payload.GetBuffer().AsSpan(0, (int)payload.Length);
        var result = new byte[1 + 8 + body.Length];
        result[0] = FormatVersion;
        XxHash3.Hash(body, result.AsSpan(1, 8));
        body.CopyTo(result.AsSpan(9));
        return result;
    }

    /// <summary>
    /// Reads <paramref name="data"/> into <paramref name="scorer"/> (new, built with the current policy and directory) and
    /// returns what it covers; or null, with the reason, when the snapshot cannot be used as it is: another format
    /// version, damaged, or made under another policy. A snapshot made under another directory is used: the people whose
    /// data changed are moved as <see cref="Scorer.Rebind"/> moves them. On null the scorer may hold part of the snapshot
    /// and must be thrown away.
    /// </summary>
    public static SnapshotCoverage? TryRead(byte[] data, Scorer scorer, out string? reason)
    {
        if (data.Length < 9 || data[0] != FormatVersion)
        {
            reason = $"format version {(data.Length > 0 ? data[0] : -1)}, this build reads {FormatVersion}";
            return null;
        }

        Span<byte> hash = stackalloc byte[8];
        XxHash3.Hash(data.AsSpan(9), hash);
        if (!hash.SequenceEqual(data.AsSpan(1, 8)))
        {
            reason = "damaged (checksum)";
            return null;
        }

        try
        {
            using var raw = new MemoryStream();
            using (var brotli = new BrotliStream(new MemoryStream(data, 9, data.Length - 9), CompressionMode.Decompress))
            {
                brotli.CopyTo(raw);
            }

            raw.Position = 0;
            using var r = new BinaryReader(raw, Encoding.UTF8);
            if (r.ReadString() != PolicyFingerprint(scorer.Policy))
            {
                reason = "made under another scoring policy";
                return null;
            }

            if (r.ReadInt32() != DayCounters.Count || r.ReadInt32() != scorer.Baselines.HistoryDays)
            {
                reason = "baselines laid out with other day counters or history length";
                return null;
            }

            var covered = r.ReadInt64();
            var gapCount = r.ReadInt32();
            if (gapCount is < 0 or > PartitionSnapshots.MaxGaps)
            {
                reason = "damaged (gaps)";
                return null;
            }

            var gaps = new long[gapCount];
            for (var i = 0; i < gaps.Length; i++)
            {
                gaps[i] = r.ReadInt64();
            }

            scorer.ReadState(r);
            if (r.ReadInt32() != EndMarker)
            {
                reason = "damaged (end marker)";
                return null;
            }

            reason = null;
            return new SnapshotCoverage(covered, gaps);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Whatever a damaged or crafted body makes the reader throw (a count out of range, a string cut short), the
            // snapshot is only ignored: the partition is replayed, never left unscored.
            reason = $"unreadable ({e.GetType().Name})";
            return null;
        }
    }

    /// <summary>
    /// A digest of the scoring policy's values (its JSON form), so a snapshot is not continued under changed thresholds.
    /// Where the policy was read from is not a value: hosts that load the same policy from different paths share snapshots.
    /// </summary>
    public static string PolicyFingerprint(ScoringPolicy policy) => PolicyFingerprints.GetValue(policy, static policy =>
    {
        var p = policy with { Source = "" };
        string text;
        try
        {
            text = JsonSerializer.Serialize(p, PolicyText);
        }
        catch (Exception e) when (e is NotSupportedException or ArgumentException or InvalidOperationException)
        {
            text = $"{p.HistoryDays}|{p}"; // record's own ToString: every scalar member
        }

        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    });
}
