// Refresh the job's status and log every second while the job is Queued or Processing.
(function () {
  var box = document.getElementById("job-live");
  if (!box) return;
  function pending() {
    var status = document.getElementById("job-status");
    return status && status.getAttribute("data-pending") === "yes";
  }
  function poll() {
    if (!pending()) return;
    fetch(box.getAttribute("data-src"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) { box.innerHTML = html; })
      .catch(function () {})
      .then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
