using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CrmSecurity.Crypto.BlindIndexes;
using CrmSecurity.Crypto.Events;
using CrmSecurity.Crypto.Fields;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace CrmSecurity.Crypto.Service;

/// <summary>Encrypts one value for a field of a row (context binding: tenant, table, column, row id).</summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Table">The table (entity).</param>
/// <param name="Column">The column (field).</param>
/// <param name="RowId">The row's primary key as text; required for randomized mode, not used by deterministic mode.</param>
/// <param name="Mode"><c>randomized</c> (AES-256-GCM, default) or <c>deterministic</c> (AES-SIV, for equality lookups).</param>
/// <param name="Plaintext">The value.</param>
/// <param name="Subject">
/// Optional data subject (a contact id, say): the value is encrypted under that subject's own key, so shredding the
/// subject (<c>POST /crypto/v1/subjects/{subject}/shred</c>) makes it unreadable for good. Randomized mode only.
/// </param>
internal sealed record EncryptRequest(string? Tenant, string? Table, string? Column, string? RowId, string? Mode, string? Plaintext, string? Subject = null);

internal sealed record EncryptResponse(string Ciphertext, uint KeyVersion);

/// <summary>Decrypts one value; the context must be the one it was encrypted for.</summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Table">The table (entity).</param>
/// <param name="Column">The column (field).</param>
/// <param name="RowId">
/// The record the value was read from: required in randomized mode (the value is bound to it); in deterministic mode
/// optional, naming the record for the access check and the audit (the value itself is bound to the column only).
/// </param>
/// <param name="Mode"><c>randomized</c> (default) or <c>deterministic</c>.</param>
/// <param name="Ciphertext">The value as stored (<c>cf1:...</c>).</param>
/// <param name="Record">
/// Where the record lives, as in <c>POST /authz/v1/check</c> (<c>owner</c>, <c>owner_kind</c>, <c>business_unit</c>,
/// <c>shares</c>): believed only from the CRM app's back end (its own token, or one it exchanged for the user).
/// </param>
/// <param name="Subject">The data subject the value was encrypted for, when it was (the same as on encrypt).</param>
internal sealed record DecryptRequest(string? Tenant, string? Table, string? Column, string? RowId, string? Mode, string? Ciphertext, CrmAuthorization.CrmRecord? Record = null, string? Subject = null);

internal sealed record DecryptResponse(string Plaintext);

/// <summary>Computes a declared blind index of a value (or of a search fragment, for partial indexes).</summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Table">The table (entity).</param>
/// <param name="Column">The column (field).</param>
/// <param name="Index">The index name, as declared for the column in <c>Crypto:Columns</c>.</param>
/// <param name="Normaliser">Optional; when given it must be the declared one.</param>
/// <param name="Bits">Optional; when given it must be the planned number (the caller does not choose the leakage).</param>
/// <param name="Transform">Optional; when given it must be the declared one.</param>
/// <param name="Value">The value (or fragment) to index.</param>
/// <param name="Fragment">True when <paramref name="Value"/> is a search fragment for a partial index.</param>
internal sealed record BlindIndexRequest(
    string? Tenant, string? Table, string? Column, string? Index, string? Normaliser, int? Bits, string? Transform, string? Value, bool Fragment);

/// <summary>A blind index: the value to store, and what to look for.</summary>
/// <param name="Index">Lower-case hex of the index under the primary version of <c>blind-index</c>: store this one.</param>
/// <param name="Bits">Bits kept.</param>
/// <param name="KeyVersion">The <c>blind-index</c> version <paramref name="Index"/> is under.</param>
/// <param name="Lookup">
/// Every index to look for, primary first: one per version not destroyed. Outside a blind-index rotation it is
/// <paramref name="Index"/> alone; in a rotation's window stored rows may hold either version, so a lookup is
/// <c>WHERE idx IN (lookup...)</c> (docs/crypto-operations.md).
/// </param>
internal sealed record BlindIndexResponse(string Index, int Bits, uint KeyVersion, IReadOnlyList<string> Lookup);

