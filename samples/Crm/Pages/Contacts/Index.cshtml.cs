using CrmSecurity.Crypto.EntityFramework;
using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using CrmSecurity.Samples.Crm.Security;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Contacts;

public sealed class IndexModel(CrmDbContext db, ContactAccess access, AccessEventSender events) : PageModel
{
    /// <summary>
    /// The address searched for: posted in the body, never in the URL, where it would stay in browser history, proxy and
    /// server logs (OWASP ASVS 4.0.3 V8.3.1).
    /// </summary>
    [BindProperty]
    public string? Email { get; set; }

    public IReadOnlyList<ContactView> Contacts { get; private set; } = [];

    public Task OnGetAsync(CancellationToken cancellationToken)
    {
        Email = null;
        return LoadAsync(cancellationToken);
    }

    public Task OnPostAsync(CancellationToken cancellationToken) => LoadAsync(cancellationToken);

    private async Task LoadAsync(CancellationToken cancellationToken)
    {
        var profile = await access.ProfileAsync(User, cancellationToken);
        List<Contact> rows;
        if (string.IsNullOrWhiteSpace(Email))
        {
            // The user's read depth becomes the WHERE clause: rows outside it are never loaded.
            rows = await ContactAccess.Visible(db.Contacts.AsNoTracking(), profile).OrderBy(c => c.FullName).ToListAsync(cancellationToken);
        }
        else
        {
            // The email search goes through the blind index (the database compares HMAC fragments, never plaintext; the
            // library re-checks decrypted candidates); then each hit is checked like any other read.
            rows = [.. (await db.Contacts.WhereEncryptedEqualsAsync(c => c.Email, Email, "email", cancellationToken))
                .Where(c => ContactAccess.Check(profile, c, CrmSecurity.CrmAuthorization.CrmAction.Read).Allowed)];
        }

        Contacts = [.. rows.Select(c => ContactAccess.Project(profile, c))];
        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = string.IsNullOrWhiteSpace(Email) ? "list" : "search",
            Entity = "contact", RecordCount = Contacts.Count, Fields = ["full_name", .. ContactAccess.VisibleFields(profile)],
            SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString()
        });
    }
}
