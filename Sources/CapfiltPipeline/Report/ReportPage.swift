// The report page: one self-contained index.html (inline CSS and SVG, no script, nothing from the network)
// beside its thumbs/ folder, so it opens from file:// and still works when the folder is copied elsewhere.
// Read top to bottom: one sentence and a bar with the run's outcome, then the funnel and the reasons, the
// score distributions against the threshold, the keep rate per unit, the captions, and samples to look at.
// The same report gives the same bytes (no clock, no locale: ``Markup``).
import Foundation

public enum ReportPage {
    /// Colours by outcome, used alike by the charts and the sample cards.
    static let colors: [String: String] = [
        "kept": "#2e7d32", "replaced": "#1565c0", "filtered": "#ef6c00", "duplicate": "#8d8d8d", "failed": "#c62828",
        "web": "#2e7d32", "synthetic": "#1565c0", "neutral": "#5c6bc0",
    ]

    public static func html(_ r: RunReport) -> String {
        let name = URL(fileURLWithPath: r.runFolder).lastPathComponent
        let keptWeb = r.mainCaptionSources["web", default: 0], keptSynthetic = r.kept - keptWeb
        let filtered = r.statuses[.filtered, default: 0], duplicates = r.statuses[.duplicate, default: 0]
        let failed = r.statuses[.failed, default: 0]
        var h = """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>capfilt report: \(Markup.escape(name))</title>
            <style>\(css)</style>
            </head>
            <body>
            <header>
            <h1>capfilt report <span class="run">\(Markup.escape(name))</span></h1>

            """
        h += "<p class=\"summary\">\(Markup.grouped(r.input)) samples in, <b>\(Markup.grouped(r.kept)) kept (\(Markup.percent(r.kept, of: r.input)))</b>: "
        h += "\(Markup.grouped(keptWeb)) with their own web text, \(Markup.grouped(keptSynthetic)) with a synthetic caption in its place. "
        h += "\(Markup.grouped(filtered)) dropped by the filter (no text matched the image), \(Markup.grouped(duplicates)) duplicate images, \(Markup.grouped(failed)) failed.</p>\n"
        h += "<div class=\"cards\">"
        for (label, count, color, sub) in [
            ("input samples", r.input, "neutral", ""),
            ("kept", r.kept, "kept", Markup.percent(r.kept, of: r.input)),
            ("kept with web text", keptWeb, "web", Markup.percent(keptWeb, of: r.input)),
            ("web text replaced", keptSynthetic, "replaced", Markup.percent(keptSynthetic, of: r.input)),
            ("dropped by filter", filtered, "filtered", Markup.percent(filtered, of: r.input)),
            ("duplicates", duplicates, "duplicate", Markup.percent(duplicates, of: r.input)),
            ("failed", failed, "failed", Markup.percent(failed, of: r.input)),
        ] {
            h += "<div class=\"card-stat\" style=\"border-color: \(colors[color]!)\"><div class=\"n\">\(Markup.grouped(count))</div><div class=\"l\">\(label)</div><div class=\"s\">\(sub)</div></div>"
        }
        h += "</div>\n"
        h += SVGChart.stacked(chart: "outcome", title: "outcome of every input sample", parts: [
            .init(label: "kept with web text", count: keptWeb, color: colors["kept"]!, data: [("status", "kept")]),
            .init(label: "kept with a synthetic caption", count: keptSynthetic, color: colors["replaced"]!, data: [("status", "kept")]),
            .init(label: "dropped by the filter", count: filtered, color: colors["filtered"]!, data: [("status", "filtered")]),
            .init(label: "duplicate", count: duplicates, color: colors["duplicate"]!, data: [("status", "duplicate")]),
            .init(label: "failed", count: failed, color: colors["failed"]!, data: [("status", "failed")]),
        ])
        h += "\n<dl class=\"facts\">"
        for (term, value) in [
            ("run", r.runFolder), ("spec", r.specPath),
            ("threshold", "P(match) ≥ \(Markup.score(r.threshold)) keeps a text"), ("main caption", r.mainCaptionRule),
            ("captioner", "\(r.captionerModel) (sha256 \(r.captionerSHA256.prefix(12)))"),
            ("filter", "\(r.filterModel) (sha256 \(r.filterSHA256.prefix(12)))"),
            ("units", "\(r.units.count)"), ("shards", "\(r.shards)"),
        ] {
            h += "<div><dt>\(term)</dt><dd>\(Markup.escape(value))</dd></div>"
        }
        h += "</dl>\n</header>\n<main>\n"
        h += funnel(r)
        h += scores(r)
        h += perUnit(r)
        h += captions(r)
        h += samples(r)
        h += """
            </main>
            <footer>Written by <code>capfilt report</code> from the run's unit records and merged manifests; samples chosen by \
            seed \(r.seed) (<code>--seed</code>), so the same run gives the same page.</footer>
            </body>
            </html>

            """
        return h
    }