/// <summary>
/// Moves one stored value to the keyset's current key version without the plaintext leaving the service; the context
/// is the one the value was encrypted for, and the new value is bound to the same context.
/// </summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Table">The table (entity).</param>
/// <param name="Column">The column (field).</param>
/// <param name="RowId">The row the value is bound to: required in randomized mode, empty in deterministic mode.</param>
/// <param name="Mode"><c>randomized</c> (default) or <c>deterministic</c>.</param>
/// <param name="Ciphertext">The value as stored (<c>cf1:...</c>).</param>
/// <param name="Subject">The data subject the value was encrypted for, when it was (its key has one version: the value comes back as it was).</param>
internal sealed record RewrapRequest(string? Tenant, string? Table, string? Column, string? RowId, string? Mode, string? Ciphertext, string? Subject = null);

/// <summary>Shreds a data subject of a tenant.</summary>
/// <param name="Tenant">The tenant the subject belongs to.</param>
internal sealed record ShredRequest(string? Tenant);

/// <summary>What the shred did.</summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Subject">The data subject.</param>
/// <param name="Outcome"><c>key_destroyed</c>, <c>tombstone_recorded</c> (the subject had no key) or <c>already_shredded</c> (nothing changed).</param>
internal sealed record ShredResponse(string Tenant, string Subject, string Outcome);

/// <summary>The value under the current key version, and the version it was under.</summary>
/// <param name="Ciphertext">The value to store (the same text when it already was under the current version).</param>
/// <param name="KeyVersion">The version it is under now.</param>
/// <param name="PreviousKeyVersion">The version it was under.</param>
internal sealed record RewrapResponse(string Ciphertext, uint KeyVersion, uint PreviousKeyVersion);

/// <summary>
/// The encryption service for CRM apps not on .NET: encrypt, decrypt, blind-index and rewrap over HTTP, one value per
/// call or a batch of them (<see cref="CryptoBatches"/>), with OAuth access tokens of this server. Decrypt needs the
/// <c>crypto:decrypt</c> scope and a <c>read_unmasked</c> grant on the field from <see cref="IUnmaskedFieldAccess"/>;
/// every decrypt, allowed or not, is a <c>decrypt</c> access event, and every rewrap an <c>update</c> one.
/// </summary>
internal static class CryptoServiceEndpoints
{
    /// <summary>Largest request body: a value of <see cref="MaxPlaintextBytes"/> in JSON with its context fits.</summary>
    public const int MaxRequestBytes = 256 * 1024;

    /// <summary>Largest plaintext, in UTF-8 bytes (CRM field values; documents belong in a file store).</summary>
    public const int MaxPlaintextBytes = 64 * 1024;

    /// <summary>Blind indexes are kept short on purpose: long ones leak more about low-entropy values.</summary>
    public const int MaxIndexBits = 64;

    /// <summary>Most shares one decrypt request may declare for its record.</summary>
    public const int MaxShares = 100;

    private const string Randomized = "randomized";
    private const string Deterministic = "deterministic";

    // Base64url of the largest plaintext plus overhead, with room for the prefix.
    private static readonly int MaxCiphertextChars = ((MaxPlaintextBytes + 128) * 4 / 3) + 16;

    public static IEndpointRouteBuilder Map(IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/crypto/v1").WithTags("Crypto")
            .WithMetadata(new RequestSizeLimitAttribute(MaxRequestBytes))
            .DisableAntiforgery()
            .AddEndpointFilter(async (context, next) =>
            {
                // Plaintexts, ciphertexts and blind indexes are nobody's to keep: no shared or private cache may store
                // an answer (RFC 9111 §5.2.2.5; OWASP ASVS 4.0.3 V8.2.1).
                context.HttpContext.Response.Headers.CacheControl = "no-store";
                context.HttpContext.Response.Headers.Pragma = "no-cache";
                return await next(context);
            });
        group.MapPost("/encrypt", EncryptAsync).RequireAuthorization(CryptoServiceAuthentication.EncryptScope);
        group.MapPost("/decrypt", DecryptAsync).RequireAuthorization(CryptoServiceAuthentication.DecryptScope);
        group.MapPost("/blind-index", ComputeBlindIndexAsync).RequireAuthorization(CryptoServiceAuthentication.IndexScope);
        group.MapPost("/rewrap", RewrapAsync).RequireAuthorization(CryptoServiceAuthentication.RewrapScope);
        group.MapPost("/subjects/{subject}/shred", ShredAsync).RequireAuthorization(CryptoServiceAuthentication.ShredScope);

        // A batch carries many values, so its body may be larger (Crypto:Service:MaxBatchRequestBytes, read once the
        // settings have been validated at start); its item count is checked in the handler.
        var limit = new BatchSizeLimit(endpoints.ServiceProvider);
        group.MapPost("/encrypt/batch", CryptoBatches.EncryptAsync).RequireAuthorization(CryptoServiceAuthentication.EncryptScope).WithMetadata(limit);
        group.MapPost("/decrypt/batch", CryptoBatches.DecryptAsync).RequireAuthorization(CryptoServiceAuthentication.DecryptScope).WithMetadata(limit);
        group.MapPost("/blind-index/batch", CryptoBatches.ComputeBlindIndexAsync).RequireAuthorization(CryptoServiceAuthentication.IndexScope).WithMetadata(limit);
        group.MapPost("/rewrap/batch", CryptoBatches.RewrapAsync).RequireAuthorization(CryptoServiceAuthentication.RewrapScope).WithMetadata(limit);
        BlindIndexAdminEndpoints.Map(endpoints);
        return endpoints;
    }

