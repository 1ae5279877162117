// Progressive enhancement only: every page is complete without JavaScript.
// Copy buttons put an AMI id or checksum on the clipboard. On the locator, the filter boxes
// (release, channel, edition, arch, region) compose and live in the URL query, as does the
// sort column (?sort=date&order=desc), so a filtered, sorted view can be shared as a link.
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

  var table = document.getElementById("locator");
  var form = document.getElementById("filters");
  if (table && form) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, i) { row.setAttribute("data-order", String(i)); });
    var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-filter]"));
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var shown = document.getElementById("shown");
    var sort = { column: "", order: "asc" };

    var readQuery = function () {
      var query = new URLSearchParams(window.location.search);
      selects.forEach(function (select) {
        var value = query.get(select.name) || "";
        if (value && !Array.prototype.some.call(select.options, function (o) { return o.value === value; })) {
          select.add(new Option(value, value));  // a shared link may name what is gone now
        }
        select.value = value;
      });
      sort.column = query.get("sort") || "";
      sort.order = query.get("order") === "desc" ? "desc" : "asc";
    };
    var writeQuery = function () {
      var query = new URLSearchParams();
      selects.forEach(function (select) { if (select.value) { query.set(select.name, select.value); } });
      if (sort.column) { query.set("sort", sort.column); query.set("order", sort.order); }
      var search = query.toString();
      window.history.replaceState(null, "", window.location.pathname + (search ? "?" + search : "") + window.location.hash);
    };
    var filter = function () {
      var count = 0;
      rows.forEach(function (row) {
        var keep = selects.every(function (select) {
          return !select.value || row.getAttribute("data-" + select.name) === select.value;
        });
        row.hidden = !keep;
        count += keep ? 1 : 0;
      });
      shown.textContent = count + " of " + rows.length + " rows";
      document.documentElement.setAttribute("data-rows-shown", String(count));
    };
    var cellKey = function (row, index) {
      var cell = row.cells[index];
      return cell.getAttribute("data-key") || cell.textContent.trim();
    };
    var order = function () {
      var index = -1;
      headers.forEach(function (th, i) {
        var active = sort.column !== "" && th.getAttribute("data-sort") === sort.column;
        if (active) { index = i; }
        if (th.hasAttribute("data-sort")) {
          th.setAttribute("aria-sort", active ? (sort.order === "asc" ? "ascending" : "descending") : "none");
        }
      });
      var sign = sort.order === "desc" ? -1 : 1;
      var sorted = rows.slice().sort(function (a, b) {
        if (index >= 0) {
          var x = cellKey(a, index), y = cellKey(b, index);
          if (x !== y) { return sign * (x < y ? -1 : 1); }
        }
        return Number(a.getAttribute("data-order")) - Number(b.getAttribute("data-order"));
      });
      sorted.forEach(function (row) { body.appendChild(row); });
    };

    headers.forEach(function (th) {
      var column = th.getAttribute("data-sort");
      if (!column) { return; }
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      button.title = "sort by " + th.textContent.toLowerCase();
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", function () {
        sort.order = sort.column === column && sort.order === "asc" ? "desc" : "asc";
        sort.column = column;
        order();
        writeQuery();
      });
    });
    selects.forEach(function (select) {
      select.addEventListener("change", function () { filter(); writeQuery(); });
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("reset", function () {
      setTimeout(function () { filter(); writeQuery(); }, 0);  // after the boxes were reset
    });
    window.addEventListener("popstate", function () { readQuery(); filter(); order(); });
    form.hidden = false;
    readQuery();
    filter();
    order();
  }
  var count = document.querySelectorAll("article.image").length;
  document.documentElement.setAttribute("data-js", "ready");
  document.documentElement.setAttribute("data-images", String(count));
})();
