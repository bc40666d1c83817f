using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Identity.Authorization.Model;
using CrmSecurity.Identity.Authorization.Store;
using CrmSecurity.Identity.Clients;
using CrmSecurity.Identity.Incident;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace CrmSecurity.Identity.Admin;

/// <summary>
/// OIDC clients managed at run time. Clients belong to the whole organisation, so every operation needs the
/// <c>oidc_client</c> privilege at organization depth (<see cref="AdminGuard.Require(string, CrmAction)"/>); the
/// <c>clients</c> verbs of the host call the actor overloads, as the command line (like <c>users create-admin</c>).
/// Clients of <c>Identity:Clients</c> stay configuration's: changes to them are refused with 409 naming the setting.
/// No secret and no secret hash is ever audited, logged or shown again after the one reply that hands it over.
/// </summary>
internal sealed partial class AdminOperations
{
    private const string ClientKind = "oidc_client";

    /// <summary>
    /// Incident response for a client: every token it holds is revoked, audited in the same transaction. Clients belong to
    /// the whole organisation, so this needs update on oidc_client at organization depth.
    /// </summary>
    public async Task<(RevocationSummary? Summary, AdminProblem? Problem)> RevokeClientAsync(AdminGuard guard, string clientId, string? reason, CancellationToken cancellationToken)
    {
        if (guard.Require(SystemEntities.Client, CrmAction.Update) is { } denied)
        {
            return (null, denied);
        }

        RevocationSummary? summary = null;
        var problem = await changes.ApplyAsync(guard.Actor, async context =>
        {
            summary = await incidents.RevokeClientAsync(clientId, cancellationToken);
            if (summary is null)
            {
                return AdminProblem.NotFound("client", clientId);
            }

            context.Audit(new AuditChange("client.revoke", "oidc_client", clientId, clientId, null,
                new { reason, tokens_revoked = summary.TokensRevoked, authorizations_revoked = summary.AuthorizationsRevoked },
                Summary: Reasoned($"every token of client {clientId} revoked", reason)));
            return null;
        }, cancellationToken);
        return problem is null ? (summary, null) : (null, problem);
    }

    /// <summary>The grants and scopes a client may be given here (for forms and pickers).</summary>
    public IReadOnlyList<string> SupportedGrants => clientRules.SupportedGrants;

    /// <inheritdoc cref="ClientRules.KnownScopes"/>
    public IReadOnlyList<string> KnownScopes => clientRules.KnownScopes;

    /// <summary>Every registered client, configuration's and run-time ones, by client id.</summary>
    public async Task<IReadOnlyList<ClientView>> ListClientsAsync(CancellationToken cancellationToken)
    {
        var result = new List<ClientView>();
        await foreach (var application in applications.ListAsync(null, null, cancellationToken))
        {
            result.Add(await ClientViewAsync(application, cancellationToken));
        }

        return [.. result.OrderBy(c => c.ClientId, StringComparer.Ordinal)];
    }

    public async Task<ClientView?> GetClientAsync(string clientId, CancellationToken cancellationToken)
    {
        // Read fresh, not from the token endpoint's 30-second client cache: an admin sees the stored registration.
        var application = await FreshClientAsync(clientId, cancellationToken);
        return application is null ? null : await ClientViewAsync(application, cancellationToken);
    }

    public Task<(ClientSecretView? Created, AdminProblem? Problem)> CreateClientAsync(AdminGuard guard, ClientBody body, CancellationToken cancellationToken) =>
        guard.Require(SystemEntities.Client, CrmAction.Create) is { } denied
            ? Task.FromResult<(ClientSecretView?, AdminProblem?)>((null, denied))
            : CreateClientAsync(guard.Actor, body, cancellationToken);

