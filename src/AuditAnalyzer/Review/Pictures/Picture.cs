using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Html;

namespace CrmSecurity.AuditAnalyzer.Review.Pictures;

/// <summary>The numbers behind a picture, for screen readers and for anyone who wants them exactly.</summary>
internal sealed record PictureTable(string Caption, IReadOnlyList<string> Headers, IReadOnlyList<IReadOnlyList<string>> Rows);

/// <summary>
/// A picture drawn on the server: SVG markup (no script, no style attribute: colours come from the design system's chart
/// classes, so dark mode follows), with a title and a description saying in words what it shows (WCAG 2.1 1.1.1), and
/// its numbers as a table.
/// </summary>
internal sealed record Picture(string Id, string Title, string Description, string Svg, PictureTable Table)
{
    public IHtmlContent Html => new HtmlString(Svg);
}

/// <summary>Writes SVG elements with every text encoded and every number in invariant culture.</summary>
internal sealed class SvgWriter
{
    private readonly StringBuilder _svg = new();

    /// <summary>Opens <c>&lt;svg role="img"&gt;</c> named by its title and described by its desc (SVG-AAM 1.0 §8.1).</summary>
    public SvgWriter(string id, double width, double height, string cssClass, string title, string description)
    {
        _svg.Append(CultureInfo.InvariantCulture,
            $"<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{E(id)}\" class=\"chart {E(cssClass)}\" viewBox=\"0 0 {N(width)} {N(height)}\" role=\"img\" aria-labelledby=\"{E(id)}-title {E(id)}-desc\" focusable=\"false\">");
        _svg.Append(CultureInfo.InvariantCulture, $"<title id=\"{E(id)}-title\">{E(title)}</title><desc id=\"{E(id)}-desc\">{E(description)}</desc>");
    }

    public SvgWriter Rect(double x, double y, double width, double height, string cssClass, string? tooltip = null)
    {
        _svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{N(x)}\" y=\"{N(y)}\" width=\"{N(Math.Max(0, width))}\" height=\"{N(Math.Max(0, height))}\" class=\"{E(cssClass)}\"");
        return Tooltip(tooltip, "rect");
    }

    public SvgWriter Line(double x1, double y1, double x2, double y2, string cssClass)
    {
        _svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{N(x1)}\" y1=\"{N(y1)}\" x2=\"{N(x2)}\" y2=\"{N(y2)}\" class=\"{E(cssClass)}\"/>");
        return this;
    }

    public SvgWriter Polyline(IEnumerable<(double X, double Y)> points, string cssClass)
    {
        var list = string.Join(' ', points.Select(p => $"{N(p.X)},{N(p.Y)}"));
        if (list.Length > 0)
        {
            _svg.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{list}\" class=\"{E(cssClass)}\"/>");
        }

        return this;
    }

    /// <summary>A small downward triangle centred on x with its tip at y: a flag that does not rely on colour alone (WCAG 1.4.1).</summary>
    public SvgWriter Marker(double x, double y, string cssClass, string? tooltip = null)
    {
        _svg.Append(CultureInfo.InvariantCulture, $"<path d=\"M{N(x - 5)},{N(y - 8)} L{N(x + 5)},{N(y - 8)} L{N(x)},{N(y)} Z\" class=\"{E(cssClass)}\"");
        return Tooltip(tooltip, "path");
    }

    public SvgWriter Text(double x, double y, string text, string? cssClass = null)
    {
        var css = cssClass is null ? "" : $" class=\"{E(cssClass)}\"";
        _svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{N(x)}\" y=\"{N(y)}\"{css}>{E(text)}</text>");
        return this;
    }

    public string Build() => _svg.Append("</svg>").ToString();

    private SvgWriter Tooltip(string? tooltip, string element)
    {
        // A <title> child is the hover text of one shape; the picture as a whole is described by its own title and desc.
        _svg.Append(tooltip is null ? "/>" : $"><title>{E(tooltip)}</title></{element}>");
        return this;
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    public static string N(double value) => Math.Round(value, 2).ToString("0.##", CultureInfo.InvariantCulture);
}

/// <summary>How the pictures write numbers, days and hours: the same everywhere, culture-invariant.</summary>
internal static class PictureText
{
    public static string Count(double value) => Math.Round(value).ToString("#,0", CultureInfo.InvariantCulture);

    public static string Day(DateOnly day) => day.ToString("d MMM", CultureInfo.InvariantCulture);

    public static string LongDay(DateOnly day) => day.ToString("ddd d MMM yyyy", CultureInfo.InvariantCulture);

    public static string Hour(int hour) => hour.ToString("00", CultureInfo.InvariantCulture) + ":00";

    public static string Clock(DateTimeOffset time) => time.ToString("HH:mm", CultureInfo.InvariantCulture);
}
