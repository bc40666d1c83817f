using System.Numerics;

namespace CrmSecurity.AuditAnalyzer.Baselines;

/// <summary>
/// Median, MAD, mean and maximum of a small sample (at most a few hundred days). The median and the
/// median absolute deviation are used instead of mean + k·σ because one past spike inflates σ and hides
/// the next one (Rousseeuw and Croux 1993; Leys et al. 2013 recommend the MAD with the 1.4826 factor
/// and thresholds of 2.5-3 for outliers; we use a stricter z plus an absolute floor).
/// </summary>
internal readonly record struct RobustStats(int Count, double Median, double Mad, double Mean, double Max, double P90)
{
    public static readonly RobustStats None = new(0, 0, 0, 0, 0, 0);

    /// <summary>1.4826 x MAD estimates σ for normal data; floored so a user who always does the same has a non-zero spread.</summary>
    public double Sigma => Math.Max(1.4826 * Mad, Math.Max(1, 0.1 * Median));

    /// <summary>Statistics of <paramref name="values"/>, which are sorted in place.</summary>
    public static RobustStats Of(Span<double> values)
    {
        if (values.Length == 0)
        {
            return None;
        }

        if (!values.ContainsAnyExcept(0d))
        {
            return new RobustStats(values.Length, 0, 0, 0, 0, 0); // never did it: nothing to sort
        }

        values.Sort();
        return OfSorted(values);
    }

    /// <summary>Statistics of values already in ascending order (no sorting, no copy).</summary>
    public static RobustStats OfSorted(ReadOnlySpan<double> sorted)
    {
        if (sorted.Length == 0)
        {
            return None;
        }

        if (!sorted.ContainsAnyExcept(0d))
        {
            return new RobustStats(sorted.Length, 0, 0, 0, 0, 0);
        }

        var median = Quantile(sorted, 0.5);
        var p90 = Quantile(sorted, 0.9);
        double sum = 0;
        foreach (var v in sorted)
        {
            sum += v;
        }

        return new RobustStats(sorted.Length, median, MedianAbsoluteDeviation(sorted, median), sum / sorted.Length, sorted[^1], p90);
    }

    /// <summary>Linear-interpolated quantile of sorted values.</summary>
    public static double Quantile(ReadOnlySpan<double> sorted, double q)
    {
        if (sorted.Length == 0)
        {
            return 0;
        }

        var position = q * (sorted.Length - 1);
        var low = (int)Math.Floor(position);
        var high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + ((position - low) * (sorted[high] - sorted[low]));
    }

    /// <summary>
    /// The same linear-interpolated quantile of values in any order, found by selection in linear time
    /// instead of a sort; <paramref name="values"/> is reordered.
    /// </summary>
    public static double QuantileOfUnsorted(Span<double> values, double q)
    {
        if (values.Length == 0)
        {
            return 0;
        }

        var position = q * (values.Length - 1);
        var low = (int)Math.Floor(position);
        var high = Math.Min(low + 1, values.Length - 1);
        var atLow = Select(values, low);
        // After selection everything right of 'low' is >= the low-th value: the next one up is their minimum.
        var atHigh = high == low ? atLow : Min(values[high..]);
        return atLow + ((position - low) * (atHigh - atLow));
    }

    /// <summary>
    /// Median of |v - median| without sorting the deviations: below the median they grow leftwards, above it
    /// rightwards, so merging the two runs outwards from the median visits them in ascending order.
    /// </summary>
    private static double MedianAbsoluteDeviation(ReadOnlySpan<double> sorted, double median)
    {
        var position = 0.5 * (sorted.Length - 1);
        var low = (int)Math.Floor(position);
        var high = Math.Min(low + 1, sorted.Length - 1);
        var right = 0;
        while (right < sorted.Length && sorted[right] < median)
        {
            right++;
        }

        var left = right - 1;
        double atLow = 0, atHigh = 0;
        for (var k = 0; k <= high; k++)
        {
            double next;
            if (left >= 0 && (right >= sorted.Length || Math.Abs(sorted[left] - median) <= Math.Abs(sorted[right] - median)))
            {
                next = Math.Abs(sorted[left--] - median);
            }
            else
            {
                next = Math.Abs(sorted[right++] - median);
            }

            if (k == low)
            {
                atLow = next;
            }

            atHigh = next;
        }

        return atLow + ((position - low) * (atHigh - atLow));
    }

    /// <summary>Puts the k-th smallest value at index k, smaller ones left of it and larger ones right (Hoare's selection).</summary>
    private static double Select(Span<double> values, int k)
    {
        int lo = 0, hi = values.Length - 1;
        // Introselect: a run of bad pivots falls back to sorting the remaining range, so the worst case is n log n.
        var budget = (2 * BitOperations.Log2((uint)values.Length)) + 4;
        while (hi > lo)
        {
            if (budget-- == 0)
            {
                values[lo..(hi + 1)].Sort();
                return values[k];
            }

            var mid = lo + ((hi - lo) / 2);
            if (values[mid] < values[lo])
            {
                (values[mid], values[lo]) = (values[lo], values[mid]);
            }

            if (values[hi] < values[lo])
            {
                (values[hi], values[lo]) = (values[lo], values[hi]);
            }

            if (values[hi] < values[mid])
            {
                (values[hi], values[mid]) = (values[mid], values[hi]);
            }

            var pivot = values[mid];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (values[i] < pivot)
                {
                    i++;
                }

                while (values[j] > pivot)
                {
                    j--;
                }

                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }

            if (k <= j)
            {
                hi = j;
            }
            else if (k >= i)
            {
                lo = i;
            }
            else
            {
                return values[k];
            }
        }

        return values[k];
    }

    private static double Min(ReadOnlySpan<double> values)
    {
        var min = values[0];
        foreach (var v in values)
        {
            if (v < min)
            {
                min = v;
            }
        }

        return min;
    }
}
