using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmSecurity.Crypto.Providers;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.AuditTrail;

/// <summary>A head of the chain: the newest entry's sequence and MAC. Its text form <c>SEQ:MACPREFIX</c> is what an operator keeps.</summary>
internal readonly record struct AuditHead(long Sequence, string Mac)
{
    /// <summary>Hex digits of the MAC in the text form: 64 bits, enough to tell heads apart, short enough to write down.</summary>
    public const int PrefixLength = 16;

    public string Prefix => Mac[..Math.Min(PrefixLength, Mac.Length)];

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Sequence}:{Prefix}");

    /// <summary>Reads <c>SEQ:HEX</c> (at least 8 hex digits of the MAC).</summary>
    public static bool TryParse(string? text, out AuditHead head)
    {
        head = default;
        var parts = text?.Split(':', 2);
        if (parts is not [var sequence, var mac]
            || !long.TryParse(sequence, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1
            || mac.Length is < 8 or > 64 || !mac.All(char.IsAsciiHexDigit))
        {
            return false;
        }

        head = new AuditHead(number, mac.ToLowerInvariant());
        return true;
    }
}

/// <summary>The result of checking the chain: intact, or the first thing that is not what was written.</summary>
internal sealed record AuditVerification(bool Intact, long Entries, AuditHead? Head, long? FirstBroken, string? Problem, string LastGoodHash);

