using System.IO.Compression;
using System.Net;
using System.Text;
using CrmSecurity.Security.Tests.Support;
using static CrmSecurity.Security.Tests.Analyzer.AnalyzerCalls;

namespace CrmSecurity.Security.Tests.Analyzer;

/// <summary>
/// Red-team finding 9: a gzip bomb of 1 MB cost 36 s of CPU on <c>POST /analyzer/events</c>, because the batch parser
/// inflated whatever gzip it recognised, without limit. A body now inflates only up to
/// <c>AuditAnalyzer:Live:MaxDecompressedBatchBytes</c> (16 MiB) and is refused with 413 naming that limit.
/// </summary>
public sealed class GzipBombTests(SecurityHost host) : IClassFixture<SecurityHost>
{
    [Fact]
    public async Task A_one_megabyte_gzip_bomb_is_refused_with_413_naming_the_limit()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        var bomb = Bomb(maxBytes: 1_000_000);

        var (status, body) = await PostEventsAsync(host, token, bomb);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("MaxDecompressedBatchBytes", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bomb_declared_as_content_encoding_gzip_is_refused_the_same_way()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");

        var (status, body) = await PostEventsAsync(host, token, Bomb(maxBytes: 1_000_000), contentEncoding: "gzip");

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        Assert.Contains("MaxDecompressedBatchBytes", body.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_gzip_batch_within_the_limit_is_still_stored()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);
        var lines = Line("gz-1", "gzip-user", "read", noon, ",\"tenant\":\"demo\"") + "\n" + Line("gz-2", "gzip-user", "list", noon.AddMinutes(1), ",\"tenant\":\"demo\"");

        var (status, body) = await PostEventsAsync(host, token, Gzip(Encoding.UTF8.GetBytes(lines)), contentEncoding: "gzip");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(2, body.GetProperty("stored").GetInt32());
    }

    [Fact]
    public async Task A_body_in_an_encoding_the_host_does_not_decode_is_refused_with_415()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        using var output = new MemoryStream();
        await using (var brotli = new BrotliStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            await brotli.WriteAsync(new byte[1 << 20], Personas.Cancel);
        }

        var (status, _) = await PostEventsAsync(host, token, output.ToArray(), contentEncoding: "br");

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, status);
    }

    [Fact]
    public async Task An_over_long_line_is_rejected_by_number_while_the_others_are_stored()
    {
        var token = await Personas.ClientTokenAsync(host, "demo-crm", "events:write");
        var noon = DateTimeOffset.UtcNow.Date.AddDays(-1).AddHours(12);
        var lines = Line("long-1", "long-user", "read", noon, ",\"tenant\":\"demo\"") + "\n"
            + Line("long-2", "long-user", "read", noon, ",\"tenant\":\"demo\",\"details\":\"" + new string('x', 70_000) + "\"");

        var (status, body) = await PostEventsAsync(host, token, lines);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, body.GetProperty("stored").GetInt32());
        var error = Assert.Single(body.GetProperty("errors").EnumerateArray());
        Assert.Equal(2, error.GetProperty("line").GetInt32());
        Assert.Equal("line_too_long", error.GetProperty("reason").GetString());
    }

    /// <summary>
    /// Gzip members of 16 MiB of line breaks each, concatenated (RFC 1952 §2.2: a gzip file is a series of members)
    /// to just under <paramref name="maxBytes"/>: about 1 MB that inflates to about a gigabyte of empty lines, each
    /// one a turn of the parser's loop (the red team's 36 s of CPU).
    /// </summary>
    private static byte[] Bomb(int maxBytes)
    {
        var lines = new byte[16 << 20];
        Array.Fill(lines, (byte)'\n');
        var member = Gzip(lines);
        var count = maxBytes / member.Length;
        var bomb = new byte[member.Length * count];
        for (var i = 0; i < count; i++)
        {
            member.CopyTo(bomb, i * member.Length);
        }

        return bomb;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return output.ToArray();
    }
}
