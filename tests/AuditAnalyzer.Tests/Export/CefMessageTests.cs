using System.Text;
using CrmSecurity.AuditAnalyzer.Export;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Tests.Export;

public sealed class CefMessageTests
{
    [Theory]
    [InlineData(@"a|b", @"a\|b")]
    [InlineData(@"back\slash", @"back\\slash")]
    [InlineData(@"x\|y", @"x\\\|y")]
    [InlineData("two\r\nlines", "two  lines")]
    [InlineData("a=b", "a=b")]
    public void Header_fields_escape_pipe_and_backslash_and_never_break_the_line(string value, string expected) =>
        Assert.Equal(expected, CefMessage.EscapeHeader(value));

    [Theory]
    [InlineData("a=b", @"a\=b")]
    [InlineData(@"c:\temp", @"c:\\temp")]
    [InlineData("one\ntwo\rthree", @"one\ntwo\rthree")]
    [InlineData("pipe|stays", "pipe|stays")]
    [InlineData(@"\=", @"\\\=")]
    public void Extension_values_escape_equals_backslash_and_line_breaks(string value, string expected) =>
        Assert.Equal(expected, CefMessage.EscapeExtension(value));

    [Fact]
    public void A_finding_becomes_a_cef_line_with_severity_detector_and_user()
    {
        var line = CefMessage.Format(ExportSamples.Finding(new ReviewState("acknowledged", null)));

        Assert.StartsWith($"CEF:0|CRM Security|Audit Analyzer|{CefMessage.ProductVersion}|bulk_export|Audit analyzer finding: bulk_export|8|", line, StringComparison.Ordinal);
        Assert.Contains(" suid=carl suser=Carl Jones externalId=f-0123456789abcdef ", line, StringComparison.Ordinal);
        Assert.Contains("cn1Label=riskScore cn1=81 ", line, StringComparison.Ordinal);
        Assert.Contains("cs2Label=reviewStatus cs2=acknowledged ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("cs3", line, StringComparison.Ordinal);
        Assert.Contains("msg=records exported today: typical 120, actual 48,000 ", line, StringComparison.Ordinal);
        Assert.EndsWith("cs4Label=eventIds cs4=x-1,x-2", line, StringComparison.Ordinal);
        Assert.Contains($"rt={ExportSamples.Updated.ToUnixTimeMilliseconds()} ", line, StringComparison.Ordinal);
    }

    [Fact]
    public void A_user_name_with_cef_metacharacters_cannot_forge_an_extension_field()
    {
        var row = ExportSamples.Row(userName: "eve suid=admin\nCEF:0|x");
        var line = CefMessage.Format(ExportFinding.FromRow(row));

        Assert.Contains(@"suser=eve suid\=admin\nCEF:0|x externalId=", line, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', line);
    }

    [Theory]
    [InlineData("low", 3, 13 * 8 + 5)]
    [InlineData("medium", 5, 13 * 8 + 4)]
    [InlineData("high", 8, 13 * 8 + 3)]
    [InlineData("critical", 10, 13 * 8 + 2)]
    public void Severity_maps_to_cef_0_to_10_and_to_the_syslog_priority(string name, int cef, int pri)
    {
        var severity = SeverityNames.Parse(name);
        Assert.Equal(cef, CefMessage.Severity(severity));
        var sample = ExportSamples.Finding();
        var finding = sample with { Finding = sample.Finding with { Severity = severity } };
        Assert.StartsWith($"<{pri}>1 ", SyslogMessage.Format(finding, new SyslogOptions(), ExportSamples.Updated, "host", 42), StringComparison.Ordinal);
    }

    [Fact]
    public void The_syslog_message_has_the_rfc5424_header_before_the_cef_line()
    {
        var message = SyslogMessage.Format(ExportSamples.Finding(), new SyslogOptions { Facility = 4, AppName = "crm-sec" }, ExportSamples.Updated.AddTicks(1234567), "web 01", 42);

        Assert.StartsWith("<35>1 2026-11-20T09:30:00.123456Z web01 crm-sec 42 finding - CEF:0|", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tcp_frames_are_octet_counted_in_bytes_not_characters()
    {
        var frame = SyslogMessage.OctetCounted("<13>1 - - - - - - é");

        Assert.Equal("20 <13>1 - - - - - - é", Encoding.UTF8.GetString(frame));
    }

    [Fact]
    public void A_long_message_is_cut_under_2048_bytes_without_splitting_a_character_or_an_escape()
    {
        var sample = ExportSamples.Finding();
        var finding = sample with { Finding = sample.Finding with { EventIds = Enumerable.Range(0, 400).Select(i => $"évt-{i}").ToList() } };
        var message = SyslogMessage.Format(finding, new SyslogOptions(), ExportSamples.Updated, "host", 1);

        var datagram = SyslogMessage.Datagram(message);

        Assert.InRange(datagram.Length, 2000, SyslogMessage.MaxDatagramBytes);
        var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(datagram);
        Assert.StartsWith(text, message, StringComparison.Ordinal);
        Assert.Contains("externalId=f-0123456789abcdef", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("abc\\\\d", 5, 5)]
    [InlineData("abc\\=d", 4, 3)]
    [InlineData("ab\\\\\\=", 5, 4)]
    [InlineData("aé", 2, 1)]
    public void The_cut_backs_off_from_a_half_escape_or_a_half_character(string text, int limit, int expected) =>
        Assert.Equal(expected, SyslogMessage.SafeCut(Encoding.UTF8.GetBytes(text), limit));
}
