namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// CSV records over a <see cref="LineReader"/>: a quoted cell may hold line breaks (RFC 4180 §2 rule 6), so a
/// record whose last cell is still inside quotes at the end of a line continues on the next line. A record is
/// numbered by its first line, so errors point at where the record starts.
/// </summary>
/// <remarks>
/// A quote that is never closed would swallow the rest of the file. A record is therefore capped at
/// <see cref="LineReader.MaxLineBytes"/>: one that reaches the cap or the end of the file is returned alone
/// as its first line (it then fails to split and is reported there), and the lines after it are read again
/// one by one, so nothing valid after a stray quote is lost.
/// </remarks>
internal sealed class CsvRecordReader(LineReader lines)
{
    private const int TooLong = -1;
    private readonly List<(int Start, int Length, long Number)> _replay = [];
    private byte[] _joined = new byte[4096];
    private int _joinedLength;
    private int _replayNext;

    /// <summary>1-based number of the first line of the record last returned.</summary>
    public long LineNumber { get; private set; }

    /// <summary>True when the record last returned was a line longer than <see cref="LineReader.MaxLineBytes"/>.</summary>
    public bool LastLineTooLong { get; private set; }

    /// <summary>Joins quoted line breaks when true; a JSON Lines file is read line by line.</summary>
    public bool JoinQuotedLineBreaks { get; set; } = true;

    public bool TryReadRecord(out ReadOnlySpan<byte> record)
    {
        LastLineTooLong = false;
        if (_replayNext < _replay.Count)
        {
            // Lines after an unterminated quote: each read as a record of its own.
            var (start, length, number) = _replay[_replayNext++];
            if (_replayNext == _replay.Count)
            {
                _replay.Clear();
                _replayNext = 0;
            }

            LineNumber = number;
            LastLineTooLong = length == TooLong;
            record = LastLineTooLong ? default : _joined.AsSpan(start, length);
            return true;
        }

        if (!lines.TryReadLine(out var line))
        {
            record = default;
            return false;
        }

        LineNumber = lines.LineNumber;
        LastLineTooLong = lines.LastLineTooLong;
        if (!JoinQuotedLineBreaks || LastLineTooLong || Scan(line, insideQuotes: false) != CsvLineEnd.InsideQuotes)
        {
            record = line;
            return true;
        }

        // The line ends inside a quoted cell: gather lines until the quote closes.
        var first = LineNumber;
        _joinedLength = 0;
        _replay.Clear();
        Append(line);
        var firstLength = line.Length;
        while (true)
        {
            var more = lines.TryReadLine(out var next);
            var end = more && !lines.LastLineTooLong ? Scan(next, insideQuotes: true) : CsvLineEnd.Broken;
            if (end == CsvLineEnd.Broken || _joinedLength + 1 + next.Length > LineReader.MaxLineBytes)
            {
                // Never closed (end of file), closed in a way that cannot be a cell (a stray quote opened it), or
                // grown too long: give back the first line alone (it is reported there as unbalanced quotes) and
                // read what followed it again, line by line.
                if (more)
                {
                    _replay.Add(lines.LastLineTooLong ? (0, TooLong, lines.LineNumber) : (Append(next), next.Length, lines.LineNumber));
                }

                _replayNext = 0;
                LineNumber = first;
                record = _joined.AsSpan(0, firstLength);
                return true;
            }

            Append("\n"u8);
            _replay.Add((Append(next), next.Length, lines.LineNumber));
            if (end == CsvLineEnd.Complete)
            {
                _replay.Clear();
                LineNumber = first;
                record = _joined.AsSpan(0, _joinedLength);
                return true;
            }
        }
    }

    /// <summary>How a line leaves the record, following the same quoting rules as <see cref="CsvRow.Split"/>.</summary>
    internal static CsvLineEnd Scan(ReadOnlySpan<byte> line, bool insideQuotes)
    {
        if (!insideQuotes && line.IndexOf((byte)'"') < 0)
        {
            return CsvLineEnd.Complete;
        }

        var atCellStart = !insideQuotes;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (insideQuotes)
            {
                if (c != '"')
                {
                    continue;
                }

                if (i + 1 < line.Length && line[i + 1] == '"')
                {
                    i++; // an escaped quote ("")
                    continue;
                }

                // RFC 4180 §2 rule 5: a closing quote ends the cell, so only a comma or the end of the line may follow.
                if (i + 1 < line.Length && line[i + 1] != ',')
                {
                    return CsvLineEnd.Broken;
                }

                insideQuotes = false;
            }
            else if (c == ',')
            {
                atCellStart = true;
            }
            else
            {
                // A quote opens a quoted cell only as the cell's first character; elsewhere it is data.
                insideQuotes = atCellStart && c == '"';
                atCellStart = false;
            }
        }

        return insideQuotes ? CsvLineEnd.InsideQuotes : CsvLineEnd.Complete;
    }

    private int Append(ReadOnlySpan<byte> line)
    {
        if (_joined.Length < _joinedLength + line.Length + 1)
        {
            Array.Resize(ref _joined, Math.Max(_joined.Length * 2, _joinedLength + line.Length + 1));
        }

        var at = _joinedLength;
        line.CopyTo(_joined.AsSpan(_joinedLength));
        _joinedLength += line.Length;
        return at;
    }
}

/// <summary>Where a CSV line leaves its record.</summary>
internal enum CsvLineEnd
{
    /// <summary>Every quoted cell is closed: the record ends here.</summary>
    Complete,

    /// <summary>A quoted cell is still open: the record continues on the next line.</summary>
    InsideQuotes,

    /// <summary>A quote closes and is followed by something other than a comma: no valid record.</summary>
    Broken,
}
