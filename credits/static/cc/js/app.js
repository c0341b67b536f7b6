// Progressive enhancements only: every page works without this file.
(function () {
  "use strict";
  var key = "cc.nav.collapsed";
  var button = document.querySelector("[data-toggle-nav]");
  var small = window.matchMedia("(max-width: 720px)");
  function apply(collapsed) {
    if (small.matches) {
      document.body.classList.toggle("nav-open", !collapsed);
    } else {
      document.body.classList.toggle("nav-collapsed", collapsed);
    }
    if (button) button.setAttribute("aria-expanded", String(!collapsed));
  }
  var stored = window.localStorage ? localStorage.getItem(key) === "1" : false;
  apply(small.matches ? true : stored);
  if (button) {
    button.addEventListener("click", function () {
      var collapsed = button.getAttribute("aria-expanded") === "true";
      apply(collapsed);
      if (!small.matches && window.localStorage) localStorage.setItem(key, collapsed ? "1" : "0");
    });
  }
  // Forms that ask for confirmation declare data-confirm; no inline handlers (CSP).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
