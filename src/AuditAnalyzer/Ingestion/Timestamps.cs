using System.Globalization;
using System.Text;

namespace CrmSecurity.AuditAnalyzer.Ingestion;

/// <summary>ISO 8601 timestamps with an offset, parsed from UTF-8 without allocating on the common shapes.</summary>
internal static class Timestamps
{
    /// <summary>
    /// Parses <c>yyyy-MM-ddTHH:mm:ss[.fraction](Z|±HH:mm)</c>; other ISO 8601 shapes go through the
    /// framework's parser. A timestamp without an offset is refused: the contract requires one, and
    /// guessing a zone would shift odd-hour scores.
    /// </summary>
    public static bool TryParseIso(ReadOnlySpan<byte> text, out DateTimeOffset value)
    {
        if (TryParseFast(text, out value))
        {
            return true;
        }

        if (text.Length is 0 or > 64)
        {
            return false;
        }

        Span<char> chars = stackalloc char[64];
        var length = Encoding.UTF8.GetChars(text, chars);
        return TryParseIso(chars[..length], out value);
    }

    public static bool TryParseIso(ReadOnlySpan<char> text, out DateTimeOffset value)
    {
        value = default;
        if (!HasOffset(text))
        {
            return false;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AllowWhiteSpaces, out value);
    }

    /// <summary>Salesforce's <c>TIMESTAMP</c> column: <c>yyyyMMddHHmmss.fff</c> in GMT.</summary>
    public static bool TryParseSalesforce(ReadOnlySpan<char> text, out DateTimeOffset value) =>
        DateTimeOffset.TryParseExact(text, ["yyyyMMddHHmmss.fff", "yyyyMMddHHmmss"], CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out value);

    private static bool HasOffset(ReadOnlySpan<char> text)
    {
        var time = text.IndexOf('T');
        if (time < 0)
        {
            time = text.IndexOf(' ');
        }

        if (time < 0)
        {
            return false;
        }

        var rest = text[time..].TrimEnd();
        return rest.EndsWith('Z') || rest.EndsWith('z') || rest.LastIndexOfAny('+', '-') > 0;
    }

    private static bool TryParseFast(ReadOnlySpan<byte> s, out DateTimeOffset value)
    {
        value = default;
        if (s.Length < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        {
            return false;
        }

        if (!Digits(s, 0, 4, out var year) || !Digits(s, 5, 2, out var month) || !Digits(s, 8, 2, out var day)
            || !Digits(s, 11, 2, out var hour) || !Digits(s, 14, 2, out var minute) || !Digits(s, 17, 2, out var second))
        {
            return false;
        }

        var i = 19;
        long fractionTicks = 0;
        if (s[i] == '.')
        {
            i++;
            var scale = (long)TimeSpan.TicksPerSecond;
            while (i < s.Length && s[i] >= '0' && s[i] <= '9')
            {
                scale /= 10;
                fractionTicks += (s[i] - '0') * scale;
                i++;
            }
        }

        if (i >= s.Length)
        {
            return false;
        }

        TimeSpan offset;
        if ((s[i] == 'Z' || s[i] == 'z') && i == s.Length - 1)
        {
            offset = TimeSpan.Zero;
        }
        else if ((s[i] == '+' || s[i] == '-') && i + 6 == s.Length && s[i + 3] == ':'
                 && Digits(s, i + 1, 2, out var offsetHours) && Digits(s, i + 4, 2, out var offsetMinutes))
        {
            offset = new TimeSpan(offsetHours, offsetMinutes, 0);
            if (s[i] == '-')
            {
                offset = -offset;
            }
        }
        else
        {
            return false;
        }

        if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year is >= 1 and <= 9999 ? year : 2000, month)
            || hour > 23 || minute > 59 || second > 59 || year < 1 || offset.Duration() > TimeSpan.FromHours(14))
        {
            return false;
        }

        value = new DateTimeOffset(year, month, day, hour, minute, second, offset).AddTicks(fractionTicks);
        return true;
    }

    private static bool Digits(ReadOnlySpan<byte> s, int start, int count, out int value)
    {
        value = 0;
        for (var i = start; i < start + count; i++)
        {
            var d = s[i] - '0';
            if ((uint)d > 9)
            {
                return false;
            }

            value = (value * 10) + d;
        }

        return true;
    }
}
