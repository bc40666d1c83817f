using CrmSecurity.Crypto.Fields;

namespace CrmSecurity.Crypto.EntityFramework;

/// <summary>Who reads encrypted values, as the access events name them.</summary>
/// <param name="UserId">The reader: a user id (<c>sub</c>), or the account of a back-office job [user_id].</param>
public sealed record FieldReader(string UserId)
{
    /// <summary>The application reading on the user's behalf [client_id].</summary>
    public string? ClientId { get; init; }

    /// <summary>The reader's address [source_ip].</summary>
    public string? SourceIp { get; init; }
}

/// <summary>One encrypted value of a row being read, before it is decrypted.</summary>
/// <param name="Field">Tenant, table and column (the property name) of the value.</param>
/// <param name="RowId">The row's id (its primary key as text), the one randomized values are bound to.</param>
/// <param name="Entity">
/// The entity being materialized, with its mapped (not encrypted) properties already set: the owner, business unit or
/// whatever the application's access rules need to decide on the record.
/// </param>
public sealed record FieldDecryptRequest(FieldContext Field, string RowId, object Entity);

/// <summary>Whether a value may be decrypted for the reader, and why (the reason goes into the access event, never a value).</summary>
/// <param name="Allowed">True only when the reader may see the value.</param>
/// <param name="Reason">Which grant allowed it, or why it was refused.</param>
public readonly record struct FieldDecryptDecision(bool Allowed, string Reason)
{
    /// <summary>The value may be decrypted.</summary>
    /// <param name="reason">Which grant allows it.</param>
    public static FieldDecryptDecision Allow(string reason) => new(true, reason);

    /// <summary>The value stays encrypted; the property reads null.</summary>
    /// <param name="reason">Why.</param>
    public static FieldDecryptDecision Deny(string reason) => new(false, reason);
}

/// <summary>
/// The decrypt-authorisation seam of the EF Core integration: consulted for every encrypted value of every row read,
/// before it is decrypted. A value it refuses is not decrypted (its property reads null, and saving the entity keeps the
/// stored ciphertext); every decision, allowed or refused, is written as a <c>decrypt</c> access event through the
/// module's <see cref="Events.ICryptoEventSink"/>. Implementations answer synchronously (rows are materialized
/// synchronously): load what they need, such as the reader's permissions, before the query runs.
/// </summary>
public interface IFieldDecryptAuthorizer
{
    /// <summary>The reader, for the access events.</summary>
    FieldReader Reader { get; }

    /// <summary>Decides one value.</summary>
    /// <param name="request">The value's column, row and entity.</param>
    FieldDecryptDecision Authorize(FieldDecryptRequest request);
}

/// <summary>The two authorizers that need no application rules.</summary>
public static class FieldDecryptAuthorizer
{
    /// <summary>
    /// What a context without an authorizer uses: nothing is decrypted (deny by default). The refusals are audited
    /// under the reader <c>unknown</c>, so a context that forgot its authorizer shows in the audit trail.
    /// </summary>
    public static IFieldDecryptAuthorizer DenyAll { get; } = new Fixed(new FieldReader("unknown"), FieldDecryptDecision.Deny("no decrypt authorizer is configured for this DbContext (deny by default)"));

    /// <summary>
    /// Every value is decrypted for <paramref name="reader"/>: for a back-office process that is entitled to all of a
    /// tenant's data (a migration, a re-encryption job), never for a request made for a user. Each decrypt is still a
    /// <c>decrypt</c> access event naming the reader and <paramref name="reason"/>.
    /// </summary>
    /// <param name="reader">The process, as the access events name it.</param>
    /// <param name="reason">Why it may read everything, for the access events.</param>
    public static IFieldDecryptAuthorizer AllowAll(FieldReader reader, string reason)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        return new Fixed(reader, FieldDecryptDecision.Allow(reason));
    }

    private sealed class Fixed(FieldReader reader, FieldDecryptDecision decision) : IFieldDecryptAuthorizer
    {
        public FieldReader Reader => reader;

        public FieldDecryptDecision Authorize(FieldDecryptRequest request) => decision;
    }
}