    // MARK: - Sections

    private static func funnel(_ r: RunReport) -> String {
        let failed = r.statuses[.failed, default: 0], duplicates = r.statuses[.duplicate, default: 0]
        let decoded = r.input - failed, unique = decoded - duplicates
        func losses(_ reasons: [String: Int]) -> String {
            sorted(reasons).prefix(4).map { "\($0.key) \(Markup.grouped($0.value))" }.joined(separator: ", ")
                + (reasons.count > 4 ? ", …" : "")
        }
        var h = "<section id=\"funnel\"><h2>From input to dataset</h2><div class=\"row\"><div>"
        h += SVGChart.horizontalBars(chart: "funnel", title: "samples left after each step", bars: [
            .init(label: "input samples", count: r.input, color: colors["neutral"]!),
            .init(label: "read and decoded", count: decoded, color: colors["neutral"]!,
                  note: failed > 0 ? "−\(Markup.grouped(failed)) failed: \(losses(r.failedReasons))" : nil),
            .init(label: "unique images, judged", count: unique, color: colors["neutral"]!,
                  note: duplicates > 0 ? "−\(Markup.grouped(duplicates)) duplicates" : nil),
            .init(label: "kept", count: r.kept, color: colors["kept"]!,
                  note: unique - r.kept > 0 ? "−\(Markup.grouped(unique - r.kept)) no text matched" : nil),
        ], scale: r.input, width: 1180, valueSpace: 620)
        h += "</div></div><div class=\"row\"><div><h3>Why samples left</h3>"
        h += SVGChart.horizontalBars(chart: "reasons", title: "reason codes of samples not kept", bars: sorted(r.reasons).map { reason, count in
            let color = r.failedReasons[reason] != nil ? colors["failed"]! : r.duplicateReasons[reason] != nil ? colors["duplicate"]! : colors["filtered"]!
            return SVGChart.Bar(label: reason, count: count, color: color)
        })
        h += "</div><div><h3>Web texts that could not be used</h3>"
        h += SVGChart.horizontalBars(chart: "web-text-problems", title: "web text problems", bars: sorted(r.webTextProblems).map {
            SVGChart.Bar(label: $0.key, count: $0.value, color: colors["replaced"]!)
        }, width: 520)
        h += "<p class=\"note\">A sample whose web text cannot be used keeps a synthetic caption if one matches.</p></div></div></section>\n"
        return h
    }

