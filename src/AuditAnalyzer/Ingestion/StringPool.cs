using System.Text;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// Interns short repeating UTF-8 values (user ids, entities, countries) so a stream of millions of events
/// holds one string per distinct value. Unbounded values (event ids, record ids) are never pooled.
/// </summary>
internal sealed class StringPool
{
    private const int MaxPooledChars = 128;
    private readonly HashSet<string> _strings = new(StringComparer.Ordinal);
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly int _limit;

    public StringPool(int limit = 1_000_000)
    {
        _lookup = _strings.GetAlternateLookup<ReadOnlySpan<char>>();
        _limit = limit;
    }

    public int Count => _strings.Count;

    public string Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxPooledChars)
        {
            return Encoding.UTF8.GetString(utf8);
        }

        Span<char> chars = stackalloc char[MaxPooledChars];
        var length = Encoding.UTF8.GetChars(utf8, chars);
        return Get(chars[..length]);
    }

    public string Get(ReadOnlySpan<char> chars)
    {
        if (_lookup.TryGetValue(chars, out var existing))
        {
            return existing;
        }

        var created = chars.ToString();
        // A pathological input with millions of distinct values must not grow the pool without bound.
        if (_strings.Count < _limit)
        {
            _strings.Add(created);
        }

        return created;
    }
}
