using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CrmSecurity.Server.Data;

/// <summary>Readiness: the shared database answers (through the first module's context; all modules share it).</summary>
internal sealed class DatabaseHealthCheck(IServiceScopeFactory scopes, IEnumerable<ModuleSchema> schemas) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (schemas.FirstOrDefault() is not { } schema)
        {
            return HealthCheckResult.Healthy("no module keeps data");
        }

        await using var scope = scopes.CreateAsyncScope();
        var db = (DbContext)scope.ServiceProvider.GetRequiredService(schema.ContextType);
        // The reason stays in the log (the health writer shows names and status only): it may name the server.
        return await db.Database.CanConnectAsync(cancellationToken)
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy("the database does not answer");
    }
}