    /// <summary>
    /// Registers a client. A confidential client gets a new secret made here (256 random bits), returned in the result this
    /// once; OpenIddict keeps only its PBKDF2 hash.
    /// </summary>
    public async Task<(ClientSecretView? Created, AdminProblem? Problem)> CreateClientAsync(AdminActor actor, ClientBody body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (Identifier(body.ClientId, "client_id") is { } badId)
        {
            return (null, badId);
        }

        if (body.ClientType is not (ClientTypes.Confidential or ClientTypes.Public))
        {
            return (null, AdminProblem.Invalid("client_type", "client_type is required: confidential (it authenticates with a secret the server makes) or public (a browser or native app)."));
        }

        var clientId = body.ClientId!;
        if (clientRules.ConfigurationSetting(clientId) is { } setting)
        {
            return (null, ConfigurationManaged(clientId, setting));
        }

        var (client, invalid) = ValidateClient(body, body.ClientType == ClientTypes.Public, current: null);
        if (invalid is not null)
        {
            return (null, invalid);
        }

        var secret = body.ClientType == ClientTypes.Confidential ? ClientRules.NewSecret() : null;
        client!.ClientSecret = secret;
        var descriptor = ClientRegistry.Describe(client);
        ClientView? created = null;
        var problem = await changes.ApplyAsync(actor, async context =>
        {
            if (await FreshClientAsync(clientId, cancellationToken) is not null)
            {
                return AdminProblem.Conflict($"A client '{clientId}' exists already. Choose another client_id, or edit that client.");
            }

            var application = await applications.CreateAsync(descriptor, cancellationToken);
            created = await ClientViewAsync(application, cancellationToken);
            context.Audit(new AuditChange("client.create", ClientKind, clientId, created.DisplayName ?? clientId, null, AuditView(created),
                Summary: $"client {clientId} registered ({body.ClientType})"));
            return null;
        }, cancellationToken);
        verifiedSecrets.Clear();
        return problem is null ? (new ClientSecretView(clientId, secret, null, created!.Version), null) : (null, problem);
    }

    public Task<AdminProblem?> UpdateClientAsync(AdminGuard guard, string clientId, ClientBody body, CancellationToken cancellationToken) =>
        guard.Require(SystemEntities.Client, CrmAction.Update) is { } denied ? Task.FromResult<AdminProblem?>(denied) : UpdateClientAsync(guard.Actor, clientId, body, cancellationToken);

    /// <summary>Replaces the fields given (a field left out keeps its value); the secret and the client type stay as they are.</summary>
    public async Task<AdminProblem?> UpdateClientAsync(AdminActor actor, string clientId, ClientBody body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (clientRules.ConfigurationSetting(clientId) is { } setting)
        {
            return ConfigurationManaged(clientId, setting);
        }

        if (body.ClientId is { } renamed && renamed != clientId)
        {
            return AdminProblem.Invalid("client_id", "client_id cannot change: applications hold it. Register a new client instead.");
        }

        var problem = await changes.ApplyAsync(actor, async context =>
        {
            var application = await FreshClientAsync(clientId, cancellationToken);
            if (application is null)
            {
                return AdminProblem.NotFound("client", clientId);
            }

            var before = await ClientViewAsync(application, cancellationToken);
            if (await ClientVersionConflictAsync(context, before, body.Version, cancellationToken) is { } stale)
            {
                return stale;
            }

            if (body.ClientType is { } type && type != before.ClientType)
            {
                return AdminProblem.Invalid("client_type", $"client_type cannot change (it is {before.ClientType}): register a new client of the other type instead.");
            }

            var (client, invalid) = ValidateClient(body, before.ClientType == ClientTypes.Public, before);
            if (invalid is not null)
            {
                return invalid;
            }

            // Start from the stored registration so what this API does not edit stays: the secret's hash (unchanged, so
            // OpenIddict does not hash it again), a rotation's overlap, and properties other features keep there.
            var stored = new OpenIddictApplicationDescriptor();
            await applications.PopulateAsync(stored, application, cancellationToken);
            var confidential = before.ClientType == ClientTypes.Confidential;
            client!.ClientSecret = confidential ? "kept" : null;
            var descriptor = ClientRegistry.Describe(client);
            descriptor.ClientSecret = stored.ClientSecret;
            descriptor.JsonWebKeySet = stored.JsonWebKeySet;
            foreach (var (name, value) in stored.Properties.Where(p => !descriptor.Properties.ContainsKey(p.Key)))
            {
                descriptor.Properties[name] = value;
            }

            await applications.UpdateAsync(application, descriptor, cancellationToken);
            var after = await ClientViewAsync(application, cancellationToken);
            context.Audit(new AuditChange("client.update", ClientKind, clientId, after.DisplayName ?? clientId, AuditView(before), AuditView(after),
                Summary: $"client {clientId} changed"));
            return null;
        }, cancellationToken);
        verifiedSecrets.Clear();
        return problem;
    }

