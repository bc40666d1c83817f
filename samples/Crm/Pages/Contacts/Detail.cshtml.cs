using CrmSecurity.CrmAuthorization;
using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using CrmSecurity.Samples.Crm.Security;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Contacts;

public sealed class DetailModel(CrmDbContext db, ContactAccess access, AccessEventSender events) : PageModel
{
    public ContactView Contact { get; private set; } = null!;

    /// <summary>Why the read was allowed, in words.</summary>
    public string Decision { get; private set; } = "";

    public async Task<IActionResult> OnGetAsync(Guid id, CancellationToken cancellationToken)
    {
        var contact = await db.Contacts.AsNoTracking().SingleOrDefaultAsync(c => c.Id == id, cancellationToken);
        if (contact is null)
        {
            return NotFound();
        }

        var profile = await access.ProfileAsync(User, cancellationToken);
        var decision = ContactAccess.Check(profile, contact, CrmAction.Read);
        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = "read", Entity = "contact", RecordId = id.ToString(),
            RecordOwner = contact.Owner, RecordBusinessUnit = contact.BusinessUnit,
            Fields = decision.Allowed ? ["full_name", .. ContactAccess.VisibleFields(profile)] : null, Outcome = decision.Allowed ? "success" : "denied",
            SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString()
        });
        if (!decision.Allowed)
        {
            // The same answer as for a record that does not exist: a denied user learns nothing about it.
            return NotFound();
        }

        Contact = ContactAccess.Project(profile, contact);
        Decision = decision.Reason;
        return Page();
    }
}
