using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CrmSecurity.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Identity.AuditTrail;

/// <summary>
/// A keyed fingerprint of the authorization model as it is stored, one HMAC per part, so that <c>audit verify</c> can tell
/// a model state the chain does not explain (a role grant inserted with SQL, a user moved or re-enabled behind the
/// service's back) and name the part: every change through the audited path records the fingerprint it left, so the
/// tables must match the newest one. Keyed with the audit key: a database writer who changes a table cannot write the
/// fingerprint that would cover the change. Computed from the tables, not from a snapshot, so it sees rows the model
/// would ignore too.
/// </summary>
internal sealed class ModelFingerprint
{
    /// <summary>The parts, in the order they are written.</summary>
    public static readonly string[] Parts = ["organization", "business_units", "roles", "field_profiles", "teams", "users", "shares"];

    /// <summary>What each part covers, for messages.</summary>
    public static readonly IReadOnlyDictionary<string, string> Descriptions = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["organization"] = "organisation settings (manager hierarchy)",
        ["business_units"] = "business units",
        ["roles"] = "roles and their privileges",
        ["field_profiles"] = "field security profiles and their grants",
        ["teams"] = "teams, their units, roles and field security profiles",
        ["users"] = "users' business units, managers, disabled state, application clients, roles, field profiles and teams",
        ["shares"] = "record shares",
    };

    private readonly SortedDictionary<string, string> _parts;

    private ModelFingerprint(SortedDictionary<string, string> parts) => _parts = parts;

    public IReadOnlyDictionary<string, string> Values => _parts;

    public static async Task<ModelFingerprint> ComputeAsync(IdentityStore store, byte[] key, CancellationToken cancellationToken)
    {
        var rows = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string part, params object?[] values) =>
            (rows.TryGetValue(part, out var list) ? list : rows[part] = []).Add(JsonSerializer.Serialize(values));

        foreach (var s in await store.ModelState.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("organization", s.Id, s.OrganizationName, s.ManagerHierarchy, s.ManagerHierarchyDepth);
        }

        foreach (var u in await store.BusinessUnits.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("business_units", u.Id, u.Name, u.ParentId);
        }

        foreach (var r in await store.CrmRoles.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("roles", "role", r.Id, r.Name, r.Description);
        }

        foreach (var p in await store.RolePrivileges.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("roles", "privilege", p.RoleId, p.Entity, p.Action, p.Depth);
        }

        foreach (var p in await store.FieldProfiles.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("field_profiles", "profile", p.Id, p.Name, p.Description);
        }

        foreach (var p in await store.FieldPermissions.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("field_profiles", "grant", p.ProfileId, p.Entity, p.Field, p.Grant);
        }

        foreach (var t in await store.Teams.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("teams", "team", t.Id, t.Name, t.BusinessUnitId);
        }

        foreach (var t in await store.TeamRoles.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("teams", "role", t.TeamId, t.RoleId);
        }

        foreach (var t in await store.TeamFieldProfiles.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("teams", "profile", t.TeamId, t.ProfileId);
        }

        foreach (var u in await store.Users.AsNoTracking()
            .Select(u => new { u.Id, u.UserName, u.BusinessUnit, u.ManagerId, u.IsDisabled, u.ApplicationClientId }).ToListAsync(cancellationToken))
        {
            Add("users", "user", u.Id, u.UserName, u.BusinessUnit, u.ManagerId, u.IsDisabled, u.ApplicationClientId);
        }

        foreach (var a in await store.CrmUserRoles.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("users", "role", a.UserId, a.RoleId);
        }

        foreach (var a in await store.UserFieldProfiles.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("users", "profile", a.UserId, a.ProfileId);
        }

        foreach (var m in await store.TeamMembers.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("users", "team", m.UserId, m.TeamId);
        }

        foreach (var s in await store.Shares.AsNoTracking().ToListAsync(cancellationToken))
        {
            Add("shares", s.Id, s.Entity, s.RecordId, s.PrincipalKind, s.PrincipalId, s.Actions, s.RecordBusinessUnit, s.RecordOwner, s.RecordOwnerKind);
        }

        var parts = new SortedDictionary<string, string>(StringComparer.Ordinal);
        using var hmac = new HMACSHA256(key);
        foreach (var part in Parts)
        {
            // Rows in a canonical order (the database returns them in any order); one row per line.
            var body = string.Join('\n', (rows.GetValueOrDefault(part) ?? []).Order(StringComparer.Ordinal));
            var mac = hmac.ComputeHash(Encoding.UTF8.GetBytes($"crm-security/audit/model/v1\0{part}\0{body}"));
            parts[part] = Convert.ToHexStringLower(mac.AsSpan(0, 16));
        }

        return new ModelFingerprint(parts);
    }

    /// <summary>Reads the text form (<c>part=hex;part=hex</c>); null for null or malformed text.</summary>
    public static ModelFingerprint? Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }

        var parts = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var pair = item.Split('=', 2);
            if (pair.Length != 2)
            {
                return null;
            }

            parts[pair[0]] = pair[1];
        }

        return new ModelFingerprint(parts);
    }

    /// <summary>The parts whose fingerprints differ (compared in constant time per part).</summary>
    public IReadOnlyList<string> Differences(ModelFingerprint other) =>
        [.. Parts.Where(part => !(_parts.TryGetValue(part, out var mine) && other._parts.TryGetValue(part, out var theirs)
            && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(mine), Encoding.ASCII.GetBytes(theirs))))];

    public override string ToString() => string.Join(';', _parts.Select(p => $"{p.Key}={p.Value}"));
}
