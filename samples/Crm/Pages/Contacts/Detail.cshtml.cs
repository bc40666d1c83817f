using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Contacts;

public sealed class DetailModel(CrmDbContext db, AccessEventSender events) : PageModel
{
    public Contact Contact { get; private set; } = null!;

    public async Task<IActionResult> OnGetAsync(Guid id, CancellationToken cancellationToken)
    {
        var contact = await db.Contacts.AsNoTracking().SingleOrDefaultAsync(c => c.Id == id, cancellationToken);
        if (contact is null)
        {
            return NotFound();
        }

        Contact = contact;
        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = "read", Entity = "contact", RecordId = id.ToString(),
            Fields = ["full_name", "email", "phone", "national_id"], SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString(), ClientId = "demo-crm",
        });
        return Page();
    }
}
