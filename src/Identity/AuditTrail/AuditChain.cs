using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.AuditTrail;

/// <summary>The result of checking the chain: intact, or the first entry that is not what was written.</summary>
internal sealed record AuditVerification(bool Intact, long Entries, string HeadHash, long? FirstBroken, string? Problem);

/// <summary>
/// The hash chain of the audit trail. Each entry's hash is SHA-256 over a canonical JSON array of its fields and the
/// previous entry's hash (the first entry chains to 64 zeros). Entries are only ever inserted, in the same
/// transaction as the change they describe, after the model-version row is locked, so the chain is written in order.
/// </summary>
internal static class AuditChain
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    public static string Hash(AuditEntryRecord entry)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartArray();
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
            json.WriteStringValue(entry.PreviousHash);
            json.WriteEndArray();
        }

        return Convert.ToHexStringLower(SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length)));
    }

    /// <summary>Appends entries after the current head (call inside the change's transaction).</summary>
    public static async Task<IReadOnlyList<AuditEntryRecord>> AppendAsync(IdentityStore store, IEnumerable<AuditEntryRecord> entries, CancellationToken cancellationToken)
    {
        var head = await store.AuditTrail.AsNoTracking().OrderByDescending(e => e.Sequence)
            .Select(e => new { e.Sequence, e.Hash }).FirstOrDefaultAsync(cancellationToken);
        var sequence = head?.Sequence ?? 0;
        var previous = head?.Hash ?? Genesis;
        var written = new List<AuditEntryRecord>();
        foreach (var entry in entries)
        {
            // The timestamp column (DateTimeOffsetToBinaryConverter) keeps ticks / 1000, i.e. 100 µs: hashing the full
            // ticks made every entry read back look changed. Hash exactly what is stored.
            entry.Timestamp = new DateTimeOffset(entry.Timestamp.UtcTicks - (entry.Timestamp.UtcTicks % 1000), TimeSpan.Zero);
            entry.Sequence = ++sequence;
            entry.PreviousHash = previous;
            entry.Hash = Hash(entry);
            previous = entry.Hash;
            store.AuditTrail.Add(entry);
            written.Add(entry);
        }

        await store.SaveChangesAsync(cancellationToken);
        return written;
    }

    /// <summary>Recomputes every hash in order and names the first entry that does not match.</summary>
    public static async Task<AuditVerification> VerifyAsync(IdentityStore store, CancellationToken cancellationToken)
    {
        var expectedSequence = 1L;
        var previous = Genesis;
        var count = 0L;
        await foreach (var entry in store.AuditTrail.AsNoTracking().OrderBy(e => e.Sequence).AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            var name = Describe(entry);
            if (entry.Sequence != expectedSequence)
            {
                return Broken(count, previous, entry.Sequence,
                    entry.Sequence > expectedSequence
                        ? $"entry {expectedSequence.ToString(CultureInfo.InvariantCulture)} is missing (the next one is {name}): entries were deleted"
                        : $"entry {name} repeats a sequence number");
            }

            if (!string.Equals(entry.PreviousHash, previous, StringComparison.Ordinal))
            {
                return Broken(count, previous, entry.Sequence, $"entry {name} does not chain to the entry before it (previous_hash differs): an earlier entry was changed, removed or reordered");
            }

            if (!string.Equals(Hash(entry), entry.Hash, StringComparison.Ordinal))
            {
                return Broken(count, previous, entry.Sequence, $"entry {name} was changed after it was written (its content does not match its hash)");
            }

            previous = entry.Hash;
            expectedSequence++;
            count++;
        }

        return new AuditVerification(true, count, previous, null, null);
    }

    public static string Describe(AuditEntryRecord entry) => string.Create(CultureInfo.InvariantCulture,
        $"{entry.Sequence} ({entry.Timestamp.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z, {entry.Action} of {entry.TargetKind} '{entry.TargetName}' by {entry.ActorName})");

    private static AuditVerification Broken(long count, string head, long sequence, string problem) => new(false, count, head, sequence, problem);
}
