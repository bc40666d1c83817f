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
        var median = Quantile(values, 0.5);
        var p90 = Quantile(values, 0.9);
        double sum = 0;
        foreach (var v in values)
        {
            sum += v;
        }

        Span<double> deviations = values.Length <= 512 ? stackalloc double[values.Length] : new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            deviations[i] = Math.Abs(values[i] - median);
        }

        deviations.Sort();
        return new RobustStats(values.Length, median, Quantile(deviations, 0.5), sum / values.Length, values[^1], p90);
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
}
