using CrmSecurity.AuditAnalyzer.Detection;
using CrmSecurity.AuditAnalyzer.Events;

namespace CrmSecurity.AuditAnalyzer.Scoring;

/// <summary>
/// The entity/action pairs first-seen checks track (<c>contact:export</c>, <c>admin_change</c>), each given
/// a small dense id the first time it occurs, so a user's "done before" set can be a bit set indexed by id
/// instead of a hash set of strings probed twice per event. The strings stay the persisted form
/// (<see cref="Baselines.UserBaseline.EntityActions"/>); ids live only as long as the scorer. Past
/// <see cref="MaxIds"/> distinct pairs (a flood of made-up entity names) new pairs get no id and are looked
/// up in the string set instead, so memory per user stays bounded.
/// </summary>
internal sealed class EntityActionKeys
{
    public const int MaxIds = 4096;

    private static readonly int Actions = Enum.GetValues<AccessAction>().Length;

    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];
    private readonly Dictionary<string, Key[]> _byEntity = new(StringComparer.Ordinal);
    private readonly IdentityCache<Key[]> _entities = new(256);
    private readonly Key _adminChange;
    private readonly Key _impersonate;

    public EntityActionKeys()
    {
        _adminChange = Get(AccessActions.Name(AccessAction.AdminChange));
        _impersonate = Get(AccessActions.Name(AccessAction.Impersonate));
    }

    /// <summary>A pair's name (null for events that touch no entity) and its id (-1 when it has none).</summary>
    internal readonly record struct Key(string? Name, int Id);

    public static readonly Key None = new(null, -1);

    /// <summary>The key of an event, as <see cref="PrivilegeMisuseDetector.EntityActionKey"/> names it.</summary>
    public Key Of(AccessEvent e)
    {
        switch (e.Action)
        {
            case AccessAction.Login or AccessAction.LoginFailed or AccessAction.Logout:
                return None;
            case AccessAction.AdminChange:
                return _adminChange;
            case AccessAction.Impersonate:
                return _impersonate;
        }

        if (e.Entity is not { } entity)
        {
            return None;
        }

        var byAction = _entities.Find(entity);
        if (byAction is null)
        {
            if (!_byEntity.TryGetValue(entity, out byAction))
            {
                byAction = new Key[Actions];
                // Entities are few; a flood of distinct ones is not kept, so this map stays small.
                if (_byEntity.Count < 100_000)
                {
                    _byEntity[entity] = byAction;
                }
            }

            _entities.Remember(entity, byAction);
        }

        ref var key = ref byAction[(int)e.Action];
        if (key.Name is null)
        {
            key = Get(PrivilegeMisuseDetector.EntityActionKey(e)!);
        }

        return key;
    }

    /// <summary>The key of a stored pair name, with an id while there are ids left.</summary>
    public Key Get(string name)
    {
        if (_ids.TryGetValue(name, out var id))
        {
            return new Key(_names[id], id);
        }

        if (_names.Count >= MaxIds)
        {
            return new Key(name, -1);
        }

        _ids[name] = _names.Count;
        _names.Add(name);
        return new Key(name, _names.Count - 1);
    }
}
