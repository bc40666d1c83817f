
namespace CrmSecurity.AuditAnalyzer.Service.Orleans;

/// <summary>
/// Membership of a cluster of one silo (SQLite is one process by design), in memory: what Orleans' localhost clustering
/// gives, behind the same <see cref="IMembershipTable"/> the database-backed table implements. Versions and row ETags
/// are checked as a shared table would.
/// </summary>
internal sealed class SingleProcessMembershipTable : IMembershipTable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<SiloAddress, (MembershipEntry Entry, string ETag)> _rows = [];
    private TableVersion _version = new(0, "0");
    private int _etags;

    public Task InitializeMembershipTable(bool tryInitTableVersion) => Task.CompletedTask;

    public Task DeleteMembershipTableEntries(string clusterId)
    {
        lock (_lock)
        {
            _rows.Clear();
        }

        return Task.CompletedTask;
    }

    public Task CleanupDefunctSiloEntries(DateTimeOffset beforeDate)
    {
        lock (_lock)
        {
            foreach (var key in _rows.Where(r => r.Value.Entry.Status == SiloStatus.Dead && r.Value.Entry.IAmAliveTime < beforeDate.UtcDateTime).Select(r => r.Key).ToList())
            {
                _rows.Remove(key);
            }
        }

        return Task.CompletedTask;
    }

    public Task<MembershipTableData> ReadRow(SiloAddress key)
    {
        lock (_lock)
        {
            return Task.FromResult(Data(_rows.Where(r => r.Key.Equals(key))));
        }
    }

    public Task<MembershipTableData> ReadAll()
    {
        lock (_lock)
        {
            return Task.FromResult(Data(_rows));
        }
    }

    public Task<bool> InsertRow(MembershipEntry entry, TableVersion tableVersion)
    {
        lock (_lock)
        {
            if (tableVersion.VersionEtag != _version.VersionEtag || _rows.ContainsKey(entry.SiloAddress))
            {
                return Task.FromResult(false);
            }

            _rows[entry.SiloAddress] = (entry, NextETag());
            _version = new TableVersion(tableVersion.Version, NextETag());
            return Task.FromResult(true);
        }
    }

    public Task<bool> UpdateRow(MembershipEntry entry, string etag, TableVersion tableVersion)
    {
        lock (_lock)
        {
            if (tableVersion.VersionEtag != _version.VersionEtag || !_rows.TryGetValue(entry.SiloAddress, out var row) || row.ETag != etag)
            {
                return Task.FromResult(false);
            }

            _rows[entry.SiloAddress] = (entry, NextETag());
            _version = new TableVersion(tableVersion.Version, NextETag());
            return Task.FromResult(true);
        }
    }

    public Task UpdateIAmAlive(MembershipEntry entry)
    {
        lock (_lock)
        {
            if (_rows.TryGetValue(entry.SiloAddress, out var row))
            {
                row.Entry.IAmAliveTime = entry.IAmAliveTime;
            }
        }

        return Task.CompletedTask;
    }

    private string NextETag() => (++_etags).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private MembershipTableData Data(IEnumerable<KeyValuePair<SiloAddress, (MembershipEntry Entry, string ETag)>> rows) =>
        new([.. rows.Select(r => Tuple.Create(r.Value.Entry, r.Value.ETag))], _version);
}
