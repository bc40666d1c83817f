using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using CrmSecurity.Samples.Crm.Security;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Accounts;

public sealed class IndexModel(CrmDbContext db, ContactAccess access, AccessEventSender events) : PageModel
{
    public IReadOnlyList<Account> Accounts { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        var profile = await access.ProfileAsync(User, cancellationToken);
        Accounts = await ContactAccess.Visible(db.Accounts.AsNoTracking(), profile, entityName: "account").OrderBy(a => a.Name).ToListAsync(cancellationToken);
        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = "list", Entity = "account",
            RecordCount = Accounts.Count, SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString()
        });
    }
}
