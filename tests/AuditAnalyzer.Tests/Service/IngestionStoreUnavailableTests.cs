using System.Net;
using System.Net.Http.Headers;
using System.Text;
using CrmSecurity.AuditAnalyzer.Service;
using CrmSecurity.AuditAnalyzer.Tests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace CrmSecurity.AuditAnalyzer.Tests.Service;

/// <summary>A batch the database cannot take now is answered 503 with Retry-After, not acknowledged, and stored when sent again.</summary>
public sealed class IngestionStoreUnavailableTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("crm-analyzer-ingest-unavailable-").FullName;
    private LiveHost _host = null!;

    private static CancellationToken Cancel => TestContext.Current.CancellationToken;

    private string Database => $"Data Source={Path.Combine(_directory, "service.db")}";

    public ValueTask InitializeAsync()
    {
        // SQLite gives up waiting for its write lock after two seconds (the default is 30).
        _host = LiveHost.Start(_directory, extra: new Dictionary<string, string?>
        {
            ["Database:ConnectionString"] = Database + ";Default Timeout=2",
            ["AuditAnalyzer:Live:Scoring"] = "false",
        });
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _host.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A last write of the host's dispose; the temporary folder is left behind.
        }
    }

    [Fact]
    public async Task A_batch_the_database_cannot_take_is_answered_503_with_Retry_After_and_stored_when_sent_again()
    {
        var token = await _host.WriterTokenAsync();
        var batch = IngestionLimitsTests.Lines("locked", "locked-user", 50);

        HttpResponseMessage refused;
        await using (var holder = new SqliteConnection(Database))
        {
            // Another process holds SQLite's write lock for longer than the host waits for it.
            await holder.OpenAsync(Cancel);
            await using var exclusive = holder.CreateCommand();
            exclusive.CommandText = "BEGIN EXCLUSIVE";
            await exclusive.ExecuteNonQueryAsync(Cancel);

            using var http = _host.CreateClient();
            using var request = new HttpRequestMessage(HttpMethod.Post, "analyzer/events") { Content = new StringContent(batch, Encoding.UTF8, "application/x-ndjson") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            refused = await http.SendAsync(request, Cancel);

            exclusive.CommandText = "ROLLBACK";
            await exclusive.ExecuteNonQueryAsync(Cancel);
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        refused.Dispose();

        var (status, _, body) = await _host.PostEventsAsync(token, batch);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(50, body.GetProperty("stored").GetInt32());
        await using var scope = _host.Services.CreateAsyncScope();
        Assert.Equal(50, await scope.ServiceProvider.GetRequiredService<LiveDbContext>().Events.CountAsync(e => e.UserId == "locked-user", Cancel));
    }
}