    internal static async Task<Results<Ok<EncryptResponse>, ValidationProblem, ProblemHttpResult>> EncryptAsync(
        EncryptRequest request, HttpContext http, FieldEncryption encryption, CryptoColumns columns)
    {
        using var ciphers = new ColumnCiphers(encryption.Keyring, encryption.SubjectKeys);
        return (await EncryptOneAsync(request, http, CryptoCaller.Of(http.User), ciphers, columns)).ToResult();
    }

    internal static async Task<Results<Ok<DecryptResponse>, ValidationProblem, ProblemHttpResult>> DecryptAsync(
        DecryptRequest request, HttpContext http, FieldEncryption encryption, IUnmaskedFieldAccess access, CryptoColumns columns, TimeProvider time)
    {
        using var ciphers = new ColumnCiphers(encryption.Keyring, encryption.SubjectKeys);
        return (await DecryptOneAsync(request, http, CryptoCaller.Of(http.User), ciphers, encryption, access, columns, time)).ToResult();
    }

    internal static async Task<Results<Ok<BlindIndexResponse>, ValidationProblem, ProblemHttpResult>> ComputeBlindIndexAsync(
        BlindIndexRequest request, HttpContext http, FieldEncryption encryption, CryptoColumns columns)
    {
        using var ciphers = new ColumnCiphers(encryption.Keyring, encryption.SubjectKeys);
        return (await ComputeBlindIndexOneAsync(request, http, CryptoCaller.Of(http.User), ciphers, columns)).ToResult();
    }

    internal static async Task<Results<Ok<RewrapResponse>, ValidationProblem, ProblemHttpResult>> RewrapAsync(
        RewrapRequest request, HttpContext http, FieldEncryption encryption, CryptoColumns columns, TimeProvider time)
    {
        using var ciphers = new ColumnCiphers(encryption.Keyring, encryption.SubjectKeys);
        return (await RewrapOneAsync(request, http, CryptoCaller.Of(http.User), ciphers, encryption, columns, time)).ToResult();
    }

    /// <summary>One encrypt, the same for a single call and for each item of a batch.</summary>
    internal static async ValueTask<ItemOutcome<EncryptResponse>> EncryptOneAsync(
        EncryptRequest request, HttpContext http, CryptoCaller caller, ColumnCiphers ciphers, CryptoColumns columns)
    {
        var errors = new Dictionary<string, string[]>();
        var mode = CheckMode(request.Mode, errors);
        var context = CheckContext(request.Tenant, request.Table, request.Column, errors);
        CheckDeterministicAllowed(mode, context, columns, errors);
        var rowId = CheckRowId(request.RowId, mode, errors);
        CheckSubject(request.Subject, mode, ciphers, errors);
        if (request.Plaintext is null)
        {
            errors["plaintext"] = ["plaintext is required (an empty string is allowed)."];
        }
        else if (Encoding.UTF8.GetByteCount(request.Plaintext) > MaxPlaintextBytes)
        {
            errors["plaintext"] = [$"plaintext is longer than {MaxPlaintextBytes} UTF-8 bytes."];
        }

        if (errors.Count > 0 || context is null)
        {
            return ItemProblem.Invalid(errors);
        }

        if (await caller.TenantRefusalAsync(http, context.Tenant) is { } refusal)
        {
            return ItemProblem.TenantRefused(refusal);
        }

        if (mode == Deterministic)
        {
            var encryptor = ciphers.Deterministic(context);
            return new EncryptResponse(encryptor.EncryptText(request.Plaintext!), encryptor.PrimaryVersion);
        }

        if (request.Subject is { } subject)
        {
            FieldEncryptor subjectEncryptor;
            try
            {
                subjectEncryptor = await ciphers.SubjectAsync(context, subject, create: true, http.RequestAborted);
            }
            catch (FieldDecryptionException e) when (e.Reason == DecryptFailureReason.SubjectShredded)
            {
                // A shredded subject never gets a key again, so nothing new can be written for it.
                return ItemProblem.SubjectShredded(e);
            }

            return new EncryptResponse(subjectEncryptor.EncryptText(request.Plaintext!, rowId!), subjectEncryptor.PrimaryVersion);
        }

        var randomized = ciphers.Randomized(context);
        return new EncryptResponse(randomized.EncryptText(request.Plaintext!, rowId!), randomized.PrimaryVersion);
    }

