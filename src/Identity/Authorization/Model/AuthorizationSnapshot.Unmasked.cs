using CrmSecurity.CrmAuthorization;

namespace CrmSecurity.Identity.Authorization.Model;

internal sealed partial class AuthorizationSnapshot
{
    /// <summary>
    /// Whether the principal of an access token may see a field's value in clear: the question the encryption service
    /// asks before it decrypts. The field must be granted read_unmasked, or update (design.md: a field granted read
    /// without read_unmasked shows a mask, an ungranted secured field is hidden). A user's token (<c>sub</c>) decides
    /// for that user; a client's own token (<c>sub</c> = <c>client_id</c>, RFC 9068 §2.2) for the application user
    /// bound to that client, if any. Deny by default: unknown user, entity or field, disabled user, masked or hidden.
    /// </summary>
    /// <param name="subject">The token's <c>sub</c>.</param>
    /// <param name="clientId">The token's <c>client_id</c>.</param>
    /// <param name="entity">Entity logical name.</param>
    /// <param name="field">Field name.</param>
    public (bool Allowed, string Reason) UnmaskedRead(string? subject, string? clientId, string entity, string field)
    {
        if (string.IsNullOrEmpty(subject))
        {
            return (false, "the token names no subject");
        }

        var ownToken = string.Equals(subject, clientId, StringComparison.Ordinal);
        var user = CallerIndex(subject, clientId);
        if (user < 0)
        {
            return (false, ownToken
                ? $"client '{subject}' acts for itself and no application user of the authorization model is bound to it"
                : $"user '{subject}' is not in the authorization model");
        }

        var info = Users[user];
        if (Entity(entity) is not { } entityInfo)
        {
            return (false, $"unknown entity '{entity}'");
        }

        if (!entityInfo.FieldIndex.TryGetValue(field, out var index))
        {
            return (false, $"unknown field '{field}' of entity '{entity}'");
        }

        if (info.Disabled)
        {
            return (false, $"user {info.UserName} is disabled");
        }

        var access = FieldAccessOf(user, index);
        return access is FieldAccess.Read or FieldAccess.Update
            ? (true, $"{info.UserName} may {(access == FieldAccess.Update ? "update" : "read unmasked")} {entity}.{field}")
            : (false, $"{info.UserName} sees {entity}.{field} {(access == FieldAccess.Masked ? "masked (read without read_unmasked)" : "hidden (no field security profile grants it)")}");
    }
}
