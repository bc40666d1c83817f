using System.Buffers;
using System.IO.Compression;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace CrmSecurity.AuditAnalyzer.Service;

/// <summary>
/// Reads a request body into memory without ever holding more than a limit, and inflates a gzip body only up to a
/// second limit (OWASP ASVS 4.0.3 V12.1.1 and V13.1.3: bounded input; a 1 MB "gzip bomb" inflates to gigabytes).
/// The buffers are rented from the shared array pool (a batch of 500 events is a large object otherwise, allocated
/// and collected per request): the caller hands them back with <see cref="Return"/> once the batch is parsed.
/// </summary>
internal static class BatchBody
{
    private const int FirstBuffer = 64 * 1024;

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
        var cap = (int)Math.Min(limit + 1, int.MaxValue);
        var first = http.Request.ContentLength is { } declared ? (int)Math.Min(declared + 1, cap) : Math.Min(FirstBuffer, cap);
        var body = ArrayPool<byte>.Shared.Rent(Math.Max(first, 1));
        var length = 0;
        try
        {
            while (true)
            {
                var room = Math.Min(body.Length, cap) - length;
                if (room == 0)
                {
                    if (length > limit)
                    {
                        Return(body);
                        return new Read(null, 0);
                    }

                    body = Grow(body, length, (int)Math.Min(cap, (long)body.Length * 2));
                    continue;
                }

                var read = await http.Request.Body.ReadAsync(body.AsMemory(length, room), cancellationToken);
                if (read == 0)
                {
                    if (length > limit)
                    {
                        Return(body);
                        return new Read(null, 0);
                    }

                    return new Read(body, length);
                }

                length += read;
            }
        }
        catch
        {
            Return(body);
            throw;
        }
    }

    /// <summary>Hands a buffer from <see cref="ReadAsync"/> or <see cref="Inflate"/> back to the pool.</summary>
    public static void Return(byte[]? buffer)
    {
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Whether the body is gzip: by <c>Content-Encoding</c> (RFC 9110 §8.4) or by its magic bytes (RFC 1952 §2.3.1).</summary>
    public static bool IsGzip(string? contentEncoding, ReadOnlySpan<byte> body) =>
        string.Equals(contentEncoding?.Trim(), "gzip", StringComparison.OrdinalIgnoreCase)
        || (body.Length >= 2 && body[0] == 0x1f && body[1] == 0x8b);

    /// <summary>
    /// Inflates a gzip body, stopping as soon as the output would pass <paramref name="limit"/> (null then): the
    /// cost is bounded by the limit, never by what the body claims. Null bytes and length -1 for a broken stream.
    /// The output is rented: hand it back with <see cref="Return"/>.
    /// </summary>
    public static Read Inflate(byte[] body, int length, long limit)
    {
        using var input = new MemoryStream(body, 0, length, writable: false);
        using var gzip = new GZipStream(input, CompressionMode.Decompress);
        var cap = (int)Math.Min(limit + 1, int.MaxValue);
        var output = ArrayPool<byte>.Shared.Rent((int)Math.Min(cap, Math.Max(FirstBuffer, (long)length * 4)));
        var used = 0;
        try
        {
            while (true)
            {
                var room = Math.Min(output.Length, cap) - used;
                if (room == 0)
                {
                    if (used > limit)
                    {
                        Return(output);
                        return new Read(null, 0);
                    }

                    output = Grow(output, used, (int)Math.Min(cap, (long)output.Length * 2));
                    continue;
                }

                var read = gzip.Read(output, used, room);
                if (read == 0)
                {
                    if (used > limit)
                    {
                        Return(output);
                        return new Read(null, 0);
                    }

                    return new Read(output, used);
                }

                used += read;
            }
        }
        catch (InvalidDataException)
        {
            Return(output);
            return new Read(null, -1);
        }
        catch
        {
            Return(output);
            throw;
        }
    }

    private static byte[] Grow(byte[] buffer, int used, int size)
    {
        var larger = ArrayPool<byte>.Shared.Rent(size);
        buffer.AsSpan(0, used).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(buffer);
        return larger;
    }
}
