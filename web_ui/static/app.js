// luutru — a little plain JavaScript; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Forms that change something final ask first (issue a number, close a file).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  });
  document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });
  // Refuse a too-large file before uploading it for minutes over a slow LAN.
  document.querySelectorAll("input[type=file]").forEach(function (input) {
    input.addEventListener("change", function () {
      var limit = 1048576 * parseInt(document.body.getAttribute("data-max-mb") || "50", 10);
      for (var i = 0; i < input.files.length; i++) {
        if (input.files[i].size > limit) {
          window.alert(input.getAttribute("data-too-large") || "Tệp quá lớn.");
          input.value = "";
        }
      }
    });
  });
  // Choosing a kind of hồ sơ from the retention table fills in its period (still editable).
  document.querySelectorAll("select[data-period-target]").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var opt = sel.options[sel.selectedIndex];
      var target = document.getElementById(sel.getAttribute("data-period-target"));
      var period = opt && opt.getAttribute("data-period");
      if (!target || !period) { return; }
      for (var i = 0; i < target.options.length; i++) {
        if (target.options[i].text === period) { target.selectedIndex = i; }
      }
    });
  });
  // A scan being recognised or signed: ask every 10 s (a status, not the record) and say
  // when it is done, without reloading a page someone may be typing in.
  var poll = document.querySelector("[data-capture-poll]");
  if (poll && window.fetch) {
    var timer = window.setInterval(function () {
      window.fetch(poll.getAttribute("data-capture-poll"), {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (st) {
          if (st && (st.step === "done" || st.step === "failed" || st.step === null)) {
            window.clearInterval(timer);
            poll.textContent = poll.getAttribute("data-done-text");
          } else if (st && st.step === "sign" && st.retrying) {
            window.clearInterval(timer);  // no agency key yet: nothing to follow here
            poll.textContent = poll.getAttribute("data-wait-text");
          }
        }).catch(function () {});
    }, 10000);
  }
  // Dates: let clerks type 15092025 or 15.9.2025; the server also accepts dd/mm/yyyy.
  document.querySelectorAll("input[placeholder='dd/mm/yyyy']").forEach(function (input) {
    input.addEventListener("blur", function () {
      var v = input.value.trim(), m = v.match(/^(\d{2})(\d{2})(\d{4})$/);
      if (m) { input.value = m[1] + "/" + m[2] + "/" + m[3]; return; }
      m = v.match(/^(\d{1,2})[.\-](\d{1,2})[.\-](\d{4})$/);
      if (m) { input.value = ("0" + m[1]).slice(-2) + "/" + ("0" + m[2]).slice(-2) + "/" + m[3]; }
    });
  });
});

// The draft form (outgoing.html): the template's fields or the file input, by the chosen way.
(function () {
  var form = document.getElementById("draft-form");
  if (!form) return;
  function show() {
    var checked = form.querySelector("input[name=mode]:checked");
    var mode = checked ? checked.value : "template";
    document.getElementById("template-fields").hidden = mode !== "template";
    document.getElementById("file-field").hidden = mode === "template";
  }
  form.addEventListener("change", function (e) {
    if (e.target && e.target.name === "mode") show();
  });
  show();
})();