    public Task<(ClientSecretView? Rotated, AdminProblem? Problem)> RotateClientSecretAsync(AdminGuard guard, string clientId, SecretRotationBody body, CancellationToken cancellationToken) =>
        guard.Require(SystemEntities.Client, CrmAction.Update) is { } denied
            ? Task.FromResult<(ClientSecretView?, AdminProblem?)>((null, denied))
            : RotateClientSecretAsync(guard.Actor, clientId, body, cancellationToken);

    /// <summary>
    /// Gives a confidential client a new secret, returned this once. The secret it replaces keeps working for the overlap
    /// (default a day, at most 30 days, 0 ends it at once), so the client's instances can move over without an outage;
    /// a secret older than that (from an earlier rotation) stops at once.
    /// </summary>
    public async Task<(ClientSecretView? Rotated, AdminProblem? Problem)> RotateClientSecretAsync(AdminActor actor, string clientId, SecretRotationBody body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (clientRules.ConfigurationSetting(clientId) is { } setting)
        {
            return (null, ConfigurationManaged(clientId, setting));
        }

        if (ClientRules.ParseOverlap(body.Overlap) is not { } overlap)
        {
            return (null, AdminProblem.Invalid("overlap",
                $"overlap '{body.Overlap}' is not a duration from 0 to {ClientRules.MaxOverlap.TotalDays:0} days: use e.g. 0, 30m, 12h or 1d."));
        }

        var secret = ClientRules.NewSecret();
        DateTimeOffset? until = null;
        string? version = null;
        var problem = await changes.ApplyAsync(actor, async context =>
        {
            var application = await FreshClientAsync(clientId, cancellationToken);
            if (application is null)
            {
                return AdminProblem.NotFound("client", clientId);
            }

            var before = await ClientViewAsync(application, cancellationToken);
            if (await ClientVersionConflictAsync(context, before, body.Version, cancellationToken) is { } stale)
            {
                return stale;
            }

            var stored = new OpenIddictApplicationDescriptor();
            await applications.PopulateAsync(stored, application, cancellationToken);
            if (before.ClientType != ClientTypes.Confidential || string.IsNullOrEmpty(stored.ClientSecret))
            {
                return AdminProblem.Conflict($"The client '{clientId}' has no secret to rotate: it is a public client, or authenticates with keys.");
            }

            until = overlap > TimeSpan.Zero ? context.Now + overlap : null;
            stored.Properties.Remove(ClientRules.PreviousSecretProperty);
            if (until is { } end)
            {
                // The hash OpenIddict stored for the old secret (never the secret, which the server never had in clear).
                stored.Properties[ClientRules.PreviousSecretProperty] = ClientRules.PreviousSecretValue(stored.ClientSecret, end);
            }

            // A secret different from the stored hash: OpenIddict hashes it (PBKDF2) before it is written.
            stored.ClientSecret = secret;
            await applications.UpdateAsync(application, stored, cancellationToken);
            var after = await ClientViewAsync(application, cancellationToken);
            version = after.Version;
            context.Audit(new AuditChange("client.secret.rotate", ClientKind, clientId, after.DisplayName ?? clientId,
                new { previous_secret_valid_until = before.PreviousSecretValidUntil },
                new { previous_secret_valid_until = until, overlap = overlap.ToString("c", CultureInfo.InvariantCulture) },
                Summary: until is null ? $"client {clientId}: new secret, the old one ended at once" : $"client {clientId}: new secret, the old one works until {until.Value.UtcDateTime:yyyy-MM-dd HH:mm}Z"));
            return null;
        }, cancellationToken);
        verifiedSecrets.Clear();
        return problem is null ? (new ClientSecretView(clientId, secret, until, version), null) : (null, problem);
    }

