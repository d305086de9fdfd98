/*
 * The chart of one Redis instance (admin page logs/admin/instance_chart.html).
 *
 * Reads the JSON in <script id="chart-data"> (logs/admin_views.py chart_data) and draws,
 * with the vendored Chart.js (logs/static/logs/vendor/):
 *   - memory % and connections %: the peak per bucket as the solid line, so that a breach shows
 *     at its height at every period (a dot where it is above its threshold), the average as a
 *     thin dashed line, the band between them shaded;
 *   - the instance's thresholds as dashed horizontal lines (plugin below);
 *   - each plan change as a numbered marker at the top with a vertical line, coloured by
 *     status (done, dry run, failed, pending); the tooltip gives the reason;
 *   - buckets with failed reads as red crosses on the time axis;
 *   - the scheduled windows (a minimum plan by time) as green shaded bands with their plan.
 * What it drew is kept on chart.$autoscaler for the browser test.
 */
(function () {
  "use strict";

  var COLORS = {
    memory: "#1f6fb5",
    memoryBand: "rgba(31, 111, 181, 0.15)",
    connections: "#d9730d",
    connectionsBand: "rgba(217, 115, 13, 0.15)",
    failed: "#c62828",
    schedule: "rgba(46, 125, 50, 0.10)",
    scheduleText: "#2e7d32",
    status: { succeeded: "#2e7d32", "dry-run": "#6b6b6b", failed: "#c62828", pending: "#b7791f" },
  };
  var STATUS_LABEL = { succeeded: "done", "dry-run": "dry run", failed: "failed", pending: "pending" };
  var STATUS_DASH = { succeeded: [], "dry-run": [6, 4], failed: [2, 3], pending: [6, 2, 2, 2] };

  function wrap(text, width) {
    var words = String(text || "").split(/\s+/), lines = [], line = "";
    words.forEach(function (word) {
      if (line && (line + " " + word).length > width) { lines.push(line); line = word; }
      else { line = line ? line + " " + word : word; }
    });
    if (line) lines.push(line);
    return lines;
  }

  function series(times, values) {
    var out = [];
    for (var i = 0; i < times.length; i++) out.push({ x: times[i], y: values[i] });
    return out;
  }

  function fmtPct(value) {
    return value === null || value === undefined ? "—" : value.toFixed(1) + "%";
  }

  function utcOffsetLabel() {
    var minutes = -new Date().getTimezoneOffset();
    if (minutes === 0) return "UTC";
    var sign = minutes > 0 ? "+" : "-", abs = Math.abs(minutes);
    return "UTC" + sign + String(Math.floor(abs / 60)).padStart(2, "0") + ":" + String(abs % 60).padStart(2, "0");
  }

  // Thresholds as dashed horizontal lines, plan changes as vertical lines with their number.
  function overlays(data) {
    return {
      id: "autoscalerOverlays",
      // Scheduled windows as bands under the lines, each labelled with its plan.
      beforeDatasetsDraw: function (chart) {
        var area = chart.chartArea, ctx = chart.ctx, x = chart.scales.x, bands = 0;
        ctx.save();
        ctx.font = "11px sans-serif";
        (data.schedules || []).forEach(function (w) {
          var left = Math.max(x.getPixelForValue(w.from), area.left), right = Math.min(x.getPixelForValue(w.to), area.right);
          if (right <= left) return;
          ctx.fillStyle = COLORS.schedule;
          ctx.fillRect(left, area.top, right - left, area.bottom - area.top);
          ctx.fillStyle = COLORS.scheduleText; ctx.textAlign = "left";
          if (right - left > 40) ctx.fillText("≥ " + w.plan.split(":").pop(), left + 4, area.bottom - 6);
          bands += 1;
        });
        ctx.restore();
        chart.$autoscalerSchedules = bands;
      },
      afterDatasetsDraw: function (chart) {
        var area = chart.chartArea, ctx = chart.ctx;
        var x = chart.scales.x, y = chart.scales.y, drawn = { thresholdLines: 0, planLines: 0, breachDots: 0 };
        chart.data.datasets.forEach(function (dataset, i) {
          if (!/\(peak\)$/.test(dataset.label) || !chart.isDatasetVisible(i)) return;
          chart.getDatasetMeta(i).data.forEach(function (point) {
            if (point.options && point.options.radius > 0 && point.x >= area.left - 1 && point.x <= area.right + 1
                && point.y >= area.top - 1 && point.y <= area.bottom + 1) drawn.breachDots += 1;
          });
        });
        ctx.save();
        ctx.font = "12px sans-serif";
        [["memory", "memory threshold", COLORS.memory], ["connections", "connections threshold", COLORS.connections]].forEach(function (t) {
          if (t[0] === "connections" && data.connectionsUnlimited) return;
          var value = data.thresholds[t[0]], py = y.getPixelForValue(value);
          if (py < area.top || py > area.bottom) return;
          ctx.strokeStyle = t[2]; ctx.lineWidth = 1.5; ctx.setLineDash([8, 5]);
          ctx.beginPath(); ctx.moveTo(area.left, py); ctx.lineTo(area.right, py); ctx.stroke();
          ctx.setLineDash([]); ctx.fillStyle = t[2]; ctx.textAlign = "left";
          ctx.fillText(t[1] + " " + value + "%", area.left + 6, t[0] === "memory" ? py - 5 : py + 14);
          drawn.thresholdLines += 1;
        });
        data.changes.forEach(function (change) {
          var px = x.getPixelForValue(change.t);
          if (px < area.left - 1 || px > area.right + 1) return;
          var color = COLORS.status[change.status] || "#333";
          ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.setLineDash(STATUS_DASH[change.status] || []);
          ctx.beginPath(); ctx.moveTo(px, area.top + 8); ctx.lineTo(px, area.bottom); ctx.stroke();
          ctx.setLineDash([]); ctx.fillStyle = color; ctx.textAlign = "left";
          ctx.fillText(String(change.n), px + 7, area.top + 12);
          drawn.planLines += 1;
        });
        ctx.restore();
        drawn.scheduleBands = chart.$autoscalerSchedules || 0;
        chart.$autoscaler = drawn;
      },
    };
  }

  function build() {
    var source = document.getElementById("chart-data");
    var canvas = document.getElementById("instance-chart");
    if (!source || !canvas || typeof Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    var p = data.points;

    var peak = 100;
    p.memoryMax.concat(p.connectionsMax).forEach(function (v) { if (v !== null && v > peak) peak = v; });
    var yMax = Math.ceil(peak / 10) * 10;
    // Points further apart than this are not joined: a gap in the line is a gap in the data.
    var gap = Math.max(data.bucketSeconds, data.metricRateSeconds) * 1000 * 2.5;

    var changes = data.changes.map(function (c) {
      return { x: c.t, y: yMax, change: c };
    });
    var failures = [];
    p.t.forEach(function (t, i) { if (p.failures[i] > 0) failures.push({ x: t, y: 0, count: p.failures[i] }); });

    var average = { borderWidth: 1, borderDash: [4, 3], pointRadius: 0, pointHoverRadius: 3, tension: 0, spanGaps: gap };
    var peakLine = { borderWidth: 2, pointHoverRadius: 4, tension: 0, spanGaps: gap, fill: "-1" };
    // A dot on each peak above its threshold: one breached sample stays visible however long the period.
    function breachRadius(values, threshold) {
      return values.map(function (v) { return v !== null && v > threshold ? 3.5 : 0; });
    }
    // Red where breached, else the series' colour (the legend shows the first point's colour).
    function breachColor(values, threshold, color) {
      return values.map(function (v) { return v !== null && v > threshold ? COLORS.failed : color; });
    }
    var datasets = [
      Object.assign({ label: "memory % (avg)", data: series(p.t, p.memoryAvg), borderColor: COLORS.memory, backgroundColor: COLORS.memory }, average),
      Object.assign({ label: "memory % (peak)", data: series(p.t, p.memoryMax), borderColor: COLORS.memory, backgroundColor: COLORS.memoryBand,
                      pointRadius: breachRadius(p.memoryMax, data.thresholds.memory),
                      pointBackgroundColor: breachColor(p.memoryMax, data.thresholds.memory, COLORS.memory),
                      pointBorderColor: breachColor(p.memoryMax, data.thresholds.memory, COLORS.memory) }, peakLine),
      Object.assign({ label: "connections % (avg)", data: series(p.t, p.connectionsAvg), borderColor: COLORS.connections, backgroundColor: COLORS.connections }, average),
      Object.assign({ label: "connections % (peak)", data: series(p.t, p.connectionsMax), borderColor: COLORS.connections, backgroundColor: COLORS.connectionsBand,
                      pointRadius: data.connectionsUnlimited ? 0 : breachRadius(p.connectionsMax, data.thresholds.connections),
                      pointBackgroundColor: breachColor(p.connectionsMax, data.thresholds.connections, COLORS.connections),
                      pointBorderColor: breachColor(p.connectionsMax, data.thresholds.connections, COLORS.connections) }, peakLine),
      {
        label: "plan changes", data: changes, showLine: false, clip: false,
        pointStyle: "triangle", pointRadius: 7, pointHoverRadius: 9,
        pointRotation: changes.map(function (c) { return c.change.direction === "down" ? 180 : 0; }),
        backgroundColor: changes.map(function (c) { return COLORS.status[c.change.status] || "#333"; }),
        borderColor: changes.map(function (c) { return COLORS.status[c.change.status] || "#333"; }),
      },
      {
        label: "failed reads", data: failures, showLine: false, clip: false,
        pointStyle: "crossRot", pointRadius: 5, pointHoverRadius: 7, borderWidth: 2,
        borderColor: COLORS.failed, backgroundColor: COLORS.failed,
      },
    ];

    new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      plugins: [overlays(data)],
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        maintainAspectRatio: false,
        // The nearest point in both directions: a marker at the top when the pointer is near it,
        // else the nearest series point (whose tooltip gives all four figures at that time).
        interaction: { mode: "nearest", axis: "xy", intersect: false },
        scales: {
          x: {
            // the first bucket may start a little before the period: show it whole
            type: "time", min: p.t.length ? Math.min(data.start, p.t[0]) : data.start, max: data.end,
            title: { display: true, text: "time (" + utcOffsetLabel() + ")" },
            time: { tooltipFormat: "yyyy-MM-dd HH:mm:ss", displayFormats: { minute: "HH:mm", hour: "HH:mm", day: "MMM d" } },
            ticks: { maxRotation: 0, autoSkipPadding: 16 },
          },
          y: { min: 0, max: yMax, title: { display: true, text: "% of the plan's limit" }, ticks: { callback: function (v) { return v + "%"; } } },
        },
        plugins: {
          legend: { position: "bottom", labels: { usePointStyle: true, boxHeight: 8 } },
          tooltip: {
            filter: function (item, index, items) {
              if (item.raw.change || item.raw.count !== undefined) return true;
              var first = items.findIndex(function (other) { return !other.raw.change && other.raw.count === undefined; });
              return first === index;  // one series item is enough: its label lists them all
            },
            callbacks: {
              label: function (item) {
                var raw = item.raw;
                if (raw.change) {
                  var c = raw.change;
                  var lines = ["#" + c.n + " " + c.direction + ": " + c.from + " → " + c.to + " (" + (STATUS_LABEL[c.status] || c.status) + ")"];
                  lines = lines.concat(wrap(c.reason, 70));
                  if (c.error) lines = lines.concat(wrap("error: " + c.error, 70));
                  return lines;
                }
                if (raw.count !== undefined) return raw.count + " failed read" + (raw.count === 1 ? "" : "s");
                var i = item.dataIndex;
                var out = ["memory: avg " + fmtPct(p.memoryAvg[i]) + ", peak " + fmtPct(p.memoryMax[i])];
                if (!data.connectionsUnlimited || p.connectionsAvg[i] !== null) {
                  out.push("connections: avg " + fmtPct(p.connectionsAvg[i]) + ", peak " + fmtPct(p.connectionsMax[i]));
                }
                out.push(p.samples[i] + " sample" + (p.samples[i] === 1 ? "" : "s") + (p.failures[i] ? ", " + p.failures[i] + " failed" : ""));
                return out;
              },
            },
          },
        },
      },
    });
    canvas.dataset.ready = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", build);
  else build();
})();