    /// <summary>One decrypt, the same for a single call and for each item of a batch: one access event unless malformed.</summary>
    internal static async ValueTask<ItemOutcome<DecryptResponse>> DecryptOneAsync(
        DecryptRequest request, HttpContext http, CryptoCaller caller, ColumnCiphers ciphers, FieldEncryption encryption, IUnmaskedFieldAccess access, CryptoColumns columns, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        var mode = CheckMode(request.Mode, errors);
        var context = CheckContext(request.Tenant, request.Table, request.Column, errors);
        CheckDeterministicAllowed(mode, context, columns, errors);
        var rowId = CheckRowId(request.RowId, mode, errors, decrypting: true);
        CheckRecord(request.Record, rowId, errors);
        CheckSubject(request.Subject, mode, ciphers, errors);
        CheckCiphertext(request.Ciphertext, errors);
        if (errors.Count > 0 || context is null)
        {
            // Nothing was decrypted and no field was named validly: a malformed request, not an access attempt.
            return ItemProblem.Invalid(errors);
        }

        var cancellationToken = http.RequestAborted;
        var audit = AccessEvent(time, caller, http, "decrypt", context, rowId);
        if (await caller.TenantRefusalAsync(http, context.Tenant) is { } refusal)
        {
            await encryption.Events.WriteAsync(audit with { Outcome = "denied", Details = refusal }, cancellationToken);
            return ItemProblem.TenantRefused(refusal);
        }

        // Where the record lives is believed only from the CRM app's back end; a user's own token could claim any record.
        var trusted = request.Record is not null && await caller.MayDeclareRecordLocationAsync(http);
        var unmasked = new UnmaskedFieldRequest(context.Tenant, context.Table, context.Column, rowId, trusted ? request.Record : null, UntrustedLocation: request.Record is not null && !trusted);

        // Deny by default: the record check of the decision API and an explicit read_unmasked grant on this field must
        // both allow before the value is decrypted (design.md, field security profiles; OWASP ASVS 4.0.3 V4.2.1).
        var decision = await access.CheckAsync(http.User, unmasked, cancellationToken);
        if (!decision.Allowed)
        {
            await encryption.Events.WriteAsync(audit with { Outcome = "denied", Details = decision.Reason }, cancellationToken);
            return new ItemProblem(
                StatusCodes.Status403Forbidden,
                "Decrypt refused",
                $"The caller may not see {context.Table}.{context.Column} of this record unmasked: {decision.Reason}",
                []);
        }

        string plaintext;
        try
        {
            plaintext = mode == Deterministic
                ? ciphers.Deterministic(context).DecryptText(request.Ciphertext!)
                : request.Subject is { } subject
                    ? (await ciphers.SubjectAsync(context, subject, create: false, cancellationToken)).DecryptText(request.Ciphertext!, rowId!)
                    : ciphers.Randomized(context).DecryptText(request.Ciphertext!, rowId!);
        }
        catch (FieldDecryptionException e)
        {
            // Authenticated decryption (NIST SP 800-38D §7.2) releases nothing when the tag fails: no partial plaintext exists.
            await encryption.Events.WriteAsync(audit with { Outcome = "error", Details = $"{decision.Reason}; not decrypted: {e.Reason}" }, cancellationToken);
            return ItemProblem.NotDecrypted(e);
        }

        await encryption.Events.WriteAsync(audit with { Details = decision.Reason }, cancellationToken);
        return new DecryptResponse(plaintext);
    }

