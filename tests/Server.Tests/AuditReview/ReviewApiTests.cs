using System.Net;
using System.Text.Json;
using CrmSecurity.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CrmSecurity.Server.Tests.AuditReview;

/// <summary>The review workflow through the real host, its Identity provider and a SQLite file.</summary>
public sealed class ReviewApiTests : IAsyncLifetime
{
    private ReviewHost _host = null!;

    public ValueTask InitializeAsync()
    {
        _host = ReviewHost.Start();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    [Fact]
    public async Task An_auditor_triages_a_finding_and_every_step_is_in_the_verified_audit_chain()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "carl", 1, 48_000, "t1");

        var item = await _host.WaitForQueueItemAsync(carol, "", _ => true);
        var id = item.GetProperty("id").GetString()!;
        var pseudonym = item.GetProperty("user").GetString()!;
        Assert.Matches("^user-[0-9a-f]{8}$", pseudonym);
        Assert.Equal("new", item.GetProperty("status").GetString());
        Assert.DoesNotContain("carl", item.ToString(), StringComparison.Ordinal);

        var (detailStatus, detail) = await _host.GetAsync(carol, $"analyzer/review/findings/{id}");
        Assert.Equal(HttpStatusCode.OK, detailStatus);
        Assert.Contains(detail.GetProperty("reasons").EnumerateArray(), r => r.GetProperty("actual").ValueKind == JsonValueKind.Number);
        var evidence = Assert.Single(detail.GetProperty("evidence").EnumerateArray(), e => e.GetProperty("event_id").GetString() == "t1-2");
        Assert.Equal(48_000, evidence.GetProperty("record_count").GetInt64());
        Assert.Equal("contact", evidence.GetProperty("entity").GetString());
        Assert.Contains(detail.GetProperty("history").EnumerateArray(), h => h.GetProperty("id").GetString() == id);
        Assert.DoesNotContain("carl", detail.ToString(), StringComparison.Ordinal);
        var version = detail.GetProperty("review").GetProperty("version").GetInt32();

