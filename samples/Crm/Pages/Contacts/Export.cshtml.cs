using System.Text;
using CrmSecurity.Samples.Crm.Data;
using CrmSecurity.Samples.Crm.Events;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace CrmSecurity.Samples.Crm.Pages.Contacts;

public sealed class ExportModel(CrmDbContext db, AccessEventSender events) : PageModel
{
    public async Task<IActionResult> OnGetAsync(CancellationToken cancellationToken)
    {
        var contacts = await db.Contacts.AsNoTracking().OrderBy(c => c.FullName).ToListAsync(cancellationToken);
        var csv = new StringBuilder("full_name,email,phone,owner\n");
        foreach (var contact in contacts)
        {
            csv.Append(Csv(contact.FullName)).Append(',').Append(Csv(contact.Email)).Append(',').Append(Csv(contact.Phone)).Append(',').Append(Csv(contact.Owner)).Append('\n');
        }

        events.Write(new AccessEvent
        {
            UserId = Program.UserId(User), UserName = User.Identity?.Name, Action = "export", Entity = "contact", RecordCount = contacts.Count,
            Fields = ["full_name", "email", "phone"], SourceIp = HttpContext.Connection.RemoteIpAddress?.ToString(), ClientId = "demo-crm",
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
