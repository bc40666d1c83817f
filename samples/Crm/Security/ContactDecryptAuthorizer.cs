using CrmSecurity.CrmAuthorization;
using CrmSecurity.Crypto.EntityFramework;
using CrmSecurity.Samples.Crm.Data;

namespace CrmSecurity.Samples.Crm.Security;

/// <summary>
/// The sample's decrypt check, consulted by the Crypto library for every encrypted value of every row a query reads,
/// before it decrypts it: the signed-in user must be allowed to read the record (the decision API's check on its owner
/// and business unit, from the user's cached access profile), and must see the field at all (hidden fields are never
/// decrypted; masked ones are, to show their last characters). One per request; the profile is loaded before the page
/// runs (<see cref="LoadProfileAsync"/>), because rows are decrypted synchronously.
/// </summary>
public sealed class ContactDecryptAuthorizer(IHttpContextAccessor http, EventFeedIdentity identity) : IFieldDecryptAuthorizer
{
    private static readonly object ProfileKey = new();

    /// <summary>Table names to the authorization model's entity names.</summary>
    private static readonly Dictionary<string, string> Entities = new(StringComparer.Ordinal) { ["contacts"] = ContactAccess.Entity, ["accounts"] = "account" };

    /// <summary>Encrypted properties to the model's field names.</summary>
    private static readonly Dictionary<string, string> Fields = new(StringComparer.Ordinal)
    {
        [nameof(Contact.Email)] = "email",
        [nameof(Contact.Phone)] = "phone",
        [nameof(Contact.NationalId)] = "national_id",
    };

    public FieldReader Reader => new(http.HttpContext?.User is { } user ? Program.UserId(user) : "anonymous")
    {
        ClientId = identity.ClientId,
        SourceIp = http.HttpContext?.Connection.RemoteIpAddress?.ToString(),
    };

    /// <summary>The authorization model's name for a table.</summary>
    public static string EntityOf(string table) => Entities.GetValueOrDefault(table, table);

    /// <summary>The authorization model's name for an encrypted property.</summary>
    public static string FieldOf(string property) => Fields.GetValueOrDefault(property, property);

    /// <summary>Loads the signed-in user's access profile for this request (cached per user and permission version).</summary>
    public static async Task LoadProfileAsync(HttpContext context, ContactAccess access)
    {
        if (context.User.Identity?.IsAuthenticated == true)
        {
            context.Items[ProfileKey] = await access.ProfileAsync(context.User, context.RequestAborted);
        }
    }

    public FieldDecryptDecision Authorize(FieldDecryptRequest request)
    {
        // Deny by default: no signed-in user with a loaded profile, an unknown kind of row, or a field the model hides.
        if (http.HttpContext?.Items[ProfileKey] is not CrmAccessProfile profile)
        {
            return FieldDecryptDecision.Deny("no signed-in user with an access profile");
        }

        if (request.Entity is not IOwnedRecord record)
        {
            return FieldDecryptDecision.Deny($"{request.Field.Table} rows carry no owner or business unit to check");
        }

        var entity = EntityOf(request.Field.Table);
        var decision = profile.Check(entity, CrmAction.Read, new CrmRecord { Id = record.Id.ToString(), Owner = record.Owner, BusinessUnit = record.BusinessUnit });
        if (!decision.Allowed)
        {
            return FieldDecryptDecision.Deny($"record: {decision.Reason}");
        }

        var field = FieldOf(request.Field.Column);
        return profile.Field(entity, field) switch
        {
            FieldAccess.Hidden => FieldDecryptDecision.Deny($"{entity}.{field} is hidden from the user"),
            FieldAccess.Masked => FieldDecryptDecision.Allow($"{entity}.{field} read to be shown masked; record: {decision.Reason}"),
            var access => FieldDecryptDecision.Allow($"{entity}.{field} {access.Name()}; record: {decision.Reason}"),
        };
    }
}

/// <summary>The sample's client id and tenant, as its access events name them.</summary>
/// <param name="ClientId">The OAuth client the sample signs in and sends events as.</param>
/// <param name="Tenant">The tenant of the sample's data.</param>
public sealed record EventFeedIdentity(string ClientId, string Tenant);
