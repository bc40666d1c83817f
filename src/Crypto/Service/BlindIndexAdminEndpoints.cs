using CrmSecurity.Crypto.Events;
using CrmSecurity.CrmAuthorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace CrmSecurity.Crypto.Service;

/// <summary>Defines a blind index (or confirms one already defined identically).</summary>
/// <param name="Normaliser"><c>email</c>, <c>phone-e164</c>, <c>national-id</c> or <c>exact</c>.</param>
/// <param name="Transform"><c>whole</c> (default), <c>lower-case</c>, <c>prefix-N</c> or <c>last-N</c>.</param>
/// <param name="Bits">Bits kept, 1 to 64; left out, the most the leakage planner allows beside the column's other indexes.</param>
/// <param name="ExpectedRows">Rows the table is expected to hold per tenant: required for a column not in the registry yet; given for one that is, it changes it.</param>
internal sealed record BlindIndexDefinitionRequest(string? Normaliser, string? Transform, int? Bits, long? ExpectedRows);

/// <summary>Sets a column's expected rows.</summary>
/// <param name="ExpectedRows">Rows the table is expected to hold per tenant (at least 2).</param>
internal sealed record BlindIndexColumnRequest(long? ExpectedRows);

/// <summary>The registry: every column with blind indexes, from the registry and from <c>Crypto:Columns</c>.</summary>
/// <param name="Columns">The columns.</param>
internal sealed record BlindIndexRegistryResponse(IReadOnlyList<RegisteredColumn> Columns);

/// <summary>What a change did.</summary>
/// <param name="Changed">False when the registry already held what was asked (nothing written, nothing audited).</param>
/// <param name="Column">The column after the change.</param>
internal sealed record BlindIndexChangeResponse(bool Changed, RegisteredColumn? Column);