    /// <summary>One blind index, the same for a single call and for each item of a batch.</summary>
    internal static async ValueTask<ItemOutcome<BlindIndexResponse>> ComputeBlindIndexOneAsync(
        BlindIndexRequest request, HttpContext http, CryptoCaller caller, ColumnCiphers ciphers, CryptoColumns columns)
    {
        var errors = new Dictionary<string, string[]>();
        var context = CheckContext(request.Tenant, request.Table, request.Column, errors);
        var definition = context is null ? null : CheckIndex(request, columns.Find(context.Table, context.Column), errors);
        if (request.Value is null)
        {
            errors["value"] = ["value is required."];
        }
        else if (Encoding.UTF8.GetByteCount(request.Value) > MaxPlaintextBytes)
        {
            errors["value"] = [$"value is longer than {MaxPlaintextBytes} UTF-8 bytes."];
        }

        if (errors.Count > 0 || context is null || definition is null)
        {
            return ItemProblem.Invalid(errors);
        }

        if (await caller.TenantRefusalAsync(http, context.Tenant) is { } refusal)
        {
            return ItemProblem.TenantRefused(refusal);
        }

        var indexes = ciphers.LookupIndexes(context, definition);
        List<string> values;
        try
        {
            values = [.. indexes.Select(index => Convert.ToHexStringLower(request.Fragment ? index.ComputeFragment(request.Value!) : index.Compute(request.Value!)))];
        }
        catch (FormatException e)
        {
            // The normaliser's message names the expected kind, never the value.
            return ItemProblem.Invalid(new Dictionary<string, string[]> { ["value"] = [e.Message] });
        }

        return new BlindIndexResponse(values[0], definition.Bits, indexes[0].KeyVersion, values);
    }

    /// <summary>
    /// One rewrap, the same for a single call and for each item of a batch: the value is opened and sealed again under
    /// the primary version inside the service, for the very context it was opened with, so it cannot change tenant,
    /// table, column or row, and the plaintext never reaches the caller. One <c>update</c> access event unless malformed.
    /// </summary>
    internal static async ValueTask<ItemOutcome<RewrapResponse>> RewrapOneAsync(
        RewrapRequest request, HttpContext http, CryptoCaller caller, ColumnCiphers ciphers, FieldEncryption encryption, CryptoColumns columns, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        var mode = CheckMode(request.Mode, errors);
        var context = CheckContext(request.Tenant, request.Table, request.Column, errors);
        CheckDeterministicAllowed(mode, context, columns, errors);
        var rowId = CheckRowId(request.RowId, mode, errors);
        CheckSubject(request.Subject, mode, ciphers, errors);
        CheckCiphertext(request.Ciphertext, errors);
        if (errors.Count > 0 || context is null)
        {
            return ItemProblem.Invalid(errors);
        }

        var cancellationToken = http.RequestAborted;
        var audit = AccessEvent(time, caller, http, "update", context, rowId);
        if (await caller.TenantRefusalAsync(http, context.Tenant) is { } refusal)
        {
            await WriteRewrapEventAsync(encryption, audit with { Outcome = "denied", Details = $"rewrap refused: {refusal}" }, cancellationToken);
            return ItemProblem.TenantRefused(refusal);
        }

        byte[]? plaintext = null;
        try
        {
            var stored = FieldText.Decode(request.Ciphertext!);
            var previous = FieldCiphertext.Inspect(stored).KeyVersion;
            string ciphertext;
            uint version;
            if (mode == Deterministic)
            {
                var encryptor = ciphers.Deterministic(context);
                plaintext = encryptor.Decrypt(stored);
                (ciphertext, version) = previous == encryptor.PrimaryVersion
                    ? (request.Ciphertext!, previous)
                    : (FieldText.Encode(encryptor.Encrypt(plaintext)), encryptor.PrimaryVersion);
            }
            else
            {
                var encryptor = request.Subject is { } subject
                    ? await ciphers.SubjectAsync(context, subject, create: false, cancellationToken)
                    : ciphers.Randomized(context);
                plaintext = encryptor.Decrypt(stored, rowId!);
                // Already current: verified all the same (the tag and the binding), then left as it is, so a rotation job
                // that sees the same text back knows there is nothing to write.
                (ciphertext, version) = previous == encryptor.PrimaryVersion
                    ? (request.Ciphertext!, previous)
                    : (FieldText.Encode(encryptor.Encrypt(plaintext, rowId!)), encryptor.PrimaryVersion);
            }

            await WriteRewrapEventAsync(encryption, audit with { Details = string.Create(CultureInfo.InvariantCulture, $"rewrap: key version {previous} -> {version}") }, cancellationToken);
            return new RewrapResponse(ciphertext, version, previous);
        }
        catch (FieldDecryptionException e)
        {
            await WriteRewrapEventAsync(encryption, audit with { Outcome = "error", Details = $"rewrap: not decrypted: {e.Reason}" }, cancellationToken);
            return ItemProblem.NotDecrypted(e);
        }
        finally
        {
            if (plaintext is not null)
            {
                CryptographicOperations.ZeroMemory(plaintext);
            }
        }
    }

