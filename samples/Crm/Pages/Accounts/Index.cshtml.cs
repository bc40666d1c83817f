using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Accounts;

public sealed class IndexModel(CrmDbContext db, AccessEventSender events) : PageModel
{
    public IReadOnlyList<Account> Accounts { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        Accounts = await db.Accounts.AsNoTracking().OrderBy(a => a.Name).ToListAsync(cancellationToken);
        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = "list", Entity = "account",
            RecordCount = Accounts.Count, SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString(), ClientId = "demo-crm",
        });
    }
}
