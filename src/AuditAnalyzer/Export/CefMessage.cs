using System.Globalization;
using System.Text;
using CrmSecurity.AuditAnalyzer.Policy;

namespace CrmSecurity.AuditAnalyzer.Export;

/// <summary>
/// A finding change as an ArcSight Common Event Format line,
/// <c>CEF:0|Vendor|Product|Version|Signature ID|Name|Severity|Extension</c> (Micro Focus "ArcSight Common Event
/// Format (CEF) Implementation Standard", rev. 25, "CEF Header" and "Extension"). Extension keys are the
/// spec's standard keys; product fields use its custom string/number pairs (cs1..cs4, cn1) with labels.
/// </summary>
internal static class CefMessage
{
    public const string Vendor = "CRM Security";
    public const string Product = "Audit Analyzer";

    public static readonly string ProductVersion =
        typeof(CefMessage).Assembly.GetName().Version?.ToString(3) ?? "1.0.0";

    /// <summary>CEF severity 0-10 (the spec: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high).</summary>
    public static int Severity(Severity severity) => severity switch
    {
        Policy.Severity.Critical => 10,
        Policy.Severity.High => 8,
        Policy.Severity.Medium => 5,
        _ => 3,
    };

    /// <summary>
    /// The CEF line. Extension fields are ordered by importance and the event ids come last, so a datagram
    /// truncated at the end (<see cref="SyslogMessage"/>) loses the least.
    /// </summary>
    public static string Format(ExportFinding f)
    {
        var line = new StringBuilder("CEF:0|");
        foreach (var header in new[] { Vendor, Product, ProductVersion, f.Finding.Detector, $"Audit analyzer finding: {f.Finding.Detector}" })
        {
            line.Append(EscapeHeader(header)).Append('|');
        }

        line.Append(Severity(f.Finding.Severity).ToString(CultureInfo.InvariantCulture)).Append('|');
        var extension = new List<(string Key, string Value)>
        {
            ("rt", Millis(f.UpdatedAt)),
            ("start", Millis(f.Finding.WindowStart)),
            ("end", Millis(f.Finding.WindowEnd)),
            ("suid", f.Finding.UserId),
        };
        if (f.Finding.UserName is not null)
        {
            extension.Add(("suser", f.Finding.UserName));
        }

        extension.Add(("externalId", f.Id));
        extension.Add(("cat", EcsDocument.Dataset));
        extension.Add(("cn1Label", "riskScore"));
        extension.Add(("cn1", f.Finding.Score.ToString("0.###", CultureInfo.InvariantCulture)));
        extension.Add(("cs1Label", "detectors"));
        extension.Add(("cs1", string.Join(',', f.Finding.Detectors)));
        if (f.Review?.Status is { } status)
        {
            extension.Add(("cs2Label", "reviewStatus"));
            extension.Add(("cs2", status));
        }

        if (f.Review?.Disposition is { } disposition)
        {
            extension.Add(("cs3Label", "disposition"));
            extension.Add(("cs3", disposition));
        }

        extension.Add(("msg", EcsDocument.Message(f)));
        extension.Add(("cs4Label", "eventIds"));
        extension.Add(("cs4", string.Join(',', f.Finding.EventIds)));
        line.AppendJoin(' ', extension.Select(e => $"{e.Key}={EscapeExtension(e.Value)}"));
        return line.ToString();
    }

    /// <summary>
    /// CEF header escaping: backslash and pipe are escaped with a backslash; a header may not span lines, so CR
    /// and LF become spaces (the spec allows multi-line values only in the extension).
    /// </summary>
    public static string EscapeHeader(string value)
    {
        var escaped = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            escaped.Append(c switch
            {
                '\\' => @"\\",
                '|' => @"\|",
                '\r' or '\n' => " ",
                _ => c.ToString(),
            });
        }

