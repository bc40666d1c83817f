using System.Buffers;
using System.IO.Compression;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// Splits a stream into lines over one pooled buffer: no string per line, no copy unless a line straddles
/// two reads. Memory is the buffer (1 MiB, grown only for a longer line, up to <see cref="MaxLineBytes"/>).
/// </summary>
internal sealed class LineReader : IDisposable
{
    public const int MaxLineBytes = 16 * 1024 * 1024;

    private readonly Stream _stream;
    private readonly Stream _counted;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _eof;
    private bool _skipUntilNewline;

    /// <param name="stream">The input.</param>
    /// <param name="bufferSize">The first buffer's size.</param>
    /// <param name="detectGzip">
    /// Whether gzip is recognised by its magic bytes and inflated (for the operator's own files). Off for input from
    /// callers, which is inflated beforehand up to a limit: inflating here has none.
    /// </param>
    public LineReader(Stream stream, int bufferSize = 1 << 20, bool detectGzip = true)
    {
        _counted = stream;
        _stream = detectGzip && IsGzip(stream) ? new GZipStream(stream, CompressionMode.Decompress) : stream;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
    }

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>Bytes of the underlying (possibly compressed) file consumed so far, for progress.</summary>
    public long BytesRead => _counted.CanSeek ? _counted.Position : 0;

    /// <summary>True when the last line returned was longer than <see cref="MaxLineBytes"/> and was cut.</summary>
    public bool LastLineTooLong { get; private set; }

    public static Stream Open(string path) =>
        new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);

    /// <summary>Returns the next line without its line break (and without a trailing CR).</summary>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        LastLineTooLong = false;
        while (true)
        {
            var available = _buffer.AsSpan(_start, _end - _start);
            var newline = available.IndexOf((byte)'\n');
            if (newline >= 0)
            {
                var found = available[..newline];
                _start += newline + 1;
                if (_skipUntilNewline)
                {
                    _skipUntilNewline = false;
                    LineNumber++;
                    LastLineTooLong = true;
                    line = default;
                    return true;
                }

                LineNumber++;
                line = Trim(found);
                if (LineNumber == 1)
                {
                    line = SkipBom(line);
                }

                return true;
            }

            if (_eof)
            {
                if (_end > _start || _skipUntilNewline)
                {
                    var rest = _buffer.AsSpan(_start, _end - _start);
                    _start = _end;
                    LineNumber++;
                    LastLineTooLong = _skipUntilNewline;
                    _skipUntilNewline = false;
                    line = LineNumber == 1 ? SkipBom(Trim(rest)) : Trim(rest);
                    return true;
                }

                line = default;
                return false;
            }

            Fill();
        }
    }

    public void Dispose()
    {
        _stream.Dispose();
        _counted.Dispose();
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private void Fill()
    {
        if (_start > 0)
        {
            // Keep the unfinished line at the front of the buffer.
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            if (_buffer.Length >= MaxLineBytes)
            {
                // A line longer than the limit: drop what we have and skip to its end; it is reported as too long.
                _skipUntilNewline = true;
                _end = 0;
            }
            else
            {
                var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(_buffer.Length * 2, MaxLineBytes));
                Buffer.BlockCopy(_buffer, 0, bigger, 0, _end);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = bigger;
            }
        }

        var read = _stream.Read(_buffer, _end, _buffer.Length - _end);
        if (read == 0)
        {
            _eof = true;
        }

        _end += read;
    }

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> line) =>
        line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;

    private static ReadOnlySpan<byte> SkipBom(ReadOnlySpan<byte> line) =>
        line.StartsWith("\uFEFF"u8) ? line[3..] : line;

    private static bool IsGzip(Stream stream)
    {
        if (!stream.CanSeek)
        {
            return false;
        }

        Span<byte> magic = stackalloc byte[2];
        var read = stream.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        stream.Position = 0;
        // RFC 1952 §2.3.1: ID1 = 31, ID2 = 139.
        return read == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    }
}