/// <summary>
/// The encryption service's admin API: the blind-index registry (<see cref="BlindIndexRegistry"/>) under
/// <c>/crypto/v1/admin/blind-indexes</c>. Like every endpoint of the service it takes this server's access tokens for
/// the crypto audience, with a scope of its own (<c>crypto:admin</c>); the scope alone is not enough: the caller's
/// privileges in the authorization model decide (<see cref="ICryptoAdministrators"/>: field security profiles, read to
/// list, create/update/delete to change). Every change, and every refused attempt to change, is an <c>admin_change</c>
/// access event through the module's event sink.
/// </summary>
internal static class BlindIndexAdminEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/crypto/v1/admin/blind-indexes").WithTags("Crypto admin")
            .DisableAntiforgery()
            .RequireAuthorization(CryptoServiceAuthentication.AdminScope)
            .AddEndpointFilter(async (context, next) =>
            {
                // RFC 9111 §5.2.2.5: an answer about who may search what is nobody's to keep.
                context.HttpContext.Response.Headers.CacheControl = "no-store";
                return await next(context);
            });
        group.MapGet("", ListAsync);
        group.MapPut("/{table}/{column}", SetRowsAsync);
        group.MapPut("/{table}/{column}/{name}", DefineAsync);
        group.MapDelete("/{table}/{column}/{name}", RemoveAsync);
    }

    internal static async Task<Results<Ok<BlindIndexRegistryResponse>, ProblemHttpResult>> ListAsync(
        HttpContext http, BlindIndexRegistry registry, CryptoColumns columns, ICryptoAdministrators admins, ICryptoEventSink events, TimeProvider time)
    {
        if (await AuthorizeAsync(http, admins, CrmAction.Read, null, events, time) is (_, { } refusal))
        {
            return refusal;
        }

        var registered = await registry.ListAsync(http.RequestAborted);
        var configured = columns.ConfiguredWithIndexes.Select(c => new RegisteredColumn(
            c.Table, c.Column, "configuration", columns.ConfiguredRows(c.Table, c.Column),
            [.. c.Indexes.Values.Select(i => new RegisteredIndex(i.Name, i.Normaliser.Name, i.Transform.Name, i.Bits, null, null))],
            RegisteredPlan.Of(c.Plan)));
        return TypedResults.Ok(new BlindIndexRegistryResponse([.. configured.Concat(registered)
            .OrderBy(c => c.Table, StringComparer.Ordinal).ThenBy(c => c.Column, StringComparer.Ordinal)]));
    }

    internal static async Task<Results<Ok<BlindIndexChangeResponse>, ValidationProblem, ProblemHttpResult>> DefineAsync(
        string table, string column, string name, BlindIndexDefinitionRequest request, HttpContext http,
        BlindIndexRegistry registry, CryptoColumns columns, ICryptoAdministrators admins, ICryptoEventSink events, TimeProvider time)
    {
        var (actor, refusal) = await AuthorizeAsync(http, admins, CrmAction.Create, (table, column), events, time);
        return refusal ?? Answer(await registry.DefineAsync(
            table, column, name, request.Normaliser, request.Transform, request.Bits, request.ExpectedRows, actor, columns, events, http.RequestAborted));
    }

    internal static async Task<Results<Ok<BlindIndexChangeResponse>, ValidationProblem, ProblemHttpResult>> SetRowsAsync(
        string table, string column, BlindIndexColumnRequest request, HttpContext http,
        BlindIndexRegistry registry, CryptoColumns columns, ICryptoAdministrators admins, ICryptoEventSink events, TimeProvider time)
    {
        var (actor, refusal) = await AuthorizeAsync(http, admins, CrmAction.Update, (table, column), events, time);
        return refusal ?? Answer(await registry.SetRowsAsync(table, column, request.ExpectedRows, actor, columns, events, http.RequestAborted));
    }

    internal static async Task<Results<Ok<BlindIndexChangeResponse>, ValidationProblem, ProblemHttpResult>> RemoveAsync(
        string table, string column, string name, HttpContext http,
        BlindIndexRegistry registry, CryptoColumns columns, ICryptoAdministrators admins, ICryptoEventSink events, TimeProvider time)
    {
        var (actor, refusal) = await AuthorizeAsync(http, admins, CrmAction.Delete, (table, column), events, time);
        return refusal ?? Answer(await registry.RemoveAsync(table, column, name, actor, columns, events, http.RequestAborted));
    }

    private static Results<Ok<BlindIndexChangeResponse>, ValidationProblem, ProblemHttpResult> Answer(RegistryChange change) => change.Status switch
    {
        RegistryChange.Changed => TypedResults.Ok(new BlindIndexChangeResponse(true, change.Column)),
        RegistryChange.Unchanged => TypedResults.Ok(new BlindIndexChangeResponse(false, change.Column)),
        RegistryChange.Invalid => TypedResults.ValidationProblem(change.Errors),
        _ => TypedResults.Problem(new HttpValidationProblemDetails(change.Errors)
        {
            Status = change.Status,
            Title = change.Status == RegistryChange.NotFound ? "No such blind index" : "Conflicts with the registry",
            Detail = string.Join(" ", change.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")),
        }),
    };

    /// <summary>
    /// Deny by default: the model must allow the action (design.md, trust boundaries: every privilege check goes through
    /// the model). A refused change is audited as <c>denied</c>, so probing the registry leaves a trace.
    /// </summary>
    private static async Task<(RegistryActor Actor, ProblemHttpResult? Refusal)> AuthorizeAsync(
        HttpContext http, ICryptoAdministrators admins, CrmAction action, (string Table, string Column)? target, ICryptoEventSink events, TimeProvider time)
    {
        var caller = CryptoCaller.Of(http.User);
        var sourceIp = http.Connection.RemoteIpAddress?.ToString();
        var decision = await admins.CheckAsync(http.User, action, sourceIp, http.RequestAborted);
        var actor = new RegistryActor(decision.UserId ?? caller.Name, caller.ClientId, sourceIp);
        if (decision.Allowed)
        {
            return (actor, null);
        }

        if (target is { } at)
        {
            await events.WriteAsync(
                BlindIndexRegistry.Event(actor, at.Table, at.Column, "denied", $"blind-index registry: {action.ToString().ToLowerInvariant()} refused: {decision.Reason}", time.GetUtcNow()),
                http.RequestAborted);
        }

        return (actor, TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not allowed to administer the blind-index registry", detail: decision.Reason));
    }
}
