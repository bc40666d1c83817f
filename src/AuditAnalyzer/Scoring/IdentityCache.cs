using System.Numerics;
using System.Runtime.CompilerServices;

namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>
/// A direct-mapped cache from a string object (by identity, not by its characters) to a value. The parsers
/// intern user ids and entities (<see cref="Ingestion.StringPool"/>), so every event of a user carries the
/// same string object: looking it up by identity costs one header read and one compare instead of hashing
/// and comparing the characters. A miss (first sight, a slot taken by another key, or a string the pool
/// did not keep) is answered by the caller's dictionary and remembered here; the cache is never the only
/// copy of anything, so a wrong answer is impossible, only a slower one.
/// </summary>
internal sealed class IdentityCache<T>
    where T : class
{
    private Entry[] _entries;

    public IdentityCache(int size) => _entries = new Entry[(int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, size))];

    public int Size => _entries.Length;

    public T? Find(string key)
    {
        var entry = _entries[RuntimeHelpers.GetHashCode(key) & (_entries.Length - 1)];
        return ReferenceEquals(entry.Key, key) ? entry.Value : null;
    }

    public void Remember(string key, T value) => _entries[RuntimeHelpers.GetHashCode(key) & (_entries.Length - 1)] = new Entry(key, value);

    /// <summary>Starts over with room for more keys (the entries are found again on their next miss).</summary>
    public void Resize(int size) => _entries = new Entry[(int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, size))];

    private readonly record struct Entry(string? Key, T? Value);
}
