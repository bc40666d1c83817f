using System.Net;
using System.Text.RegularExpressions;
using static CrmSecurity.Tests.Support.OAuthFlows;

namespace CrmSecurity.Identity.Tests.Federation;

/// <summary>
/// A browser's part of a federated sign-in over real HTTP: one cookie jar per origin (a browser keeps cookies per host;
/// both test hosts listen on 127.0.0.1, so one jar would let each host overwrite the other's cookies), redirects followed
/// one by one so a test can see or alter each step, forms posted with their anti-forgery tokens.
/// </summary>
internal sealed partial class FederationBrowser : IDisposable
{
    private readonly Dictionary<string, CookieContainer> _jars = new(StringComparer.Ordinal);
    private readonly HttpClient _http = new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false });

    /// <summary>The address of the last page loaded.</summary>
    public Uri Address { get; private set; } = null!;

    public CookieContainer Jar(Uri uri)
    {
        var key = uri.GetLeftPart(UriPartial.Authority);
        if (!_jars.TryGetValue(key, out var jar))
        {
            jar = new CookieContainer();
            _jars[key] = jar;
        }

        return jar;
    }

    /// <summary>Drops the cookies of <paramref name="uri"/>'s origin whose names match (a browser that lost or never had them).</summary>
    public void Forget(Uri uri, Func<string, bool> name)
    {
        var kept = new CookieContainer();
        foreach (Cookie cookie in Jar(uri).GetAllCookies())
        {
            if (!name(cookie.Name))
            {
                kept.Add(cookie);
            }
        }

        _jars[uri.GetLeftPart(UriPartial.Authority)] = kept;
    }

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, IDictionary<string, string>? form = null)
    {
        using var request = new HttpRequestMessage(method, uri);
        if (form is not null)
        {
            request.Content = new FormUrlEncodedContent(form);
        }

        var cookies = Jar(uri).GetCookieHeader(uri);
        if (cookies.Length > 0)
        {
            request.Headers.Add("Cookie", cookies);
        }

        var response = await _http.SendAsync(request, Cancel);
        if (response.Headers.TryGetValues("Set-Cookie", out var setCookies))
        {
            foreach (var header in setCookies)
            {
                Jar(uri).SetCookies(uri, header);
            }
        }

        Address = uri;
        return response;
    }

    /// <summary>
    /// GETs <paramref name="uri"/> and follows redirects until a page answers, or a redirect leaves for
    /// <paramref name="stopAt"/> (the CRM client's redirect URI, which nobody serves here). <paramref name="alter"/> may
    /// change each redirect target before it is followed (an attacker's hand in the middle).
    /// </summary>
    public async Task<(HttpResponseMessage Response, Uri? StoppedAt)> FollowAsync(Uri uri, string stopAt = CrmRedirect, Func<Uri, Uri>? alter = null)
    {
        for (var hops = 0; hops < 20; hops++)
        {
            var response = await SendAsync(HttpMethod.Get, uri);
            if (response.StatusCode is not (HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther))
            {
                return (response, null);
            }

            var next = new Uri(uri, response.Headers.Location!);
            if (next.AbsoluteUri.StartsWith(stopAt, StringComparison.Ordinal))
            {
                return (response, next);
            }

            uri = alter is null ? next : alter(next);
        }

        throw new InvalidOperationException("Too many redirects.");
    }

    /// <summary>Posts a form of the page at <see cref="Address"/> (its anti-forgery token and ReturnUrl included) and follows on.</summary>
    public async Task<(HttpResponseMessage Response, Uri? StoppedAt)> SubmitAsync(
        string page, string path, Dictionary<string, string> fields, Func<Uri, Uri>? alter = null)
    {
        var form = new Dictionary<string, string>(fields) { ["__RequestVerificationToken"] = AntiForgeryToken(page) };
        if (!form.ContainsKey("ReturnUrl") && ReturnUrl().Match(page) is { Success: true } returnUrl)
        {
            form["ReturnUrl"] = WebUtility.HtmlDecode(returnUrl.Groups["value"].Value);
        }

        var target = new Uri(Address, path);
        var response = await SendAsync(HttpMethod.Post, target, form);
        if (response.StatusCode is not (HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther))
        {
            return (response, null);
        }

        var next = new Uri(target, response.Headers.Location!);
        return next.AbsoluteUri.StartsWith(CrmRedirect, StringComparison.Ordinal) ? (response, next) : await FollowAsync(alter is null ? next : alter(next), alter: alter);
    }

    public void Dispose() => _http.Dispose();

    [GeneratedRegex("<input type=\"hidden\" name=\"ReturnUrl\" value=\"(?<value>[^\"]*)\"")]
    private static partial Regex ReturnUrl();
}
