using System.Globalization;
using System.Text;

namespace CrmSecurity.Crypto.BlindIndexes;

/// <summary>
/// Turns a value into its canonical form before it is indexed, so that equal values written differently
/// (case, spaces, separators) give the same blind index. Throws <see cref="FormatException"/> for a value
/// that is not of its kind (the message never repeats the value).
/// </summary>
public abstract class Normaliser
{
    /// <summary>Email addresses: trimmed, Unicode NFKC, lower-case (invariant); one '@' with text on both sides.</summary>
    public static readonly Normaliser Email = new EmailNormaliser();

    /// <summary>National identifiers: upper-case, without spaces, dashes, dots and slashes.</summary>
    public static readonly Normaliser NationalId = new NationalIdNormaliser();

    /// <summary>The value as it is (Unicode NFC only).</summary>
    public static readonly Normaliser Exact = new ExactNormaliser();

    /// <summary>A short name for documentation and the planner's explanations.</summary>
    public abstract string Name { get; }

    /// <summary>log2 of the number of distinct normalised values this kind can take (its input domain), for the leakage planner.</summary>
    public abstract double DomainBits { get; }

    /// <summary>log2 of the number of distinct characters, for partial (prefix, last-N) indexes.</summary>
    public abstract double BitsPerCharacter { get; }

    /// <summary>Phone numbers in E.164 (<c>+</c> and 8 to 15 digits). National numbers (with a trunk 0) get <paramref name="defaultCountryCode"/>.</summary>
    /// <param name="defaultCountryCode">Country calling code for numbers written without one (for example <c>44</c>), or null to refuse them.</param>
    public static Normaliser PhoneE164(string? defaultCountryCode = null) => new PhoneNormaliser(defaultCountryCode);

    /// <summary>Returns the canonical form of <paramref name="value"/>.</summary>
    /// <param name="value">The raw value.</param>
    public abstract string Normalise(string value);

    /// <summary>
    /// Canonical form of a fragment typed for a partial search (for example the last four digits of a phone
    /// number), which need not be a whole valid value: the same character rules as <see cref="Normalise"/>
    /// without the whole-value checks.
    /// </summary>
    /// <param name="fragment">The fragment.</param>
    public virtual string NormaliseFragment(string fragment) => Normalise(fragment);

    /// <summary>The name.</summary>
    public override string ToString() => Name;

    private sealed class EmailNormaliser : Normaliser
    {
        public override string Name => "email";

        public override double DomainBits => 128;

        public override double BitsPerCharacter => Math.Log2(40);

        public override string Normalise(string value)
        {
            var result = value.Trim().Normalize(NormalizationForm.FormKC).ToLowerInvariant();
            var at = result.IndexOf('@', StringComparison.Ordinal);
            if (at <= 0 || at == result.Length - 1 || result.IndexOf('@', at + 1) >= 0 || result.Any(char.IsWhiteSpace))
            {
                throw new FormatException("The value is not an email address.");
            }

            return result;
        }

        public override string NormaliseFragment(string fragment) => fragment.Trim().Normalize(NormalizationForm.FormKC).ToLowerInvariant();
    }

    private sealed class PhoneNormaliser(string? defaultCountryCode) : Normaliser
    {
        public override string Name => "phone-e164";

        public override double DomainBits => Math.Log2(1e15);

        public override double BitsPerCharacter => Math.Log2(10);

        public override string Normalise(string value)
        {
            var digits = new StringBuilder(16);
            var text = value.Trim();
            var international = text.StartsWith('+');
            foreach (var c in international ? text[1..] : text)
            {
                if (c is >= '0' and <= '9')
                {
                    digits.Append(c);
                }
                else if (c is not (' ' or '-' or '.' or '(' or ')' or '/'))
                {
                    throw new FormatException("The value is not a phone number.");
                }
            }

            var number = digits.ToString();
            if (!international && number.StartsWith("00", StringComparison.Ordinal))
            {
                number = number[2..]; // international call prefix written as 00
            }
            else if (!international)
            {
                if (defaultCountryCode is null || !number.StartsWith('0'))
                {
                    throw new FormatException("The phone number has no country code and no default country code is configured.");
                }

                number = defaultCountryCode + number[1..]; // national trunk prefix 0 replaced by the country code
            }

            // ITU-T E.164 §6: at most 15 digits including the country code; fewer than 8 is not a subscriber number.
            if (number.Length is < 8 or > 15 || number[0] == '0')
            {
                throw new FormatException("The phone number does not have 8 to 15 digits with a country code.");
            }

            return "+" + number;
        }

        public override string NormaliseFragment(string fragment) => new(fragment.Where(char.IsAsciiDigit).ToArray());
    }

    private sealed class NationalIdNormaliser : Normaliser
    {
        public override string Name => "national-id";

        public override double DomainBits => 64;

        public override double BitsPerCharacter => Math.Log2(36);

        public override string Normalise(string value)
        {
            var builder = new StringBuilder(value.Length);
            foreach (var c in value.Normalize(NormalizationForm.FormKC))
            {
                if (c is ' ' or '-' or '.' or '/' || char.IsWhiteSpace(c))
                {
                    continue;
                }

                if (!char.IsLetterOrDigit(c))
                {
                    throw new FormatException("The national identifier contains a character other than letters, digits and separators.");
                }

                builder.Append(char.ToUpperInvariant(c));
            }

            return builder.Length > 0 ? builder.ToString() : throw new FormatException("The national identifier is empty.");
        }
    }

    private sealed class ExactNormaliser : Normaliser
    {
        public override string Name => "exact";

        public override double DomainBits => 128;

        public override double BitsPerCharacter => 8;

        public override string Normalise(string value) => value.Normalize(NormalizationForm.FormC);
    }
}

/// <summary>What part of the normalised value a blind index covers: the whole value, or a function of it for partial search.</summary>
public abstract class IndexTransform
{
    /// <summary>The whole normalised value (equality search).</summary>
    public static readonly IndexTransform Whole = new Function("whole", null, v => v);

    /// <summary>The lower-cased value (case-insensitive equality).</summary>
    public static readonly IndexTransform LowerCase = new Function("lower-case", null, v => v.ToLowerInvariant());

    /// <summary>A short name for documentation and explanations.</summary>
    public abstract string Name { get; }

    /// <summary>How many characters the transform keeps, or null for the whole value.</summary>
    public abstract int? Characters { get; }

    /// <summary>The last <paramref name="count"/> characters (for example last 4 digits of a phone or ID).</summary>
    /// <param name="count">Number of characters.</param>
    public static IndexTransform Last(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        return new Function(string.Create(CultureInfo.InvariantCulture, $"last-{count}"), count, v => v.Length <= count ? v : v[^count..]);
    }

    /// <summary>The first <paramref name="count"/> characters (prefix search of exactly that length).</summary>
    /// <param name="count">Number of characters.</param>
    public static IndexTransform Prefix(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        return new Function(string.Create(CultureInfo.InvariantCulture, $"prefix-{count}"), count, v => v.Length <= count ? v : v[..count]);
    }

    /// <summary>Applies the transform.</summary>
    /// <param name="normalised">The normalised value.</param>
    public abstract string Apply(string normalised);

    /// <summary>The name.</summary>
    public override string ToString() => Name;

    private sealed class Function(string name, int? characters, Func<string, string> apply) : IndexTransform
    {
        public override string Name => name;

        public override int? Characters => characters;

        public override string Apply(string normalised) => apply(normalised);
    }
}
