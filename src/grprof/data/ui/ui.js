// grprof serve's UI: the little interaction the pages need (served as a file: the pages'
// Content-Security-Policy is script-src 'self', no inline script). Pages work without it.
(function () {
  "use strict";
  // Live filter: an <input class="livefilter" data-table="ID"> hides the rows of table#ID whose
  // data-search does not contain the text (the form's GET does the same on the server).
  function apply(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    if (!table) return;
    var needle = input.value.trim().toLowerCase();
    var rows = table.tBodies[0] ? table.tBodies[0].rows : [];
    for (var i = 0; i < rows.length; i++) {
      var hay = rows[i].getAttribute("data-search");
      if (hay === null) continue;
      rows[i].classList.toggle("hidden", needle !== "" && hay.indexOf(needle) < 0);
    }
  }
  var inputs = document.querySelectorAll("input.livefilter");
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("input", function (ev) { apply(ev.target); });
  }
  // The snapshot picker shows the chosen snapshot as soon as it changes.
  var picker = document.querySelector("select[name=snapshot]");
  if (picker && picker.form) {
    picker.addEventListener("change", function () { picker.form.submit(); });
  }
})();
