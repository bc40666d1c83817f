using CrmSecurity.AuditAnalyzer.Baselines;

namespace CrmSecurity.AuditAnalyzer.Tests.Baselines;

public sealed class RobustStatsTests
{
    public static TheoryData<int, int> Samples() => new()
    {
        { 1, 1 }, { 2, 2 }, { 3, 3 }, { 10, 4 }, { 59, 5 }, { 90, 6 }, { 91, 7 }, { 2048, 8 },
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public void Median_absolute_deviation_without_sorting_the_deviations_equals_the_sorted_definition(int count, int seed)
    {
        foreach (var values in SamplesOf(count, seed))
        {
            var stats = RobustStats.Of(values.ToArray());

            var sorted = values.Order().ToArray();
            var median = RobustStats.Quantile(sorted, 0.5);
            var deviations = sorted.Select(v => Math.Abs(v - median)).Order().ToArray();
            Assert.Equal(values.All(v => v == 0) ? 0 : RobustStats.Quantile(deviations, 0.5), stats.Mad);
            Assert.Equal(values.All(v => v == 0) ? 0 : median, stats.Median);
            Assert.Equal(values.All(v => v == 0) ? 0 : sorted[^1], stats.Max);
        }
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void A_quantile_found_by_selection_equals_the_quantile_of_the_sorted_values(int count, int seed)
    {
        foreach (var values in SamplesOf(count, seed))
        {
            var sorted = values.Order().ToArray();
            foreach (var q in new[] { 0, 0.01, 0.5, 0.9, 0.99, 1 })
            {
                Assert.Equal(RobustStats.Quantile(sorted, q), RobustStats.QuantileOfUnsorted(values.ToArray(), q));
            }
        }
    }

    /// <summary>Heavy-tailed volumes, samples with many equal values and zeros (days without exports), and sorted or reversed runs.</summary>
    private static IEnumerable<double[]> SamplesOf(int count, int seed)
    {
        var random = new Random(seed);
        yield return Enumerable.Range(0, count).Select(_ => Math.Round(Math.Exp(random.NextDouble() * 12))).ToArray();
        yield return Enumerable.Range(0, count).Select(_ => random.Next(4) == 0 ? random.Next(1, 5) * 100.0 : 0).ToArray();
        yield return Enumerable.Range(0, count).Select(_ => 0.0).ToArray();
        yield return Enumerable.Range(0, count).Select(i => (double)i).ToArray();
        yield return Enumerable.Range(0, count).Select(i => (double)(count - i)).ToArray();
        yield return Enumerable.Range(0, count).Select(_ => 7.0).ToArray();
    }
}
