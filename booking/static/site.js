// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Copy buttons next to read-only addresses (shown only when copying is possible).
  if (navigator.clipboard) {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var input = document.getElementById(button.getAttribute("data-copy"));
      if (!input) { return; }
      button.hidden = false;
      var label = button.textContent;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(input.value).then(function () {
          button.textContent = document.documentElement.lang === "fi" ? "Kopioitu" : "Copied";
          setTimeout(function () { button.textContent = label; }, 2000);
        });
      });
    });
  }
  // Move focus to the error summary so that screen reader and keyboard users meet it first.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
