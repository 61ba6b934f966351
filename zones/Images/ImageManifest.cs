using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SmartOS.Zones.Images;

/// <summary>
/// An image manifest (IMGAPI's manifest v2, ImageStore.cs glossary): the JSON object as given, every
/// field kept in its order, with typed views of the fields imgadm acts on. Checks are those of
/// imgmanifest's validateMinimalManifest, what `imgadm install` and `import` require, worded as
/// imgadm's ManifestValidationError prints them ("invalid manifest: type (invalid image type, ...)").
/// </summary>
public sealed partial class ImageManifest
{
    /// <summary>The manifest version imgadm create writes (common.MANIFEST_V).</summary>
    public const int Version2 = 2;

    /// <summary>imgmanifest's VALID_TYPES and VALID_OSES, in its order (its messages list them so).</summary>
    public static readonly string[] Types = ["zone-dataset", "zvol", "lx-dataset", "docker", "other"];
    public static readonly string[] Oses = ["smartos", "linux", "windows", "bsd", "illumos", "other"];

    private const int MaxNameLength = 1024, MaxVersionLength = 512;

    /// <summary>JSON as JSON.stringify(x, null, 2) writes it: two spaces, nothing escaped that need not be.</summary>
    public static readonly JsonSerializerOptions Pretty = new()
    {
        WriteIndented = true, IndentSize = 2, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private ImageManifest(JsonObject json) => Json = json;

    /// <summary>The manifest as parsed (callers may read it; the store hands out copies).</summary>
    public JsonObject Json { get; }

    public string Uuid => Text("uuid") ?? "";
    public string Name => Text("name") ?? "";
    public string Version => Text("version") ?? "";
    public string Type => Text("type") ?? "";
    public string Os => Text("os") ?? "";
    public string? Origin => Text("origin");
    public string? PublishedAt => Text("published_at");

    /// <summary>files[0]: the image file's size, sha1 and compression, as far as the manifest says them.</summary>
    public long? FileSize => FileField("size") is JsonValue v && v.TryGetValue(out long n) ? n : null;
    public string? FileSha1 => FileField("sha1") is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    public string? FileCompression => FileField("compression") is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    /// <summary>The size of a zvol image's volume (image_size, MiB), when given.</summary>
    public long? ImageSize => Json["image_size"] is JsonValue v && v.TryGetValue(out long n) ? n : null;

    public string ToJson() => Json.ToJsonString(Pretty);

    public ImageManifest Copy() => new((JsonObject)Json.DeepClone());

    /// <summary>Parses a manifest document: null with imgadm's InvalidManifestError wording when the
    /// text is not a JSON object.</summary>
    public static ImageManifest? Parse(string text, out string? problem)
    {
        problem = null;
        try
        {
            if (JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) is JsonObject o) return new ImageManifest(o);
            problem = "manifest is invalid: not a JSON object";
        }
        catch (JsonException e) { problem = "manifest is invalid: " + e.Message; }
        catch (ArgumentException) { problem = "manifest is invalid: a field is given more than once"; }
        return null;
    }

    public static ImageManifest From(JsonObject json) => new(json);

    /// <summary>
    /// validateMinimalManifest: v, uuid, name, version, type and os present and well formed. Null when
    /// fine, else the whole "invalid manifest: ..." message, one entry per failing field in that order.
    /// </summary>
    public string? Validate()
    {
        var errs = new List<string>();
        void Missing(string f) => errs.Add($"{f} (MissingParameter)");
        if (Json["v"] is not JsonNode v) Missing("v");
        else if (!IsNonNegativeNumber(v)) errs.Add("v (\"v\" must be a positive integer)");
        if (Json["uuid"] is null) Missing("uuid");
        else if (Text("uuid") is not string u || !UuidPattern().IsMatch(u)) errs.Add("uuid");
        CheckString("name", MaxNameLength, NamePattern(), "image name",
            "only alpha-numeric characters and \" \", \".\", \"-\", \"_\" and \"/\" are allowed", errs);
        CheckString("version", MaxVersionLength, VersionPattern(), "image version",
            "only alpha-numeric characters and \".\", \"-\", \"_\" and \"/\" are allowed", errs);
        CheckChoice("type", Types, errs);
        CheckChoice("os", Oses, errs);
        return errs.Count == 0 ? null : "invalid manifest: " + string.Join(", ", errs);
    }

    private void CheckString(string field, int max, Regex pattern, string what, string allowed, List<string> errs)
    {
        if (Json[field] is null) { errs.Add($"{field} (MissingParameter)"); return; }
        string s = Text(field) ?? Json[field]!.ToJsonString();
        if (s.Length > max) errs.Add($"{field} ({what} is too long, max {max} characters)");
        else if (!pattern.IsMatch(s)) errs.Add($"{field} ({what} has invalid characters ({allowed}))");
    }

    private void CheckChoice(string field, string[] valid, List<string> errs)
    {
        if (Json[field] is null) { errs.Add($"{field} (MissingParameter)"); return; }
        string s = Text(field) ?? Json[field]!.ToJsonString();
        if (Array.IndexOf(valid, s) < 0)
            errs.Add($"{field} (invalid image {field}, \"{s}\", must be one of: {string.Join(", ", valid)})");
    }

    private static bool IsNonNegativeNumber(JsonNode v)
    {
        if (v is not JsonValue value) return false;
        // Number("...") as JavaScript takes it: a JSON number, or a string that reads as one.
        string text = value.GetValueKind() == JsonValueKind.Number ? value.ToJsonString() : value.TryGetValue(out string? s) ? s : "";
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d >= 0;
    }

    /// <summary>A field as util.format's %s shows it: a string as it is, a number or boolean as JSON writes it.</summary>
    private string? Text(string field) => Json[field] switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonValue v when v.GetValueKind() is JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.ToJsonString(),
        _ => null,
    };

    private JsonNode? FileField(string field) => Json["files"] is JsonArray { Count: > 0 } files && files[0] is JsonObject f ? f[field] : null;

    [GeneratedRegex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    public static partial Regex UuidPattern();

    [GeneratedRegex("^[A-Za-z0-9._/ -]+$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9._/+-]+$")]
    private static partial Regex VersionPattern();
}
