// upwatch: a monitor's response-time chart (p50 and p95 per bucket, failed checks
// shaded), drawn with uPlot from /monitors/<id>/chart.json. Loaded on the monitor page
// only; without it the page shows everything else and says the chart needs JavaScript.
// The range links reload the page without JavaScript; with it they fetch the range.
(function () {
  "use strict";
  var HEIGHT = 280;
  var NARROW_HEIGHT = 220;
  var MIN_SHADE = 3;  // CSS px: the narrowest shading of a bucket with failed checks
  var clock = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"
  });

  function color(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function ms(v) {
    if (v == null) return "–";
    return (v >= 10 ? Math.round(v) : Math.round(v * 10) / 10) + " ms";
  }

  function lowest(values) {
    var low = null;
    for (var i = 0; i < values.length; i++) {
      if (values[i] != null && (low == null || values[i] < low)) low = values[i];
    }
    return low;
  }

  function highest(values) {
    var top = null;
    for (var i = 0; i < values.length; i++) {
      if (values[i] != null && (top == null || values[i] > top)) top = values[i];
    }
    return top;
  }

  function sum(values) {
    var total = 0;
    for (var i = 0; i < values.length; i++) total += values[i];
    return total;
  }

  // Buckets with failed checks, shaded behind the lines: the more failed, the darker.
  function shadeFailures(data) {
    return function (u) {
      var ctx = u.ctx;
      var top = u.bbox.top;
      var height = u.bbox.height;
      ctx.save();
      ctx.fillStyle = color("--chart-down", "#d93025");
      for (var i = 0; i < data.start.length; i++) {
        var down = data.down[i];
        if (!down) continue;
        var x0 = u.valToPos(data.start[i], "x", true);
        var x1 = u.valToPos(data.start[i] + data.bucketSeconds, "x", true);
        ctx.globalAlpha = 0.2 + 0.5 * down / (down + data.up[i]);
        // At least MIN_SHADE px wide, centred on its bucket: a 5-minute bucket of a
        // day's chart is under 2 px on a phone, and one failure must still show.
        var w = Math.max(MIN_SHADE * devicePixelRatio, x1 - x0);
        ctx.fillRect((x0 + x1 - w) / 2, top, w, height);
      }
      ctx.restore();
    };
  }

  function options(figure, data, width) {
    var muted = color("--muted", "#5a6272");
    var line = color("--line", "#dde2ea");
    var readout = figure.querySelector(".chart-readout");
    var axis = {
      stroke: muted,
      grid: { stroke: line, width: 1 },
      ticks: { stroke: line, width: 1 },
      font: "12px system-ui, sans-serif"
    };
    return {
      width: width,
      height: width < 480 ? NARROW_HEIGHT : HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 6 } },
      scales: {
        x: { time: true, range: [data.start[0], data.start[data.start.length - 1] + data.bucketSeconds] },
        y: {
          range: function (u, low, high) {
            return [0, high == null || high <= 0 ? 10 : high * 1.1];
          }
        }
      },
      series: [
        {},
        { label: "p50", stroke: color("--chart-p50", "#2456c4"), width: 2, spanGaps: false,
          points: { show: false } },
        { label: "p95", stroke: color("--chart-p95", "#b45309"), width: 1.5, spanGaps: false,
          points: { show: false } }
      ],
      axes: [
        axis,
        Object.assign({}, axis, {
          size: 64,
          values: function (u, ticks) { return ticks.map(function (v) { return v + " ms"; }); }
        })
      ],
      hooks: {
        drawClear: [shadeFailures(data)],
        setCursor: [function (u) {
          if (!readout) return;
          var i = u.cursor.idx;
          if (i == null) { readout.textContent = ""; return; }
          readout.textContent = clock.format(new Date(data.start[i] * 1000)) + ": p50 " +
            ms(data.p50[i]) + ", p95 " + ms(data.p95[i]) + ", " + data.up[i] + " up, " +
            data.down[i] + " failed";
        }]
      }
    };
  }

  // In words, for everyone (the canvas says nothing to a screen reader).
  function describe(data) {
    var checks = sum(data.up) + sum(data.down);
    if (!checks) return "No checks in this range yet.";
    var text = checks + (checks === 1 ? " check, " : " checks, ") + sum(data.down) + " failed";
    var low = lowest(data.p50), high = highest(data.p50), top = highest(data.p95);
    if (high != null) {
      text += low === high ? "; p50 " + ms(low) : "; p50 from " + ms(low) + " to " + ms(high);
    }
    if (top != null) text += (high != null ? ", " : "; ") + "p95 up to " + ms(top);
    return text + ".";
  }

  function Chart(figure) {
    this.figure = figure;
    this.plot = figure.querySelector(".chart-plot");
    this.summary = figure.querySelector(".chart-summary");
    this.src = figure.getAttribute("data-src");
    this.uplot = null;
    this.request = 0;
  }

  Chart.prototype.width = function () {
    return Math.max(240, Math.floor(this.plot.clientWidth));
  };

  Chart.prototype.load = function (range) {
    var self = this;
    var mine = ++this.request;
    this.figure.setAttribute("aria-busy", "true");
    fetch(this.src + "?range=" + encodeURIComponent(range), {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (r) {
      if (r.status === 401) throw new Error("your session has ended: log in again");
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    }).then(function (data) {
      if (mine !== self.request) return;  // a later range was asked for meanwhile
      self.draw(data);
    }).catch(function (err) {
      if (mine !== self.request) return;
      self.summary.textContent = "The chart could not be loaded: " + err.message + ".";
    }).finally(function () {
      if (mine === self.request) self.figure.removeAttribute("aria-busy");
    });
  };

  Chart.prototype.draw = function (data) {
    if (this.uplot) this.uplot.destroy();
    this.uplot = new uPlot(options(this.figure, data, this.width()),
      [data.start, data.p50, data.p95], this.plot);
    this.figure.setAttribute("data-points", String(data.start.length));
    this.figure.setAttribute("data-range", data.range);
    this.summary.textContent = describe(data);
  };

  Chart.prototype.resize = function () {
    if (!this.uplot) return;
    var width = this.width();
    this.uplot.setSize({ width: width, height: width < 480 ? NARROW_HEIGHT : HEIGHT });
  };

  function start() {
    var figure = document.getElementById("chart");
    if (!figure || typeof uPlot === "undefined") return;
    var chart = new Chart(figure);
    figure.classList.add("live");  // the plot and its caption show from now on
    var links = document.querySelectorAll(".ranges a[data-range]");
    for (var i = 0; i < links.length; i++) {
      links[i].addEventListener("click", function (event) {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        var range = this.getAttribute("data-range");
        for (var j = 0; j < links.length; j++) links[j].removeAttribute("aria-current");
        this.setAttribute("aria-current", "true");
        history.replaceState(null, "", "?range=" + encodeURIComponent(range));
        chart.load(range);
      });
    }
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { chart.resize(); }, 100);
    });
    chart.load(figure.getAttribute("data-range") || "24h");
  }

  document.addEventListener("DOMContentLoaded", start);
})();
