namespace CrmSecurity.AuditAnalyzer.Review.Pictures;

/// <summary>Maps values onto pixels and chooses the ticks of an axis.</summary>
internal interface IScale
{
    double Map(double value);

    IReadOnlyList<double> Ticks();

    bool Logarithmic { get; }
}

/// <summary>A linear scale from [0, max] (rounded up to a tick) onto [bottom, top] in pixels (SVG y grows downwards).</summary>
internal sealed class LinearScale : IScale
{
    private readonly double _bottom;
    private readonly double _top;
    private readonly double _step;

    public LinearScale(double max, double bottom, double top, int tickCount = 5)
    {
        _step = NiceStep(Math.Max(max, 1) / tickCount);
        Max = Math.Ceiling(Math.Max(max, 1) / _step) * _step;
        _bottom = bottom;
        _top = top;
    }

    /// <summary>The top of the domain: the largest value rounded up to a whole tick.</summary>
    public double Max { get; }

    public bool Logarithmic => false;

    public double Map(double value) => _bottom - (Math.Clamp(value, 0, Max) / Max * (_bottom - _top));

    public IReadOnlyList<double> Ticks()
    {
        var ticks = new List<double>();
        for (var v = 0.0; v <= Max + (_step / 2); v += _step)
        {
            ticks.Add(Math.Round(v, 6));
        }

        return ticks;
    }

    /// <summary>1, 2 or 5 times a power of ten, at least <paramref name="rough"/>.</summary>
    public static double NiceStep(double rough)
    {
        if (rough <= 0 || double.IsNaN(rough))
        {
            return 1;
        }

        var power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var fraction = rough / power;
        var nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
        return Math.Max(1, nice * power);
    }
}

/// <summary>
/// log10(1 + v): zero stays at the bottom, and a day of 48,000 records does not flatten a typical 120-340 into the
/// axis. Ticks are 0, 1, 10, 100, ... up to the first power of ten at or above the largest value.
/// </summary>
internal sealed class LogScale(double max, double bottom, double top) : IScale
{
    private readonly double _decades = Math.Max(1, Math.Ceiling(Math.Log10(Math.Max(max, 1))));

    public bool Logarithmic => true;

    public double Map(double value) => bottom - (Math.Min(Math.Log10(1 + Math.Max(value, 0)), _decades) / _decades * (bottom - top));

    public IReadOnlyList<double> Ticks() => [0, .. Enumerable.Range(0, (int)_decades + 1).Select(d => Math.Pow(10, d))];
}

/// <summary>Percentiles by linear interpolation between closest ranks (Hyndman and Fan type 7, as R and NumPy default).</summary>
internal static class Percentiles
{
    public static double Of(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0)
        {
            return 0;
        }

        var rank = p * (sorted.Count - 1);
        var low = (int)Math.Floor(rank);
        var high = Math.Min(low + 1, sorted.Count - 1);
        return sorted[low] + ((rank - low) * (sorted[high] - sorted[low]));
    }
}