    private static func scores(_ r: RunReport) -> String {
        let p = { (v: Float) in Markup.fixed(Double(v), 1) }
        let c = { (v: Float) in Markup.fixed(Double(v), 2) }
        let thresholdLabel = "threshold \(Markup.score(r.threshold))"
        let webAbove = r.webTextsKept, webScored = r.itmWeb.total
        var h = "<section id=\"scores\"><h2>Scores</h2>"
        h += "<p class=\"note\">ITM P(match) decides: a text at or above the threshold is kept. \(Markup.grouped(webAbove)) of \(Markup.grouped(webScored)) web texts scored pass it. "
        h += "ITC is the image–text cosine, on its own scale; it is shown, not used.</p><div class=\"grid2\">"
        h += "<div><h3>Web texts: ITM P(match)</h3>"
        h += SVGChart.histogram(chart: "itm-web", title: "ITM P(match) of web texts", r.itmWeb, color: colors["web"]!,
                                marker: r.threshold, markerLabel: thresholdLabel, xLabel: p)
        h += "</div><div><h3>Synthetic captions: ITM P(match)</h3>"
        h += SVGChart.histogram(chart: "itm-synthetic", title: "ITM P(match) of synthetic captions", r.itmSynthetic,
                                color: colors["synthetic"]!, marker: r.threshold, markerLabel: thresholdLabel, xLabel: p)
        h += "</div><div><h3>Web texts: ITC cosine</h3>"
        h += SVGChart.histogram(chart: "itc-web", title: "ITC cosine of web texts", r.itcWeb.trimmed(maxBins: 30),
                                color: colors["web"]!, xLabel: c)
        h += "</div><div><h3>Synthetic captions: ITC cosine</h3>"
        h += SVGChart.histogram(chart: "itc-synthetic", title: "ITC cosine of synthetic captions", r.itcSynthetic.trimmed(maxBins: 30),
                                color: colors["synthetic"]!, xLabel: c)
        h += "</div></div></section>\n"
        return h
    }

    private static func perUnit(_ r: RunReport) -> String {
        // At most 200 columns: consecutive units share one beyond that.
        let per = max(1, (r.units.count + 199) / 200)
        var items: [(label: String, fraction: Double, data: [(String, String)])] = []
        var i = 0
        while i < r.units.count {
            let group = r.units[i..<min(r.units.count, i + per)]
            let input = group.reduce(0) { $0 + $1.input }, kept = group.reduce(0) { $0 + $1.kept }
            let label = group.count == 1 ? "unit \(group.first!.name)" : "units \(group.first!.name)–\(group.last!.name)"
            items.append((label, input == 0 ? 0 : Double(kept) / Double(input), [("input", "\(input)"), ("kept", "\(kept)")]))
            i += per
        }
        let overall = r.input == 0 ? 0 : Double(r.kept) / Double(r.input)
        var h = "<section id=\"units\"><h2>Keep rate per unit</h2>"
        h += "<p class=\"note\">\(r.units.count) units of work (an input shard, or a block of a list)\(per > 1 ? ", \(per) per column" : ""). A unit far below the line is worth a look: a damaged shard, another source.</p>"
        h += SVGChart.columns(chart: "keep-rate", title: "kept samples per input sample, per unit", items: items, reference: overall,
                              referenceLabel: "all: \(Markup.percent(r.kept, of: r.input))", color: colors["kept"]!)
        return h + "</section>\n"
    }

    private static func captions(_ r: RunReport) -> String {
        let n = { (v: Float) in String(Int(v)) }
        var h = "<section id=\"captions\"><h2>Captions</h2><div class=\"row\"><div><h3>Where the kept samples' main captions come from</h3>"
        h += SVGChart.horizontalBars(chart: "main-caption", title: "main caption sources of kept samples", bars: [
            .init(label: "web text", count: r.mainCaptionSources["web", default: 0], color: colors["web"]!, data: [("source", "web")]),
            .init(label: "synthetic caption", count: r.mainCaptionSources["synthetic", default: 0], color: colors["synthetic"]!, data: [("source", "synthetic")]),
        ], width: 560)
        h += "<p class=\"note\">Rule: <code>\(Markup.escape(r.mainCaptionRule))</code>.</p></div><div><h3>Degenerate synthetic captions</h3>"
        h += "<p class=\"big\" data-degenerate=\"\(r.degenerateCaptions)\">\(Markup.grouped(r.degenerateCaptions)) <span class=\"muted\">of \(Markup.grouped(r.syntheticCaptions)) (\(Markup.percent(r.degenerateCaptions, of: r.syntheticCaptions)))</span></p>"
        h += "<p class=\"note\">Captions that repeat themselves (a word twice in a row, a 3-word phrase twice, a 2-word phrase three times), as a looping decoder writes them; examples below.</p></div></div>"
        h += "<div class=\"grid2\"><div><h3>Words per web text</h3>"
        h += SVGChart.histogram(chart: "web-words", title: "words per web text", r.webWords, color: colors["web"]!, xLabel: n, lastBinLabel: "40+")
        h += "</div><div><h3>Words per synthetic caption</h3>"
        h += SVGChart.histogram(chart: "synthetic-words", title: "words per synthetic caption", r.syntheticWords, color: colors["synthetic"]!, xLabel: n, lastBinLabel: "40+")
        h += "</div></div></section>\n"
        return h
    }

