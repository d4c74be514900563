// The report's charts as inline SVG, drawn here (no script, no library, no network): horizontal bars, histograms
// and columns. Every bar carries its numbers as data-* attributes (data-count, ...) and a <title> tooltip, so a
// test in a browser can read back what the chart says and a person can hover for the exact count.

/// Text for HTML and SVG: markup characters escaped, control characters (which no page should show) replaced.
enum Markup {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\n", "\t": out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// 1234567 as "1,234,567", whatever the locale.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    static func percent(_ part: Int, of whole: Int) -> String {
        whole == 0 ? "0%" : fixed(100 * Double(part) / Double(whole), 1) + "%"
    }

    /// `value` with `digits` decimals, rounded half away from zero (no locale, no C formatting).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((abs(value) * scale).rounded())
        let whole = scaled / Int(scale), frac = scaled % Int(scale)
        var fracText = String(frac)
        while fracText.count < digits { fracText = "0" + fracText }
        return (value < 0 && scaled > 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + fracText : "")
    }

    static func score(_ value: Float) -> String { fixed(Double(value), 3) }
}

enum SVGChart {
    struct Bar {
        var label: String
        var count: Int
        var color: String
        /// Text after the count ("−13: image_corrupt 9, ...").
        var note: String? = nil
        /// Extra attributes for tests (name → value), on the bar's rect.
        var data: [(String, String)] = []
    }

    /// Labelled horizontal bars scaled to the largest count (or to `scale`).
    static func horizontalBars(chart: String, title: String, bars: [Bar], scale: Int? = nil, width: Int = 720,
                               valueSpace: Int = 200) -> String {
        let labelWidth = 210, row = 26, top = 4
        let barSpace = width - labelWidth - valueSpace
        let largest = max(1, scale ?? bars.map(\.count).max() ?? 1)
        let height = top * 2 + row * max(1, bars.count)
        var svg = open(chart: chart, title: title, width: width, height: height)
        if bars.isEmpty {
            svg += #"<text x="0" y="18" class="muted">none</text>"#
        }
        for (i, bar) in bars.enumerated() {
            let y = top + i * row
            let w = bar.count == 0 ? 0 : max(2, Int((Double(bar.count) / Double(largest) * Double(barSpace)).rounded()))
            let attrs = bar.data.map { " data-\($0.0)=\"\(Markup.escape($0.1))\"" }.joined()
            svg += "<g><title>\(Markup.escape(bar.label)): \(Markup.grouped(bar.count))</title>"
            svg += "<text x=\"\(labelWidth - 8)\" y=\"\(y + 17)\" text-anchor=\"end\" class=\"label\">\(Markup.escape(bar.label))</text>"
            svg += "<rect class=\"bar\" data-label=\"\(Markup.escape(bar.label))\" data-count=\"\(bar.count)\"\(attrs) x=\"\(labelWidth)\" y=\"\(y + 4)\" width=\"\(w)\" height=\"\(row - 8)\" rx=\"3\" fill=\"\(bar.color)\"/>"
            svg += "<text x=\"\(labelWidth + w + 6)\" y=\"\(y + 17)\" class=\"value\">\(Markup.grouped(bar.count))"
            if let note = bar.note { svg += "<tspan class=\"muted\"> \(Markup.escape(note))</tspan>" }
            svg += "</text></g>"
        }
        return svg + "</svg>"
    }