        return escaped.ToString();
    }

    /// <summary>
    /// CEF extension value escaping: backslash and equals sign are escaped with a backslash; line breaks are
    /// written as \r and \n. Pipes need no escaping in the extension.
    /// </summary>
    public static string EscapeExtension(string value)
    {
        var escaped = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            escaped.Append(c switch
            {
                '\\' => @"\\",
                '=' => @"\=",
                '\r' => @"\r",
                '\n' => @"\n",
                _ => c.ToString(),
            });
        }

        return escaped.ToString();
    }

    private static string Millis(DateTimeOffset time) => time.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
}

/// <summary>RFC 5424 syslog messages carrying a CEF line, and their framing on UDP (RFC 5426) and TCP (RFC 6587).</summary>
internal static class SyslogMessage
{
    /// <summary>RFC 5426 §3.2: every receiver should take datagrams of up to 2048 octets; larger ones may be cut or dropped.</summary>
    public const int MaxDatagramBytes = 2048;

    /// <summary>RFC 5424 §6.2.1 severity: critical 2 (crit), high 3 (err), medium 4 (warning), low 5 (notice).</summary>
    public static int SyslogSeverity(Severity severity) => severity switch
    {
        Policy.Severity.Critical => 2,
        Policy.Severity.High => 3,
        Policy.Severity.Medium => 4,
        _ => 5,
    };

    /// <summary>
    /// <c>&lt;PRI&gt;1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG</c> (RFC 5424 §6). MSG is the CEF line without a
    /// BOM (MSG-ANY, §6.4): CEF receivers expect the line to start with "CEF:".
    /// </summary>
    public static string Format(ExportFinding finding, SyslogOptions options, DateTimeOffset now, string hostName, int processId)
    {
        var pri = options.Facility * 8 + SyslogSeverity(finding.Finding.Severity);
        var timestamp = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture); // §6.2.3: at most 6 fraction digits
        return string.Create(CultureInfo.InvariantCulture,
            $"<{pri}>1 {timestamp} {HeaderField(hostName, 255)} {HeaderField(options.AppName, 48)} {processId} finding - {CefMessage.Format(finding)}");
    }

    /// <summary>RFC 5424 §6: header fields are 1-N printable US-ASCII characters (33-126), or the NILVALUE "-".</summary>
    public static string HeaderField(string? value, int maxLength)
    {
        var kept = new string((value ?? "").Where(c => c is >= '!' and <= '~').Take(maxLength).ToArray());
        return kept.Length == 0 ? "-" : kept;
    }

    /// <summary>One UDP datagram: the message's UTF-8, cut to <see cref="MaxDatagramBytes"/> if longer (RFC 5426 §3.2).</summary>
    public static byte[] Datagram(string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        return bytes.Length <= MaxDatagramBytes ? bytes : bytes[..SafeCut(bytes, MaxDatagramBytes)];
    }

    /// <summary>TCP octet-counting framing: <c>MSG-LEN SP SYSLOG-MSG</c>, the length in octets (RFC 6587 §3.4.1).</summary>
    public static byte[] OctetCounted(string message)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        var prefix = Encoding.ASCII.GetBytes(bytes.Length.ToString(CultureInfo.InvariantCulture) + " ");
        return [.. prefix, .. bytes];
    }

    /// <summary>
    /// A length at most <paramref name="limit"/> that neither splits a UTF-8 sequence nor leaves a CEF escape
    /// half written (an odd run of trailing backslashes would escape whatever a receiver appends).
    /// </summary>
    public static int SafeCut(byte[] bytes, int limit)
    {
        var cut = Math.Min(limit, bytes.Length);
        while (cut > 0 && cut < bytes.Length && (bytes[cut] & 0xC0) == 0x80)
        {
            cut--; // bytes[cut] continues a sequence: cut before the sequence's lead byte
        }

        var backslashes = 0;
        while (backslashes < cut && bytes[cut - 1 - backslashes] == (byte)'\\')
        {
            backslashes++;
        }

        return backslashes % 2 == 1 ? cut - 1 : cut;
    }
}
