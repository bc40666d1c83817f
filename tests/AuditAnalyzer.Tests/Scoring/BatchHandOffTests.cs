using CrmSecurity.AuditAnalyzer.Scoring;

namespace CrmSecurity.AuditAnalyzer.Tests.Scoring;

/// <summary>The hand-off between the reading and the scoring thread of an analysis pass.</summary>
public sealed class BatchHandOffTests
{
    [Fact]
    public async Task Batches_arrive_in_order_and_the_reader_never_runs_more_than_capacity_ahead()
    {
        var handOff = new BatchHandOff<int[]>(capacity: 4, resumeAt: 1);
        var produced = 0;
        var reading = Task.Run(() =>
        {
            for (var i = 0; i < 1_000; i++)
            {
                var batch = new[] { i };
                Volatile.Write(ref produced, i + 1);
                _ = handOff.Add(batch, 1, TestContext.Current.CancellationToken);
            }

            handOff.Complete();
        }, TestContext.Current.CancellationToken);

        var taken = new List<int>();
        var maxAhead = 0;
        int[]? emptied = null;
        while (handOff.TryTake(emptied, out var batch, out var count, TestContext.Current.CancellationToken))
        {
            Assert.Equal(1, count);
            taken.Add(batch[0]);
            // Produced but not yet taken: the queued ones plus the one being added.
            maxAhead = Math.Max(maxAhead, Volatile.Read(ref produced) - taken.Count);
            if (taken.Count % 100 == 0)
            {
                await Task.Delay(5, TestContext.Current.CancellationToken); // a slow scorer: the reader must wait
            }

            emptied = batch;
        }

        await reading;
        Assert.Equal(Enumerable.Range(0, 1_000), taken);
        Assert.InRange(maxAhead, 1, 5);
    }

    [Fact]
    public void Emptied_arrays_go_back_to_the_reader()
    {
        var handOff = new BatchHandOff<int[]>(capacity: 4, resumeAt: 1);
        var first = new int[1];
        Assert.Null(handOff.Add(first, 1, TestContext.Current.CancellationToken));
        Assert.True(handOff.TryTake(null, out var taken, out _, TestContext.Current.CancellationToken));
        Assert.Same(first, taken);
        handOff.Complete();
        Assert.False(handOff.TryTake(taken, out _, out _, TestContext.Current.CancellationToken));
        Assert.Same(first, handOff.Add(new int[1], 1, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void A_reading_failure_reaches_the_scorer_as_itself_after_the_batches_before_it()
    {
        var handOff = new BatchHandOff<int[]>(capacity: 4, resumeAt: 1);
        _ = handOff.Add([7], 1, TestContext.Current.CancellationToken);
        handOff.Complete(new IOException("disk gone"));

        Assert.True(handOff.TryTake(null, out var batch, out _, TestContext.Current.CancellationToken));
        Assert.Equal(7, batch[0]);
        var failure = Assert.Throws<IOException>(() => handOff.TryTake(batch, out _, out _, TestContext.Current.CancellationToken));
        Assert.Equal("disk gone", failure.Message);
    }

    [Fact]
    public void A_waiting_scorer_stops_when_the_pass_is_cancelled()
    {
        var handOff = new BatchHandOff<int[]>(capacity: 4, resumeAt: 1);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        Assert.Throws<OperationCanceledException>(() => handOff.TryTake(null, out _, out _, cancel.Token));
    }
}
