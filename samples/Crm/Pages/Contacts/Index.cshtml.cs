using CrmSecurity.Crypto.EntityFramework;
using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Contacts;

public sealed class IndexModel(CrmDbContext db, AccessEventSender events) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Email { get; set; }

    public IReadOnlyList<Contact> Contacts { get; private set; } = [];

    public async Task OnGetAsync(CancellationToken cancellationToken)
    {
        // An email search goes through the blind index: the database compares HMAC fragments, never plaintext,
        // and the library re-checks the decrypted candidates (a truncated index has false positives).
        Contacts = string.IsNullOrWhiteSpace(Email)
            ? await db.Contacts.AsNoTracking().OrderBy(c => c.FullName).ToListAsync(cancellationToken)
            : await db.Contacts.WhereEncryptedEqualsAsync(c => c.Email, Email, "email", cancellationToken);
        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = string.IsNullOrWhiteSpace(Email) ? "list" : "search",
            Entity = "contact", RecordCount = Contacts.Count, Fields = ["full_name", "email", "phone"],
            SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString(), ClientId = "demo-crm",
        });
    }
}
