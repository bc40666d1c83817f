using CrmSecurity.AuditAnalyzer.Organisation;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>
/// Live scoring rebuilds a partition when the directory object it was built with is replaced: a new model version
/// that changes nobody's directory data must keep the object (no replay), a changed time zone must replace it.
/// </summary>
public sealed class LiveDirectoryTests
{
    [Fact]
    public void A_new_version_with_the_same_people_keeps_the_directory_and_a_changed_time_zone_replaces_it()
    {
        var source = new Source { Current = new DirectorySnapshot(1, [Ed("Europe/Berlin")]) };
        var live = new LiveDirectory([source]);
        var first = live.Current;

        source.Current = new DirectorySnapshot(2, [Ed("Europe/Berlin")]); // e.g. a role's privileges changed
        var unchanged = live.Current;
        source.Current = new DirectorySnapshot(3, [Ed("Asia/Tokyo")]);
        var moved = live.Current;

        Assert.Same(first, unchanged);
        Assert.NotSame(first, moved);
        Assert.Equal("Europe/Berlin", first.Find("ed")!.TimeZone.Id);
        Assert.Equal("Asia/Tokyo", moved.Find("ed")!.TimeZone.Id);
    }

    [Fact]
    public void Without_a_source_every_user_is_unknown()
    {
        Assert.Null(new LiveDirectory([]).Current.Find("ed"));
    }

    private static DirectoryEntry Ed(string zone) => new()
    {
        UserId = "ed",
        UserName = "Ed East",
        Department = "Sales East",
        Roles = ["sales_rep"],
        BusinessUnit = "sales-east",
        TimeZone = zone,
    };

    private sealed class Source : IDirectorySource
    {
        public DirectorySnapshot Current { get; set; } = DirectorySnapshot.Empty;
    }
}
