using Microsoft.Playwright;

namespace CrmSecurity.EndToEnd.Tests;

internal static class PageWaits
{
    /// <summary>
    /// Waits until the page's address matches and its document is parsed (<c>document.readyState</c> past "loading"), by
    /// polling both, at most 90 s (the contexts' own timeout). Playwright's WaitForURL waits for the navigation's load
    /// state through its own event tracking, and four CI runs saw that time out at 90 s with the browser already on the
    /// right page, shown in full ("NetworkIdle event fired").
    /// </summary>
    public static async Task WaitForAddressAsync(this IPage page, Func<string, bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!match(page.Url) || !await ParsedAsync(page))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the browser did not reach the expected address within 90 s; it is on {page.Url}");
            }

            await Task.Delay(100);
        }
    }

    private static async Task<bool> ParsedAsync(IPage page)
    {
        try
        {
            return await page.EvaluateAsync<string>("document.readyState") is "interactive" or "complete";
        }
        catch (PlaywrightException)
        {
            return false; // the document went away under the call: a navigation is still under way
        }
    }
}
