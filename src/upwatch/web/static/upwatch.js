// upwatch: progressive enhancement only; every page works without this file.
// Times are sent in UTC (<time datetime="…Z">); show them in the browser's time zone,
// to the minute, with the full UTC time on hover.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  function localize(root) {
    if (!root || !root.querySelectorAll) return;
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var el = times[i];
      if (el.dataset.localized) continue;
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) continue;
      el.title = el.getAttribute("datetime").replace("T", " ").replace("Z", " UTC");
      el.textContent = format.format(when);
      el.dataset.localized = "1";
    }
  }
  document.addEventListener("DOMContentLoaded", function () { localize(document); });
  // Content htmx swaps in (the monitor list, every 10 s) is localized as it arrives.
  document.addEventListener("htmx:load", function (event) {
    var el = event.target;
    localize(el);
    if (el && el.matches && el.matches("time[datetime]")) localize(el.parentNode);
  });
})();