    private static func samples(_ r: RunReport) -> String {
        let band = Markup.fixed(Double(ReportSection.nearBand), 2)
        let blurbs: [ReportSection: (String, String)] = [
            .keptAsIs: ("Kept as is", "The web text matched the image and is the main caption."),
            .replaced: ("Web text replaced", r.mainCaptionRule == "web_first"
                ? "Kept with a synthetic caption as the main caption: the web text did not match, or could not be used."
                : "Kept with a synthetic caption as the main caption (rule \(r.mainCaptionRule))."),
            .dropped: ("Dropped", "No text matched the image (filtered), or the image repeats the bytes of an earlier sample (duplicate)."),
            .nearThreshold: ("Near the threshold", "Web texts within ±\(band) of the threshold \(Markup.score(r.threshold)): where another threshold changes the verdict."),
            .failed: ("Failed", "Samples that could not be used: images that are missing, do not decode or are too large; repeated keys."),
            .degenerate: ("Degenerate synthetic captions", "Synthetic captions that repeat a phrase."),
        ]
        var h = "<section id=\"samples\"><h2>Samples</h2><nav>"
        for section in ReportSection.allCases {
            h += "<a href=\"#s-\(section.rawValue)\">\(blurbs[section]!.0) <span class=\"muted\">\(Markup.grouped(r.sectionCounts[section, default: 0]))</span></a>"
        }
        h += "</nav>\n"
        for section in ReportSection.allCases {
            let shown = r.sections[section] ?? []
            let count = r.sectionCounts[section, default: 0]
            h += "<section class=\"grid-section\" id=\"s-\(section.rawValue)\" data-section=\"\(section.rawValue)\" data-count=\"\(count)\" data-shown=\"\(shown.count)\">"
            h += "<h3>\(blurbs[section]!.0) <span class=\"muted\">\(count == 0 ? "none in this run" : shown.count < count ? "\(shown.count) of \(Markup.grouped(count)), chosen by seed" : "all \(Markup.grouped(count))")</span></h3>"
            h += "<p class=\"note\">\(Markup.escape(blurbs[section]!.1))</p><div class=\"grid\">"
            for sample in shown { h += card(sample, threshold: r.threshold) }
            h += "</div></section>\n"
        }
        return h + "</section>\n"
    }

    // MARK: - A sample

