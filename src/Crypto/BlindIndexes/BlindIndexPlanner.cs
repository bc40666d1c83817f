using System.Globalization;
using System.Text;

namespace CrmSecurity.Crypto.BlindIndexes;

/// <summary>
/// Checks a column's blind indexes against CipherSweet's rule: with R rows and indexes keeping L_i bits over
/// input domains of K_i bits, the expected number of rows sharing one combined index value is
/// C = R / 2^(sum of min(L_i, K_i)). It must satisfy 2 &lt;= C &lt; sqrt(R): below 2 the indexes nearly identify
/// each row's value (an attacker with the table links and counts equal values); at sqrt(R) or above an
/// index lookup returns so many false positives that it stops being an index.
/// </summary>
internal static class BlindIndexPlanner
{
    /// <summary>Evaluates the indexes of one column for an expected row count.</summary>
    /// <param name="expectedRows">How many rows the table is expected to hold.</param>
    /// <param name="indexes">Every blind index on the column (they combine: an attacker sees all of them).</param>
    public static BlindIndexPlan Evaluate(long expectedRows, IReadOnlyCollection<BlindIndexDefinition> indexes)
    {
        ArgumentNullException.ThrowIfNull(indexes);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedRows, 1);
        var effective = indexes.Sum(i => Math.Min(i.Bits, i.InputDomainBits));
        var coincidences = expectedRows / Math.Pow(2, effective);
        var ceiling = Math.Sqrt(expectedRows);
        var summary = string.Join(", ", indexes.Select(i => string.Create(
            CultureInfo.InvariantCulture,
            $"'{i.Name}' {i.Bits} bits over a {i.InputDomainBits:0.#}-bit domain ({i.Normaliser}, {i.Transform})")));
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{expectedRows} rows, indexes {summary}: {effective:0.#} effective bits, expected coincidences C = {coincidences:0.###}. ");
        bool acceptable;
        if (coincidences < 2)
        {
            acceptable = false;
            var maxBits = Math.Floor(Math.Log2(expectedRows / 2.0));
            text.Append(CultureInfo.InvariantCulture, $"Refused: C < 2, so an index value almost always belongs to one value and the indexes reveal which rows are equal. Keep at most {maxBits:0} bits in total across this column's indexes.");
        }
        else if (coincidences >= ceiling)
        {
            acceptable = false;
            var minBits = Math.Floor(Math.Log2(expectedRows / ceiling)) + 1;
            text.Append(CultureInfo.InvariantCulture, $"Refused: C >= sqrt(R) = {ceiling:0.#}, so a lookup returns too many false positives. Keep at least {minBits:0} bits in total.");
        }
        else
        {
            acceptable = true;
            text.Append(CultureInfo.InvariantCulture, $"Accepted: 2 <= C < sqrt(R) = {ceiling:0.#}.");
        }

        return new BlindIndexPlan(acceptable, coincidences, effective, text.ToString());
    }

    /// <summary>
    /// The most bits an index over <paramref name="normaliser"/> and <paramref name="transform"/> may keep on a column that
    /// already has <paramref name="others"/>, for <paramref name="expectedRows"/> rows: what is left of the column's
    /// budget of floor(log2(R / 2)) effective bits (C &gt;= 2), and never more than the index's input domain can use.
    /// Zero when the other indexes use the whole budget. Check the result with <see cref="Evaluate"/>: with very few rows
    /// even the maximum may be too few bits to be useful.
    /// </summary>
    /// <param name="expectedRows">How many rows the table is expected to hold.</param>
    /// <param name="normaliser">The new index's normaliser.</param>
    /// <param name="transform">The new index's transform (whole value when null).</param>
    /// <param name="others">The column's other blind indexes.</param>
    public static int MaximumBits(long expectedRows, Normaliser normaliser, IndexTransform? transform, IReadOnlyCollection<BlindIndexDefinition> others)
    {
        ArgumentNullException.ThrowIfNull(normaliser);
        ArgumentNullException.ThrowIfNull(others);
        ArgumentOutOfRangeException.ThrowIfLessThan(expectedRows, 1);
        var budget = Math.Floor(Math.Log2(expectedRows / 2.0)) - others.Sum(i => Math.Min(i.Bits, i.InputDomainBits));
        var probe = new BlindIndexDefinition("probe", 1, normaliser, transform);
        var bits = Math.Min(Math.Floor(budget + 1e-9), Math.Ceiling(probe.InputDomainBits));
        return bits < 1 ? 0 : (int)Math.Min(bits, 256);
    }

    /// <summary>Like <see cref="Evaluate"/>, but throws with the explanation when the plan is refused.</summary>
    /// <param name="expectedRows">How many rows the table is expected to hold.</param>
    /// <param name="indexes">Every blind index on the column.</param>
    /// <exception cref="InvalidOperationException">The indexes leak more than the rule allows (or are useless).</exception>
    public static BlindIndexPlan Require(long expectedRows, IReadOnlyCollection<BlindIndexDefinition> indexes)
    {
        var plan = Evaluate(expectedRows, indexes);
        return plan.IsAcceptable ? plan : throw new InvalidOperationException(plan.Explanation);
    }
}

/// <summary>The planner's verdict.</summary>
/// <param name="IsAcceptable">Whether 2 &lt;= C &lt; sqrt(R).</param>
/// <param name="ExpectedCoincidences">C, the expected number of rows per combined index value.</param>
/// <param name="EffectiveBits">Sum over the indexes of min(bits, input domain bits).</param>
/// <param name="Explanation">Why, in words, with the numbers.</param>
internal sealed record BlindIndexPlan(bool IsAcceptable, double ExpectedCoincidences, double EffectiveBits, string Explanation);
