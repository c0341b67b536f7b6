// Progressive enhancements only: every page works without this file.
(function () {
  "use strict";
  var key = "cc.nav.collapsed";
  var button = document.querySelector("[data-toggle-nav]");
  var small = window.matchMedia("(max-width: 720px)");
  function stored() {
    try { return window.localStorage && localStorage.getItem(key) === "1"; } catch (e) { return false; }
  }
  function remember(collapsed) {
    try { if (window.localStorage) localStorage.setItem(key, collapsed ? "1" : "0"); } catch (e) { /* private mode */ }
  }
  // Phones: the navigation is an overlay, closed by default. Wider screens: a column that
  // collapses to a rail of icons, remembered per browser.
  function apply(collapsed) {
    if (small.matches) {
      document.body.classList.remove("nav-collapsed");
      document.body.classList.toggle("nav-open", !collapsed);
    } else {
      document.body.classList.remove("nav-open");
      document.body.classList.toggle("nav-collapsed", collapsed);
    }
    if (button) button.setAttribute("aria-expanded", String(!collapsed));
  }
  apply(small.matches ? true : stored());
  if (small.addEventListener) {
    small.addEventListener("change", function () { apply(small.matches ? true : stored()); });
  }
  if (button) {
    button.addEventListener("click", function () {
      var collapsed = button.getAttribute("aria-expanded") === "true";
      apply(collapsed);
      if (!small.matches) remember(collapsed);
    });
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    // Escape closes the phone navigation and the open person menu, focus back on its opener.
    if (small.matches && document.body.classList.contains("nav-open")) {
      apply(true);
      if (button) button.focus();
    }
    var menu = document.querySelector(".person-menu[open]");
    if (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    }
  });
  // Forms that ask for confirmation declare data-confirm; no inline handlers (CSP).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
  // A posted form shows that it is working and is not sent twice (a second "Place order").
  // The button is not disabled: that would drop its name/value from the submission.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.method || form.method.toLowerCase() !== "post") return;
    if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
    if (form.getAttribute("data-submitting") === "1") { event.preventDefault(); return; }
    form.setAttribute("data-submitting", "1");
    var submitter = event.submitter || form.querySelector("[type=submit]");
    if (submitter) submitter.setAttribute("aria-busy", "true");
  });
  // Back to a page from the browser's cache: its forms can be sent again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      form.removeAttribute("data-submitting");
      form.querySelectorAll("[aria-busy]").forEach(function (b) { b.removeAttribute("aria-busy"); });
    });
  });
})();
// A table wider than its card scrolls inside it: keyboard users scroll it too (focusable,
// named by the table's caption or the heading before it).
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        var table = wrap.querySelector("table");
        var label = table && (table.getAttribute("aria-label") ||
          (table.caption && table.caption.textContent));
        if (!label) {
          var heading = wrap.closest("section, main");
          heading = heading && heading.querySelector("h2, h1");
          label = heading ? heading.textContent : "";
        }
        if (label) wrap.setAttribute("aria-label", label.trim());
      } else if (!scrolls && wrap.getAttribute("tabindex") === "0") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }
  mark();
  window.addEventListener("resize", mark);
  document.addEventListener("htmx:afterSettle", mark);
})();
// "Select all" in a list's header ticks every row's box of the same name (Users); the
// header box shows "some" as mixed. Delegated: the list is swapped by live filters.
(function () {
  "use strict";
  function rows(all) {
    var name = all.getAttribute("data-select-all");
    var table = all.closest("table") || document;
    return table.querySelectorAll('input[type=checkbox][name="' + name + '"]');
  }
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box || box.type !== "checkbox") return;
    if (box.hasAttribute("data-select-all")) {
      rows(box).forEach(function (row) { row.checked = box.checked; });
      box.indeterminate = false;
      return;
    }
    var table = box.closest("table");
    var all = table && table.querySelector("[data-select-all='" + box.name + "']");
    if (!all) return;
    var list = Array.prototype.slice.call(rows(all));
    var on = list.filter(function (row) { return row.checked; }).length;
    all.checked = on > 0 && on === list.length;
    all.indeterminate = on > 0 && on < list.length;
  });
})();
// A report's date range: typing a date means "Custom"; after each refresh the server says
// which dates the range covers, and the From/To fields show them (cc:report-range).
(function () {
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!field.form || !field.form.classList.contains("report-filters")) return;
    if (field.name !== "from" && field.name !== "to") return;
    var custom = field.form.querySelector("input[name=range][value=custom]");
    if (custom) custom.checked = true;
  }, true);  // capture: before htmx sends the form on the same change
  document.addEventListener("cc:report-range", function (event) {
    var detail = event.detail || {};
    document.querySelectorAll("form.report-filters").forEach(function (form) {
      var from = form.querySelector("input[name=from]");
      var to = form.querySelector("input[name=to]");
      if (from && detail.from) from.value = detail.from;
      if (to && detail.to) to.value = detail.to;
      var choice = form.querySelector("input[name=range][value='" + detail.range + "']");
      if (choice) choice.checked = true;
    });
  });
})();