    public Task<(RevocationSummary? Revoked, AdminProblem? Problem)> DeleteClientAsync(AdminGuard guard, string clientId, string? version, CancellationToken cancellationToken) =>
        guard.Require(SystemEntities.Client, CrmAction.Delete) is { } denied
            ? Task.FromResult<(RevocationSummary?, AdminProblem?)>((null, denied))
            : DeleteClientAsync(guard.Actor, clientId, version, cancellationToken);

    /// <summary>
    /// Removes a client. Its tokens are revoked first, in the same transaction (the incident-response cut-off, so JWT
    /// access tokens already issued are refused too, RFC 7009 §2.1), then the registration goes with its stored tokens and
    /// authorizations.
    /// </summary>
    public async Task<(RevocationSummary? Revoked, AdminProblem? Problem)> DeleteClientAsync(AdminActor actor, string clientId, string? version, CancellationToken cancellationToken)
    {
        if (clientRules.ConfigurationSetting(clientId) is { } setting)
        {
            return (null, ConfigurationManaged(clientId, setting));
        }

        RevocationSummary? summary = null;
        var problem = await changes.ApplyAsync(actor, async context =>
        {
            var application = await FreshClientAsync(clientId, cancellationToken);
            if (application is null)
            {
                return AdminProblem.NotFound("client", clientId);
            }

            var before = await ClientViewAsync(application, cancellationToken);
            if (await ClientVersionConflictAsync(context, before, version, cancellationToken) is { } stale)
            {
                return stale;
            }

            summary = await incidents.RevokeClientAsync(clientId, cancellationToken);
            await applications.DeleteAsync(application, cancellationToken);
            context.Audit(new AuditChange("client.delete", ClientKind, clientId, before.DisplayName ?? clientId, AuditView(before), null,
                Summary: string.Create(CultureInfo.InvariantCulture, $"client {clientId} deleted; {summary?.TokensRevoked ?? 0} tokens revoked")));
            return null;
        }, cancellationToken);
        verifiedSecrets.Clear();
        return problem is null ? (summary, null) : (null, problem);
    }

