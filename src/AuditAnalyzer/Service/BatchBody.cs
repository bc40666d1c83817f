using System.IO.Compression;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// Reads a request body into memory without ever holding more than a limit, and inflates a gzip body only up to a
/// second limit (OWASP ASVS 4.0.3 V12.1.1 and V13.1.3: bounded input; a 1 MB "gzip bomb" inflates to gigabytes).
/// </summary>
internal static class BatchBody
{
    /// <summary>The outcome: the bytes (null when over a limit) and how many of them are used.</summary>
    internal readonly record struct Read(byte[]? Bytes, int Length);

    /// <summary>Reads at most <paramref name="limit"/> bytes; null bytes when the body is longer.</summary>
    public static async Task<Read> ReadAsync(HttpContext http, long limit, CancellationToken cancellationToken)
    {
        if (http.Request.ContentLength > limit)
        {
            return new Read(null, 0);
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            // Our own limit answers with problem details; the server's (30 MB by default) must not cut in first.
            bodySize.MaxRequestBodySize = limit + 1;
        }

        // Read at most one byte more than allowed, so a body without Content-Length is refused the same way.
        var body = new byte[(int)Math.Min(limit + 1, 64 * 1024)];
        var length = 0;
        while (true)
        {
            if (length == body.Length)
            {
                if (length > limit)
                {
                    return new Read(null, 0);
                }

                Array.Resize(ref body, (int)Math.Min(limit + 1, (long)body.Length * 2));
            }

            var read = await http.Request.Body.ReadAsync(body.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return length > limit ? new Read(null, 0) : new Read(body, length);
            }

            length += read;
        }
    }

    /// <summary>Whether the body is gzip: by <c>Content-Encoding</c> (RFC 9110 §8.4) or by its magic bytes (RFC 1952 §2.3.1).</summary>
    public static bool IsGzip(string? contentEncoding, ReadOnlySpan<byte> body) =>
        string.Equals(contentEncoding?.Trim(), "gzip", StringComparison.OrdinalIgnoreCase)
        || (body.Length >= 2 && body[0] == 0x1f && body[1] == 0x8b);

    /// <summary>
    /// Inflates a gzip body, stopping as soon as the output would pass <paramref name="limit"/> (null then): the
    /// cost is bounded by the limit, never by what the body claims. Null bytes and length -1 for a broken stream.
    /// </summary>
    public static Read Inflate(byte[] body, int length, long limit)
    {
        using var input = new MemoryStream(body, 0, length, writable: false);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        var output = new byte[(int)Math.Min(limit + 1, Math.Max(64 * 1024, (long)length * 4))];
        var used = 0;
        try
        {
            while (true)
            {
                if (used == output.Length)
                {
                    if (used > limit)
                    {
                        return new Read(null, 0);
                    }

                    Array.Resize(ref output, (int)Math.Min(limit + 1, (long)output.Length * 2));
                }

                var read = gzip.Read(output, used, output.Length - used);
                if (read == 0)
                {
                    return used > limit ? new Read(null, 0) : new Read(output, used);
                }

                used += read;
            }
        }
        catch (InvalidDataException)
        {
            return new Read(null, -1);
        }
    }
}
