using System.Text;
using CrmSecurity.CrmAuthorization;
using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using CrmSecurity.Samples.Crm.Security;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Contacts;

public sealed class ExportModel(CrmDbContext db, ContactAccess access, AccessEventSender events) : PageModel
{
    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        var profile = await access.ProfileAsync(User, cancellationToken);
        if (!profile.Holds(ContactAccess.Entity, CrmAction.Export))
        {
            return Forbid(); // the page's policy (contact:export) already refused this; kept for defence in depth
        }

        // Export covers what the export privilege's depth covers, with fields hidden or masked as on screen.
        var rows = await ContactAccess.Visible(db.Contacts.AsNoTracking(), profile, CrmAction.Export).OrderBy(c => c.FullName).ToListAsync(cancellationToken);
        var csv = new StringBuilder("full_name,email,phone,national_id,owner\n");
        foreach (var row in rows)
        {
            var view = ContactAccess.Project(profile, row);
            csv.Append(Csv(view.FullName)).Append(',').Append(Csv(view.Email.Shown)).Append(',').Append(Csv(view.Phone.Shown)).Append(',')
                .Append(Csv(view.NationalId.Shown)).Append(',').Append(Csv(row.OwnerName)).Append('\n');
        }

        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = "export", Entity = "contact", RecordCount = rows.Count,
            Fields = ["full_name", .. ContactAccess.VisibleFields(profile)], SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString()
        });
        return File(Encoding.UTF8.GetBytes(csv.ToString()), "text/csv", "contacts.csv");
    }

    // RFC 4180 quoting, and a leading = + - @ neutralised so a spreadsheet does not run it as a formula (CSV injection).
    private static string Csv(string? value)
    {
        value ??= "";
        if (value.Length > 0 && "=+-@".Contains(value[0], StringComparison.Ordinal))
        {
            value = "'" + value;
        }

        return value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : value;
    }
}