    static func card(_ s: ReportSample, threshold: Float) -> String {
        let verdict: (String, String)
        switch s.status {
        case .kept: verdict = s.mainCaptionSource == "synthetic" ? ("replaced", "kept · synthetic caption") : ("kept", "kept · web text")
        case .filtered: verdict = ("filtered", "dropped · no text matched")
        case .duplicate: verdict = ("duplicate", "duplicate")
        case .failed: verdict = ("failed", "failed · \(s.reason ?? "")")
        case .pending: verdict = ("failed", "pending")
        }
        var h = "<figure class=\"sample\" data-key=\"\(Markup.escape(s.key))\" data-status=\"\(s.status.rawValue)\">"
        if let thumbnail = s.thumbnail {
            h += "<img class=\"thumb\" src=\"\(Markup.escape(thumbnail))\" alt=\"image of sample \(Markup.escape(s.key))\">"
        } else {
            h += "<div class=\"thumb none\">\(Markup.escape(s.noThumbnail ?? "no image"))</div>"
        }
        h += "<figcaption><div class=\"verdict\" style=\"background: \(colors[verdict.0]!)\">\(Markup.escape(verdict.1))</div>"
        let main = s.status == .kept ? s.mainCaption : nil
        // The web text.
        if let web = s.webText {
            let state = s.webScore.map { $0.kept ? "pass" : "fail" } ?? "unscored"
            h += "<p class=\"text \(state)\(web == main ? " main" : "")\"><span class=\"tag\">web</span><span class=\"t\">\(Markup.escape(clip(web)))</span>"
            if let score = s.webScore { h += scoreLine(itm: score.itm, itc: score.itc, threshold: threshold) }
            h += "</p>"
        } else {
            h += "<p class=\"text unscored\"><span class=\"tag\">web</span><i>\(Markup.escape(s.webTextProblem ?? "no web text"))</i></p>"
        }
        for caption in s.captions where !caption.text.isEmpty {
            let state = caption.kept.map { $0 ? "pass" : "fail" } ?? "unscored"
            let repeated = CaptionChecks.repeatedPhrase(caption.text)
            h += "<p class=\"text \(state)\(caption.text == main && s.mainCaptionSource == "synthetic" ? " main" : "")\"><span class=\"tag syn\">synthetic</span><span class=\"t\">\(Markup.escape(clip(caption.text)))</span>"
            if let itm = caption.itm { h += scoreLine(itm: itm, itc: caption.itc, threshold: threshold) }
            if let repeated { h += "<span class=\"flag\">repeats “\(Markup.escape(repeated))”</span>" }
            h += "</p>"
        }
        var facts = [s.key]
        if let w = s.width, let hgt = s.height { facts.append("\(w)×\(hgt)\(s.imageFormat.map { " " + $0 } ?? "")") }
        h += "<p class=\"facts\">\(Markup.escape(facts.joined(separator: " · ")))</p>"
        if s.status != .kept, let detail = s.detail { h += "<p class=\"detail\">\(Markup.escape(clip(detail)))</p>" }
        return h + "</figcaption></figure>"
    }

    private static func scoreLine(itm: Float, itc: Float?, threshold: Float) -> String {
        "<span class=\"score\">ITM \(Markup.score(itm))\(itm >= threshold ? " ≥" : " <") \(Markup.score(threshold))\(itc.map { " · ITC " + Markup.score($0) } ?? "")</span>"
    }

    /// Long web texts (alt texts run to kilobytes) cut for the card.
    private static func clip(_ s: String, _ limit: Int = 280) -> String {
        s.count <= limit ? s : String(s.prefix(limit)) + "…"
    }

    /// Largest count first, then by name: the same order every time.
    private static func sorted(_ counts: [String: Int]) -> [(key: String, value: Int)] {
        counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
    }

