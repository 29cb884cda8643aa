// A part of a page that refreshes itself every second while what it shows is still running:
// an element with data-live-src (the URL of its fresh HTML) and data-live-state (the id of the
// element inside it whose data-pending says "yes" while the job is Queued or Processing).
(function () {
  document.querySelectorAll("[data-live-src]").forEach(function (box) {
    function pending() {
      var state = document.getElementById(box.getAttribute("data-live-state"));
      return state && state.getAttribute("data-pending") === "yes";
    }
    function poll() {
      if (!pending()) return;
      fetch(box.getAttribute("data-live-src"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) { box.innerHTML = html; })
        .catch(function () {})
        .then(function () { setTimeout(poll, 1000); });
    }
    setTimeout(poll, 1000);
  });
})();