    /// <summary>
    /// Checks a client's fields, merged over <paramref name="current"/> (null when creating), and returns them as the
    /// registration <see cref="ClientRegistry.Describe"/> turns into permissions. Each refusal names its field.
    /// </summary>
    private (ClientSettings? Client, AdminProblem? Problem) ValidateClient(ClientBody body, bool publicClient, ClientView? current)
    {
        var displayName = body.DisplayName?.Trim() ?? current?.DisplayName ?? body.ClientId!;
        if (displayName.Length is 0 or > MaxNameLength)
        {
            return (null, AdminProblem.Invalid("display_name", $"display_name must be 1 to {MaxNameLength} characters."));
        }

        if (body.RequirePkce is false)
        {
            // RFC 9700 §2.1.1: this server requires PKCE of every client that uses the authorization code.
            return (null, AdminProblem.Invalid("require_pkce", "require_pkce cannot be false: every client must use PKCE with the authorization code (RFC 9700 §2.1.1)."));
        }

        var grants = new List<string>();
        foreach (var (name, index) in (body.GrantTypes ?? [.. current?.GrantTypes ?? []]).Select((g, i) => (g, i)))
        {
            if (clientRules.Grant(name) is not { } grant)
            {
                return (null, AdminProblem.Invalid($"grant_types[{index}]",
                    $"grant '{name}' is not offered here. Use: {string.Join(", ", clientRules.SupportedGrants.Select(ClientRules.ShortGrant))}."));
            }

            if (!grants.Contains(grant))
            {
                grants.Add(grant);
            }
        }

        if (grants.Count == 0)
        {
            return (null, AdminProblem.Invalid("grant_types", $"grant_types needs at least one of {string.Join(", ", clientRules.SupportedGrants.Select(ClientRules.ShortGrant))}."));
        }

        if (publicClient && grants.Contains(GrantTypes.ClientCredentials))
        {
            // RFC 6749 §4.4: the client credentials grant is for confidential clients only.
            return (null, AdminProblem.Invalid("grant_types", "client_credentials needs a confidential client: a public client cannot authenticate (RFC 6749 §4.4)."));
        }

        var scopes = new List<string>();
        foreach (var (scope, index) in (body.Scopes ?? [.. current?.Scopes ?? []]).Select((s, i) => (s, i)))
        {
            if (!clientRules.KnownScopes.Contains(scope))
            {
                return (null, AdminProblem.Invalid($"scopes[{index}]", $"scope '{scope}' is not one this server knows. Use: {string.Join(", ", clientRules.KnownScopes)}."));
            }

            if (!scopes.Contains(scope))
            {
                scopes.Add(scope);
            }
        }

        var redirects = body.RedirectUris ?? [.. current?.RedirectUris ?? []];
        var logouts = body.PostLogoutRedirectUris ?? [.. current?.PostLogoutRedirectUris ?? []];
        foreach (var (field, uris, registered) in new[]
        {
            ("redirect_uris", redirects, current?.RedirectUris ?? []), ("post_logout_redirect_uris", logouts, current?.PostLogoutRedirectUris ?? []),
        })
        {
            if (uris.Count > ClientRules.MaxRedirectUris)
            {
                return (null, AdminProblem.Invalid(field, $"{field} holds at most {ClientRules.MaxRedirectUris} URIs."));
            }

            foreach (var (uri, index) in uris.Select((u, i) => (u, i)))
            {
                // A URI the client already has stays (a seeded development client's http://127.0.0.1 one, say): an edit of
                // its name must not force a change of its redirects. Every URI added is checked.
                if (!registered.Contains(uri) && ClientRules.RedirectUriProblem(uri, publicClient) is { } bad)
                {
                    return (null, AdminProblem.Invalid($"{field}[{index}]", bad));
                }
            }
        }

        if (grants.Contains(GrantTypes.AuthorizationCode) && redirects.Count == 0)
        {
            // RFC 9700 §2.1: a registered redirect URI, compared exactly, is what keeps codes from going elsewhere.
            return (null, AdminProblem.Invalid("redirect_uris", "redirect_uris needs at least one URI for a client that uses authorization_code."));
        }

        var client = new ClientSettings
        {
            ClientId = body.ClientId ?? current!.ClientId,
            DisplayName = displayName,
            GrantTypes = grants,
            Scopes = scopes,
            RedirectUris = [.. redirects.Distinct(StringComparer.Ordinal)],
            PostLogoutRedirectUris = [.. logouts.Distinct(StringComparer.Ordinal)],
            FirstParty = body.FirstParty ?? current?.FirstParty ?? true,
            RequirePushedAuthorization = body.RequirePar ?? current?.RequirePar ?? false,
            RequireDpop = body.RequireDpop ?? current?.RequireDpop ?? false,
            Tenants = body.Tenants ?? [.. current?.Tenants ?? []],
        };
        var errors = new List<string>();
        ClientRegistry.ValidateTenants(client, "tenants", errors);
        return errors.Count > 0 ? (null, AdminProblem.Invalid("tenants", string.Join(" ", errors))) : (client, null);
    }

