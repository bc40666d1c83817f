using System.Globalization;
using System.Text.Json;

namespace CrmSecurity.Crypto.Subjects;

/// <summary>That a data subject was shredded, from wherever it was recorded (the data database's tombstones, an access-event log, a backup).</summary>
/// <param name="Tenant">Tenant.</param>
/// <param name="SubjectId">The data subject.</param>
/// <param name="ShreddedAt">When.</param>
internal sealed record ShredRecord(string Tenant, string SubjectId, DateTimeOffset ShreddedAt);

/// <summary>What <see cref="SubjectKeyStore.ReapplyShredsAsync"/> changed.</summary>
/// <param name="Recorded">Distinct shredded subjects found in all sources.</param>
/// <param name="KeysDestroyed">Subjects whose key was live in the store (brought back by a restore) and is destroyed again.</param>
/// <param name="TombstonesAdded">Subjects the store did not know at all, now tombstoned so no key can be made for them.</param>
/// <param name="TombstonesRecordedInData">Tombstones of the store copied to the data database, where they were missing (a restored data backup).</param>
public sealed record ShredReapplication(int Recorded, int KeysDestroyed, int TombstonesAdded, int TombstonesRecordedInData)
{
    /// <summary>Shreds that changed the subject-key store.</summary>
    public int Reapplied => KeysDestroyed + TombstonesAdded;
}

/// <summary>What <see cref="SubjectKeyStore.MergeAsync"/> did with a backup's subject keys.</summary>
/// <param name="Added">Keys and tombstones of the backup the store did not have.</param>
/// <param name="AlreadyPresent">Subjects the store already had (live or shredded): the store's record is kept.</param>
internal sealed record SubjectKeyMerge(int Added, int AlreadyPresent);

/// <summary>Shreds read from an access-event log (JSON Lines, the access-event contract), and the lines that could not be read.</summary>
/// <param name="Shreds">Successful <c>admin_change</c> events with privilege <c>crypto_shred</c>.</param>
/// <param name="UnreadableLines">1-based numbers of lines that are not JSON objects (a torn last line, for example); they are skipped.</param>
internal sealed record ShredLog(IReadOnlyList<ShredRecord> Shreds, IReadOnlyList<int> UnreadableLines)
{
    /// <summary>Reads the shreds recorded in an access-event log such as the one <see cref="Events.JsonLinesEventSink"/> writes.</summary>
    /// <param name="path">The JSON Lines file.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    public static async Task<ShredLog> ReadAsync(string path, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var shreds = new List<ShredRecord>();
        var unreadable = new List<int>();
        var number = 0;
        await foreach (var line in File.ReadLinesAsync(path, cancellationToken))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                using var document = JsonDocument.Parse(line);
                if (ToShred(document.RootElement) is { } shred)
                {
                    shreds.Add(shred);
                }
            }
            catch (JsonException)
            {
                unreadable.Add(number);
            }
        }

        return new ShredLog(shreds, unreadable);
    }

    private static ShredRecord? ToShred(JsonElement line)
    {
        if (line.ValueKind != JsonValueKind.Object
            || Text(line, "action") != "admin_change"
            || Text(line, "privilege") != "crypto_shred"
            || Text(line, "outcome") != "success"
            || Text(line, "tenant") is not { Length: > 0 } tenant
            || Text(line, "record_id") is not { Length: > 0 } subject)
        {
            return null;
        }

        var at = DateTimeOffset.TryParse(Text(line, "timestamp"), CultureInfo.InvariantCulture, DateTimeStyles.None, out var parsed) ? parsed : DateTimeOffset.MinValue;
        return new ShredRecord(tenant, subject, at);
    }

    private static string? Text(JsonElement line, string name) =>
        line.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