    /// <summary>
    /// Crypto-shreds one data subject of a tenant, with the CLI verb's steps (<c>keys shred</c>:
    /// <see cref="Subjects.SubjectKeyStore"/>: tombstone in the data database first, then the key destroyed), so every
    /// value encrypted for the subject, in every copy, stays unreadable for good. Tenant-bound like every call; needs
    /// <c>crypto:shred</c>, a scope no other implies. Idempotent: a repeat answers <c>already_shredded</c>. Audited once
    /// per effect: the shred that destroyed the key (or recorded the tombstone) is one <c>admin_change</c> event, a
    /// refused one a <c>denied</c> event, a repeat none. The caller clears its own blind indexes of the subject.
    /// </summary>
    internal static async Task<Results<Ok<ShredResponse>, ValidationProblem, ProblemHttpResult>> ShredAsync(
        string subject, ShredRequest? request, HttpContext http, FieldEncryption encryption, TimeProvider time)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrEmpty(request?.Tenant))
        {
            errors["tenant"] = ["tenant is required: a data subject is shredded within its tenant."];
        }
        else if (Encoding.UTF8.GetByteCount(request.Tenant) > FieldContext.MaxNameBytes)
        {
            errors["tenant"] = [$"tenant is longer than {FieldContext.MaxNameBytes} UTF-8 bytes."];
        }

        if (string.IsNullOrWhiteSpace(subject) || Encoding.UTF8.GetByteCount(subject) > FieldContext.MaxNameBytes)
        {
            errors["subject"] = [$"subject must be 1 to {FieldContext.MaxNameBytes} UTF-8 bytes."];
        }

        if (encryption.SubjectKeys is null)
        {
            errors["subject"] = ["data-subject keys are not configured in this service."];
        }

        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }

        var caller = CryptoCaller.Of(http.User);
        var tenant = request!.Tenant!;
        CryptoAccessEvent WithCaller(CryptoAccessEvent e) => e with { ClientId = caller.ClientId, SourceIp = http.Connection.RemoteIpAddress?.ToString() };
        if (await caller.TenantRefusalAsync(http, tenant) is { } refusal)
        {
            await encryption.Events.WriteAsync(
                WithCaller(new CryptoAccessEvent(time.GetUtcNow(), caller.Name, "admin_change", "denied")
                {
                    Tenant = tenant, Entity = "data_subject", RecordId = subject, Privilege = "crypto_shred", Details = $"crypto_shred refused: {refusal}",
                }),
                http.RequestAborted);
            return ItemProblem.TenantRefused(refusal).ToResult<ShredResponse>();
        }

        var outcome = await encryption.SubjectKeys!.ShredOnceAsync(tenant, subject, caller.Name, WithCaller, http.RequestAborted);
        return TypedResults.Ok(new ShredResponse(tenant, subject, outcome switch
        {
            Subjects.SubjectShredOutcome.KeyDestroyed => "key_destroyed",
            Subjects.SubjectShredOutcome.TombstoneRecorded => "tombstone_recorded",
            _ => "already_shredded",
        }));
    }

    /// <summary>A data subject's key is a randomized-mode key of its own; deterministic values stay under the column's key.</summary>
    private static void CheckSubject(string? subject, string? mode, ColumnCiphers ciphers, Dictionary<string, string[]> errors)
    {
        if (subject is null)
        {
            return;
        }

        if (subject.Length == 0 || Encoding.UTF8.GetByteCount(subject) > FieldContext.MaxNameBytes)
        {
            errors["subject"] = [$"subject must be 1 to {FieldContext.MaxNameBytes} UTF-8 bytes (or left out)."];
        }
        else if (mode == Deterministic)
        {
            errors["subject"] = ["subject is for randomized mode only: a deterministic value is looked up across subjects, so it cannot be under one subject's key."];
        }
        else if (!ciphers.HasSubjectKeys)
        {
            errors["subject"] = ["data-subject keys are not configured in this service."];
        }
    }

    private static async ValueTask WriteRewrapEventAsync(FieldEncryption encryption, CryptoAccessEvent audit, CancellationToken cancellationToken)
    {
        CryptoMetrics.Rewraps.Add(1, new KeyValuePair<string, object?>("outcome", audit.Outcome));
        await encryption.Events.WriteAsync(audit, cancellationToken);
    }

    /// <summary>The access event of one value: who (token subject, client, address), what (tenant, entity, record, field).</summary>
    private static CryptoAccessEvent AccessEvent(TimeProvider time, CryptoCaller caller, HttpContext http, string action, FieldContext context, string? rowId) =>
        new(time.GetUtcNow(), caller.Name, action, "success")
        {
            Tenant = context.Tenant,
            Entity = context.Table,
            RecordId = rowId,
            Fields = [context.Column],
            ClientId = caller.ClientId,
            SourceIp = http.Connection.RemoteIpAddress?.ToString(),
        };

    private static void CheckCiphertext(string? ciphertext, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrEmpty(ciphertext))
        {
            errors["ciphertext"] = ["ciphertext is required."];
        }
        else if (ciphertext.Length > MaxCiphertextChars)
        {
            errors["ciphertext"] = [$"ciphertext is longer than {MaxCiphertextChars} characters, more than any value of at most {MaxPlaintextBytes} bytes encrypts to."];
        }
    }

    private static string? CheckMode(string? mode, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrEmpty(mode) || mode == Randomized)
        {
            return Randomized;
        }

        if (mode == Deterministic)
        {
            return Deterministic;
        }

        errors["mode"] = [$"mode must be '{Randomized}' (default) or '{Deterministic}'."];
        return null;
    }

    private static FieldContext? CheckContext(string? tenant, string? table, string? column, Dictionary<string, string[]> errors)
    {
        foreach (var (name, value) in new[] { ("tenant", tenant), ("table", table), ("column", column) })
        {
            if (string.IsNullOrEmpty(value))
            {
                errors[name] = [$"{name} is required: every value is bound to its tenant, table and column."];
            }
            else if (Encoding.UTF8.GetByteCount(value) > FieldContext.MaxNameBytes)
            {
                errors[name] = [$"{name} is longer than {FieldContext.MaxNameBytes} UTF-8 bytes."];
            }
        }

        return errors.ContainsKey("tenant") || errors.ContainsKey("table") || errors.ContainsKey("column")
            ? null
            : new FieldContext(tenant!, table!, column!);
    }

    private static string? CheckRowId(string? rowId, string? mode, Dictionary<string, string[]> errors, bool decrypting = false)
    {
        if (mode == Deterministic)
        {
            // Deterministic ciphertexts are bound to the column only, so equal values match across rows. A decrypt may
            // still name the record the value was read from: for the record check and the audit, not for the binding.
            if (!string.IsNullOrEmpty(rowId) && !decrypting)
            {
                errors["rowId"] = ["rowId must be empty when encrypting in deterministic mode (deterministic values are bound to the column, not the row)."];
            }
            else if (rowId is not null && Encoding.UTF8.GetByteCount(rowId) > FieldEncryptor.MaxRowIdBytes)
            {
                errors["rowId"] = [$"rowId is longer than {FieldEncryptor.MaxRowIdBytes} UTF-8 bytes."];
            }

            return decrypting && !string.IsNullOrEmpty(rowId) ? rowId : null;
        }

        if (string.IsNullOrEmpty(rowId))
        {
            errors["rowId"] = ["rowId is required in randomized mode: the value is bound to its row."];
        }
        else if (Encoding.UTF8.GetByteCount(rowId) > FieldEncryptor.MaxRowIdBytes)
        {
            errors["rowId"] = [$"rowId is longer than {FieldEncryptor.MaxRowIdBytes} UTF-8 bytes."];
        }

        return rowId;
    }

    /// <summary>The declared record location: the decision API's names, and the record id (if given) is the rowId.</summary>
    private static void CheckRecord(CrmAuthorization.CrmRecord? record, string? rowId, Dictionary<string, string[]> errors)
    {
        if (record is null)
        {
            return;
        }

        if (string.IsNullOrEmpty(rowId))
        {
            errors["rowId"] = ["rowId is required with a record: the location describes the record the value was read from."];
        }
        else if (record.Id is not null && !string.Equals(record.Id, rowId, StringComparison.Ordinal))
        {
            errors["record.id"] = ["record.id must be the rowId (or be left out): a value is checked against the record it is bound to."];
        }

        if (record.OwnerKind is { } kind && !CrmAuthorization.CrmNames.TryParsePrincipal(kind, out _))
        {
            errors["record.owner_kind"] = [$"unknown owner kind '{kind}' (use user or team)."];
        }

        foreach (var (name, value) in new[] { ("record.owner", record.Owner), ("record.business_unit", record.BusinessUnit) })
        {
            if (value is not null && Encoding.UTF8.GetByteCount(value) > FieldContext.MaxNameBytes)
            {
                errors[name] = [$"{name} is longer than {FieldContext.MaxNameBytes} UTF-8 bytes."];
            }
        }

        if (record.Shares is { } shares)
        {
            if (shares.Count > MaxShares)
            {
                errors["record.shares"] = [$"record.shares holds more than {MaxShares} shares."];
                return;
            }

            for (var i = 0; i < shares.Count; i++)
            {
                if (shares[i] is not { } share || string.IsNullOrEmpty(share.Principal))
                {
                    errors[$"record.shares[{i}].principal"] = ["principal is required."];
                    continue;
                }

                if (!CrmAuthorization.CrmNames.TryParsePrincipal(share.Kind, out _))
                {
                    errors[$"record.shares[{i}].kind"] = [$"unknown kind '{share.Kind}' (use user or team)."];
                }

                for (var j = 0; j < (share.Actions?.Count ?? 0); j++)
                {
                    if (!CrmAuthorization.CrmNames.TryParseAction(share.Actions![j], out _))
                    {
                        errors[$"record.shares[{i}].actions[{j}]"] = [$"unknown action '{share.Actions[j]}' (use one of {CrmAuthorization.CrmNames.ActionList})."];
                    }
                }
            }
        }
    }

    /// <summary>
    /// Deterministic mode shows which rows hold equal values; only a column the security team declared deterministic
    /// (<c>Crypto:Columns</c>) gets it, so no caller turns a randomized column into an equality oracle.
    /// </summary>
    private static void CheckDeterministicAllowed(string? mode, FieldContext? context, CryptoColumns columns, Dictionary<string, string[]> errors)
    {
        if (mode == Deterministic && context is not null && columns.Find(context.Table, context.Column) is not { Deterministic: true })
        {
            errors["mode"] = [$"{context.Table}.{context.Column} is not declared deterministic in Crypto:Columns: deterministic ciphertexts reveal equal values, so only declared columns may use them."];
        }
    }

    /// <summary>
    /// The index comes from the column's declaration, planned by <see cref="BlindIndexPlanner"/> for its expected rows
    /// (CipherSweet's rule): a caller names it and cannot widen it. Anything the request says about it must match.
    /// </summary>
    private static BlindIndexDefinition? CheckIndex(BlindIndexRequest request, DeclaredColumn? column, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrWhiteSpace(request.Index))
        {
            errors["index"] = ["index (the index name) is required."];
            return null;
        }

        if (column is null || !column.Indexes.TryGetValue(request.Index, out var definition))
        {
            errors["index"] = [column is null || column.Indexes.Count == 0
                ? $"{request.Table}.{request.Column} has no blind index declared in Crypto:Columns: a blind index leaks equality, so the security team declares and sizes each one."
                : $"{request.Table}.{request.Column} has no blind index '{request.Index}'; declared: {string.Join(", ", column.Indexes.Keys.Order(StringComparer.Ordinal))}."];
            return null;
        }

        if (request.Bits is { } bits && bits != definition.Bits)
        {
            errors["bits"] = [bits > definition.Bits
                ? $"bits {bits} is beyond the plan: index '{definition.Name}' of {request.Table}.{request.Column} keeps {definition.Bits} bits for the column's expected rows (leave bits out to get the planned number)."
                : $"index '{definition.Name}' of {request.Table}.{request.Column} keeps {definition.Bits} bits, not {bits} (leave bits out to get the planned number)."];
        }

        if (request.Normaliser is { } normaliser && normaliser != definition.Normaliser.Name)
        {
            errors["normaliser"] = [$"index '{definition.Name}' of {request.Table}.{request.Column} normalises with {definition.Normaliser.Name}, not {normaliser}."];
        }

        if (request.Transform is { } transform && (CryptoColumns.ParseTransform(transform)?.Name ?? transform) != definition.Transform.Name)
        {
            errors["transform"] = [$"index '{definition.Name}' of {request.Table}.{request.Column} uses the transform {definition.Transform.Name}, not {transform}."];
        }

        return definition;
    }
}