    /// <summary>A client read from the database, not the token endpoint's short-lived cache (see <see cref="VerifiedSecretCache"/>).</summary>
    private async Task<object?> FreshClientAsync(string clientId, CancellationToken cancellationToken)
    {
        verifiedSecrets.Clear();
        return await applications.FindByClientIdAsync(clientId, cancellationToken);
    }

    private async Task<ClientView> ClientViewAsync(object application, CancellationToken cancellationToken)
    {
        var descriptor = new OpenIddictApplicationDescriptor();
        await applications.PopulateAsync(descriptor, application, cancellationToken);
        var clientId = descriptor.ClientId ?? "";
        var setting = clientRules.ConfigurationSetting(clientId);
        var previous = ClientRules.PreviousSecret(descriptor.Properties.ToImmutableDictionary());
        var tenants = descriptor.Properties.TryGetValue(ClientRegistry.TenantsProperty, out var t) && t.ValueKind == JsonValueKind.Array
            ? t.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!).ToList()
            : [];
        return new ClientView(
            clientId,
            descriptor.DisplayName,
            descriptor.ClientType,
            descriptor.ConsentType != ConsentTypes.Explicit,
            [.. descriptor.RedirectUris.Select(u => u.OriginalString).Order(StringComparer.Ordinal)],
            [.. descriptor.PostLogoutRedirectUris.Select(u => u.OriginalString).Order(StringComparer.Ordinal)],
            [.. descriptor.Permissions.Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.GrantType.Length..]).Order(StringComparer.Ordinal)],
            [.. descriptor.Permissions.Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.Scope.Length..]).Order(StringComparer.Ordinal)],
            tenants,
            descriptor.Requirements.Contains(Requirements.Features.ProofKeyForCodeExchange),
            descriptor.Requirements.Contains(Requirements.Features.PushedAuthorizationRequests),
            setting is null ? ClientView.Admin : ClientView.Configuration,
            setting,
            previous is { } p && p.Until > clientRules.Time.GetUtcNow() ? p.Until : null,
            (application as OpenIddictEntityFrameworkCoreApplication)?.ConcurrencyToken,
            descriptor.Properties.TryGetValue(Protocol.Dpop.ValidateDpopProofAtTokenEndpoint.RequireDpopProperty, out var dpop) && dpop.ValueKind == JsonValueKind.True);
    }

    /// <summary>What the audit trail keeps of a client: its registration, never a secret or a secret's hash.</summary>
    private static object AuditView(ClientView client) => new
    {
        display_name = client.DisplayName,
        client_type = client.ClientType,
        first_party = client.FirstParty,
        redirect_uris = client.RedirectUris,
        post_logout_redirect_uris = client.PostLogoutRedirectUris,
        grant_types = client.GrantTypes,
        scopes = client.Scopes,
        tenants = client.Tenants,
        require_pkce = client.RequirePkce,
        require_par = client.RequirePar,
        require_dpop = client.RequireDpop,
    };

    private static Task<AdminProblem?> ClientVersionConflictAsync(ChangeContext context, ClientView client, string? expected, CancellationToken cancellationToken) =>
        expected is { Length: > 0 } e && !string.Equals(e, client.Version, StringComparison.Ordinal)
            ? ConflictAsync(context, "client", client.ClientId, client.DisplayName ?? client.ClientId, client.Version ?? "", e, cancellationToken)!
            : Task.FromResult<AdminProblem?>(null);

    /// <summary>Configuration stays the source of truth for its clients: the next start would undo a change made here.</summary>
    private static AdminProblem ConfigurationManaged(string clientId, string setting) =>
        new(StatusCodes.Status409Conflict, "Managed by configuration",
            $"The client '{clientId}' comes from the setting {setting} and is registered again from it at every start. Change it there, or remove it there to manage it here.",
            new Dictionary<string, string[]> { ["client_id"] = [$"managed by {setting}"] });
}