        var (acknowledged, afterAck) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "acknowledged", version, note = "looking into it" });
        var (stale, staleBody) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "confirmed", disposition = "true_positive", version });
        var (again, againBody) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "acknowledged" });
        var (dismissed, afterDismiss) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "dismissed", disposition = "false_positive" });
        var (revealed, identity) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/reveal", new { reason = "case 42" });

        Assert.Equal(HttpStatusCode.OK, acknowledged);
        Assert.Equal("acknowledged", afterAck.GetProperty("review").GetProperty("status").GetString());
        Assert.Equal("looking into it", Assert.Single(afterAck.GetProperty("notes").EnumerateArray()).GetProperty("text").GetString());
        Assert.Equal(HttpStatusCode.Conflict, stale);
        Assert.Contains($"version {version + 1}, not {version}", staleBody.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Conflict, again);
        Assert.Contains("from acknowledged to acknowledged", againBody.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, dismissed);
        Assert.Equal("false_positive", afterDismiss.GetProperty("review").GetProperty("disposition").GetString());
        Assert.Equal(HttpStatusCode.OK, revealed);
        Assert.Equal("carl", identity.GetProperty("user_id").GetString());

        // Out of the default queue (new and acknowledged), still found by its status.
        var (_, open) = await _host.GetAsync(carol, "analyzer/review/findings");
        var (_, closed) = await _host.GetAsync(carol, $"analyzer/review/findings?status=dismissed&user={pseudonym}");
        Assert.DoesNotContain(open.GetProperty("items").EnumerateArray(), f => f.GetProperty("id").GetString() == id);
        Assert.Equal(id, Assert.Single(closed.GetProperty("items").EnumerateArray()).GetProperty("id").GetString());

        // The decision is a change of the finding for SIEMs too: the ECS feed carries it again, with status and disposition.
        var exported = default(JsonElement);
        for (var deadline = DateTime.UtcNow.AddSeconds(20); exported.ValueKind == JsonValueKind.Undefined; await Task.Delay(200, TestContext.Current.CancellationToken))
        {
            Assert.True(DateTime.UtcNow < deadline, "the dismissal did not reach the ECS export feed within 20 seconds");
            using var http = _host.CreateClient(carol);
            var feed = await http.GetStringAsync(new Uri("analyzer/export/findings", UriKind.Relative), TestContext.Current.CancellationToken);
            exported = feed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
                .FirstOrDefault(d => d.GetProperty("event").GetProperty("id").GetString() == id
                    && d.GetProperty("crm_security").GetProperty("finding").TryGetProperty("status", out var s) && s.GetString() == "dismissed");
        }

        Assert.Equal("false_positive", exported.GetProperty("crm_security").GetProperty("finding").GetProperty("disposition").GetString());

        var entries = (await _host.AuditEntriesAsync()).Where(e => e.TargetId == id).ToList();
        Assert.Equal(["finding.status", "finding.note", "finding.status", "finding.reveal"], entries.Select(e => e.Action));
        Assert.All(entries, e => Assert.Equal("carol", e.ActorName));
        Assert.DoesNotContain(entries, e => (e.After ?? "").Contains("carl", StringComparison.Ordinal));
        var (exit, output) = await _host.VerifyAuditChainAsync();
        Assert.True(exit == 0, output);
        Assert.Contains("Audit trail intact", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_security_admin_reads_findings_but_cannot_review_reveal_or_grant_himself_review_and_an_auditor_cannot_change_roles()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        var dave = await _host.UserTokenAsync("dave", ReviewHost.DavePassword);
        await _host.PostNightExportAsync(writer, "cora", 1, 48_000, "t2");
        var id = (await _host.WaitForQueueItemAsync(dave, "", _ => true)).GetProperty("id").GetString()!;

        var (status, refused) = await _host.SendAsync(dave, HttpMethod.Post, $"analyzer/review/findings/{id}/status", new { status = "dismissed", disposition = "benign_true_positive" });
        var (reveal, _) = await _host.SendAsync(dave, HttpMethod.Post, $"analyzer/review/findings/{id}/reveal", new { reason = "curious" });
        var (suppress, _) = await _host.SendAsync(dave, HttpMethod.Post, "analyzer/review/suppressions",
            new { scope_kind = "detector", scope_value = "bulk_export", reason = "noise", expires_at = DateTimeOffset.UtcNow.AddDays(1) });
        var (_, stillNew) = await _host.GetAsync(carol, $"analyzer/review/findings/{id}");

        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("update on audit_finding", refused.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, reveal);
        Assert.Equal(HttpStatusCode.Forbidden, suppress);
        Assert.Equal("new", stillNew.GetProperty("review").GetProperty("status").GetString());
        Assert.DoesNotContain(await _host.AuditEntriesAsync(), e => e.TargetId == id);

        var alice = await UserIdAsync("alice");
        var (roles, rolesBody) = await _host.SendAsync(carol, HttpMethod.Put, $"admin/api/users/{alice}/roles", new { roles = new[] { "auditor" } });
        Assert.Equal(HttpStatusCode.Forbidden, roles);
        Assert.Contains("carol", rolesBody.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // Nor can the security admin route around it: nobody grants what they do not hold (audit_finding update).
        var (grantCell, grantCellBody) = await _host.SendAsync(dave, HttpMethod.Put, "admin/api/roles/security_admin/privileges/audit_finding/update", new { depth = "organization" });
        var (grantRole, grantRoleBody) = await _host.SendAsync(dave, HttpMethod.Put, $"admin/api/users/{alice}/roles", new { roles = new[] { "auditor" } });
        Assert.Equal(HttpStatusCode.Forbidden, grantCell);
        Assert.Contains("audit_finding", grantCellBody.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, grantRole);
        Assert.Contains("audit_finding", grantRoleBody.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dismissal_as_false_positive_lowers_the_users_next_finding_of_that_detector_and_says_why()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "fred", 3, 48_000, "t3a");
        var first = await _host.WaitForQueueItemAsync(carol, "", _ => true);
        var (dismissed, _) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{first.GetProperty("id").GetString()}/status",
            new { status = "dismissed", disposition = "false_positive" });
        Assert.Equal(HttpStatusCode.OK, dismissed);

        await _host.PostNightExportAsync(writer, "fred", 1, 480_000, "t3b");
        var second = await _host.WaitForQueueItemAsync(carol, "", f => f.GetProperty("id").GetString() != first.GetProperty("id").GetString());
        var (_, detail) = await _host.GetAsync(carol, $"analyzer/review/findings/{second.GetProperty("id").GetString()}");

        Assert.Equal(first.GetProperty("detector").GetString(), second.GetProperty("detector").GetString());
        Assert.Contains(detail.GetProperty("reasons").EnumerateArray(),
            r => r.GetProperty("text").GetString() == "score lowered: 1 earlier false positive for this user and detector");
    }

    [Fact]
    public async Task A_suppression_closes_matching_open_findings_and_keeps_new_ones_out_of_the_queue_until_revoked()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "sam", 3, 48_000, "t4a");
        var existing = await _host.WaitForQueueItemAsync(carol, "", _ => true);

        var (created, body) = await _host.SendAsync(carol, HttpMethod.Post, "analyzer/review/suppressions", new
        {
            scope_kind = "user",
            scope_value = existing.GetProperty("user").GetString(),
            reason = "migration job runs as sam this week",
            expires_at = DateTimeOffset.UtcNow.AddDays(7),
            apply_to_existing = true,
        });
        Assert.Equal(HttpStatusCode.Created, created);
        Assert.Equal(1, body.GetProperty("applied").GetInt32());
        var suppression = body.GetProperty("suppression");
        Assert.Equal(existing.GetProperty("user").GetString(), suppression.GetProperty("scope_value").GetString());
        var suppressionId = suppression.GetProperty("id").GetString()!;

        await _host.PostNightExportAsync(writer, "sam", 1, 480_000, "t4b");
        var later = await _host.WaitForQueueItemAsync(carol, "?status=suppressed", f => f.GetProperty("id").GetString() != existing.GetProperty("id").GetString());
        var (_, open) = await _host.GetAsync(carol, "analyzer/review/findings");
        var (_, detail) = await _host.GetAsync(carol, $"analyzer/review/findings/{later.GetProperty("id").GetString()}");
        Assert.Empty(open.GetProperty("items").EnumerateArray());
        Assert.Equal(suppressionId, detail.GetProperty("review").GetProperty("suppression_id").GetString());

        var (revoked, _) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/suppressions/{suppressionId}/revoke");
        var (twice, _) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/suppressions/{suppressionId}/revoke");
        await _host.PostNightExportAsync(writer, "sam", 0, 4_800_000, "t4c");
        var afterRevoke = await _host.WaitForQueueItemAsync(carol, "", _ => true);
        var (_, list) = await _host.GetAsync(carol, "analyzer/review/suppressions");

        Assert.Equal(HttpStatusCode.NoContent, revoked);
        Assert.Equal(HttpStatusCode.Conflict, twice);
        Assert.Equal("new", afterRevoke.GetProperty("status").GetString());
        Assert.False(Assert.Single(list.EnumerateArray()).GetProperty("active").GetBoolean());
        var actions = (await _host.AuditEntriesAsync()).Select(e => e.Action).ToList();
        Assert.Contains("suppression.create", actions);
        Assert.Contains("finding.suppress.bulk", actions);
        Assert.Contains("suppression.revoke", actions);
    }

    [Fact]
    public async Task Bulk_acknowledge_reports_each_id_and_notes_assignment_and_the_user_page_follow()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        await _host.PostNightExportAsync(writer, "bea", 1, 48_000, "t5");
        var item = await _host.WaitForQueueItemAsync(carol, "", _ => true);
        var id = item.GetProperty("id").GetString()!;

        var (bulk, results) = await _host.SendAsync(carol, HttpMethod.Post, "analyzer/review/findings/bulk", new { ids = new[] { id, "f-missing" }, action = "status", status = "acknowledged" });
        var (again, againResults) = await _host.SendAsync(carol, HttpMethod.Post, "analyzer/review/findings/bulk", new { ids = new[] { id }, action = "status", status = "acknowledged" });
        var (assigned, _) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/assign", new { assignee = "carol-id" });
        var (noted, _) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/notes", new { text = "called their manager" });
        var (emptyNote, emptyNoteBody) = await _host.SendAsync(carol, HttpMethod.Post, $"analyzer/review/findings/{id}/notes", new { text = " " });
        var (_, mine) = await _host.GetAsync(carol, "analyzer/review/findings?assignee=carol-id");
        var (userStatus, user) = await _host.GetAsync(carol, $"analyzer/review/users/{item.GetProperty("user").GetString()}");

        Assert.Equal(HttpStatusCode.OK, bulk);
        Assert.Equal(1, results.GetProperty("succeeded").GetInt32());
        Assert.Equal([(id, 200), ("f-missing", 404)], results.GetProperty("results").EnumerateArray().Select(r => (r.GetProperty("id").GetString()!, r.GetProperty("status").GetInt32())));
        Assert.Equal(HttpStatusCode.OK, again);
        Assert.Equal(409, againResults.GetProperty("results")[0].GetProperty("status").GetInt32());
        Assert.Equal(HttpStatusCode.NoContent, assigned);
        Assert.Equal(HttpStatusCode.NoContent, noted);
        Assert.Equal(HttpStatusCode.BadRequest, emptyNote);
        Assert.True(emptyNoteBody.GetProperty("errors").TryGetProperty("text", out _));
        Assert.Equal(id, Assert.Single(mine.GetProperty("items").EnumerateArray()).GetProperty("id").GetString());
        Assert.Equal(HttpStatusCode.OK, userStatus);
        Assert.Equal(1, user.GetProperty("findings").GetInt32());
        Assert.Equal(1, user.GetProperty("by_detector").GetProperty("bulk_export").GetInt32());
        var actions = (await _host.AuditEntriesAsync()).Where(e => e.TargetId == id).Select(e => e.Action);
        Assert.Equal(["finding.status.bulk", "finding.assign", "finding.note"], actions);
    }

    [Fact]
    public async Task A_bad_feedback_factor_stops_start_up_with_exit_78_naming_the_setting()
    {
        var (exitCode, output) = await ServerProcess.StartExpectingExitAsync(
            new Dictionary<string, string?>
            {
                ["Database__Provider"] = "Sqlite",
                ["Database__ConnectionString"] = $"Data Source={Path.Combine(_host.Directory, "other.db")}",
                ["AuditAnalyzer__Review__FalsePositiveFactor"] = "0",
            },
            ReviewHost.Cancel);

        Assert.Equal(78, exitCode);
        Assert.Contains("AuditAnalyzer:Review:FalsePositiveFactor is 0; use a number above 0 and at most 1", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_group_suppression_never_matches_users_missing_from_the_directory()
    {
        var writer = await _host.WriterTokenAsync();
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);
        var (created, _) = await _host.SendAsync(carol, HttpMethod.Post, "analyzer/review/suppressions",
            new { scope_kind = "group", scope_value = "(not in directory)", reason = "placeholder is no group", expires_at = DateTimeOffset.UtcNow.AddDays(1) });
        Assert.Equal(HttpStatusCode.Created, created);

        await _host.PostNightExportAsync(writer, "gus", 1, 48_000, "t6");
        var item = await _host.WaitForQueueItemAsync(carol, "?status=new,suppressed", _ => true);

        Assert.Equal("new", item.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Bad_filters_and_a_suppression_without_an_end_are_refused_naming_each_field()
    {
        var carol = await _host.UserTokenAsync("carol", ReviewHost.CarolPassword);

        var (queue, errors) = await _host.GetAsync(carol, "analyzer/review/findings?status=open&user=carl&from=yesterday&page_size=0");
        var (suppression, suppressionErrors) = await _host.SendAsync(carol, HttpMethod.Post, "analyzer/review/suppressions",
            new { scope_kind = "detector", scope_value = "odd_hours", reason = "night shift" });
        var (missing, _) = await _host.SendAsync(carol, HttpMethod.Post, "analyzer/review/findings/nope/status", new { status = "acknowledged" });
        var (byUserId, byUserIdErrors) = await _host.SendAsync(carol, HttpMethod.Post, "analyzer/review/suppressions",
            new { scope_kind = "user", scope_value = "carl", reason = "guessing", expires_at = DateTimeOffset.UtcNow.AddDays(1) });
        var (anonymous, _) = await _host.GetAsync(null!, "analyzer/review/findings");

        Assert.Equal(HttpStatusCode.BadRequest, queue);
        var fields = errors.GetProperty("errors").EnumerateObject().Select(p => p.Name).Order().ToList();
        Assert.Equal(["from", "page_size", "status", "user"], fields);
        Assert.Equal(HttpStatusCode.BadRequest, suppression);
        Assert.True(suppressionErrors.GetProperty("errors").TryGetProperty("expires_at", out _));
        Assert.Equal(HttpStatusCode.NotFound, missing);
        Assert.Equal(HttpStatusCode.BadRequest, byUserId);
        Assert.True(byUserIdErrors.GetProperty("errors").TryGetProperty("scope_value", out _));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous);
    }

    private async Task<string> UserIdAsync(string userName)
    {
        await using var connection = new SqliteConnection(_host.Settings["Database:ConnectionString"]);
        await connection.OpenAsync(ReviewHost.Cancel);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT Id FROM AspNetUsers WHERE UserName = $name";
        command.Parameters.AddWithValue("$name", userName);
        return (string)(await command.ExecuteScalarAsync(ReviewHost.Cancel))!;
    }
}