    /// A histogram with its x range, the largest count, and an optional marker (the threshold) drawn across it.
    static func histogram(chart: String, title: String, _ h: Histogram, color: String, marker: Float? = nil,
                          markerLabel: String = "", xLabel: (Float) -> String, lastBinLabel: String? = nil,
                          width: Int = 440, height: Int = 190) -> String {
        let left = 46, right = 14, top = 18, bottom = 34
        let plotW = width - left - right, plotH = height - top - bottom
        var svg = open(chart: chart, title: title, width: width, height: height)
        let largest = h.counts.max() ?? 0
        svg += "<text x=\"\(left - 6)\" y=\"\(top + 4)\" text-anchor=\"end\" class=\"tick\">\(Markup.grouped(largest))</text>"
        svg += "<text x=\"\(left - 6)\" y=\"\(top + plotH)\" text-anchor=\"end\" class=\"tick\">0</text>"
        svg += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + plotW)\" y2=\"\(top + plotH)\" class=\"axis\"/>"
        let n = h.counts.count
        for i in 0..<n {
            let x0 = left + Int((Double(i) / Double(n) * Double(plotW)).rounded())
            let x1 = left + Int((Double(i + 1) / Double(n) * Double(plotW)).rounded())
            let count = h.counts[i]
            let bh = largest == 0 || count == 0 ? 0 : max(1, Int((Double(count) / Double(largest) * Double(plotH)).rounded()))
            let range = i == n - 1 && lastBinLabel != nil ? lastBinLabel! : "\(xLabel(h.edge(i)))–\(xLabel(h.edge(i + 1)))"
            svg += "<rect class=\"bar\" data-count=\"\(count)\" data-low=\"\(h.edge(i))\" data-high=\"\(h.edge(i + 1))\" x=\"\(x0)\" y=\"\(top + plotH - bh)\" width=\"\(max(1, x1 - x0 - 1))\" height=\"\(bh)\" fill=\"\(color)\"><title>\(Markup.escape(range)): \(Markup.grouped(count))</title></rect>"
        }
        for (i, anchor) in [(0, "start"), (n / 2, "middle"), (n, "end")] {
            let x = left + Int((Double(i) / Double(n) * Double(plotW)).rounded())
            let label = i == n && lastBinLabel != nil ? lastBinLabel! : xLabel(h.edge(i))
            svg += "<text x=\"\(x)\" y=\"\(top + plotH + 16)\" text-anchor=\"\(anchor)\" class=\"tick\">\(Markup.escape(label))</text>"
        }
        if let marker, marker >= h.low, marker <= h.high {
            let x = left + Int((Double(marker - h.low) / Double(h.high - h.low) * Double(plotW)).rounded())
            svg += "<line x1=\"\(x)\" y1=\"\(top - 6)\" x2=\"\(x)\" y2=\"\(top + plotH)\" class=\"marker\" data-marker=\"\(marker)\"/>"
            let anchor = x > left + plotW * 3 / 4 ? "end" : "start"
            let tx = anchor == "end" ? x - 4 : x + 4
            svg += "<text x=\"\(tx)\" y=\"\(top + 4)\" text-anchor=\"\(anchor)\" class=\"marker-label\">\(Markup.escape(markerLabel))</text>"
        }
        if h.total == 0 {
            svg += "<text x=\"\(left + plotW / 2)\" y=\"\(top + plotH / 2)\" text-anchor=\"middle\" class=\"muted\">none scored</text>"
        }
        return svg + "</svg>"
    }

    /// One column per item, as a fraction (0...1) of the plot's height, with a reference line (the overall
    /// rate).
    static func columns(chart: String, title: String, items: [(label: String, fraction: Double, data: [(String, String)])],
                        reference: Double?, referenceLabel: String, color: String, width: Int = 900, height: Int = 170) -> String {
        let left = 46, right = 14, top = 18, bottom = 30
        let plotW = width - left - right, plotH = height - top - bottom
        var svg = open(chart: chart, title: title, width: width, height: height)
        svg += "<text x=\"\(left - 6)\" y=\"\(top + 4)\" text-anchor=\"end\" class=\"tick\">100%</text>"
        svg += "<text x=\"\(left - 6)\" y=\"\(top + plotH)\" text-anchor=\"end\" class=\"tick\">0%</text>"
        svg += "<line x1=\"\(left)\" y1=\"\(top + plotH)\" x2=\"\(left + plotW)\" y2=\"\(top + plotH)\" class=\"axis\"/>"
        let n = max(1, items.count)
        for (i, item) in items.enumerated() {
            let x0 = left + Int((Double(i) / Double(n) * Double(plotW)).rounded())
            let x1 = left + Int((Double(i + 1) / Double(n) * Double(plotW)).rounded())
            let bh = Int((min(1, max(0, item.fraction)) * Double(plotH)).rounded())
            let attrs = item.data.map { " data-\($0.0)=\"\(Markup.escape($0.1))\"" }.joined()
            svg += "<rect class=\"bar\"\(attrs) x=\"\(x0)\" y=\"\(top + plotH - bh)\" width=\"\(max(1, x1 - x0 - (n > 100 ? 0 : 1)))\" height=\"\(bh)\" fill=\"\(color)\"><title>\(Markup.escape(item.label)): \(Markup.fixed(100 * item.fraction, 1))%</title></rect>"
        }
        if let first = items.first, let last = items.last {
            svg += "<text x=\"\(left)\" y=\"\(top + plotH + 16)\" class=\"tick\">\(Markup.escape(first.label))</text>"
            if items.count > 1 {
                svg += "<text x=\"\(left + plotW)\" y=\"\(top + plotH + 16)\" text-anchor=\"end\" class=\"tick\">\(Markup.escape(last.label))</text>"
            }
        }
        if let reference {
            let y = top + plotH - Int((reference * Double(plotH)).rounded())
            svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(left + plotW)\" y2=\"\(y)\" class=\"marker\"/>"
            svg += "<text x=\"\(left + plotW - 4)\" y=\"\(y - 4)\" text-anchor=\"end\" class=\"marker-label\">\(Markup.escape(referenceLabel))</text>"
        }
        return svg + "</svg>"
    }

    /// One bar split into parts (the run's outcome at a glance).
    static func stacked(chart: String, title: String, parts: [Bar], width: Int = 1184, height: Int = 26) -> String {
        let total = max(1, parts.reduce(0) { $0 + $1.count })
        var svg = open(chart: chart, title: title, width: width, height: height)
        var x = 0.0
        for part in parts {
            let w = Double(part.count) / Double(total) * Double(width)
            let attrs = part.data.map { " data-\($0.0)=\"\(Markup.escape($0.1))\"" }.joined()
            svg += "<rect class=\"bar\" data-label=\"\(Markup.escape(part.label))\" data-count=\"\(part.count)\"\(attrs) x=\"\(Markup.fixed(x, 2))\" y=\"0\" width=\"\(Markup.fixed(w, 2))\" height=\"\(height)\" fill=\"\(part.color)\"><title>\(Markup.escape(part.label)): \(Markup.grouped(part.count))</title></rect>"
            x += w
        }
        return svg + "</svg>"
    }

    private static func open(chart: String, title: String, width: Int, height: Int) -> String {
        "<svg class=\"chart\" data-chart=\"\(chart)\" role=\"img\" aria-label=\"\(Markup.escape(title))\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\">"
    }
}
