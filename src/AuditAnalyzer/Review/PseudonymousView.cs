using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CrmSecurity.AuditAnalyzer.Review;

/// <summary>
/// A finding as someone sees it who has not revealed its user (the default for every reader, OWASP ASVS 4.0.3 V8.3.1 /
/// GDPR Art. 25 data protection by default): the pseudonym instead of the user id and name, also where they appear
/// inside reason texts and sender-chosen event ids (a CRM app may key events as "alice-00012"), and the peer group only
/// when it is large enough (<see cref="PeerGroupSizes"/>).
/// </summary>
internal static class PseudonymousView
{
    public const string EventRefPrefix = "ev-";

    /// <summary>The text with every whole-word occurrence of the user's id or name replaced by the pseudonym.</summary>
    public static string Text(string text, string userId, string? userName, string pseudonym)
    {
        text = Replace(text, userId, pseudonym);
        return userName is { Length: > 0 } ? Replace(text, userName, pseudonym) : text;
    }

    /// <summary>
    /// An event id as shown: unchanged unless it contains the user's id or name as a word; then an opaque, stable
    /// reference (HMAC under the pseudonym key), so timelines still line up without naming the user.
    /// </summary>
    public static string EventId(ReadOnlySpan<byte> key, string eventId, string userId, string? userName) =>
        Contains(eventId, userId) || (userName is { Length: > 0 } && Contains(eventId, userName)) ? EventRef(key, eventId) : eventId;

    public static string EventRef(ReadOnlySpan<byte> key, string eventId)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(key, Encoding.UTF8.GetBytes("event\0" + eventId), mac);
        return EventRefPrefix + Convert.ToHexStringLower(mac[..6]);
    }

    /// <summary>
    /// A finding in the JSON Lines shape of <c>analyze</c> made pseudonymous: <c>user</c> (the pseudonym) instead of
    /// <c>user_id</c> and <c>user_name</c>, texts and event ids as above, a small peer group left out.
    /// </summary>
    public static string FindingJson(string json, string userId, string? userName, string pseudonym, string? peerGroup, ReadOnlySpan<byte> key, PeerGroupSizes groups)
    {
        var node = JsonNode.Parse(json) as JsonObject ?? [];
        node.Remove("user_id");
        node.Remove("user_name");
        var ordered = new JsonObject { ["user"] = pseudonym };
        foreach (var (name, value) in node.ToList())
        {
            node.Remove(name);
            ordered[name] = value;
        }

        if (!groups.MayName(peerGroup))
        {
            ordered.Remove("peer_group");
        }

        if (ordered["reasons"] is JsonArray reasons)
        {
            foreach (var reason in reasons.OfType<JsonObject>())
            {
                if (reason["text"]?.GetValue<string>() is { } text)
                {
                    reason["text"] = groups.Redact(Text(text, userId, userName, pseudonym), peerGroup);
                }
            }
        }

        if (ordered["event_ids"] is JsonArray ids)
        {
            for (var i = 0; i < ids.Count; i++)
            {
                if (ids[i]?.GetValue<string>() is { } id)
                {
                    ids[i] = EventId(key, id, userId, userName);
                }
            }
        }

        return ordered.ToJsonString();
    }

    private static string Replace(string text, string word, string by) =>
        word.Length == 0 ? text : WordOf(word).Replace(text, by.Replace("$", "$$", StringComparison.Ordinal));

    private static bool Contains(string text, string word) => word.Length > 0 && WordOf(word).IsMatch(text);

    // A "word": not preceded or followed by a letter or digit, so "ed" matches in "ed-00012" but not in "exported".
    private static Regex WordOf(string word) =>
        new($"(?<![\\p{{L}}\\p{{N}}]){Regex.Escape(word)}(?![\\p{{L}}\\p{{N}}])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(200));
}
