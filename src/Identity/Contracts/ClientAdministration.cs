using CrmSecurity.Identity.Admin;
using CrmSecurity.Identity.Authorization.Store;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Contracts;

/// <summary>
/// OIDC clients managed at run time, for the host's <c>clients</c> verbs: the same operations (validation, audited change,
/// secret handling) as the admin API and pages, acting as the command line instead of a person of the model, like
/// <c>users create-admin</c>. Clients of <c>Identity:Clients</c> are refused, naming their setting.
/// </summary>
public interface IClientAdministration
{
    /// <summary>Every registered client, by client id.</summary>
    Task<IReadOnlyList<ClientSummary>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Registers a client; a confidential one's new secret is in the result, and nowhere else.</summary>
    Task<ClientAdministrationResult> CreateAsync(ClientRegistration registration, string actor, CancellationToken cancellationToken);

    /// <summary>
    /// Gives a confidential client a new secret (in the result only); the old one keeps working for <paramref name="overlap"/>
    /// (<c>0</c>, <c>30m</c>, <c>12h</c>, <c>1d</c>; at most 30 days; null for the default day).
    /// </summary>
    Task<ClientAdministrationResult> RotateSecretAsync(string clientId, string? overlap, string actor, CancellationToken cancellationToken);

    /// <summary>Deletes a client made at run time, revoking every token it holds first.</summary>
    Task<ClientAdministrationResult> DeleteAsync(string clientId, string actor, CancellationToken cancellationToken);
}

/// <summary>A client to register.</summary>
/// <param name="ClientId">Its client id: letters, digits, '_', '-' or '.'.</param>
/// <param name="DisplayName">What the consent page and the admin pages show (the client id when null).</param>
/// <param name="Confidential">True for a confidential client, which gets a secret; false for a public (browser or native) one.</param>
/// <param name="FirstParty">First-party clients skip the consent page.</param>
/// <param name="GrantTypes">authorization_code, refresh_token, client_credentials, device_code, token_exchange.</param>
/// <param name="Scopes">Scopes this server knows.</param>
/// <param name="RedirectUris">Exact redirect URIs (https, or a public client's loopback on an IP literal).</param>
/// <param name="PostLogoutRedirectUris">Exact post-logout redirect URIs.</param>
/// <param name="RequirePushedAuthorization">True when the client must use pushed authorization requests (RFC 9126).</param>
public sealed record ClientRegistration(
    string ClientId,
    string? DisplayName,
    bool Confidential,
    bool FirstParty,
    IReadOnlyList<string> GrantTypes,
    IReadOnlyList<string> Scopes,
    IReadOnlyList<string> RedirectUris,
    IReadOnlyList<string> PostLogoutRedirectUris,
    bool RequirePushedAuthorization);

/// <summary>One registered client, without any secret.</summary>
/// <param name="ClientId">Its client id.</param>
/// <param name="DisplayName">Its display name.</param>
/// <param name="ClientType">confidential or public.</param>
/// <param name="ManagedBy"><c>configuration</c> (<c>Identity:Clients</c>) or <c>admin</c> (made at run time).</param>
/// <param name="GrantTypes">Its grants.</param>
/// <param name="Scopes">Its scopes.</param>
/// <param name="RedirectUris">Its redirect URIs.</param>
public sealed record ClientSummary(
    string ClientId, string? DisplayName, string? ClientType, string ManagedBy, IReadOnlyList<string> GrantTypes, IReadOnlyList<string> Scopes, IReadOnlyList<string> RedirectUris);

/// <summary>What a client operation did.</summary>
public enum ClientAdministrationOutcome
{
    /// <summary>The change was made and audited.</summary>
    Done,

    /// <summary>Nothing was done: the input is not usable (the message names the field and the fix).</summary>
    Refused,

    /// <summary>Nothing was done: there is no such client.</summary>
    NotFound,

    /// <summary>Nothing was done: the client is configuration's, exists already, or has no secret to rotate.</summary>
    Conflict,
}

/// <summary>The outcome, one sentence about it, and for a new secret the secret, shown this once.</summary>
/// <param name="Outcome">What happened.</param>
/// <param name="Message">One sentence saying what happened or what to fix; never a secret.</param>
/// <param name="ClientSecret">The new secret (create of a confidential client, rotation); only its hash is kept.</param>
/// <param name="PreviousSecretValidUntil">Until when a rotated client's old secret still works.</param>
public sealed record ClientAdministrationResult(
    ClientAdministrationOutcome Outcome, string Message, string? ClientSecret = null, DateTimeOffset? PreviousSecretValidUntil = null);

internal sealed class CommandLineClientAdministration(AdminOperations operations) : IClientAdministration
{
    public async Task<IReadOnlyList<ClientSummary>> ListAsync(CancellationToken cancellationToken) =>
        [.. (await operations.ListClientsAsync(cancellationToken)).Select(c => new ClientSummary(
            c.ClientId, c.DisplayName, c.ClientType, c.ManagedBy, c.GrantTypes ?? [], c.Scopes ?? [], c.RedirectUris ?? []))];

    public async Task<ClientAdministrationResult> CreateAsync(ClientRegistration registration, string actor, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        var body = new ClientBody(registration.ClientId, registration.DisplayName, registration.Confidential ? ClientTypes.Confidential : ClientTypes.Public,
            registration.FirstParty, [.. registration.RedirectUris], [.. registration.PostLogoutRedirectUris], [.. registration.GrantTypes], [.. registration.Scopes],
            RequirePar: registration.RequirePushedAuthorization);
        var (created, problem) = await operations.CreateClientAsync(Actor(actor), body, cancellationToken);
        return problem is not null
            ? Result(problem)
            : new(ClientAdministrationOutcome.Done, $"Registered the {body.ClientType} client '{registration.ClientId}'.", created!.ClientSecret);
    }

    public async Task<ClientAdministrationResult> RotateSecretAsync(string clientId, string? overlap, string actor, CancellationToken cancellationToken)
    {
        var (rotated, problem) = await operations.RotateClientSecretAsync(Actor(actor), clientId, new SecretRotationBody(overlap), cancellationToken);
        return problem is not null
            ? Result(problem)
            : new(ClientAdministrationOutcome.Done, $"The client '{clientId}' has a new secret.", rotated!.ClientSecret, rotated.PreviousSecretValidUntil);
    }

    public async Task<ClientAdministrationResult> DeleteAsync(string clientId, string actor, CancellationToken cancellationToken)
    {
        var (revoked, problem) = await operations.DeleteClientAsync(Actor(actor), clientId, null, cancellationToken);
        return problem is not null
            ? Result(problem)
            : new(ClientAdministrationOutcome.Done, $"Deleted the client '{clientId}'; {revoked?.TokensRevoked ?? 0} of its tokens revoked.");
    }

    private static AdminActor Actor(string actor)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        return AdminActor.System(actor);
    }

    private static ClientAdministrationResult Result(AdminProblem problem)
    {
        var field = problem.Errors?.FirstOrDefault();
        var message = field is { Key: { } name } && problem.Status == StatusCodes.Status400BadRequest ? $"{name}: {problem.Detail}" : problem.Detail;
        return new(problem.Status switch
        {
            StatusCodes.Status400BadRequest => ClientAdministrationOutcome.Refused,
            StatusCodes.Status404NotFound => ClientAdministrationOutcome.NotFound,
            _ => ClientAdministrationOutcome.Conflict,
        }, message);
    }
}
