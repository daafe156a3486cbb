namespace DiffusionFunctional.Experiments.Plots;

/// <summary>
/// Makes ScottPlot's text visible on Linux. SkiaSharp's NoDependencies native build has no fontconfig, so the
/// default typeface has no glyphs and every label renders blank; registering a TrueType file from the system font
/// folders by path fixes that. On Windows and macOS Skia finds fonts itself and nothing is changed.
/// </summary>
public static class PlotFonts
{
    static readonly object Gate = new();
    static bool done;

    /// <summary>Preferred files (regular, bold), then any TrueType font found under the folders.</summary>
    static readonly (string Regular, string Bold)[] Preferred =
    [
        ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
        ("LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
        ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"),
    ];

    static readonly string[] Folders = ["/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/fonts/truetype"];

    /// <summary>Registers a system font as ScottPlot's default once per process (call before building a plot).</summary>
    public static void EnsureRegistered()
    {
        lock (Gate)
        {
            if (done) return;
            done = true;
            if (!OperatingSystem.IsLinux()) return;
            var files = Folders.Where(Directory.Exists)
                .SelectMany(d => Directory.EnumerateFiles(d, "*.ttf", SearchOption.AllDirectories))
                .ToList();
            foreach (var (regular, bold) in Preferred)
            {
                var r = files.FirstOrDefault(f => Path.GetFileName(f) == regular);
                if (r is null) continue;
                Register(r, files.FirstOrDefault(f => Path.GetFileName(f) == bold));
                return;
            }
            if (files.Count > 0) Register(files.Order(StringComparer.Ordinal).First(), null);
        }
    }

    static void Register(string regular, string? bold)
    {
        const string name = "DfnPlotSans";
        ScottPlot.Fonts.AddFontFile(name, regular, bold: false, italic: false);
        ScottPlot.Fonts.AddFontFile(name, bold ?? regular, bold: true, italic: false);
        ScottPlot.Fonts.Default = name;
    }
}