    static let css = """
        :root { --ink: #1d1f24; --muted: #6b7080; --line: #e3e5ea; --bg: #f6f7f9; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
        header, main > section, footer { max-width: 1240px; margin: 0 auto; padding: 18px 28px; }
        header { background: #fff; border-bottom: 1px solid var(--line); max-width: none; }
        header > * { max-width: 1184px; margin-left: auto; margin-right: auto; }
        h1 { font-size: 22px; margin: 6px auto 8px; } h1 .run { color: var(--muted); font-weight: 500; }
        h2 { font-size: 18px; margin: 8px 0 10px; } h3 { font-size: 14px; margin: 12px 0 6px; }
        .summary { font-size: 16px; margin: 4px auto 14px; }
        .cards { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 12px; }
        .card-stat { background: #fff; border: 1px solid var(--line); border-top: 4px solid; border-radius: 6px; padding: 8px 14px; min-width: 140px; }
        .card-stat .n { font-size: 22px; font-weight: 650; } .card-stat .l { color: var(--muted); } .card-stat .s { font-size: 12px; color: var(--muted); min-height: 1em; }
        svg.chart { max-width: 100%; height: auto; display: block; }
        svg.chart[data-chart="outcome"] { border-radius: 4px; overflow: hidden; }
        svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: var(--ink); }
        svg .muted, svg .tick { fill: var(--muted); } svg .tick { font-size: 11px; }
        svg .axis { stroke: #b9bdc7; } svg .marker { stroke: #c62828; stroke-width: 1.5; stroke-dasharray: 4 3; }
        svg .marker-label { fill: #c62828; font-size: 11px; }
        svg rect.bar:hover { opacity: 0.8; }
        .facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 12px auto 4px; font-size: 12px; }
        .facts div { display: flex; gap: 6px; } .facts dt { color: var(--muted); } .facts dd { margin: 0; word-break: break-all; }
        main > section { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin-top: 16px; }
        .row { display: flex; flex-wrap: wrap; gap: 10px 40px; } .grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 6px 30px; }
        .note { color: var(--muted); margin: 4px 0 8px; max-width: 900px; } .muted { color: var(--muted); font-weight: 400; }
        .big { font-size: 26px; font-weight: 650; margin: 4px 0; }
        nav { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 6px; }
        nav a { text-decoration: none; color: var(--ink); border: 1px solid var(--line); border-radius: 14px; padding: 3px 12px; background: var(--bg); }
        .grid-section { border-top: 1px solid var(--line); padding-top: 6px; margin-top: 10px; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; }
        figure.sample { margin: 0; border: 1px solid var(--line); border-radius: 6px; overflow: hidden; background: #fff; }
        .thumb { display: block; width: 100%; height: 192px; object-fit: contain; background: #eceef2; }
        .thumb.none { display: flex; align-items: center; justify-content: center; text-align: center; padding: 12px; color: var(--muted); font-size: 12px; }
        figcaption { padding: 8px 10px 10px; font-size: 13px; }
        .verdict { display: inline-block; color: #fff; border-radius: 3px; padding: 1px 7px; font-size: 12px; font-weight: 600; margin-bottom: 6px; }
        .text { margin: 4px 0; word-break: break-word; } .text.fail { color: var(--muted); } .text.fail .t { text-decoration: line-through; text-decoration-color: #c6282880; }
        .text.main { font-weight: 600; } .text.unscored { color: var(--muted); }
        .tag { display: inline-block; font-size: 10px; text-transform: uppercase; letter-spacing: .04em; color: #2e7d32; border: 1px solid currentColor; border-radius: 3px; padding: 0 4px; margin-right: 6px; text-decoration: none; }
        .tag.syn { color: #1565c0; }
        .score { display: block; font-size: 11px; color: var(--muted); font-weight: 400; text-decoration: none; }
        .flag { display: block; font-size: 11px; color: #c62828; }
        p.facts { display: block; color: var(--muted); font-size: 11px; margin: 6px 0 0; word-break: break-all; }
        .detail { color: #c62828; font-size: 11px; margin: 4px 0 0; word-break: break-word; }
        footer { color: var(--muted); font-size: 12px; padding-bottom: 40px; }
        code { font-size: 12px; background: var(--bg); padding: 0 3px; border-radius: 3px; }
        """
}

extension RunReport {
    /// Writes the report folder: `index.html` and `thumbs/`, built in a fresh folder beside it and moved into
    /// place, so a reader sees the old report or the new one.
    public func write(to folder: URL, thumbnails: [String: [UInt8]]) throws {
        let parent = folder.deletingLastPathComponent()
        let fm = FileManager.default
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let temp = parent.appendingPathComponent(".\(folder.lastPathComponent).partial")
        try? fm.removeItem(at: temp)
        do {
            try fm.createDirectory(at: temp.appendingPathComponent("thumbs"), withIntermediateDirectories: true)
            for (name, bytes) in thumbnails.sorted(by: { $0.key < $1.key }) {
                try Durable.writeFile(bytes, to: temp.appendingPathComponent(name))
            }
            try Durable.writeFile(Array(ReportPage.html(self).utf8), to: temp.appendingPathComponent("index.html"))
        } catch {
            try? fm.removeItem(at: temp)
            throw ReportError(description: "cannot write the report in \(parent.path) (\(error)): check that the folder is writable, or give another with --output")
        }
        let old = parent.appendingPathComponent(".\(folder.lastPathComponent).old")
        try? fm.removeItem(at: old)
        if fm.fileExists(atPath: folder.path) { try Durable.rename(folder, to: old) }
        try Durable.rename(temp, to: folder)
        try? fm.removeItem(at: old)
    }
}
