// Progressive enhancement only: the pages are complete without JavaScript.
// Copy buttons put an AMI id or checksum on the clipboard; the region filter hides other regions.
(function () {
  "use strict";
  function copy(text, button) {
    var done = function () {
      button.classList.add("done");
      button.textContent = "copied";
      setTimeout(function () { button.classList.remove("done"); button.textContent = "copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
    } else {
      fallback(text);
      done();
    }
  }
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () { copy(button.getAttribute("data-copy"), button); });
  });
  var filter = document.getElementById("region-filter");
  if (filter) {
    filter.addEventListener("change", function () {
      var region = filter.value;
      document.querySelectorAll("tr[data-region]").forEach(function (row) {
        row.classList.toggle("hidden", region !== "" && row.getAttribute("data-region") !== region);
      });
    });
  }
  var count = document.querySelectorAll("article.image").length;
  document.documentElement.setAttribute("data-js", "ready");
  document.documentElement.setAttribute("data-images", String(count));
})();
