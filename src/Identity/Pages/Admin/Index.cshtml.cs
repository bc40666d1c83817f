using Microsoft.AspNetCore.Mvc;

namespace CrmSecurity.Identity.Pages.Admin;

internal sealed class IndexModel : AdminPageModel
{
    public string UserName => Guard.CallerInfo.UserName;

    public IActionResult OnGet() => Page();
}
