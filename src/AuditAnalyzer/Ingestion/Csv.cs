namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>
/// One CSV line (RFC 4180 quoting: <c>"a ""quoted"" value"</c>) split into cells without allocating.
/// Quoted cells that hold escaped quotes are unescaped into a scratch buffer owned by the row.
/// A line break inside a quoted cell is not supported: such a record reads as a broken line.
/// </summary>
internal sealed class CsvRow
{
    private Range[] _cells = new Range[64];
    private byte[] _scratch = new byte[4096];
    private bool[] _inScratch = new bool[64];
    private int _scratchUsed;
    private byte[] _line = new byte[4096];

    public int Count { get; private set; }

    /// <summary>Splits <paramref name="line"/>; false when the quoting is broken.</summary>
    public bool Split(ReadOnlySpan<byte> line)
    {
        if (_line.Length < line.Length)
        {
            _line = new byte[Math.Max(line.Length, _line.Length * 2)];
        }

        line.CopyTo(_line);
        var text = _line.AsSpan(0, line.Length);
        Count = 0;
        _scratchUsed = 0;
        var i = 0;
        while (true)
        {
            if (Count == _cells.Length)
            {
                Array.Resize(ref _cells, _cells.Length * 2);
                Array.Resize(ref _inScratch, _cells.Length);
            }

            if (i < text.Length && text[i] == '"')
            {
                var start = i + 1;
                var j = start;
                var escaped = false;
                while (true)
                {
                    var quote = text[j..].IndexOf((byte)'"');
                    if (quote < 0)
                    {
                        return false;
                    }

                    j += quote;
                    if (j + 1 < text.Length && text[j + 1] == '"')
                    {
                        escaped = true;
                        j += 2;
                        continue;
                    }

                    break;
                }

                if (escaped)
                {
                    _cells[Count] = Unescape(text[start..j]);
                    _inScratch[Count] = true;
                }
                else
                {
                    _cells[Count] = new Range(start, j);
                    _inScratch[Count] = false;
                }

                Count++;
                i = j + 1;
                if (i == text.Length)
                {
                    return true;
                }

                if (text[i] != ',')
                {
                    return false;
                }

                i++;
                continue;
            }

            var comma = text[i..].IndexOf((byte)',');
            if (comma < 0)
            {
                _cells[Count] = new Range(i, text.Length);
                _inScratch[Count] = false;
                Count++;
                return true;
            }

            _cells[Count] = new Range(i, i + comma);
            _inScratch[Count] = false;
            Count++;
            i += comma + 1;
        }
    }

    public ReadOnlySpan<byte> this[int index] =>
        index < 0 || index >= Count ? default : _inScratch[index] ? _scratch.AsSpan()[_cells[index]] : _line.AsSpan()[_cells[index]];

    private Range Unescape(ReadOnlySpan<byte> quoted)
    {
        if (_scratch.Length - _scratchUsed < quoted.Length)
        {
            Array.Resize(ref _scratch, Math.Max(_scratch.Length * 2, _scratchUsed + quoted.Length));
        }

        var start = _scratchUsed;
        for (var k = 0; k < quoted.Length; k++)
        {
            _scratch[_scratchUsed++] = quoted[k];
            if (quoted[k] == '"')
            {
                k++; // skip the second quote of the pair
            }
        }

        return new Range(start, _scratchUsed);
    }
}