/// <summary>
/// The keyed hash chain of the audit trail (red-team finding 12). Each entry's MAC is HMAC-SHA-256, under the
/// installation's audit key, over a canonical JSON array of its fields, the model fingerprint it recorded and the
/// previous entry's MAC (the first chains to 64 zeros). The key is an Identity secret wrapped by the installation's
/// key-encryption key (<see cref="IdentitySecrets"/>), never in the database in clear, so whoever can write the database
/// can delete or change entries but cannot write a chain that verifies. A keyed head record catches deleting the newest
/// entries; a head kept outside the database (<c>--expect-head</c>) catches putting an old head back; the model
/// fingerprint catches changes to the model that no entry explains.
/// </summary>
internal static class AuditChain
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>The MAC of keyed entries.</summary>
    public const string KeyedScheme = "hmac-sha256";

    /// <summary>The name of the audit key among the Identity module's secrets.</summary>
    public const string KeyName = "audit-chain";

    /// <summary>Entry actions that record something wrong found on the way; verify reports them.</summary>
    public const string DriftAction = "model.drift";

    public const string SealAction = "audit.seal";

    /// <summary>The keyed MAC of an entry (hex).</summary>
    public static string Mac(ReadOnlySpan<byte> key, AuditEntryRecord entry)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            json.WriteStringValue("crm-security/audit/entry/v1");
            WriteEntry(json, entry);
            json.WriteStringValue(entry.Scheme);
            json.WriteStringValue(entry.ModelFingerprint);
            json.WriteStringValue(entry.PreviousHash);
            json.WriteEndArray();
        }

        return Convert.ToHexStringLower(HMACSHA256.HashData(key, buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
    }

    /// <summary>What an entry says, in the order both chain formats (keyed and legacy) hash it.</summary>
    private static void WriteEntry(Utf8JsonWriter json, AuditEntryRecord entry)
    {
        json.WriteNumberValue(entry.Sequence);
        json.WriteNumberValue(entry.Timestamp.UtcTicks);
        json.WriteStringValue(entry.ActorId);
        json.WriteStringValue(entry.ActorName);
        json.WriteStringValue(entry.ClientId);
        json.WriteStringValue(entry.Action);
        json.WriteStringValue(entry.TargetKind);
        json.WriteStringValue(entry.TargetId);
        json.WriteStringValue(entry.TargetName);
        json.WriteStringValue(entry.Before);
        json.WriteStringValue(entry.After);
        json.WriteStringValue(entry.SourceIp);
        json.WriteNumberValue(entry.ModelVersion);
    }

    /// <summary>The MAC of the head record: the head's sequence and the MAC of that entry, under the audit key.</summary>
    public static string HeadMac(ReadOnlySpan<byte> key, long sequence, string mac) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"crm-security/audit/head/v1\0{sequence}\0{mac}"))));

    /// <summary>The unkeyed SHA-256 of entries written before the chain was keyed (only for sealing them).</summary>
    public static string LegacyHash(AuditEntryRecord entry)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
            WriteEntry(json, entry);
            json.WriteStringValue(entry.PreviousHash);
            json.WriteEndArray();
        }

        return Convert.ToHexStringLower(SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
    }

    /// <summary>The unkeyed chain as it was before keying: intact, or the first entry that breaks it (for the seal entry).</summary>
    public static string VerifyLegacy(IReadOnlyList<AuditEntryRecord> entries)
    {
        var previous = Genesis;
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            if (entry.Sequence != i + 1 || !string.Equals(entry.PreviousHash, previous, StringComparison.Ordinal) || !string.Equals(LegacyHash(entry), entry.Hash, StringComparison.Ordinal))
            {
                return string.Create(CultureInfo.InvariantCulture, $"broken at entry {entry.Sequence}");
            }

            previous = entry.Hash;
        }

        return "intact";
    }

    /// <summary>The audit key, unwrapped with the installation's KEK; null when the installation has none yet. Never creates one.</summary>
    /// <exception cref="KeyManagementException">The key was wrapped under another KEK or altered.</exception>
    public static async Task<byte[]?> ReadKeyAsync(IdentityStore store, IKeyEncryptionKey kek, CancellationToken cancellationToken) =>
        await store.Secrets.AsNoTracking().Where(s => s.Name == KeyName).Select(s => s.Value).SingleOrDefaultAsync(cancellationToken) is { } stored
            ? WrappedSecret.Unwrap(kek, stored)
            : null;

    /// <summary>
    /// Recomputes every MAC in order, checks the head record, an expected head kept outside the database, the entries
    /// that record problems, and the model tables against the newest fingerprint. Reads only.
    /// </summary>
    public static async Task<AuditVerification> VerifyAsync(IdentityStore store, byte[]? key, AuditHead? expected, CancellationToken cancellationToken)
    {
        var expectedSequence = 1L;
        var previous = Genesis;
        var count = 0L;
        string? expectedMac = null;
        (long Sequence, string Text)? fingerprint = null;
        var findings = new List<(long Sequence, string Problem)>();
        AuditEntryRecord? last = null;
        await foreach (var entry in store.AuditTrail.AsNoTracking().OrderBy(e => e.Sequence).AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            var name = Describe(entry);
            if (key is null)
            {
                return Broken(0, Genesis, entry.Sequence, $"the audit key is not in the database, so entry {name} cannot be verified (start the service once: it seals the trail under a new key)");
            }

            if (entry.Sequence != expectedSequence)
            {
                return Broken(count, previous, entry.Sequence,
                    entry.Sequence > expectedSequence
                        ? $"entry {expectedSequence.ToString(CultureInfo.InvariantCulture)} is missing (the next one is {name}): entries were deleted"
                        : $"entry {name} repeats a sequence number");
            }

            if (!string.Equals(entry.Scheme, KeyedScheme, StringComparison.Ordinal))
            {
                return Broken(count, previous, entry.Sequence, $"entry {name} is not sealed under the audit key: it was written or rewritten without the key");
            }

            if (!string.Equals(entry.PreviousHash, previous, StringComparison.Ordinal))
            {
                return Broken(count, previous, entry.Sequence, $"entry {name} does not chain to the entry before it (previous_hash differs): an earlier entry was changed, removed or reordered");
            }

            // Constant time: the MAC is compared like any other authenticator.
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Mac(key, entry)), Encoding.ASCII.GetBytes(entry.Hash)))
            {
                return Broken(count, previous, entry.Sequence, $"entry {name} was changed after it was written (its content does not match its MAC)");
            }

            if (entry.ModelFingerprint is { } recorded)
            {
                fingerprint = (entry.Sequence, recorded);
            }

            if (entry.Action == DriftAction)
            {
                findings.Add((entry.Sequence, $"entry {name} records that the model was changed outside the audited path before it ({entry.After})"));
            }
            else if (entry.Action == SealAction && entry.After is { } after && !after.Contains("\"unkeyed_chain\":\"intact\"", StringComparison.Ordinal))
            {
                findings.Add((entry.Sequence, $"entry {name} records that the unkeyed trail it sealed was already broken ({after})"));
            }

            if (expected is { } wanted && entry.Sequence == wanted.Sequence)
            {
                expectedMac = entry.Hash;
            }

            previous = entry.Hash;
            last = entry;
            expectedSequence++;
            count++;
        }

        var head = last is null ? (AuditHead?)null : new AuditHead(last.Sequence, last.Hash);
        if (await store.AuditHeads.AsNoTracking().SingleOrDefaultAsync(h => h.Id == AuditHeadRecord.SingletonId, cancellationToken) is { } record)
        {
            if (key is null || !CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(HeadMac(key, record.Sequence, record.Mac)), Encoding.ASCII.GetBytes(record.HeadMac)))
            {
                return Broken(count, previous, record.Sequence, "the head record was changed (its MAC does not verify)");
            }

            if (record.Sequence > (last?.Sequence ?? 0))
            {
                return Broken(count, previous, (last?.Sequence ?? 0) + 1, string.Create(CultureInfo.InvariantCulture,
                    $"the chain ends at entry {last?.Sequence ?? 0}, but the head record names entry {record.Sequence}: the newest entries were deleted"));
            }

            if (record.Sequence != last!.Sequence || !string.Equals(record.Mac, last.Hash, StringComparison.Ordinal))
            {
                return Broken(count, previous, record.Sequence, string.Create(CultureInfo.InvariantCulture,
                    $"the head record names entry {record.Sequence} with another MAC than the chain's newest entry {last.Sequence}"));
            }
        }
        else if (last is not null)
        {
            return Broken(count, previous, last.Sequence, "the head record is missing: it is written with every entry, so it was deleted");
        }

        if (expected is { } kept)
        {
            if (kept.Sequence > (last?.Sequence ?? 0))
            {
                return Broken(count, previous, (last?.Sequence ?? 0) + 1, string.Create(CultureInfo.InvariantCulture,
                    $"the chain ends at entry {last?.Sequence ?? 0}, but the head kept outside the database is entry {kept.Sequence}: the newest entries were deleted and the head record put back"));
            }

            if (expectedMac is null || !expectedMac.StartsWith(kept.Mac, StringComparison.Ordinal))
            {
                return Broken(count, previous, kept.Sequence, string.Create(CultureInfo.InvariantCulture,
                    $"entry {kept.Sequence} is not the entry whose head was kept outside the database ({kept}): the trail was rewritten from there"));
            }
        }

        if (findings.Count > 0)
        {
            return Broken(count, previous, findings[0].Sequence, string.Join("; ", findings.Select(f => f.Problem)));
        }

        if (key is not null && fingerprint is { } newest && ModelFingerprint.Parse(newest.Text) is { } recordedModel)
        {
            var differences = (await ModelFingerprint.ComputeAsync(store, key, cancellationToken)).Differences(recordedModel);
            if (differences.Count > 0)
            {
                return Broken(count, previous, null, string.Create(CultureInfo.InvariantCulture,
                    $"the model's {string.Join(", ", differences.Select(d => $"{d} ({ModelFingerprint.Descriptions[d]})"))} differ from what entry {newest.Sequence} recorded: they were changed outside the audited path"));
            }
        }

        return new AuditVerification(true, count, head, null, null, previous);
    }

    public static string Describe(AuditEntryRecord entry) => string.Create(CultureInfo.InvariantCulture,
        $"{entry.Sequence} ({entry.Timestamp.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z, {entry.Action} of {entry.TargetKind} '{entry.TargetName}' by {entry.ActorName})");

    private static AuditVerification Broken(long count, string lastGood, long? sequence, string problem) => new(false, count, null, sequence, problem, lastGood);
}
