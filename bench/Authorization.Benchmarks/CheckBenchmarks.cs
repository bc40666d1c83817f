using System.Collections.Frozen;
using BenchmarkDotNet.Attributes;
using CrmSecurity.Identity.Authorization.Model;

namespace CrmSecurity.Authorization.Benchmarks;

/// <summary>
/// One in-process decision: check(user, entity, action, record) by id and name, then the field projection of the
/// entity for that user. Baseline: the least any decision by user id pays, one lookup of the id among 10,000 users
/// in a frozen dictionary and one array read. Both walk the same 4,096 mixed requests.
/// </summary>
[MemoryDiagnoser]
public class CheckBenchmarks
{
    private AuthorizationSnapshot _snapshot = null!;
    private Request[] _requests = null!;
    private FrozenDictionary<string, int> _users = null!;
    private int[] _classes = null!;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        _snapshot = LargeModel.Build();
        _requests = LargeModel.Requests(_snapshot, 4096);
        _users = _snapshot.Users.ToFrozenDictionary(u => u.Id, u => u.Index, StringComparer.Ordinal);
        _classes = [.. _snapshot.Users.Select(u => u.Class)];
    }

    [Benchmark(Baseline = true)]
    public int UserLookup()
    {
        var request = _requests[_next++ & 4095];
        return _users.TryGetValue(request.UserId, out var user) ? _classes[user] : -1;
    }

    [Benchmark]
    public int CheckAndProjectFields()
    {
        var request = _requests[_next++ & 4095];
        var decision = _snapshot.Check(request.UserId, request.Entity, request.Action, request.Record);
        var fields = _snapshot.Fields(decision.User, request.EntityIndex);
        return (decision.Allowed ? 1 : 0) + (int)fields[fields.Length - 1];
    }
}
