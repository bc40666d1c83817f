using System.Text;
using CrmSecurity.AuditAnalyzer.Ingestion;
using CrmSecurity.AuditAnalyzer.Organisation;

namespace CrmSecurity.AuditAnalyzer.Tests.Ingestion;

public sealed class DirectoryReaderTests
{
    [Fact]
    public void The_snapshot_gives_peer_groups_time_zones_and_dates_and_an_unknown_zone_becomes_utc_with_a_warning()
    {
        var report = new IngestionReport();
        var directory = DirectoryReader.Read(new MemoryStream(Encoding.UTF8.GetBytes("""
            user_id,user_name,department,title,roles,business_unit,manager,timezone,hired,terminated
            u1,ann,Sales,AE,Account Executive;Report Builder,EMEA,u9,Europe/Berlin,2024-01-15,
            u2,bob,Support,Agent,Support Agent,EMEA,u9,Mars/Olympus,2025-13-01,2026-04-30
            """)), "users.csv", report);

        var ann = directory.Find("u1")!;
        var bob = directory.Find("u2")!;
        Assert.Equal("Sales/Account Executive", ann.PeerGroup);
        Assert.Equal(["Account Executive", "Report Builder"], ann.Roles);
        Assert.Equal("Europe/Berlin", ann.TimeZone.Id);
        Assert.Equal(new DateOnly(2024, 1, 15), ann.Hired);
        Assert.Equal(TimeZoneInfo.Utc, bob.TimeZone);
        Assert.Null(bob.Hired);
        Assert.Equal(new DateOnly(2026, 4, 30), bob.Terminated);
        Assert.Contains(report.Warnings.Values, w => w.Contains("users.csv:3: unknown time zone 'Mars/Olympus'", StringComparison.Ordinal));
        Assert.Contains(report.Warnings.Values, w => w.Contains("hired '2025-13-01' is not a date", StringComparison.Ordinal));
    }

    [Fact]
    public void A_quoted_title_spanning_two_lines_is_one_row_and_later_rows_keep_their_line_numbers()
    {
        var report = new IngestionReport();
        var directory = DirectoryReader.Read(new MemoryStream(Encoding.UTF8.GetBytes(
            "user_id,user_name,department,title,roles,business_unit,manager,timezone,hired,terminated\n" +
            "u1,ann,Sales,\"Account Executive\nEMEA North\",AE,EMEA,u9,Europe/Berlin,,\n" +
            "u2,bob,Support,Agent,Support Agent,EMEA,u9,Mars/Olympus,,\n")), "users.csv", report);

        Assert.Equal("Account Executive\nEMEA North", directory.Find("u1")!.Title);
        Assert.Equal("Europe/Berlin", directory.Find("u1")!.TimeZone.Id);
        Assert.Contains(report.Warnings.Values, w => w.Contains("users.csv:4: unknown time zone 'Mars/Olympus'", StringComparison.Ordinal));
    }

    [Fact]
    public void Salesforce_18_character_ids_find_the_15_character_directory_row()
    {
        var directory = new UserDirectory([new DirectoryUser { UserId = "005000000000001" }]);

        Assert.NotNull(directory.Find("005000000000001AAA"));
        Assert.Null(directory.Find("005000000000002AAA"));
    }
}
